#include "elementwise/relu.hpp"

#include <algorithm>

#include "core/parallel.hpp"

namespace convext {
namespace {
constexpr index_t kChunk = 1 << 14;  // elements per task
}

// Each task works on raw, non-aliasing local pointers with every load
// unconditional, so that the loops compile to vector selects (no branches,
// no reloads through the closure).
template <class T>
void relu_forward(index_t n, const T* x, T* y) {
    parallel_for(ceil_div(n, kChunk), [x, y, n](index_t b, int) {
        const index_t i0 = b * kChunk, i1 = std::min(n, i0 + kChunk);
        const T* __restrict src = x;
        T* __restrict dst = y;
        for (index_t i = i0; i < i1; ++i) dst[i] = src[i] < T(0) ? T(0) : src[i];
    }, std::min(n, kChunk));
}

template <class T>
void relu_backward(index_t n, const T* dy, const T* x, T* dx) {
    parallel_for(ceil_div(n, kChunk), [dy, x, dx, n](index_t b, int) {
        const index_t i0 = b * kChunk, i1 = std::min(n, i0 + kChunk);
        const T* __restrict g = dy;
        const T* __restrict in = x;
        T* __restrict out = dx;
        for (index_t i = i0; i < i1; ++i) {
            const T gi = g[i];
            out[i] = in[i] <= T(0) ? T(0) : gi;
        }
    }, std::min(n, kChunk));
}

template void relu_forward<float>(index_t, const float*, float*);
template void relu_forward<double>(index_t, const double*, double*);
template void relu_backward<float>(index_t, const float*, const float*, float*);
template void relu_backward<double>(index_t, const double*, const double*, double*);

}  // namespace convext
