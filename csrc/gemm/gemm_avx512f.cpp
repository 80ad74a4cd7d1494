// AVX-512F instance of the packed GEMM: compiled with -mavx512f -mfma, run
// only after the CPU was checked for AVX-512F (see dispatch.cpp).
#define CONVEXT_VBYTES 64
#define CONVEXT_MR 8
#define CONVEXT_KERNEL_NS avx512f
#include "microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_8x32__avx512f;
extern const Kernel<double> dgemm_8x16__avx512f;
const Kernel<float> sgemm_8x32__avx512f{"sgemm_8x32__avx512f", avx512f::kMR,
                                         avx512f::kNR<float>, avx512f::macro_kernel<float>, avx512f::corr_rows<float>,
    avx512f::kLanes<float>, avx512f::dot_taps<float>,
    avx512f::winograd_input<float>, avx512f::winograd_output<float>};
const Kernel<double> dgemm_8x16__avx512f{"dgemm_8x16__avx512f", avx512f::kMR,
                                         avx512f::kNR<double>, avx512f::macro_kernel<double>, avx512f::corr_rows<double>,
    avx512f::kLanes<double>, avx512f::dot_taps<double>,
    avx512f::winograd_input<double>, avx512f::winograd_output<double>};
}  // namespace convext::gemm
