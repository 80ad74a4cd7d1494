// Portable instance of the packed GEMM: 16-byte vectors, which every x86-64
// (SSE2), AArch64 (NEON) and, lowered to scalars by the compiler, any other
// target has.
#define CONVEXT_VBYTES 16
#define CONVEXT_MR 6
#define CONVEXT_KERNEL_NS generic
#include "microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_6x8__generic;
extern const Kernel<double> dgemm_6x4__generic;
const Kernel<float> sgemm_6x8__generic{"sgemm_6x8__generic", generic::kMR, generic::kNR<float>,
                                       generic::macro_kernel<float>, generic::corr_rows<float>,
    generic::kLanes<float>, generic::dot_taps<float>,
    generic::winograd_input<float>, generic::winograd_output<float>};
const Kernel<double> dgemm_6x4__generic{"dgemm_6x4__generic", generic::kMR, generic::kNR<double>,
                                        generic::macro_kernel<double>, generic::corr_rows<double>,
    generic::kLanes<double>, generic::dot_taps<double>,
    generic::winograd_input<double>, generic::winograd_output<double>};
}  // namespace convext::gemm
