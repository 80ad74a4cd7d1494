// The GEMM of the shift-add paths: z (M x np) = A (M x depth) * B, where B's
// row j is np consecutive values of a plane stack (an image's channels: row
// j at b + j*b_stride), read in place by the indirect micro-kernel when it
// has few rows, else copied into compact rows first (a few rows stay in
// cache in place; many strided rows are faster copied). The callers
// then add shifted rows of z into their outputs.
#pragma once

#include <algorithm>

#include "core/common.hpp"
#include "kernels/kernel.hpp"
#include "core/parallel.hpp"

namespace convext {

template <class T>
class RowsGemm {
public:
    // a(g, i, j): element (i, j) of group g's A (i < M, j < depth). Positions
    // per call at most max_np.
    template <class F>
    RowsGemm(index_t groups, index_t M, index_t depth, index_t b_stride, index_t max_np, F a)
        : kern_(gemm::kernel<T>()), M_(M), M_up_(round_up(M, kern_.gemm.mr)), depth_(depth),
          ldb_(checked_add(max_np, kern_.gemm.nr, "conv2d")),
          apack_(checked_mul(groups * M_up_, depth, "conv2d"), "packed weights"),
          off_(checked_mul(2, depth, "conv2d"), "row offsets") {
        const index_t KC = gemm::kKC<T>, nkb = ceil_div(depth, KC);
        Buffer<T> at(checked_mul(groups * M, depth, "conv2d"), "transposed weights");
        parallel_for(groups * nkb, [&](index_t t, int) {
            const index_t g = t / nkb, k0 = (t % nkb) * KC, kc = std::min(KC, depth - k0);
            T* ag = at.data() + g * M * depth;
            for (index_t i = 0; i < M; ++i)
                for (index_t j = k0; j < k0 + kc; ++j) ag[i * depth + j] = a(g, i, j);
            kern_.gemm.pack_a(M, kc, ag + k0, depth, 1, apack_.data() + g * M_up_ * depth + M_up_ * k0);
        }, 2 * M * KC);
        // B row j in place at j*b_stride; copied (see run) at j*ldb.
        for (index_t j = 0; j < depth; ++j) off_[j] = j * b_stride, off_[depth + j] = j * ldb_;
    }

    // Scratch values run needs for the compact copy of B.
    index_t staging_size() const { return depth_ * ldb_; }

    // z[i * ldz + q] = sum_j A_g(i, j) * b[j*b_stride + q], q < np. The last
    // register tile reads up to nr values past np: where that would leave
    // the caller's array, pass in_place_ok = false (B is then copied, zero
    // padded). next: where the next call's B starts (its rows np long too),
    // prefetched while this one's is copied; or null.
    void run(index_t g, const T* b, index_t np, bool in_place_ok, T* staging, T* z,
             index_t ldz, const T* next = nullptr) const {
        const bool copy = !in_place_ok || depth_ > kInPlaceRows;
        for (index_t j = 0; copy && j < depth_; ++j) {
            if (next) prefetch_slice(next + off_[j], np, 0, 1);
            std::copy(b + off_[j], b + off_[j] + np, staging + j * ldb_);
            std::fill(staging + j * ldb_ + np, staging + (j + 1) * ldb_, T(0));
        }
        const index_t KC = gemm::kKC<T>;
        const T* ag = apack_.data() + g * M_up_ * depth_;
        for (index_t k0 = 0; k0 < depth_; k0 += KC) {
            const index_t kc = std::min(KC, depth_ - k0);
            for (index_t m0 = 0; m0 < M_; m0 += gemm::kMC)
                kern_.gemm.macro_indirect(std::min(gemm::kMC, M_ - m0), np, kc, ag + M_up_ * k0 + m0 * kc,
                                     copy ? staging : b, off_.data() + (copy ? depth_ : 0) + k0,
                                     z + m0 * ldz, ldz, k0 > 0);
        }
    }

private:
    static constexpr index_t kInPlaceRows = 32;
    const gemm::Kernel<T>& kern_;
    index_t M_, M_up_, depth_, ldb_;
    Buffer<T> apack_;
    Buffer<index_t> off_;
};

}  // namespace convext
