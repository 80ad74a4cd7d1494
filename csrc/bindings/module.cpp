// convext._core: the compiled engine. Each op family registers itself; the
// maths lives in csrc/, the checks in csrc/geometry.cpp.
#include "core/common.hpp"
#include "kernels/kernel.hpp"
#include "bindings/register.hpp"
#include "bindings/util.hpp"

namespace convext::bind {

void register_config(py::module_& m) {
    using namespace py::literals;
    m.def(
        "set_num_threads",
        [](py::object n) {
            const index_t v = to_index(n, "set_num_threads", "n");
            if (v < 1 || v > kMaxThreads)
                throw std::invalid_argument(
                    msg("set_num_threads: n must be between 1 and ", kMaxThreads, ", got ", v));
            set_num_threads(static_cast<int>(v));
        },
        "n"_a);
    m.def("get_num_threads", &get_num_threads);
    m.def("_config", [] {
        py::dict d;
        d["isa"] = gemm::isa_name();
        d["available_isas"] = gemm::available_isas();
        d["sgemm_kernel"] = gemm::kernel<float>().name;
        d["dgemm_kernel"] = gemm::kernel<double>().name;
        d["openmp"] = openmp_enabled();
        d["num_threads"] = get_num_threads();
#ifdef CONVEXT_NATIVE_BUILD
        d["native_build"] = true;
#else
        d["native_build"] = false;
#endif
#ifdef __VERSION__
        d["compiler"] = __VERSION__;
#endif
        return d;
    });
}

}  // namespace convext::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "convext's compiled engine (private: use the functions of the convext package)";
    pybind11::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const convext::alloc_error& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());
        }
    });
    convext::bind::register_conv(m);
    convext::bind::register_pool(m);
    convext::bind::register_elementwise(m);
    convext::bind::register_correlate(m);
    convext::bind::register_config(m);
}
