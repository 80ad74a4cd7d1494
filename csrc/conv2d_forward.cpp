// Forward correlation: the core every convolution entry point runs on.
#include "conv2d.hpp"

#include <algorithm>

#include "gemm/gemm.hpp"
#include "im2col.hpp"
#include "parallel.hpp"
#include "winograd.hpp"

namespace convext {
namespace {

// Below this many output channels per group a GEMM tile (6 or 8 rows) would
// be mostly padding: depthwise layers, scipy-style 2-D correlation and the
// input gradient of single-channel layers run the direct loop instead.
constexpr index_t kMinGemmRows = 4;
// Output rows per task of the direct loop.
constexpr index_t kDirectRows = 8;

// Implicit GEMM: per (image, group, block of output positions), gather the
// patch rows of one KC-deep block straight into packed B panels and multiply
// with the weights, packed once for all tasks.
template <class T>
void correlate_gemm(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const int mr = kern.mr, nr = kern.nr;
    const index_t Kg = p.Kg(), Cg = p.Cg(), KD = Cg * p.R * p.S, P = p.Ho * p.Wo;
    const index_t KC = gemm::kKC<T>, nkb = ceil_div(KD, KC);
    const index_t Kg_up = round_up(Kg, mr);

    // Packed weights: for each group, for each depth block, MR-row panels.
    Buffer<T> apack(checked_mul(p.groups, Kg_up * KD, "conv2d"), "packed weights");
    parallel_for(p.groups * nkb, [&](index_t t, int) {
        const index_t g = t / nkb, k0 = (t % nkb) * KC, kc = std::min(KC, KD - k0);
        gemm::pack_a(Kg, kc, w + g * Kg * KD + k0, KD, 1,
                     apack.data() + g * Kg_up * KD + Kg_up * k0, mr);
    });

    const index_t nblk = ceil_div(P, gemm::kNC<T>);
    const index_t pb = round_up(ceil_div(P, nblk), nr);
    const index_t nblocks = ceil_div(P, pb);
    const index_t tasks = p.N * p.groups * nblocks;
    const index_t per_thread = gemm::packed_b_size(pb, KC, nr) + pb;
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, "conv2d"), "patch panels");

    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t n = t / (p.groups * nblocks), g = (t / nblocks) % p.groups;
        const index_t p0 = (t % nblocks) * pb, np = std::min(pb, P - p0);
        T* bpack = scratch.data() + tid * per_thread;
        T* row = bpack + gemm::packed_b_size(pb, KC, nr);
        const T* xg = x + (n * p.C + g * Cg) * p.H * p.W;
        T* yg = y + (n * p.K + g * Kg) * P + p0;
        const T* ag = apack.data() + g * Kg_up * KD;
        for (index_t k0 = 0; k0 < KD; k0 += KC) {
            const index_t kc = std::min(KC, KD - k0);
            for (index_t kk = 0; kk < kc; ++kk) {
                gather_patch_row(p, xg, k0 + kk, p0, np, row);
                gemm::pack_b_row(np, kc, kk, row, bpack, nr);
            }
            for (index_t m0 = 0; m0 < Kg; m0 += gemm::kMC) {
                const index_t mc = std::min(gemm::kMC, Kg - m0);
                kern.macro(mc, np, kc, ag + Kg_up * k0 + m0 * kc, bpack, yg + m0 * P, P, k0 > 0);
            }
        }
        if (bias)
            for (index_t k = 0; k < Kg; ++k) {
                const T b = bias[g * Kg + k];
                T* yk = yg + k * P;
                for (index_t j = 0; j < np; ++j) yk[j] += b;
            }
    }, Kg * KD * pb);
}

