// ReLU and its gradient, elementwise.
#pragma once

#include "core/common.hpp"

namespace convext {

// y = x where x > 0, NaN where x is NaN, else 0.
template <class T>
void relu_forward(index_t n, const T* x, T* y);

// dx = 0 where x <= 0, else dy (a NaN x passes the gradient, as in PyTorch).
template <class T>
void relu_backward(index_t n, const T* dy, const T* x, T* dx);

}  // namespace convext
