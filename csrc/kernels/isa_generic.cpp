// Portable instance of the kernels: 16-byte vectors, which every x86-64
// (SSE2), AArch64 (NEON) and, lowered to scalars by the compiler, any other
// target has.
#define CONVEXT_VBYTES 16
#define CONVEXT_MR 6
#define CONVEXT_DOT_K 3  // weight-gradient dot tile: 16 registers, as AVX2
#define CONVEXT_DOT_J 3
#define CONVEXT_KERNEL_NS generic
#include "kernels/microkernel_impl.hpp"

namespace convext::gemm {
extern const Kernel<float> sgemm_6x8__generic;
extern const Kernel<double> dgemm_6x4__generic;
constexpr Kernel<float> sgemm_6x8__generic = generic::make_kernel<float>("sgemm_6x8__generic");
constexpr Kernel<double> dgemm_6x4__generic = generic::make_kernel<double>("dgemm_6x4__generic");
}  // namespace convext::gemm
