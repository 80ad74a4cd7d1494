// Winograd F(4x4, 3x3): the fast path of correlate_nchw for 3x3 stride-1 layers.
#pragma once

#include "conv2d/conv2d.hpp"

namespace convext {

// The plan must be one for which can_run(CorrAlgo::winograd, p) holds.
template <class T>
void correlate_winograd(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y);

// The weight gradient of a layer for which can_run(WeightGradAlgo::winograd, g),
// and with db its bias gradient (null: not).
template <class T>
void weight_grad_winograd(const Conv2dGeometry& g, const T* dy, const T* x, T* dw, T* db);

}  // namespace convext
