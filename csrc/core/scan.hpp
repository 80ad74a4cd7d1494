// max |p[i]| over an array, threaded, with the ISA's vector kernel: how the
// engine tells whether operands are finite and how large they are (a call
// whose operands would make a fast algorithm inexact takes another).
#pragma once

#include <algorithm>
#include <vector>

#include "core/parallel.hpp"
#include "kernels/kernel.hpp"

namespace convext {

// max |p[i]| for i < n, or +inf if some value is Inf or NaN.
template <class T>
T max_abs(const T* p, index_t n) {
    constexpr index_t kChunk = index_t(1) << 16;
    const index_t chunks = ceil_div(n, kChunk);
    std::vector<T> part(std::max<index_t>(chunks, 1), T(0));
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    parallel_for(chunks, [&](index_t c, int) {
        const index_t i0 = c * kChunk;
        part[c] = kern.vec.max_abs(std::min(kChunk, n - i0), p + i0);
    }, kChunk);
    return *std::max_element(part.begin(), part.end());
}

}  // namespace convext
