// AVX2 + FMA instance of the kernels: compiled with -mavx2 -mfma, run only
// after the CPU was checked for both (see dispatch.cpp).
#define CONVEXT_VBYTES 32
#define CONVEXT_MR 6
// weight-gradient dot tile, 9 + 3 + 1 of 16 registers (4x4 spills:
// docs/performance.md, "Design measurements")
#define CONVEXT_DOT_K 3
#define CONVEXT_DOT_J 3
#define CONVEXT_KERNEL_NS avx2_fma
#include "kernels/microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_6x16__avx2_fma;
extern const Kernel<double> dgemm_6x8__avx2_fma;
constexpr Kernel<float> sgemm_6x16__avx2_fma = avx2_fma::make_kernel<float>("sgemm_6x16__avx2_fma");
constexpr Kernel<double> dgemm_6x8__avx2_fma = avx2_fma::make_kernel<double>("dgemm_6x8__avx2_fma");
}  // namespace convext::gemm
