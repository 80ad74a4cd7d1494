#include "signal/correlate.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "conv2d/conv2d.hpp"
#include "core/parallel.hpp"

namespace convext {
namespace {

// One image, one channel, one filter: the generalised correlation with N = C = K = 1.
template <class T>
void correlate_single(const Correlate2dGeometry& g, const T* image, const T* kernel, T* out) {
    CorrelationPlan p;
    p.N = p.C = p.K = 1;
    p.H = g.H, p.W = g.W, p.R = g.R, p.S = g.S;
    p.pad = g.pad;
    p.Ho = g.Ho, p.Wo = g.Wo;
    correlate_nchw(p, image, kernel, static_cast<const T*>(nullptr), out);
}

}  // namespace

template <class T>
void rot180(index_t planes, index_t R, index_t S, const T* w, T* out) {
    const index_t RS = R * S;
    parallel_for(planes, [&](index_t i, int) {
        std::reverse_copy(w + i * RS, w + (i + 1) * RS, out + i * RS);
    });
}

template <class T>
void correlate2d(const Correlate2dGeometry& g, const T* in1, const T* in2, T* out) {
    if (!g.swapped) return correlate_single(g, in1, in2, out);
    // scipy: valid-mode correlate with in2 the larger = rot180(correlate(in2, in1)).
    correlate_single(g, in2, in1, out);
    std::reverse(out, out + g.Ho * g.Wo);
}

template <class T>
void convolve2d(const Correlate2dGeometry& g, const T* in1, const T* in2, T* out) {
    // Convolution is commutative: with the valid-mode swap, convolve in2 with in1.
    const T* image = g.swapped ? in2 : in1;
    const T* kernel = g.swapped ? in1 : in2;
    Buffer<T> rotated(g.R * g.S, "rotated kernel");
    rot180(1, g.R, g.S, kernel, rotated.data());
    correlate_single(g, image, rotated.data(), out);
}

template <class T>
void correlate2d_valid_direct(const Correlate2dGeometry& g, const T* x, const T* k, T* out) {
    assert(g.pad.h == 0 && g.pad.w == 0 && !g.swapped);
    const index_t W = g.W, R = g.R, S = g.S, Wo = g.Wo;
    // One output row per work item: zero it, then add each tap's shifted
    // input row (the inner loop is a contiguous axpy the compiler vectorises).
    parallel_for(
        g.Ho,
        [&](index_t i, int) {
            T* o = out + i * Wo;
            std::fill(o, o + Wo, T(0));
            for (index_t r = 0; r < R; ++r)
                for (index_t s = 0; s < S; ++s) {
                    const T kv = k[r * S + s];
                    const T* xr = x + (i + r) * W + s;
                    for (index_t j = 0; j < Wo; ++j) o[j] += xr[j] * kv;
                }
        },
        R * S * Wo);
}

template void correlate2d_valid_direct<std::uint64_t>(const Correlate2dGeometry&,
                                                      const std::uint64_t*, const std::uint64_t*,
                                                      std::uint64_t*);
template void correlate2d_valid_direct<long double>(const Correlate2dGeometry&, const long double*,
                                                    const long double*, long double*);

#define CONVEXT_INSTANTIATE(T)                                                               \
    template void correlate2d<T>(const Correlate2dGeometry&, const T*, const T*, T*);        \
    template void convolve2d<T>(const Correlate2dGeometry&, const T*, const T*, T*);         \
    template void rot180<T>(index_t, index_t, index_t, const T*, T*);
CONVEXT_INSTANTIATE(float)
CONVEXT_INSTANTIATE(double)

}  // namespace convext
