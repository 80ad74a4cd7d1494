// Input gradient: the *full* correlation of the stride-dilated output gradient
// with the 180-degree-rotated filter, channels swapped (K <-> C per group):
//
//   dx[n,c,ih,iw] = sum_{k,r,s} w[k,c,r,s] * dyd[n,k, ih + ph - r*dh, iw + pw - s*dw]
//
// where dyd is dy with (stride - 1) zeros between neighbours. Correlating with
// those zeros would waste (1 - 1/(sh*sw)) of the work, so the rows of dx are
// split by phase ih = phi + sh*q: for one phase, only the taps r with
// (phi + ph - r*dh) divisible by sh meet a non-zero of dyd, at
// oh = q + (phi + ph - r*dh) / sh. Those taps, taken in reverse order (the
// rotation), form a smaller filter with dilation dh / gcd(sh, dh), and
// dx[..., phi::sh, psi::sw] is a plain stride-1 correlation of dy with it.
// With stride 1 there is one phase: the textbook full correlation of dy with
// rot180(w), padding dh*(R-1) - ph.
#include <algorithm>
#include <numeric>

#include "conv2d.hpp"
#include "parallel.hpp"

namespace convext {
namespace {

// The taps of one axis that serve output phase `phi`, as a sub-filter.
struct PhaseTaps {
    index_t count = 0;  // taps in the sub-filter (0: this phase gets no gradient)
    index_t last = 0;   // original index of the sub-filter's first tap (rotated: the last tap)
    index_t step = 1;   // original-index distance between neighbouring taps
    index_t dilation = 1, pad = 0, out = 0;
};

PhaseTaps phase_taps(index_t phi, index_t stride, index_t dilation, index_t pad, index_t R,
                     index_t size) {
    PhaseTaps t;
    t.out = ceil_div(size - phi, stride);
    const index_t g = std::gcd(stride, dilation);
    t.step = stride / g;
    t.dilation = dilation / g;
    index_t first = -1;
    for (index_t r = 0; r < R && r < t.step; ++r)
        if ((phi + pad - r * dilation) % stride == 0) {
            first = r;
            break;
        }
    if (first < 0) return t;
    t.count = (R - 1 - first) / t.step + 1;
    t.last = first + (t.count - 1) * t.step;
    // dx_phase[q] = sum_j sub[j] * dy[q + j * t.dilation + offset(last)]
    t.pad = -((phi + pad - t.last * dilation) / stride);
    return t;
}

}  // namespace

template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
    const index_t Kg = g.Kg(), Cg = g.Cg(), RS = g.R * g.S;
    const index_t sh = g.stride.h, sw = g.stride.w, HW = g.H * g.W;
    const bool one_phase = sh == 1 && sw == 1;
    const char* op = "conv2d_input_grad";

    Buffer<T> sub(checked_mul(g.K, Cg * RS, op), "rotated sub-filters");
    // With a stride, each phase is computed for a few images at a time into a
    // buffer (at most ~4 MiB, at least one image) and scattered into dx.
    const index_t phase_image = checked_mul(g.C, ceil_div(g.H, sh) * ceil_div(g.W, sw), op);
    const index_t images = std::clamp<index_t>((index_t(4) << 20) / index_t(sizeof(T)) / phase_image, 1, g.N);
    Buffer<T> phase_out(one_phase ? 0 : checked_mul(images, phase_image, op), "input-gradient phase");
    if (!one_phase) parallel_for(g.N * g.C, [&](index_t i, int) {
        std::fill(dx + i * HW, dx + (i + 1) * HW, T(0));
    });

    for (index_t phi = 0; phi < std::min(sh, g.H); ++phi)
        for (index_t psi = 0; psi < std::min(sw, g.W); ++psi) {
            const PhaseTaps th = phase_taps(phi, sh, g.dilation.h, g.padding.h, g.R, g.H);
            const PhaseTaps tw = phase_taps(psi, sw, g.dilation.w, g.padding.w, g.S, g.W);
            if (th.count == 0 || tw.count == 0) continue;  // rows the forward never read

            // Sub-filter, rotated, channels swapped: (K, Cg, R, S) -> (C, Kg, nh, nw).
            const index_t nh = th.count, nw = tw.count;
            parallel_for(g.K, [&](index_t k, int) {
                const index_t grp = k / Kg, kk = k % Kg;
                for (index_t c = 0; c < Cg; ++c) {
                    const T* src = w + (k * Cg + c) * RS;
                    T* dst = sub.data() + ((grp * Cg + c) * Kg + kk) * nh * nw;
                    for (index_t j = 0; j < nh; ++j)
                        for (index_t i = 0; i < nw; ++i)
                            dst[j * nw + i] =
                                src[(th.last - j * th.step) * g.S + (tw.last - i * tw.step)];
                }
            });

            CorrelationPlan p;
            p.N = g.N, p.C = g.K, p.H = g.Ho, p.W = g.Wo;
            p.K = g.C, p.R = nh, p.S = nw, p.groups = g.groups;
            p.dilation = {th.dilation, tw.dilation};
            p.pad = {th.pad, tw.pad};
            p.Ho = th.out, p.Wo = tw.out;
            if (one_phase) {
                correlate_nchw(p, dy, sub.data(), static_cast<const T*>(nullptr), dx);
                continue;
            }
            const index_t plane = p.Ho * p.Wo;
            for (index_t n0 = 0; n0 < g.N; n0 += images) {
                p.N = std::min(images, g.N - n0);
                correlate_nchw(p, dy + n0 * g.K * g.Ho * g.Wo, sub.data(),
                               static_cast<const T*>(nullptr), phase_out.data());
                parallel_for(p.N * g.C, [&](index_t i, int) {
                    const T* src = phase_out.data() + i * plane;
                    T* dst = dx + (n0 * g.C + i) * HW + phi * g.W + psi;
                    for (index_t q = 0; q < p.Ho; ++q)
                        for (index_t t = 0; t < p.Wo; ++t) dst[q * sh * g.W + t * sw] = src[q * p.Wo + t];
                }, plane);
            }
        }
}

template void conv2d_backward_input<float>(const Conv2dGeometry&, const float*, const float*, float*);
template void conv2d_backward_input<double>(const Conv2dGeometry&, const double*, const double*,
                                            double*);

}  // namespace convext
