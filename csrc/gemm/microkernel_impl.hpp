// The register-tile micro-kernel and macro-kernel, written once with GCC/Clang
// vector extensions and compiled once per ISA: each gemm_<isa>.cpp defines
// CONVEXT_VBYTES (the vector width in bytes) and CONVEXT_KERNEL_NS, and is
// compiled with that ISA's flags. Everything here has internal linkage, so the
// per-ISA copies can never be mixed up by the linker.
//
// Tile: MR = 6 rows x NR = 2 vectors (6x16 floats / 6x8 doubles on AVX2):
// 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 vector registers.
#pragma once

#ifndef CONVEXT_VBYTES
#error "define CONVEXT_VBYTES before including microkernel_impl.hpp"
#endif

#include "gemm.hpp"

namespace convext::gemm {
namespace CONVEXT_KERNEL_NS {
namespace {

template <class T>
struct Vec;
template <>
struct Vec<float> {
    typedef float type __attribute__((vector_size(CONVEXT_VBYTES)));
};
template <>
struct Vec<double> {
    typedef double type __attribute__((vector_size(CONVEXT_VBYTES)));
};

template <class T>
constexpr int kLanes = CONVEXT_VBYTES / int(sizeof(T));
template <class T>
constexpr int kNR = 2 * kLanes<T>;

template <class T>
inline typename Vec<T>::type vload(const T* p) {
    typename Vec<T>::type v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
inline void vstore(T* p, typename Vec<T>::type v) {
    __builtin_memcpy(p, &v, sizeof v);
}

// C[MR x NR] = (accumulate ? C : 0) + a[kc x MR]^T-panel * b[kc x NR]-panel.
template <class T>
inline void ukernel(index_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                    index_t ldc, bool accumulate) {
    using V = typename Vec<T>::type;
    constexpr int L = kLanes<T>;
    V acc[kMR][2];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = V{};
    for (index_t k = 0; k < kc; ++k) {
        const V b0 = vload(b), b1 = vload(b + L);
#pragma GCC unroll 6
        for (int i = 0; i < kMR; ++i) {
            const V ai = V{} + a[i];
            acc[i][0] += ai * b0;
            acc[i][1] += ai * b1;
        }
        a += kMR;
        b += 2 * L;
    }
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        T* ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] += vload(ci);
            acc[i][1] += vload(ci + L);
        }
        vstore(ci, acc[i][0]);
        vstore(ci + L, acc[i][1]);
    }
}

template <class T>
void macro_kernel(index_t m, index_t n, index_t kc, const T* Ap, const T* Bp, T* C, index_t ldc,
                  bool accumulate) {
    constexpr int NR = kNR<T>;
    alignas(64) T tile[kMR * NR];
    for (index_t j0 = 0; j0 < n; j0 += NR) {
        const index_t nr = n - j0 < NR ? n - j0 : NR;
        const T* b = Bp + j0 * kc;
        for (index_t i0 = 0; i0 < m; i0 += kMR) {
            const index_t mr = m - i0 < kMR ? m - i0 : kMR;
            const T* a = Ap + i0 * kc;
            T* c = C + i0 * ldc + j0;
            if (mr == kMR && nr == NR) {
                ukernel<T>(kc, a, b, c, ldc, accumulate);
                continue;
            }
            // Edge tile: compute the full tile aside, copy the valid part.
            ukernel<T>(kc, a, b, tile, NR, false);
            for (index_t i = 0; i < mr; ++i)
                for (index_t j = 0; j < nr; ++j)
                    c[i * ldc + j] = (accumulate ? c[i * ldc + j] : T(0)) + tile[i * NR + j];
        }
    }
}

}  // namespace
}  // namespace CONVEXT_KERNEL_NS
}  // namespace convext::gemm
