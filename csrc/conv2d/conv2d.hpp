// 2-D convolution layers, forward and backward, as correlations.
//
// The derivation this engine follows ("forward and backward propagation in a
// CNN are both convolutions"), with x (N,C,H,W), w (K,C/g,R,S), y (N,K,Ho,Wo):
//   forward       y[n,k]  = sum_c  x[n,c] (*) w[k,c]             (*) = correlation
//   input grad    dx[n,c] = sum_k  dilate_s(dy[n,k]) (*)_full rot180(w[k,c])
//   weight grad   dw[k,c] = sum_n  x[n,c] (*) dilate_s(dy[n,k])
//   bias grad     db[k]   = sum_{n,oh,ow} dy[n,k,oh,ow]
// One correlation core (with signed padding: "full" pads, negative padding
// crops) serves the forward pass and the input gradient; the weight gradient
// is the same patch gather feeding a GEMM with dy. plan.hpp runs a layer's
// three directions from its Conv2dPlan; select.hpp names their algorithms.
#pragma once

#include "core/geometry.hpp"

namespace convext {

// y[n, k, oh, ow] = bias[k] + sum_{c in group(k), r, s}
//     w[k, c, r, s] * x[n, c, oh*stride.h + r*dilation.h - pad.h,
//                             ow*stride.w + s*dilation.w - pad.w]
// with x zero outside; pad may be negative (that crops x). The output size is
// given, not derived: the input gradient asks for exactly the input's size.
struct CorrelationPlan {
    index_t N = 0, C = 0, H = 0, W = 0;
    index_t K = 0, R = 0, S = 0, groups = 1;
    Pair stride{1, 1}, dilation{1, 1}, pad{0, 0};
    index_t Ho = 0, Wo = 0;
    // Depth of one register-accumulated block of the indirect GEMM (0: the
    // kernel's kKC); the block sums are then added in order. Shorter blocks
    // mean shorter running sums, i.e. a smaller float32 error, at some speed.
    index_t kc = 0;

    index_t Cg() const { return C / groups; }
    index_t Kg() const { return K / groups; }
};

// The plan of a layer's forward pass (also what its weight gradient gathers).
CorrelationPlan forward_plan(const Conv2dGeometry& g);

// y = the correlation p describes, by the algorithm select_correlation picks
// (plan.hpp: with a given one). bias may be null. Threaded; bitwise identical
// for any thread count.
template <class T>
void correlate_nchw(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y);

// db[k] = sum of dy over the batch and positions of channel k.
template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* dy, T* db);

}  // namespace convext
