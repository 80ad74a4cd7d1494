// Run-time choice of the GEMM kernels, made once when the module loads.
#include "gemm.hpp"

#include <cstdlib>
#include <cstring>

namespace convext::gemm {

extern const Kernel<float> sgemm_6x8__generic;
extern const Kernel<double> dgemm_6x4__generic;
#ifdef CONVEXT_HAVE_AVX2_KERNELS
extern const Kernel<float> sgemm_6x16__avx2_fma;
extern const Kernel<double> dgemm_6x8__avx2_fma;
#endif

namespace {

bool cpu_has_avx2_fma() {
#ifdef CONVEXT_HAVE_AVX2_KERNELS
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

bool use_avx2() {
    static const bool use = [] {
        const char* forced = std::getenv("CONVEXT_ISA");
        if (forced && std::strcmp(forced, "generic") == 0) return false;
        return cpu_has_avx2_fma();
    }();
    return use;
}

}  // namespace

template <>
const Kernel<float>& kernel<float>() {
#ifdef CONVEXT_HAVE_AVX2_KERNELS
    if (use_avx2()) return sgemm_6x16__avx2_fma;
#endif
    return sgemm_6x8__generic;
}

template <>
const Kernel<double>& kernel<double>() {
#ifdef CONVEXT_HAVE_AVX2_KERNELS
    if (use_avx2()) return dgemm_6x8__avx2_fma;
#endif
    return dgemm_6x4__generic;
}

const char* isa_name() { return use_avx2() ? "avx2_fma" : "generic"; }

const char* available_isas() { return cpu_has_avx2_fma() ? "avx2_fma,generic" : "generic"; }

}  // namespace convext::gemm
