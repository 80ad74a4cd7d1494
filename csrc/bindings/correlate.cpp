// Bindings of correlate2d / convolve2d / rot180.
#include "../correlate.hpp"
#include "register.hpp"
#include "util.hpp"

namespace convext::bind {
namespace {

template <bool Convolve>
py::array correlate_or_convolve(py::object in1, py::object in2, py::object mode) {
    const char* op = Convolve ? "convolve2d" : "correlate2d";
    py::array a = as_array(in1, op, "in1"), b = as_array(in2, op, "in2");
    require_same_dtype(op, "in1", a, "in2", b);
    if (!py::isinstance<py::str>(mode))
        throw py::type_error(msg(op, ": mode must be a str, got ", std::string(py::repr(mode))));
    const Correlate2dGeometry g = make_correlate2d_geometry(
        op, shape_of(a), shape_of(b), parse_corr_mode(op, mode.cast<std::string>()), Convolve);
    return dispatch(float_dtype(a, op, "in1"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto ac = contiguous<T>(a, op, "in1");
        auto bc = contiguous<T>(b, op, "in2");
        auto out = new_array<T>(op, {g.Ho, g.Wo});
        T* op_ = out.mutable_data();
        without_gil([&] {
            if constexpr (Convolve)
                convolve2d<T>(g, ac.data(), bc.data(), op_);
            else
                correlate2d<T>(g, ac.data(), bc.data(), op_);
        });
        return out;
    });
}

py::array rot180_(py::object w) {
    const char* op = "rot180";
    py::array a = as_array(w, op, "w");
    const DType dt = float_dtype(a, op, "w");
    const Shape s = shape_of(a);
    if (s.size() < 2)
        throw std::invalid_argument(
            msg(op, ": w must have at least 2 dimensions, got shape ", shape_str(s)));
    const index_t R = s[s.size() - 2], S = s[s.size() - 1];
    const index_t n = numel(op, s);
    return dispatch(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto wc = contiguous<T>(a, op, "w");
        auto out = new_array<T>(op, s);
        T* o = out.mutable_data();
        if (n == 0) return out;
        without_gil([&] { rot180<T>(n / (R * S), R, S, wc.data(), o); });
        return out;
    });
}

}  // namespace

void register_correlate(py::module_& m) {
    using namespace py::literals;
    m.def("correlate2d", &correlate_or_convolve<false>, "in1"_a, "in2"_a, "mode"_a = "valid");
    m.def("convolve2d", &correlate_or_convolve<true>, "in1"_a, "in2"_a, "mode"_a = "valid");
    m.def("rot180", &rot180_, "w"_a);
}

}  // namespace convext::bind
