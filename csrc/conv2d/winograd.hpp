// Winograd F(m x m, 3x3), m = 2 or 4: the fast paths of correlate_nchw and of
// the weight gradient for 3x3 stride-1 layers.
#pragma once

#include "conv2d/conv2d.hpp"

namespace convext {

// The plan must be one for which can_run(CorrAlgo::winograd_2x2 / _4x4, p) holds.
template <int M, class T>
void correlate_winograd(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y);

// The weight gradient of a layer for which can_run(WeightGradAlgo::winograd_2x2
// / _4x4, g), and with db its bias gradient (null: not).
template <int M, class T>
void weight_grad_winograd(const Conv2dGeometry& g, const T* dy, const T* x, T* dw, T* db);

// Whether Winograd computes a*b products summed `terms` times as the direct
// sum would: every |a_i| and |b_j| finite, and max|a| * max|b| * terms far
// enough below the type's largest value that the transforms (which add
// before they multiply, scaling by up to ~3e4) cannot overflow. Otherwise an
// Inf or NaN would spread over whole tiles (inf - inf) and large finite
// values could overflow where the direct sum does not: such a call takes the
// GEMM path instead. One vectorisable pass over each operand.
template <class T>
bool winograd_safe(const T* a, index_t na, const T* b, index_t nb, index_t terms);

}  // namespace convext
