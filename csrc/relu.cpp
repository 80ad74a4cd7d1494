#include "relu.hpp"

#include <algorithm>

#include "parallel.hpp"

namespace convext {
namespace {
constexpr index_t kChunk = 1 << 14;  // elements per task
}

template <class T>
void relu_forward(index_t n, const T* x, T* y) {
    parallel_for(ceil_div(n, kChunk), [&](index_t b, int) {
        const index_t i1 = std::min(n, (b + 1) * kChunk);
        for (index_t i = b * kChunk; i < i1; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
    }, std::min(n, kChunk));
}

template <class T>
void relu_backward(index_t n, const T* dy, const T* x, T* dx) {
    parallel_for(ceil_div(n, kChunk), [&](index_t b, int) {
        const index_t i1 = std::min(n, (b + 1) * kChunk);
        for (index_t i = b * kChunk; i < i1; ++i) dx[i] = x[i] <= T(0) ? T(0) : dy[i];
    }, std::min(n, kChunk));
}

template void relu_forward<float>(index_t, const float*, float*);
template void relu_forward<double>(index_t, const double*, double*);
template void relu_backward<float>(index_t, const float*, const float*, float*);
template void relu_backward<double>(index_t, const double*, const double*, double*);

}  // namespace convext
