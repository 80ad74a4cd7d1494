// Max and average pooling (fixed and adaptive windows), forward and backward,
// with PyTorch's semantics.
#pragma once

#include "core/geometry.hpp"

namespace convext {

// indices (optional, may be null): argmax as ih * W + iw within the plane.
template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, std::int64_t* indices);

// indices may be null: the argmax is then recomputed from x. Given indices
// are checked to lie inside the plane (std::invalid_argument otherwise).
template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* dy, const T* x,
                         const std::int64_t* indices, T* dx);

// Average pooling's divisor (unused by adaptive pooling, whose windows divide
// by their own size): with count_include_pad the window clipped to the padded
// input, else to the input; a divisor_override other than 0 (any sign, as
// PyTorch) replaces both.
struct AvgPoolOptions {
    bool count_include_pad = true;
    index_t divisor_override = 0;
};

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const AvgPoolOptions& opt, const T* x, T* y);

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const AvgPoolOptions& opt, const T* dy, T* dx);

}  // namespace convext
