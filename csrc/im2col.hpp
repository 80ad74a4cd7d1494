// The patch gather ("im2col") of the generalised correlation, one row of the
// virtual column matrix at a time, so that no whole-image column buffer is
// ever built: the GEMM callers pack what they gather straight into panels.
#pragma once

#include "conv2d.hpp"
#include "gemm/gemm.hpp"

#include <algorithm>

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
    const index_t sw = p.stride.w;
    // Column in the padded row: iw = ow * sw + off.
    const index_t off = s * p.dilation.w - p.pad.w;
    // Outputs whose column lands inside the row: [ow_lo, ow_hi).
    const index_t ow_lo = off >= 0 ? 0 : ceil_div(-off, sw);
    const index_t ow_hi = p.W - off <= 0 ? 0 : ceil_div(p.W - off, sw);

    index_t oh = p0 / p.Wo, ow = p0 % p.Wo;
    for (index_t done = 0; done < n;) {
        const index_t run = std::min(p.Wo - ow, n - done);
        const index_t ih = oh * p.stride.h + r * p.dilation.h - p.pad.h;
        T* o = out + done;
        if (ih < 0 || ih >= p.H) {
            std::fill(o, o + run, T(0));
        } else {
            const T* row = xc + ih * p.W;
            const index_t lo = std::clamp(ow_lo, ow, ow + run);
            const index_t hi = std::clamp(ow_hi, lo, ow + run);
            std::fill(o, o + (lo - ow), T(0));
            if (sw == 1) {
                std::copy(row + lo + off, row + hi + off, o + (lo - ow));
            } else if (sw == 2) {  // the ISA's vectorised stride-2 copy
                gemm::kernel<T>().copy_stride2(hi - lo, row + 2 * lo + off, o + (lo - ow));
            } else {
                for (index_t q = lo; q < hi; ++q) o[q - ow] = row[q * sw + off];
            }
            std::fill(o + (hi - ow), o + run, T(0));
        }
        done += run;
        ++oh;
        ow = 0;
    }
}

}  // namespace convext
