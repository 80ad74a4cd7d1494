// AVX-512F instance of the kernels: compiled with -mavx512f -mfma, run only
// after the CPU was checked for AVX-512F (see dispatch.cpp).
#define CONVEXT_VBYTES 64
#define CONVEXT_MR 8
// weight-gradient dot tile, 16 + 4 + 1 registers (A/B, stem7x7s2: 4x4 ~170
// GFLOP/s 1 thread, 5x5 ~160, 6x4 ~160; earlier 8x2 and 2x8 25-35% slower)
#define CONVEXT_DOT_K 4
#define CONVEXT_DOT_J 4
#define CONVEXT_KERNEL_NS avx512f
#include "kernels/microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_8x32__avx512f;
extern const Kernel<double> dgemm_8x16__avx512f;
const Kernel<float> sgemm_8x32__avx512f = avx512f::make_kernel<float>("sgemm_8x32__avx512f");
const Kernel<double> dgemm_8x16__avx512f = avx512f::make_kernel<double>("dgemm_8x16__avx512f");
}  // namespace convext::gemm
