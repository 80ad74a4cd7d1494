// The patch gather ("im2col") of the generalised correlation, one row of the
// virtual column matrix at a time, so that no whole-image column buffer is
// ever built: the GEMM callers pack what they gather straight into panels.
#pragma once

#include "conv2d/conv2d.hpp"
#include "core/rows.hpp"
#include "kernels/kernel.hpp"

#include <algorithm>
#include <vector>

namespace convext {

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

// One axis of the phase-plane layout (PhasePlanes). Output o, tap r reads input
// index o*stride + r*dil - pad = stride*(o + q_r) + a_r (0 <= a_r < stride):
// in the phase-a_r plane (every stride-th input value, starting at a_r) it is
// entry o + q_r, so each tap's values over consecutive outputs are contiguous.
// Only the phases some tap reads get a slot. With per_tap, every tap gets a
// slot of its own instead, sampled from its own offset r*dil - pad (phase
// a_r = that offset, q_r = 0): more planes, but no span, so a tap's values
// over consecutive output rows follow each other without a gap.
struct PhaseAxis {
    index_t qmin = 0, span = 0, nslots;
    std::vector<index_t> slot, shift;  // per tap: slot of its phase, q_r - qmin
    std::vector<index_t> slot_phase;   // per slot: its phase a

    PhaseAxis(index_t taps, index_t stride, index_t dil, index_t pad, bool per_tap = false) {
        index_t qmax = 0;
        for (index_t r = 0; r < taps; ++r) {
            const index_t v = r * dil - pad;
            if (per_tap) {
                slot.push_back(r);
                slot_phase.push_back(v);
                shift.push_back(0);
                continue;
            }
            const index_t a = v % stride < 0 ? v % stride + stride : v % stride;
            const index_t q = (v - a) / stride;
            if (r == 0 || q < qmin) qmin = q;
            if (r == 0 || q > qmax) qmax = q;
            const auto it = std::find(slot_phase.begin(), slot_phase.end(), a);
            slot.push_back(it - slot_phase.begin());
            if (it == slot_phase.end()) slot_phase.push_back(a);
            shift.push_back(q);
        }
        for (index_t& q : shift) q -= qmin;
        span = qmax - qmin;
        nslots = static_cast<index_t>(slot_phase.size());
    }
};

// The phase planes of a band of output rows: for each channel of a group and
// each stride phase some tap reads, the input rows the band reads, each
// sampled at the stride into lw = Wo + span zero-padded values. Row
// (c, r, s) of the band's virtual column matrix, over positions i*lw + ow
// (output row oh0 + i, column ow), is then the contiguous run at
// planes + offset(c, r, s): the forward GEMM and the weight gradient read
// it in place. Positions with ow >= Wo read other taps' values (or the
// slack after the last plane): callers drop or mask them. With tap_columns
// (a column slot per tap s, PhaseAxis per_tap) lw = Wo and there are no such
// positions: the band's values of row crs are one run of rows*Wo.
struct PhasePlanes {
    PhaseAxis ah, aw;
    index_t lw, band, plane, nplanes, size;

    // Shared phase slots hold band + span rows (Wo + span columns): with taps
    // far apart (a dilation of 2**30 on a 3-row input) the span, hence the
    // scratch, would grow with the dilation instead of the work. An axis
    // whose slots per tap (no span: taps * out) are smaller takes those.
    // A layout choice only: the values read, and their order, are the same.
    static bool tap_slots_smaller(index_t taps, index_t stride, index_t dil, index_t pad,
                                  index_t out) {
        const PhaseAxis shared(taps, stride, dil, pad);
        return double(taps) * double(out) < double(shared.nslots) * (double(out) + double(shared.span));
    }

    // Bands of at most `band_rows` output rows (at least 1, at most Ho).
    PhasePlanes(const CorrelationPlan& p, index_t band_rows, bool tap_columns = false)
        : ah(p.R, p.stride.h, p.dilation.h, p.pad.h,
             tap_slots_smaller(p.R, p.stride.h, p.dilation.h, p.pad.h,
                               std::clamp<index_t>(band_rows, 1, p.Ho))),
          aw(p.S, p.stride.w, p.dilation.w, p.pad.w,
             tap_columns || tap_slots_smaller(p.S, p.stride.w, p.dilation.w, p.pad.w, p.Wo)),
          lw(checked_add(p.Wo, aw.span, "conv2d")),
          band(std::clamp<index_t>(band_rows, 1, p.Ho)),
          plane(checked_mul(band + ah.span, lw, "conv2d")),
          nplanes(checked_mul(p.Cg(), ah.nslots * aw.nslots, "conv2d")),
          size(checked_add(checked_mul(nplanes, plane, "conv2d"), lw + 64, "conv2d")) {}

    // Offset of row crs = (c*R + r)*S + s of the column matrix.
    index_t offset(index_t crs) const {
        const index_t S = index_t(aw.slot.size()), R = index_t(ah.slot.size());
        const index_t c = crs / (R * S), r = (crs / S) % R, s = crs % S;
        return ((c * ah.nslots + ah.slot[r]) * aw.nslots + aw.slot[s]) * plane +
               ah.shift[r] * lw + aw.shift[s];
    }

    // Planes of output rows [oh0, oh0 + rows) of one image group (x: its
    // channel 0). Without zeros, only the values read from x are written:
    // the padding must hold zeros already (a buffer zeroed once, then filled
    // for the same oh0 and rows each time).
    template <class T>
    void fill(const CorrelationPlan& p, const T* x, index_t oh0, index_t rows, T* planes,
              bool zeros = true) const {
        for (index_t j = 0; j < aw.nslots; ++j) {
            const RowSampling cols(p.W, lw, p.stride.w, aw.qmin * p.stride.w + aw.slot_phase[j]);
            for (index_t c = 0; c < p.Cg(); ++c)
                for (index_t i = 0; i < ah.nslots; ++i) {
                    T* dst = planes + ((c * ah.nslots + i) * aw.nslots + j) * plane;
                    for (index_t q = 0; q < band + ah.span; ++q, dst += lw) {
                        // rows past the band's last output row + span: never used
                        const index_t ih = q < rows + ah.span
                            ? (oh0 + q + ah.qmin) * p.stride.h + ah.slot_phase[i] : -1;
                        if (ih >= 0 && ih < p.H)
                            zeros ? cols(x + (c * p.H + ih) * p.W, T(0), dst)
                                  : cols.values(x + (c * p.H + ih) * p.W, dst);
                        else if (zeros)
                            std::fill(dst, dst + lw, T(0));
                    }
                }
        }
        if (zeros) std::fill(planes + nplanes * plane, planes + size, T(0));
    }
};

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
