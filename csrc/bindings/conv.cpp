// Bindings of the conv2d family: convert, check, allocate, release the GIL, call.
#include "../conv2d.hpp"
#include "register.hpp"
#include "util.hpp"

namespace convext::bind {
namespace {

struct ConvParams {
    Pair stride, padding, dilation;
    index_t groups;
};

ConvParams conv_params(const char* op, py::handle stride, py::handle padding, py::handle dilation,
                       py::handle groups) {
    return {to_pair(stride, op, "stride"), to_pair(padding, op, "padding"),
            to_pair(dilation, op, "dilation"), to_index(groups, op, "groups")};
}

Conv2dGeometry geometry(const char* op, const Shape& x, const Shape& w, const ConvParams& c,
                        const char* x_name = "x", const char* w_name = "weight") {
    return make_conv2d_geometry(op, x, w, c.stride, c.padding, c.dilation, c.groups, x_name, w_name);
}

py::array conv2d(py::object x, py::object weight, py::object bias, py::object stride,
                 py::object padding, py::object dilation, py::object groups) {
    const char* op = "conv2d";
    py::array xa = as_array(x, op, "x"), wa = as_array(weight, op, "weight");
    require_same_dtype(op, "x", xa, "weight", wa);
    const Conv2dGeometry g =
        geometry(op, shape_of(xa), shape_of(wa), conv_params(op, stride, padding, dilation, groups));
    const bool has_bias = !bias.is_none();
    py::array ba;  // note: a default py::array is an empty array, not a null handle
    if (has_bias) {
        ba = as_array(bias, op, "bias");
        require_same_dtype(op, "x", xa, "bias", ba);
        check_bias(op, g, shape_of(ba));
    }
    return dispatch(float_dtype(xa, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto xc = contiguous<T>(xa, op, "x");
        auto wc = contiguous<T>(wa, op, "weight");
        py::array_t<T, py::array::c_style> bc;
        if (has_bias) bc = contiguous<T>(ba, op, "bias");
        auto y = new_array<T>(op, g.y_shape());
        const T* bp = has_bias ? bc.data() : nullptr;
        T* yp = y.mutable_data();
        without_gil([&] { conv2d_forward<T>(g, xc.data(), wc.data(), bp, yp); });
        return y;
    });
}

template <class T>
void input_grad(const char* op, const Conv2dGeometry& g, const py::array& ga, const py::array& wa,
                T* dx) {
    auto gc = contiguous<T>(ga, op, "grad_out");
    auto wc = contiguous<T>(wa, op, "weight");
    without_gil([&] { conv2d_backward_input<T>(g, gc.data(), wc.data(), dx); });
}

template <class T>
void weight_grad(const char* op, const Conv2dGeometry& g, const py::array& ga, const py::array& xa,
                 T* dw, T* db = nullptr) {
    auto gc = contiguous<T>(ga, op, "grad_out");
    auto xc = contiguous<T>(xa, op, "x");
    without_gil([&] { conv2d_backward_weight<T>(g, gc.data(), xc.data(), dw, db); });
}

py::array conv2d_input_grad(py::object grad_out, py::object weight, py::object input_shape,
                            py::object stride, py::object padding, py::object dilation,
                            py::object groups) {
    const char* op = "conv2d_input_grad";
    py::array ga = as_array(grad_out, op, "grad_out"), wa = as_array(weight, op, "weight");
    require_same_dtype(op, "grad_out", ga, "weight", wa);
    const Conv2dGeometry g = geometry(op, to_shape(input_shape, op, "input_shape", 4), shape_of(wa),
                                      conv_params(op, stride, padding, dilation, groups), "input_shape");
    check_grad_out(op, g, shape_of(ga));
    return dispatch(float_dtype(ga, op, "grad_out"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = new_array<T>(op, g.x_shape());
        input_grad<T>(op, g, ga, wa, dx.mutable_data());
        return dx;
    });
}

py::array conv2d_weight_grad(py::object grad_out, py::object x, py::object weight_shape,
                             py::object stride, py::object padding, py::object dilation,
                             py::object groups) {
    const char* op = "conv2d_weight_grad";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    const Conv2dGeometry g = geometry(op, shape_of(xa), to_shape(weight_shape, op, "weight_shape", 4),
                                      conv_params(op, stride, padding, dilation, groups), "x",
                                      "weight_shape");
    check_grad_out(op, g, shape_of(ga));
    return dispatch(float_dtype(ga, op, "grad_out"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dw = new_array<T>(op, g.w_shape());
        weight_grad<T>(op, g, ga, xa, dw.mutable_data());
        return dw;
    });
}

py::tuple conv2d_backward(py::object grad_out, py::object x, py::object weight, py::object stride,
                          py::object padding, py::object dilation, py::object groups) {
    const char* op = "conv2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x"),
              wa = as_array(weight, op, "weight");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    require_same_dtype(op, "grad_out", ga, "weight", wa);
    const Conv2dGeometry g =
        geometry(op, shape_of(xa), shape_of(wa), conv_params(op, stride, padding, dilation, groups));
    check_grad_out(op, g, shape_of(ga));
    return dispatch(float_dtype(ga, op, "grad_out"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto dx = new_array<T>(op, g.x_shape());
        auto dw = new_array<T>(op, g.w_shape());
        auto db = new_array<T>(op, {g.K});
        input_grad<T>(op, g, gc, wa, dx.mutable_data());
        weight_grad<T>(op, g, gc, xa, dw.mutable_data(), db.mutable_data());
        return py::make_tuple(dx, dw, db);
    });
}

}  // namespace

void register_conv(py::module_& m) {
    using namespace py::literals;
    m.def("conv2d", &conv2d, "x"_a, "weight"_a, "bias"_a = py::none(), "stride"_a = 1,
          "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1);
    m.def("conv2d_backward", &conv2d_backward, "grad_out"_a, "x"_a, "weight"_a, "stride"_a = 1,
          "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1);
    m.def("conv2d_input_grad", &conv2d_input_grad, "grad_out"_a, "weight"_a, "input_shape"_a,
          "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1);
    m.def("conv2d_weight_grad", &conv2d_weight_grad, "grad_out"_a, "x"_a, "weight_shape"_a,
          "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1, "groups"_a = 1);
}

}  // namespace convext::bind
