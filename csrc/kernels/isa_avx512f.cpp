// AVX-512F instance of the kernels: compiled with -mavx512f -mfma, run only
// after the CPU was checked for AVX-512F (see dispatch.cpp).
#define CONVEXT_VBYTES 64
#define CONVEXT_MR 8
// weight-gradient dot tile, 16 + 4 + 1 registers (the fastest of the tiles
// tried: docs/performance.md, "Design measurements")
#define CONVEXT_DOT_K 4
#define CONVEXT_DOT_J 4
#define CONVEXT_KERNEL_NS avx512f
#include "kernels/microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_8x32__avx512f;
extern const Kernel<double> dgemm_8x16__avx512f;
constexpr Kernel<float> sgemm_8x32__avx512f = avx512f::make_kernel<float>("sgemm_8x32__avx512f");
constexpr Kernel<double> dgemm_8x16__avx512f = avx512f::make_kernel<double>("dgemm_8x16__avx512f");
}  // namespace convext::gemm