// Direct loop: per (image, group, block of output rows), copy what the block
// reads into a zero-padded patch (so the inner loop never checks bounds and
// reads with unit stride), then let the ISA's row kernel accumulate every tap
// of every channel of the group in registers.
//
// Patch layout, per channel: `prows` rows of `plen` values.
//  - columns, unit stride and dilation at most the row width: the padded
//    input row (tap s at offset s*dw); otherwise S segments of `wq` values,
//    segment s holding the columns q*sw + s*dw - pad.w that tap s reads (tap
//    s at offset s*wq).
//  - rows, likewise: the block's padded input rows (tap r at r*dh rows), or R
//    rows per output row, the rows tap r reads.
// Sampling keeps the patch small whatever the stride and dilation.
template <class T>
void correlate_direct(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t Kg = p.Kg(), Cg = p.Cg();
    const index_t sh = p.stride.h, sw = p.stride.w, dh = p.dilation.h, dw = p.dilation.w;
    const index_t wq = round_up(p.Wo, kern.nr);
    const bool whole_cols = sw == 1 && dw <= wq, whole_rows = sh == 1 && dh <= kDirectRows;
    const index_t plen = whole_cols ? wq + (p.S - 1) * dw : p.S * wq;
    const index_t tap_s = whole_cols ? dw : wq;
    const index_t prows = whole_rows ? kDirectRows + (p.R - 1) * dh : kDirectRows * p.R;
    const index_t row_step = whole_rows ? plen : p.R * plen;
    const index_t tap_r = whole_rows ? dh * plen : plen;
    const index_t row_blocks = ceil_div(p.Ho, kDirectRows);
    const index_t tasks = p.N * p.groups * row_blocks;
    const index_t per_thread = checked_mul(Cg, checked_mul(prows, plen, "conv2d"), "conv2d");
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, "conv2d"), "input patch");

    // One patch row: input row ih, columns as described above.
    auto fill_row = [&](const T* xc, index_t ih, T* dst) {
        if (ih < 0 || ih >= p.H) {
            std::fill(dst, dst + plen, T(0));
            return;
        }
        const T* src = xc + ih * p.W;
        if (whole_cols) {  // column j holds input column j - pad.w
            const index_t j0 = std::clamp<index_t>(p.pad.w, 0, plen);
            const index_t j1 = std::clamp<index_t>(p.pad.w + p.W, j0, plen);
            std::fill(dst, dst + j0, T(0));
            std::copy(src + (j0 - p.pad.w), src + (j1 - p.pad.w), dst + j0);
            std::fill(dst + j1, dst + plen, T(0));
            return;
        }
        for (index_t s = 0; s < p.S; ++s)
            for (index_t q = 0; q < wq; ++q) {
                const index_t iw = q < p.Wo ? q * sw + s * dw - p.pad.w : -1;
                dst[s * wq + q] = iw >= 0 && iw < p.W ? src[iw] : T(0);
            }
    };

    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t n = t / (p.groups * row_blocks), grp = (t / row_blocks) % p.groups;
        const index_t oh0 = (t % row_blocks) * kDirectRows;
        const index_t oh1 = std::min(p.Ho, oh0 + kDirectRows);
        T* patch = scratch.data() + tid * per_thread;
        for (index_t c = 0; c < Cg; ++c) {
            const T* xc = x + (n * p.C + grp * Cg + c) * p.H * p.W;
            T* pc = patch + c * prows * plen;
            if (whole_rows) {
                for (index_t i = 0; i < prows; ++i) fill_row(xc, oh0 - p.pad.h + i, pc + i * plen);
            } else {
                for (index_t i = 0; i < oh1 - oh0; ++i)
                    for (index_t r = 0; r < p.R; ++r)
                        fill_row(xc, (oh0 + i) * sh + r * dh - p.pad.h, pc + (i * p.R + r) * plen);
            }
        }
        for (index_t k = grp * Kg; k < (grp + 1) * Kg; ++k)
            kern.corr_rows(p.Wo, oh1 - oh0, Cg, p.R, p.S, w + k * Cg * p.R * p.S, patch, row_step,
                           prows * plen, tap_r, tap_s, bias ? bias[k] : T(0),
                           y + ((n * p.K + k) * p.Ho + oh0) * p.Wo);
    }, Kg * Cg * p.R * p.S * kDirectRows * p.Wo);
}

}  // namespace

template <class T>
void correlate_nchw(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    if (p.Kg() < kMinGemmRows)
        correlate_direct(p, x, w, bias, y);
    else if (winograd_applies(p))
        correlate_winograd(p, x, w, bias, y);
    else
        correlate_gemm(p, x, w, bias, y);
}

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
    CorrelationPlan p;
    p.N = g.N, p.C = g.C, p.H = g.H, p.W = g.W;
    p.K = g.K, p.R = g.R, p.S = g.S, p.groups = g.groups;
    p.stride = g.stride, p.dilation = g.dilation, p.pad = g.padding;
    p.Ho = g.Ho, p.Wo = g.Wo;
    correlate_nchw(p, x, w, bias, y);
}

#define CONVEXT_INSTANTIATE(T)                                                                 \
    template void correlate_nchw<T>(const CorrelationPlan&, const T*, const T*, const T*, T*); \
    template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);
CONVEXT_INSTANTIATE(float)
CONVEXT_INSTANTIATE(double)

}  // namespace convext
