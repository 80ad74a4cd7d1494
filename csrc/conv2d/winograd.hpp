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

}  // namespace convext
