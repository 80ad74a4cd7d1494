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
// reads into zero-padded rows (PaddedTapRows: unit stride, no bounds checks),
// then let the ISA's row kernel accumulate every tap of every channel of the
// group in registers. Rows: with stride 1 and a small dilation, the block's
// input rows (tap r at r*dh rows); otherwise R rows per output row, the rows
// tap r reads.
template <class T>
void correlate_direct(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t Kg = p.Kg(), Cg = p.Cg(), sh = p.stride.h, dh = p.dilation.h;
    const PaddedTapRows cols(p.Wo, p.S, p.stride.w, p.dilation.w, p.pad.w, round_up(p.Wo, kern.nr));
    const bool whole_rows = sh == 1 && dh <= kDirectRows;
    const index_t prows = whole_rows ? kDirectRows + (p.R - 1) * dh : kDirectRows * p.R;
    const index_t row_step = whole_rows ? cols.len : p.R * cols.len;
    const index_t tap_r = whole_rows ? dh * cols.len : cols.len;
    const index_t row_blocks = ceil_div(p.Ho, kDirectRows);
    const index_t tasks = p.N * p.groups * row_blocks;
    const index_t per_thread = checked_mul(Cg, checked_mul(prows, cols.len, "conv2d"), "conv2d");
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, "conv2d"), "input patch");

    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t n = t / (p.groups * row_blocks), grp = (t / row_blocks) % p.groups;
        const index_t oh0 = (t % row_blocks) * kDirectRows;
        const index_t oh1 = std::min(p.Ho, oh0 + kDirectRows);
        T* patch = scratch.data() + tid * per_thread;
        for (index_t c = 0; c < Cg; ++c) {
            const T* xc = x + (n * p.C + grp * Cg + c) * p.H * p.W;
            T* pc = patch + c * prows * cols.len;
            auto fill = [&](index_t ih, T* dst) {
                cols.fill(ih >= 0 && ih < p.H ? xc + ih * p.W : nullptr, p.W, dst);
            };
            if (whole_rows) {
                for (index_t i = 0; i < prows; ++i) fill(oh0 - p.pad.h + i, pc + i * cols.len);
            } else {
                for (index_t i = 0; i < oh1 - oh0; ++i)
                    for (index_t r = 0; r < p.R; ++r)
                        fill((oh0 + i) * sh + r * dh - p.pad.h, pc + (i * p.R + r) * cols.len);
            }
        }
        for (index_t k = grp * Kg; k < (grp + 1) * Kg; ++k)
            kern.corr_rows(p.Wo, oh1 - oh0, Cg, p.R, p.S, w + k * Cg * p.R * p.S, patch, row_step,
                           prows * cols.len, tap_r, cols.tap, bias ? bias[k] : T(0),
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

CorrelationPlan forward_plan(const Conv2dGeometry& g) {
    CorrelationPlan p;
    p.N = g.N, p.C = g.C, p.H = g.H, p.W = g.W;
    p.K = g.K, p.R = g.R, p.S = g.S, p.groups = g.groups;
    p.stride = g.stride, p.dilation = g.dilation, p.pad = g.padding;
    p.Ho = g.Ho, p.Wo = g.Wo;
    return p;
}

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
    correlate_nchw(forward_plan(g), x, w, bias, y);
}

#define CONVEXT_INSTANTIATE(T)                                                                 \
    template void correlate_nchw<T>(const CorrelationPlan&, const T*, const T*, const T*, T*); \
    template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);
CONVEXT_INSTANTIATE(float)
CONVEXT_INSTANTIATE(double)

}  // namespace convext
