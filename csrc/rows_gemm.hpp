// The GEMM of the shift-add paths: z (M x np) = A (M x depth) * B, where B's
// row j is np consecutive values of a row-major plane stack (an image's
// channels: row j at b + j*b_stride), read in place by the indirect
// micro-kernel. The callers then add shifted rows of z into their outputs.
#pragma once

#include <algorithm>

#include "common.hpp"
#include "gemm/gemm.hpp"
#include "parallel.hpp"

namespace convext {

template <class T>
class RowsGemm {
public:
    // a(g, i, j): element (i, j) of group g's A (i < M, j < depth). Positions
    // per call at most max_np.
    template <class F>
    RowsGemm(index_t groups, index_t M, index_t depth, index_t b_stride, index_t max_np, F a)
        : kern_(gemm::kernel<T>()), M_(M), M_up_(round_up(M, kern_.mr)), depth_(depth),
          ldb_(checked_add(max_np, kern_.nr, "conv2d")),
          apack_(checked_mul(groups * M_up_, depth, "conv2d"), "packed weights"),
          off_(checked_mul(2, depth, "conv2d"), "row offsets") {
        const index_t KC = gemm::kKC<T>, nkb = ceil_div(depth, KC);
        Buffer<T> at(checked_mul(groups * M, depth, "conv2d"), "transposed weights");
        parallel_for(groups * nkb, [&](index_t t, int) {
            const index_t g = t / nkb, k0 = (t % nkb) * KC, kc = std::min(KC, depth - k0);
            T* ag = at.data() + g * M * depth;
            for (index_t i = 0; i < M; ++i)
                for (index_t j = k0; j < k0 + kc; ++j) ag[i * depth + j] = a(g, i, j);
            kern_.pack_a(M, kc, ag + k0, depth, 1, apack_.data() + g * M_up_ * depth + M_up_ * k0);
        });
        // Row j in place at j*b_stride; staged (see run) at j*ldb.
        for (index_t j = 0; j < depth; ++j) off_[j] = j * b_stride, off_[depth + j] = j * ldb_;
    }

    // Scratch values run needs for staging.
    index_t staging_size() const { return depth_ * ldb_; }

    // z[i * ldz + q] = sum_j A_g(i, j) * b[j*b_stride + q], q < np. The last
    // register tile reads up to nr values past np: where that would leave the
    // caller's array, pass stage = true and B is first copied to `staging`,
    // zero padded.
    void run(index_t g, const T* b, index_t b_stride, index_t np, bool stage, T* staging, T* z,
             index_t ldz) const {
        if (stage) {
            for (index_t j = 0; j < depth_; ++j) {
                std::copy(b + j * b_stride, b + j * b_stride + np, staging + j * ldb_);
                std::fill(staging + j * ldb_ + np, staging + (j + 1) * ldb_, T(0));
            }
            b = staging;
        }
        const index_t KC = gemm::kKC<T>;
        const T* ag = apack_.data() + g * M_up_ * depth_;
        for (index_t k0 = 0; k0 < depth_; k0 += KC) {
            const index_t kc = std::min(KC, depth_ - k0);
            for (index_t m0 = 0; m0 < M_; m0 += gemm::kMC)
                kern_.macro_indirect(std::min(gemm::kMC, M_ - m0), np, kc, ag + M_up_ * k0 + m0 * kc,
                                     b, off_.data() + (stage ? depth_ : 0) + k0, z + m0 * ldz, ldz,
                                     k0 > 0);
        }
    }

private:
    const gemm::Kernel<T>& kern_;
    index_t M_, M_up_, depth_, ldb_;
    Buffer<T> apack_;
    Buffer<index_t> off_;
};

}  // namespace convext
