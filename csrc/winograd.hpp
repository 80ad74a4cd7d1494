// Winograd F(4x4, 3x3): the fast path of correlate_nchw for 3x3 stride-1 layers.
#pragma once

#include "conv2d.hpp"

namespace convext {

// 3x3, stride 1, dilation 1, enough channels for the transforms to pay off.
bool winograd_applies(const CorrelationPlan& p);

template <class T>
void correlate_winograd(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y);

}  // namespace convext
