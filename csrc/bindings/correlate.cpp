// Bindings of correlate2d / convolve2d / rot180.
#include <cstdint>

#include "signal/correlate.hpp"
#include "bindings/register.hpp"
#include "bindings/util.hpp"

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

// 'valid' correlation tap by tap for uint64 (exact integers modulo 2^64) and
// long double: the dtypes the Python layer routes around the float GEMM paths.
template <class T>
py::array valid_direct(const py::array& a, const py::array& b, const char* op) {
    const Correlate2dGeometry g =
        make_correlate2d_geometry(op, shape_of(a), shape_of(b), CorrMode::valid, false);
    if (g.swapped)
        throw std::invalid_argument(msg(op, ": in1 must be at least as large as in2, got ",
                                        shape_str(shape_of(a)), " and ", shape_str(shape_of(b))));
    auto ac = contiguous<T>(a, op, "in1");
    auto bc = contiguous<T>(b, op, "in2");
    auto out = new_array<T>(op, {g.Ho, g.Wo});
    T* o = out.mutable_data();
    without_gil([&] { correlate2d_valid_direct<T>(g, ac.data(), bc.data(), o); });
    return out;
}

py::array correlate2d_valid_direct_(py::object in1, py::object in2) {
    const char* op = "correlate2d_valid_direct";
    py::array a = as_array(in1, op, "in1"), b = as_array(in2, op, "in2");
    if (!a.dtype().is(b.dtype()))
        throw py::type_error(msg(op, ": in1 is ", std::string(py::str(a.dtype())), " but in2 is ",
                                 std::string(py::str(b.dtype())), "; pass arrays of one dtype"));
    if (a.dtype().is(py::dtype::of<std::uint64_t>())) return valid_direct<std::uint64_t>(a, b, op);
    if (a.dtype().is(py::dtype::of<long double>())) return valid_direct<long double>(a, b, op);
    throw py::type_error(msg(op, ": in1 and in2 must be uint64 or long double, got ",
                             std::string(py::str(a.dtype()))));
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
    m.def("correlate2d_valid_direct", &correlate2d_valid_direct_, "in1"_a, "in2"_a);
}

}  // namespace convext::bind
