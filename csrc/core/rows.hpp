// Row gathers shared by the op families (convolution patches, pooling windows).
#pragma once

#include "core/common.hpp"
#include "kernels/kernel.hpp"

#include <algorithm>

namespace convext {

// dst[q] = row[q * stride + off] for q < n, and `fill` where that column
// falls outside [0, W): one input row sampled at a stride, padded. Every
// gather of the engine (patch panels, direct-loop patches, pooling) goes
// through here. The column range is computed once for the rows a caller
// samples alike (two divisions: on the small planes of depthwise layers
// they cost more than the copy).
struct RowSampling {
    index_t n, stride, off, lo, hi;

    RowSampling(index_t W, index_t n_, index_t stride_, index_t off_)
        : n(n_), stride(stride_), off(off_),
          lo(std::min(n_, off_ >= 0 ? 0 : ceil_div(-off_, stride_))),
          hi(std::clamp(W - off_ <= 0 ? 0 : ceil_div(W - off_, stride_), lo, n_)) {}

    template <class T>
    void operator()(const T* row, T fill, T* dst) const {
        std::fill(dst, dst + lo, fill);
        values(row, dst);
        std::fill(dst + hi, dst + n, fill);
    }

    // Only the columns inside the row: dst[q] for lo <= q < hi.
    template <class T>
    void values(const T* row, T* dst) const {
        if (stride == 1 && hi - lo >= 16)
            std::copy(row + lo + off, row + hi + off, dst + lo);
        else if (stride == 2 && hi - lo >= 16)  // the ISA's vectorised stride-2 copy
            gemm::kernel<T>().vec.copy_stride2(hi - lo, row + 2 * lo + off, dst + lo);
        else  // short rows (depthwise layers' small planes): a call costs more than the copy
            for (index_t q = lo; q < hi; ++q) dst[q] = row[q * stride + off];
    }
};

template <class T>
void sample_row(const T* row, index_t W, index_t n, index_t stride, index_t off, T fill, T* dst) {
    RowSampling(W, n, stride, off)(row, fill, dst);
}

}  // namespace convext
