// AVX2 + FMA instance of the packed GEMM: compiled with -mavx2 -mfma, run only
// after the CPU was checked for both (see dispatch.cpp).
#define CONVEXT_VBYTES 32
#define CONVEXT_MR 6
#define CONVEXT_KERNEL_NS avx2_fma
#include "microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_6x16__avx2_fma;
extern const Kernel<double> dgemm_6x8__avx2_fma;
const Kernel<float> sgemm_6x16__avx2_fma{"sgemm_6x16__avx2_fma", avx2_fma::kMR,
                                         avx2_fma::kNR<float>, avx2_fma::macro_kernel<float>, avx2_fma::corr_rows<float>,
    avx2_fma::kLanes<float>, avx2_fma::dot_taps<float>,
    avx2_fma::winograd_input<float>, avx2_fma::winograd_output<float>};
const Kernel<double> dgemm_6x8__avx2_fma{"dgemm_6x8__avx2_fma", avx2_fma::kMR,
                                         avx2_fma::kNR<double>, avx2_fma::macro_kernel<double>, avx2_fma::corr_rows<double>,
    avx2_fma::kLanes<double>, avx2_fma::dot_taps<double>,
    avx2_fma::winograd_input<double>, avx2_fma::winograd_output<double>};
}  // namespace convext::gemm
