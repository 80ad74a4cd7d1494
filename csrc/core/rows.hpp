// Row gathers shared by the op families (convolution patches, pooling windows).
#pragma once

#include "core/common.hpp"
#include "kernels/kernel.hpp"

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
            gemm::kernel<T>().vec.copy_stride2(hi - lo, row + 2 * lo + off, dst + lo);
        else
            for (index_t q = lo; q < hi; ++q) dst[q] = row[q * stride + off];
    }
    std::fill(dst + hi, dst + n, fill);
}

}  // namespace convext
