// AVX-512F instance of the kernels: compiled with -mavx512f -mfma, run only
// after the CPU was checked for AVX-512F (see dispatch.cpp).
#define CONVEXT_VBYTES 64
#define CONVEXT_MR 8
#define CONVEXT_KERNEL_NS avx512f
#include "microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_8x32__avx512f;
extern const Kernel<double> dgemm_8x16__avx512f;
const Kernel<float> sgemm_8x32__avx512f = avx512f::make_kernel<float>("sgemm_8x32__avx512f");
const Kernel<double> dgemm_8x16__avx512f = avx512f::make_kernel<double>("dgemm_8x16__avx512f");
}  // namespace convext::gemm
