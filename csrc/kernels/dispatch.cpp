// Run-time choice of the GEMM kernels, made once when the module loads.
#include "kernels/kernel.hpp"

#include <cstdlib>
#include <cstring>

namespace convext::gemm {

extern const Kernel<float> sgemm_6x8__generic;
extern const Kernel<double> dgemm_6x4__generic;
#ifdef CONVEXT_HAVE_X86_KERNELS
extern const Kernel<float> sgemm_6x16__avx2_fma;
extern const Kernel<double> dgemm_6x8__avx2_fma;
extern const Kernel<float> sgemm_8x32__avx512f;
extern const Kernel<double> dgemm_8x16__avx512f;
#endif

namespace {

enum class Isa { generic, avx2_fma, avx512f };

bool cpu_supports(Isa isa) {
#ifdef CONVEXT_HAVE_X86_KERNELS
    __builtin_cpu_init();
    switch (isa) {
        case Isa::avx512f:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
        case Isa::avx2_fma:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Isa::generic:
            return true;
    }
#endif
    return isa == Isa::generic;
}

const char* isa_str(Isa isa) {
    switch (isa) {
        case Isa::avx512f: return "avx512f";
        case Isa::avx2_fma: return "avx2_fma";
        default: return "generic";
    }
}

// The best ISA this CPU runs, or the one CONVEXT_ISA names (if the CPU runs it).
Isa chosen_isa() {
    static const Isa isa = [] {
        const char* forced = std::getenv("CONVEXT_ISA");
        for (Isa i : {Isa::avx512f, Isa::avx2_fma, Isa::generic})
            if (forced && std::strcmp(forced, isa_str(i)) == 0 && cpu_supports(i)) return i;
        for (Isa i : {Isa::avx512f, Isa::avx2_fma})
            if (cpu_supports(i)) return i;
        return Isa::generic;
    }();
    return isa;
}

}  // namespace

template <>
const Kernel<float>& kernel<float>() {
#ifdef CONVEXT_HAVE_X86_KERNELS
    if (chosen_isa() == Isa::avx512f) return sgemm_8x32__avx512f;
    if (chosen_isa() == Isa::avx2_fma) return sgemm_6x16__avx2_fma;
#endif
    return sgemm_6x8__generic;
}

template <>
const Kernel<double>& kernel<double>() {
#ifdef CONVEXT_HAVE_X86_KERNELS
    if (chosen_isa() == Isa::avx512f) return dgemm_8x16__avx512f;
    if (chosen_isa() == Isa::avx2_fma) return dgemm_6x8__avx2_fma;
#endif
    return dgemm_6x4__generic;
}

const char* isa_name() { return isa_str(chosen_isa()); }

const char* available_isas() {
    if (cpu_supports(Isa::avx512f)) return "avx512f,avx2_fma,generic";
    if (cpu_supports(Isa::avx2_fma)) return "avx2_fma,generic";
    return "generic";
}

}  // namespace convext::gemm
