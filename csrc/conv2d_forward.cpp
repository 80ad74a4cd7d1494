// Forward correlation: the core every convolution entry point runs on.
#include "conv2d.hpp"

#include <algorithm>

#include "gemm/gemm.hpp"
#include "im2col.hpp"
#include "parallel.hpp"

namespace convext {
namespace {

// Below this many output channels per group a GEMM tile would be mostly
// padding (MR = 6 rows): depthwise layers, scipy-style 2-D correlation and the
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
    const int nr = kern.nr;
    const index_t Kg = p.Kg(), Cg = p.Cg(), KD = Cg * p.R * p.S, P = p.Ho * p.Wo;
    const index_t KC = gemm::kKC<T>, nkb = ceil_div(KD, KC);
    const index_t Kg_up = round_up(Kg, gemm::kMR);

    // Packed weights: for each group, for each depth block, MR-row panels.
    Buffer<T> apack(checked_mul(p.groups, Kg_up * KD, "conv2d"), "packed weights");
    parallel_for(p.groups * nkb, [&](index_t t, int) {
        const index_t g = t / nkb, k0 = (t % nkb) * KC, kc = std::min(KC, KD - k0);
        gemm::pack_a(Kg, kc, w + g * Kg * KD + k0, KD, 1, apack.data() + g * Kg_up * KD + Kg_up * k0);
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
    });
}

// Direct loop: each output row accumulates whole input rows, one filter tap
// at a time (a vectorised axpy along the row).
template <class T>
void correlate_direct(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const index_t Kg = p.Kg(), Cg = p.Cg();
    const index_t Hd = (p.H - 1) * p.in_dilation.h + 1, Wd = (p.W - 1) * p.in_dilation.w + 1;
    const index_t idh = p.in_dilation.h, idw = p.in_dilation.w, sw = p.stride.w;
    const index_t row_blocks = ceil_div(p.Ho, kDirectRows);

    parallel_for(p.N * p.K * row_blocks, [&](index_t t, int) {
        const index_t nk = t / row_blocks, n = nk / p.K, k = nk % p.K, g = k / Kg;
        const index_t oh0 = (t % row_blocks) * kDirectRows;
        const index_t oh1 = std::min(p.Ho, oh0 + kDirectRows);
        for (index_t oh = oh0; oh < oh1; ++oh) {
            T* yrow = y + ((n * p.K + k) * p.Ho + oh) * p.Wo;
            std::fill(yrow, yrow + p.Wo, bias ? bias[k] : T(0));
            for (index_t c = 0; c < Cg; ++c) {
                const T* xc = x + (n * p.C + g * Cg + c) * p.H * p.W;
                const T* wk = w + (k * Cg + c) * p.R * p.S;
                for (index_t r = 0; r < p.R; ++r) {
                    const index_t ihd = oh * p.stride.h + r * p.dilation.h - p.pad.h;
                    if (ihd < 0 || ihd >= Hd || ihd % idh != 0) continue;
                    const T* row = xc + (ihd / idh) * p.W;
                    for (index_t s = 0; s < p.S; ++s) {
                        const T wv = wk[r * p.S + s];
                        const index_t off = s * p.dilation.w - p.pad.w;
                        if (idw == 1) {
                            const index_t lo = std::min(p.Wo, off >= 0 ? 0 : (-off + sw - 1) / sw);
                            const index_t hi =
                                std::clamp(p.W - off <= 0 ? 0 : (p.W - off + sw - 1) / sw, lo, p.Wo);
                            if (sw == 1) {
                                const T* src = row + off;
                                for (index_t q = lo; q < hi; ++q) yrow[q] += wv * src[q];
                            } else {
                                for (index_t q = lo; q < hi; ++q) yrow[q] += wv * row[q * sw + off];
                            }
                        } else {
                            for (index_t q = 0; q < p.Wo; ++q) {
                                const index_t iwd = q * sw + off;
                                if (iwd >= 0 && iwd < Wd && iwd % idw == 0)
                                    yrow[q] += wv * row[iwd / idw];
                            }
                        }
                    }
                }
            }
        }
    });
}

}  // namespace

template <class T>
void correlate_nchw(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    if (p.Kg() < kMinGemmRows)
        correlate_direct(p, x, w, bias, y);
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
