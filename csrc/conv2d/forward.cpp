// Forward correlation: the core every convolution entry point runs on.
#include "conv2d/conv2d.hpp"
#include "conv2d/plan.hpp"

#include <algorithm>
#include <vector>

#include "kernels/kernel.hpp"
#include "conv2d/patches.hpp"
#include "core/parallel.hpp"
#include "conv2d/rows_gemm.hpp"
#include "conv2d/winograd.hpp"

namespace convext {
namespace {

// Output rows per task of the direct loop.
constexpr index_t kDirectRows = 8;

// Indirect GEMM: per (image, group, band of output rows), fill the band's
// phase planes (PhasePlanes) and let the micro-kernel read the column
// matrix in place (row crs at planes + off[crs]): no patch is gathered per
// tap and no panel packed. A pointwise layer (1x1, stride 1, no padding)
// reads x itself: row c of its column matrix is channel c's plane (the
// planes are filled only where the last register tile would read past x).
template <class T>
void correlate_indirect(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const int mr = kern.gemm.mr;
    const index_t Kg = p.Kg(), Cg = p.Cg(), KD = Cg * p.R * p.S, P = p.Ho * p.Wo;
    const index_t KC = p.kc > 0 ? p.kc : gemm::kKC<T>, nkb = ceil_div(KD, KC), Kg_up = round_up(Kg, mr);
    const char* op = "conv2d";
    const PhasePlanes pp(p, ceil_div(256, p.Wo));
    const index_t lw = pp.lw, band = pp.band, nbands = ceil_div(p.Ho, band);
    // GEMM straight into y, one call per output row, unless a row would
    // leave over a quarter of its register tiles empty (ResNet's 7x7 planes:
    // 7 of 16 columns); then into scratch rows of lw positions, the column
    // count rounded up to whole tiles (the planes' slack covers the reads),
    // copied out.
    const index_t nr = kern.gemm.nr;
    const bool rowwise = pp.aw.span == 0 || 3 * round_up(p.Wo, nr) <= 4 * p.Wo;
    const index_t ldo_s = round_up(band * lw, nr);
    const index_t per_thread =
        checked_add(pp.size, rowwise ? 0 : checked_mul(Kg_up, ldo_s, op), op);

    Buffer<T> apack(checked_mul(p.groups, Kg_up * KD, op), "packed weights");
    parallel_for(p.groups * nkb, [&](index_t t, int) {
        const index_t g = t / nkb, k0 = (t % nkb) * KC, kc = std::min(KC, KD - k0);
        kern.gemm.pack_a(Kg, kc, w + g * Kg * KD + k0, KD, 1, apack.data() + g * Kg_up * KD + Kg_up * k0);
    }, Kg * KC);
    // (The output must be the input's size: an input-gradient phase plan is a
    // 1x1 correlation with no padding whose output can be a row or column
    // larger than dy, read as zeros.)
    const bool pointwise = p.R == 1 && p.S == 1 && p.stride.h == 1 && p.stride.w == 1 &&
                           p.pad.h == 0 && p.pad.w == 0 && p.Ho == p.H && p.Wo == p.W;
    const index_t HW = p.H * p.W;
    Buffer<index_t> off(2 * KD, "tap offsets");  // in the planes; pointwise: in x
    for (index_t k = 0; k < KD; ++k) off[k] = pp.offset(k), off[KD + k] = k * HW;

    // Fewer (image, group, band) items than threads (batch 1 on small planes:
    // ResNet's 7x7x512 layers are one band): split the output channels too,
    // in chunks of whole register tiles. Each output's sum is the same for
    // any split, so the split may follow the thread count.
    const index_t items = p.N * p.groups * nbands;
    const index_t msplit = std::min(ceil_div(call_threads(), items), ceil_div(Kg, mr));
    const index_t mchunk = round_up(ceil_div(Kg, msplit), mr), nm = ceil_div(Kg, mchunk);
    const index_t tasks = items * nm;
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, op), "input phase planes");
    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t item = t / nm, mlo = (t % nm) * mchunk, mhi = std::min(Kg, mlo + mchunk);
        const index_t n = item / (p.groups * nbands), g = (item / nbands) % p.groups;
        const index_t oh0 = (item % nbands) * band, rows = std::min(band, p.Ho - oh0);
        T* planes = scratch.data() + tid * per_thread;
        const T* xg = x + (n * p.C + g * Cg) * HW;
        const T* b = planes;
        const index_t* boff = off.data();
        if (pointwise && (xg - x) + (Cg - 1) * HW + oh0 * p.W + round_up(rows * lw, kern.gemm.nr) <=
                             p.N * p.C * HW)
            b = xg + oh0 * p.W, boff += KD;
        else
            pp.fill(p, xg, oh0, rows, planes);
        // y itself (one call for the band where its positions are y's own,
        // else one per output row), or the scratch rows (see rowwise).
        T* yg = y + (n * p.K + g * Kg) * P + oh0 * p.Wo;
        T* out = rowwise ? yg : planes + pp.size;
        const index_t ldo = rowwise ? P : ldo_s;
        const bool per_row = rowwise && pp.aw.span > 0;
        const index_t calls = per_row ? rows : 1;
        const index_t ncols = per_row ? p.Wo : rowwise ? rows * lw : round_up(rows * lw, nr);
        const T* ag = apack.data() + g * Kg_up * KD;
        for (index_t k0 = 0; k0 < KD; k0 += KC) {
            const index_t kc = std::min(KC, KD - k0);
            for (index_t i = 0; i < calls; ++i)
                for (index_t m0 = mlo; m0 < mhi; m0 += gemm::kMC)
                    kern.gemm.macro_indirect(std::min(gemm::kMC, mhi - m0), ncols, kc,
                                        ag + Kg_up * k0 + m0 * kc, b + i * lw, boff + k0,
                                        out + m0 * ldo + i * p.Wo, ldo, k0 > 0);
        }
        for (index_t k = mlo; k < mhi && (bias || !rowwise); ++k) {
            const T b = bias ? bias[g * Kg + k] : T(0);
            if (rowwise)
                kern.vec.add_scalar(rows * p.Wo, yg + k * P, b, yg + k * P);
            else
                for (index_t i = 0; i < rows; ++i)
                    kern.vec.add_scalar(p.Wo, out + k * ldo + i * lw, b, yg + k * P + i * p.Wo);
        }
    }, mchunk * KD * band * p.Wo);
}

