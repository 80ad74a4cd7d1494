// Bindings of max_pool2d / avg_pool2d, forward and backward.
#include "pool/pool2d.hpp"
#include "bindings/register.hpp"
#include "bindings/util.hpp"

namespace convext::bind {
namespace {

// kernel_size, stride (None = kernel_size), padding, dilation, ceil_mode.
Pool2dGeometry pool_geometry(const char* op, const Shape& x, py::handle kernel_size,
                             py::handle stride, py::handle padding, py::handle dilation,
                             py::handle ceil_mode, const char* x_name = "x") {
    const Pair k = to_pair(kernel_size, op, "kernel_size");
    return make_pool2d_geometry(op, x, k, to_pair(stride, op, "stride", &k),
                                to_pair(padding, op, "padding"), to_pair(dilation, op, "dilation"),
                                to_bool(ceil_mode, op, "ceil_mode"), x_name);
}

py::object max_pool2d(py::object x, py::object kernel_size, py::object stride, py::object padding,
                      py::object dilation, py::object ceil_mode, py::object return_indices) {
    const char* op = "max_pool2d";
    py::array xa = as_array(x, op, "x");
    const DType dt = float_dtype(xa, op, "x");
    const Pool2dGeometry g =
        pool_geometry(op, shape_of(xa), kernel_size, stride, padding, dilation, ceil_mode);
    const bool with_indices = to_bool(return_indices, op, "return_indices");
    return dispatch(dt, [&](auto tag) -> py::object {
        using T = decltype(tag);
        auto xc = contiguous<T>(xa, op, "x");
        auto y = new_array<T>(op, g.y_shape());
        py::array_t<std::int64_t> idx;
        if (with_indices) idx = new_array<std::int64_t>(op, g.y_shape());
        T* yp = y.mutable_data();
        std::int64_t* ip = with_indices ? idx.mutable_data() : nullptr;
        without_gil([&] { max_pool2d_forward<T>(g, xc.data(), yp, ip); });
        if (with_indices) return py::make_tuple(y, idx);
        return std::move(y);
    });
}

py::array max_pool2d_backward(py::object grad_out, py::object x, py::object kernel_size,
                              py::object stride, py::object padding, py::object dilation,
                              py::object ceil_mode, py::object indices) {
    const char* op = "max_pool2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    const Pool2dGeometry g =
        pool_geometry(op, shape_of(xa), kernel_size, stride, padding, dilation, ceil_mode);
    check_grad_out(op, g, shape_of(ga));
    const bool has_indices = !indices.is_none();
    py::array_t<std::int64_t, py::array::c_style> ic;  // empty array unless given
    if (has_indices) {
        py::array ia = as_array(indices, op, "indices");
        if (ia.dtype().kind() != 'i' && ia.dtype().kind() != 'u')
            throw py::type_error(msg(op, ": indices must be an integer array, got dtype ",
                                     std::string(py::str(ia.dtype()))));
        if (shape_of(ia) != g.y_shape())
            throw std::invalid_argument(msg(op, ": indices must have the output's shape ",
                                            shape_str(g.y_shape()), ", got ",
                                            shape_str(shape_of(ia))));
        ic = contiguous<std::int64_t, py::array::forcecast>(ia, op, "indices");
    }
    return dispatch(float_dtype(ga, op, "grad_out"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto xc = contiguous<T>(xa, op, "x");
        auto dx = new_array<T>(op, g.x_shape());
        const std::int64_t* ip = has_indices ? ic.data() : nullptr;
        T* dxp = dx.mutable_data();
        without_gil([&] { convext::max_pool2d_backward<T>(g, gc.data(), xc.data(), ip, dxp); });
        return dx;
    });
}

py::array avg_pool2d(py::object x, py::object kernel_size, py::object stride, py::object padding,
                     py::object ceil_mode, py::object count_include_pad) {
    const char* op = "avg_pool2d";
    py::array xa = as_array(x, op, "x");
    const DType dt = float_dtype(xa, op, "x");
    const Pool2dGeometry g = pool_geometry(op, shape_of(xa), kernel_size, stride, padding,
                                           py::int_(1), ceil_mode);
    const bool include_pad = to_bool(count_include_pad, op, "count_include_pad");
    return dispatch(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto xc = contiguous<T>(xa, op, "x");
        auto y = new_array<T>(op, g.y_shape());
        T* yp = y.mutable_data();
        without_gil([&] { avg_pool2d_forward<T>(g, include_pad, xc.data(), yp); });
        return y;
    });
}

py::array avg_pool2d_backward(py::object grad_out, py::object input_shape, py::object kernel_size,
                              py::object stride, py::object padding, py::object ceil_mode,
                              py::object count_include_pad) {
    const char* op = "avg_pool2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out");
    const DType dt = float_dtype(ga, op, "grad_out");
    const Pool2dGeometry g = pool_geometry(op, to_shape(input_shape, op, "input_shape", 4),
                                           kernel_size, stride, padding, py::int_(1), ceil_mode,
                                           "input_shape");
    check_grad_out(op, g, shape_of(ga));
    const bool include_pad = to_bool(count_include_pad, op, "count_include_pad");
    return dispatch(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto dx = new_array<T>(op, g.x_shape());
        T* dxp = dx.mutable_data();
        without_gil([&] { convext::avg_pool2d_backward<T>(g, include_pad, gc.data(), dxp); });
        return dx;
    });
}

}  // namespace

void register_pool(py::module_& m) {
    using namespace py::literals;
    m.def("max_pool2d", &max_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(),
          "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false, "return_indices"_a = false);
    m.def("max_pool2d_backward", &max_pool2d_backward, "grad_out"_a, "x"_a, "kernel_size"_a,
          "stride"_a = py::none(), "padding"_a = 0, "dilation"_a = 1, "ceil_mode"_a = false,
          "indices"_a = py::none());
    m.def("avg_pool2d", &avg_pool2d, "x"_a, "kernel_size"_a, "stride"_a = py::none(),
          "padding"_a = 0, "ceil_mode"_a = false, "count_include_pad"_a = true);
    m.def("avg_pool2d_backward", &avg_pool2d_backward, "grad_out"_a, "input_shape"_a,
          "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false,
          "count_include_pad"_a = true);
}

}  // namespace convext::bind
