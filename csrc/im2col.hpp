// The patch gather ("im2col") of the generalised correlation, one row of the
// virtual column matrix at a time, so that no whole-image column buffer is
// ever built: the GEMM callers pack what they gather straight into panels.
#pragma once

#include "conv2d.hpp"
#include "gemm/gemm.hpp"

#include <algorithm>

namespace convext {

// dst[q] = row[q * stride + off] for q < n, and `fill` where that column
// falls outside [0, W): one input row sampled at a stride, padded. Every
// gather of the engine (patch panels, direct-loop patches, pooling) goes
// through here.
template <class T>
void sample_row(const T* row, index_t W, index_t n, index_t stride, index_t off, T fill, T* dst) {
    const index_t lo = std::min(n, off >= 0 ? 0 : ceil_div(-off, stride));
    const index_t hi = std::clamp(W - off <= 0 ? 0 : ceil_div(W - off, stride), lo, n);
    std::fill(dst, dst + lo, fill);
    if (hi > lo) {
        if (stride == 1)
            std::copy(row + lo + off, row + hi + off, dst + lo);
        else if (stride == 2)  // the ISA's vectorised stride-2 copy
            gemm::kernel<T>().copy_stride2(hi - lo, row + 2 * lo + off, dst + lo);
        else
            for (index_t q = lo; q < hi; ++q) dst[q] = row[q * stride + off];
    }
    std::fill(dst + hi, dst + n, fill);
}

// Row `crs` = (c, r, s) of the column matrix of one image group: the values
// that tap (r, s) of channel c sees at the output positions [p0, p0 + n),
// p = oh * Wo + ow. `x` points at channel 0 of the group.
template <class T>
void gather_patch_row(const CorrelationPlan& p, const T* x, index_t crs, index_t p0, index_t n,
                      T* out) {
    const index_t RS = p.R * p.S;
    const index_t c = crs / RS, r = (crs / p.S) % p.R, s = crs % p.S;
    const T* xc = x + c * p.H * p.W;
    const index_t off = s * p.dilation.w - p.pad.w;  // iw = ow * stride.w + off
    index_t oh = p0 / p.Wo, ow = p0 % p.Wo;
    for (index_t done = 0; done < n; done += p.Wo - ow, ++oh, ow = 0) {
        const index_t run = std::min(p.Wo - ow, n - done);
        const index_t ih = oh * p.stride.h + r * p.dilation.h - p.pad.h;
        if (ih < 0 || ih >= p.H)
            std::fill(out + done, out + done + run, T(0));
        else
            sample_row(xc + ih * p.W, p.W, run, p.stride.w, ow * p.stride.w + off, T(0), out + done);
    }
}

// The zero-padded input rows the direct loops (correlate_direct and the
// depthwise weight gradient) read with unit stride: with unit stride and a
// dilation at most the row width, the padded input row itself (tap s at
// offset s*dw); otherwise S segments of wq values, segment s holding the
// columns q*sw + s*dw - pad that tap s reads (tap s at offset s*wq), which
// keeps the rows short whatever the stride and dilation.
struct PaddedTapRows {
    index_t Wo, S, sw, dw, pad, wq;
    bool whole;
    index_t len, tap;  // values per row; distance between taps s

    PaddedTapRows(index_t Wo_, index_t S_, index_t sw_, index_t dw_, index_t pad_, index_t wq_)
        : Wo(Wo_), S(S_), sw(sw_), dw(dw_), pad(pad_), wq(wq_), whole(sw_ == 1 && dw_ <= wq_),
          len(whole ? wq_ + (S_ - 1) * dw_ : S_ * wq_), tap(whole ? dw_ : wq_) {}

    // dst (len values) from input row `row` of width W; row null: all padding.
    template <class T>
    void fill(const T* row, index_t W, T* dst) const {
        if (!row) {
            std::fill(dst, dst + len, T(0));
        } else if (whole) {
            sample_row(row, W, len, 1, -pad, T(0), dst);
        } else {
            for (index_t s = 0; s < S; ++s) {
                sample_row(row, W, Wo, sw, s * dw - pad, T(0), dst + s * wq);
                std::fill(dst + s * wq + Wo, dst + (s + 1) * wq, T(0));
            }
        }
    }
};

}  // namespace convext