// Multiply, then shift and add: for layers with few output channels and
// many input channels (the input gradient of a first layer), the GEMM runs
// over input positions instead of output positions,
//   z[(k, r, s)][ih*W + iw] = sum_c w[k, c, r, s] * x[c][ih][iw]
// (M = Kg*R*S rows, so the register tiles fill; depth Cg; B is the input rows
// themselves), and each output sums R*S shifted z values:
//   y[k][oh][ow] = bias[k] + sum_{r, s} z[(k, r, s)][(oh + r*dh - ph)*W + ow + s*dw - pw].
// Stride 1 (the shifted adds are contiguous). One task per (image, group),
// bands of input rows in order: the same sums in the same order on any
// number of threads.
template <class T>
void correlate_shift_add(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const index_t Kg = p.Kg(), Cg = p.Cg(), RS = p.R * p.S, M = Kg * RS;
    const index_t HW = p.H * p.W, P = p.Ho * p.Wo;
    const index_t band = std::clamp<index_t>(ceil_div(512, p.W), 1, p.H), ldz = band * p.W;
    // A: rows (k, r, s), depth c; B: the input channels' rows.
    const RowsGemm<T> gemm(p.groups, M, Cg, HW, ldz, [&](index_t g, index_t i, index_t c) {
        return w[((g * Kg + i / RS) * Cg + c) * RS + i % RS];
    });
    const index_t tasks = p.N * p.groups;
    const index_t per_thread = checked_add(gemm.staging_size(), checked_mul(M, ldz, "conv2d"), "conv2d");
    Buffer<T> scratch(checked_mul(threads_for(tasks), per_thread, "conv2d"), "products");
    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t n = t / p.groups, g = t % p.groups;
        T* staging = scratch.data() + tid * per_thread;
        T* z = staging + gemm.staging_size();
        const T* xg = x + (n * p.C + g * Cg) * HW;
        T* yg = y + (n * p.K + g * Kg) * P;
        for (index_t k = 0; k < Kg; ++k)
            std::fill(yg + k * P, yg + (k + 1) * P, bias ? bias[g * Kg + k] : T(0));
        for (index_t ih0 = 0; ih0 < p.H; ih0 += band) {
            const index_t rows = std::min(band, p.H - ih0);
            // in place, unless the last band of the last image (reads past x)
            gemm.run(g, xg + ih0 * p.W, rows * p.W, t < tasks - 1 || ih0 + rows < p.H, staging, z,
                     ldz);
            for (index_t i = 0; i < M; ++i) {
                const index_t k = i / RS, r = (i / p.S) % p.R, s = i % p.S;
                const index_t shift = s * p.dilation.w - p.pad.w;  // iw = ow + shift
                const index_t lo = std::clamp<index_t>(-shift, 0, p.Wo);
                const index_t hi = std::clamp<index_t>(p.W - shift, lo, p.Wo);
                for (index_t ih = ih0; ih < ih0 + rows; ++ih) {
                    const index_t oh = ih - r * p.dilation.h + p.pad.h;
                    if (oh < 0 || oh >= p.Ho) continue;
                    const T* src = z + i * ldz + (ih - ih0) * p.W + shift;
                    T* dst = yg + k * P + oh * p.Wo;
                    for (index_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
                }
            }
        }
    }, M * Cg * HW);
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
    const index_t Kg = p.Kg(), Cg = p.Cg(), sh = p.stride.h, dh = p.dilation.h, P = p.Ho * p.Wo;
    const PaddedTapRows cols(p.Wo, p.S, p.stride.w, p.dilation.w, p.pad.w, round_up(p.Wo, kern.gemm.nr));
    const bool whole_rows = sh == 1 && dh <= kDirectRows;
    const index_t prows = whole_rows ? kDirectRows + (p.R - 1) * dh : kDirectRows * p.R;
    const index_t row_step = whole_rows ? cols.len : p.R * cols.len;
    const index_t tap_r = whole_rows ? dh * cols.len : cols.len;
    const index_t row_blocks = ceil_div(p.Ho, kDirectRows);
    const index_t tasks = p.N * p.groups * row_blocks;
    const index_t cblock = std::max<index_t>(1, kDirectSumTerms / (p.R * p.S));
    const index_t sums_size = 4 * kDirectRows * p.Wo;  // a later block's sums, added to y
    const index_t patch_size = checked_mul(Cg, checked_mul(prows, cols.len, "conv2d"), "conv2d");
    const index_t per_thread = checked_add(patch_size, sums_size, "conv2d");
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
        const index_t RS = p.R * p.S, CRS = Cg * RS, rows = oh1 - oh0, c_stride = prows * cols.len;
        T* sums = patch + patch_size;
        for (index_t k = grp * Kg; k < (grp + 1) * Kg; k += 4) {
            const index_t kb = std::min<index_t>(4, (grp + 1) * Kg - k);
            T init[4] = {};
            for (index_t j = 0; bias && j < kb; ++j) init[j] = bias[k + j];
            T* yk = y + ((n * p.K + k) * p.Ho + oh0) * p.Wo;
            for (index_t c0 = 0; c0 < Cg; c0 += cblock) {
                const index_t cb = std::min(cblock, Cg - c0);
                const T zeros[4] = {};
                kern.direct.corr_rows(p.Wo, rows, kb, cb, p.R, p.S, w + k * CRS + c0 * RS, CRS,
                                      patch + c0 * c_stride, row_step, c_stride, tap_r, cols.tap,
                                      c0 == 0 ? init : zeros, c0 == 0 ? yk : sums,
                                      c0 == 0 ? P : rows * p.Wo);
                for (index_t j = 0; c0 > 0 && j < kb; ++j)
                    kern.vec.add_to(rows * p.Wo, sums + j * rows * p.Wo, yk + j * P);
            }
        }
    }, Kg * Cg * p.R * p.S * kDirectRows * p.Wo);
}

