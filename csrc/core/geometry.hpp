// Shapes are values, checked in one place. Every op family builds its
// geometry with one make_* function shared by forward and backward; all size
// arithmetic in it is overflow-checked, so kernels can assume valid input.
#pragma once

#include "core/common.hpp"

#include <vector>

namespace convext {

using Shape = std::vector<index_t>;

std::string shape_str(const Shape& s);  // "(1, 3, 5, 5)"

// conv2d: x (N, C, H, W) correlated with weight (K, C/groups, R, S) -> (N, K, Ho, Wo).
struct Conv2dGeometry {
    index_t N = 0, C = 0, H = 0, W = 0;
    index_t K = 0, R = 0, S = 0;
    index_t groups = 1;
    Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
    index_t Ho = 0, Wo = 0;

    index_t Cg() const { return C / groups; }
    index_t Kg() const { return K / groups; }
    Shape x_shape() const { return {N, C, H, W}; }
    Shape w_shape() const { return {K, C / groups, R, S}; }
    Shape y_shape() const { return {N, K, Ho, Wo}; }
};

// x_name / w_name: how the caller's arguments holding those shapes are called
// ("input_shape" for the input gradient, "weight_shape" for the weight's).
Conv2dGeometry make_conv2d_geometry(const char* op, const Shape& x, const Shape& w, Pair stride,
                                    Pair padding, Pair dilation, index_t groups,
                                    const char* x_name = "x", const char* w_name = "weight");
// grad_out must have exactly the forward output's shape.
void check_grad_out(const char* op, const Conv2dGeometry& g, const Shape& grad_out);
// A bias must be 1-D with K entries.
void check_bias(const char* op, const Conv2dGeometry& g, const Shape& bias);

// Pooling over (N, C, H, W) with PyTorch's output-size rules.
//
// Adaptive pooling (adaptive = true) has PyTorch's adaptive windows instead:
// output row o covers input rows [floor(o*H/Ho), ceil((o+1)*H/Ho)), columns
// alike; stride, padding and dilation are then unused and kernel holds the
// largest window (for work estimates).
struct Pool2dGeometry {
    index_t N = 0, C = 0, H = 0, W = 0;
    Pair kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
    bool ceil_mode = false;
    bool adaptive = false;
    index_t Ho = 0, Wo = 0;

    Shape x_shape() const { return {N, C, H, W}; }
    Shape y_shape() const { return {N, C, Ho, Wo}; }
};

Pool2dGeometry make_pool2d_geometry(const char* op, const Shape& x, Pair kernel, Pair stride,
                                    Pair padding, Pair dilation, bool ceil_mode,
                                    const char* x_name = "x");
// output_size: (Ho, Wo), each at least 1.
Pool2dGeometry make_adaptive_pool2d_geometry(const char* op, const Shape& x, Pair output_size,
                                             const char* x_name = "x");
void check_grad_out(const char* op, const Pool2dGeometry& g, const Shape& grad_out);

// scipy.signal.correlate2d / convolve2d on 2-D arrays.
enum class CorrMode { valid, full, same };
CorrMode parse_corr_mode(const char* op, const std::string& mode);

struct Correlate2dGeometry {
    index_t H = 0, W = 0;  // in1 (after the valid-mode swap)
    index_t R = 0, S = 0;  // in2 (after the valid-mode swap)
    Pair pad{0, 0};        // top/left zero padding of in1
    index_t Ho = 0, Wo = 0;
    bool swapped = false;  // scipy swaps the inputs in 'valid' mode when in2 is larger
};

Correlate2dGeometry make_correlate2d_geometry(const char* op, const Shape& in1, const Shape& in2,
                                              CorrMode mode, bool convolve);

// Element count of a shape, overflow-checked.
index_t numel(const char* op, const Shape& s, const char* what = "element count");

}  // namespace convext
