// Max and average pooling, forward and backward, with PyTorch's semantics.
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

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, bool count_include_pad, const T* x, T* y);

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, bool count_include_pad, const T* dy, T* dx);

}  // namespace convext