// Direct over whole planes: the direct loop for small planes with few input
// channels per group (depthwise layers at 7x7-28x28, where the row loop's
// per-row copies and part-filled vectors cost more than its arithmetic).
// Per (image, group), the phase planes of the whole output (PhasePlanes with
// one band: every stride phase a tap reads, zero padded, rows lw = Wo + span
// apart), so tap (c, r, s) reads the flattened planes at its own offset and
// each output channel is one vector loop over Ho*lw positions
// (corr_taps), the Wo valid values of each row copied out. Its sums are the
// row loop's, term for term (one running sum of every tap, in order).
template <class T>
void correlate_planes(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    const gemm::Kernel<T>& kern = gemm::kernel<T>();
    const index_t Kg = p.Kg(), Cg = p.Cg(), taps = Cg * p.R * p.S, P = p.Ho * p.Wo;
    const PhasePlanes pp(p, p.Ho);
    const index_t n = checked_mul(p.Ho, pp.lw, "conv2d");
    const index_t per_thread = checked_add(pp.size, round_up(n, kern.lanes), "conv2d");
    Buffer<index_t> off(taps, "tap offsets");
    for (index_t t = 0; t < taps; ++t) off[t] = pp.offset(t);
    const index_t tasks = p.N * p.groups;
    const index_t threads = threads_for(tasks);
    Buffer<T> scratch(checked_mul(threads, per_thread, "conv2d"), "input phase planes");
    // Every task fills the same positions: the padding is zeroed once.
    std::vector<char> zeroed(threads, 0);
    parallel_for(tasks, [&](index_t t, int tid) {
        const index_t img = t / p.groups, g = t % p.groups;
        T* planes = scratch.data() + tid * per_thread;
        T* z = planes + pp.size;
        pp.fill(p, x + (img * p.C + g * Cg) * p.H * p.W, 0, p.Ho, planes, !zeroed[tid]);
        zeroed[tid] = 1;
        for (index_t k = g * Kg; k < (g + 1) * Kg; ++k) {
            kern.direct.corr_taps(n, taps, w + k * taps, planes, off.data(), bias ? bias[k] : T(0), z);
            T* yk = y + (img * p.K + k) * P;
            for (index_t oh = 0; oh < p.Ho; ++oh)
                for (index_t ow = 0; ow < p.Wo; ++ow) yk[oh * p.Wo + ow] = z[oh * pp.lw + ow];
        }
    }, Kg * taps * n);
}

}  // namespace

