// Bindings of relu / relu_backward (any shape).
#include "elementwise/relu.hpp"
#include "bindings/register.hpp"
#include "bindings/util.hpp"

namespace convext::bind {
namespace {

index_t nonempty_numel(const char* op, const char* name, const py::array& a) {
    const Shape s = shape_of(a);
    const index_t n = numel(op, s);
    if (n == 0) throw std::invalid_argument(msg(op, ": ", name, " must not be empty, got shape ", shape_str(s)));
    return n;
}

py::array relu(py::object x) {
    const char* op = "relu";
    py::array xa = as_array(x, op, "x");
    const DType dt = float_dtype(xa, op, "x");
    const index_t n = nonempty_numel(op, "x", xa);
    return dispatch(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto xc = contiguous<T>(xa, op, "x");
        auto y = new_array<T>(op, shape_of(xa));
        T* yp = y.mutable_data();
        without_gil([&] { relu_forward<T>(n, xc.data(), yp); });
        return y;
    });
}

py::array relu_backward(py::object grad_out, py::object x) {
    const char* op = "relu_backward";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    const index_t n = nonempty_numel(op, "x", xa);
    if (shape_of(ga) != shape_of(xa))
        throw std::invalid_argument(msg(op, ": grad_out must have x's shape ",
                                        shape_str(shape_of(xa)), ", got ", shape_str(shape_of(ga))));
    return dispatch(float_dtype(xa, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto xc = contiguous<T>(xa, op, "x");
        auto dx = new_array<T>(op, shape_of(xa));
        T* dxp = dx.mutable_data();
        without_gil([&] { convext::relu_backward<T>(n, gc.data(), xc.data(), dxp); });
        return dx;
    });
}

}  // namespace

void register_elementwise(py::module_& m) {
    using namespace py::literals;
    m.def("relu", &relu, "x"_a);
    m.def("relu_backward", &relu_backward, "grad_out"_a, "x"_a);
}

}  // namespace convext::bind