template <class T>
void correlate_nchw(const CorrelationPlan& p, CorrAlgo algo, const T* x, const T* w, const T* bias,
                    T* y) {
    if (is_winograd(algo) &&
        !winograd_safe(x, p.N * p.C * p.H * p.W, w, p.K * p.Cg() * 9, p.Cg() * 9))
        algo = CorrAlgo::indirect_gemm;  // non-finite or huge operands (winograd_safe)
    switch (algo) {
        case CorrAlgo::shift_add: return correlate_shift_add(p, x, w, bias, y);
        case CorrAlgo::direct: return correlate_direct(p, x, w, bias, y);
        case CorrAlgo::direct_planes: return correlate_planes(p, x, w, bias, y);
        case CorrAlgo::winograd_2x2: return correlate_winograd<2>(p, x, w, bias, y);
        case CorrAlgo::winograd_4x4: return correlate_winograd<4>(p, x, w, bias, y);
        case CorrAlgo::indirect_gemm: return correlate_indirect(p, x, w, bias, y);
    }
}

template <class T>
void correlate_nchw(const CorrelationPlan& p, const T* x, const T* w, const T* bias, T* y) {
    correlate_nchw(p, select_correlation(p), x, w, bias, y);
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
void conv2d_forward(const Conv2dPlan& plan, const T* x, const T* w, const T* bias, T* y) {
    correlate_nchw(forward_plan(plan.g), plan.forward, x, w, bias, y);
}

#define CONVEXT_INSTANTIATE(T)                                                                 \
    template void correlate_nchw<T>(const CorrelationPlan&, CorrAlgo, const T*, const T*,      \
                                    const T*, T*);                                           \
    template void correlate_nchw<T>(const CorrelationPlan&, const T*, const T*, const T*, T*); \
    template void conv2d_forward<T>(const Conv2dPlan&, const T*, const T*, const T*, T*);
CONVEXT_INSTANTIATE(float)
CONVEXT_INSTANTIATE(double)

}  // namespace convext
