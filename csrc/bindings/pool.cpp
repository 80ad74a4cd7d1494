// Bindings of max_pool2d / avg_pool2d and their adaptive forms, forward and backward.
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

// output_size of adaptive pooling: an int or a pair, None standing for the
// input's own size (as in PyTorch).
Pool2dGeometry adaptive_geometry(const char* op, const Shape& x, py::handle output_size,
                                 const char* x_name = "x") {
    if (x.size() == 4 && (py::isinstance<py::tuple>(output_size) || py::isinstance<py::list>(output_size))) {
        py::sequence seq = py::reinterpret_borrow<py::sequence>(output_size);
        if (seq.size() == 2 && (seq[0].is_none() || seq[1].is_none())) {
            py::tuple filled(2);
            for (int i = 0; i < 2; ++i)
                filled[i] = seq[i].is_none() ? py::int_(x[2 + i]) : py::object(seq[i]);
            return make_adaptive_pool2d_geometry(op, x, to_pair(filled, op, "output_size"), x_name);
        }
    }
    return make_adaptive_pool2d_geometry(op, x, to_pair(output_size, op, "output_size"), x_name);
}

AvgPoolOptions avg_options(const char* op, py::handle count_include_pad,
                           py::handle divisor_override) {
    AvgPoolOptions opt;
    opt.count_include_pad = to_bool(count_include_pad, op, "count_include_pad");
    if (!divisor_override.is_none()) {
        opt.divisor_override = to_index(divisor_override, op, "divisor_override");
        if (opt.divisor_override == 0)
            throw std::invalid_argument(msg(op, ": divisor_override must not be zero"));
    }
    return opt;
}

// The four computations, for fixed and adaptive windows alike (g says which).
py::object max_pool(const char* op, const py::array& xa, const Pool2dGeometry& g,
                    bool with_indices) {
    return dispatch(float_dtype(xa, op, "x"), [&](auto tag) -> py::object {
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

py::array max_pool_backward(const char* op, const py::array& ga, const py::array& xa,
                            const Pool2dGeometry& g, py::handle indices) {
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

py::array avg_pool(const char* op, const py::array& xa, const Pool2dGeometry& g,
                   const AvgPoolOptions& opt) {
    return dispatch(float_dtype(xa, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto xc = contiguous<T>(xa, op, "x");
        auto y = new_array<T>(op, g.y_shape());
        T* yp = y.mutable_data();
        without_gil([&] { avg_pool2d_forward<T>(g, opt, xc.data(), yp); });
        return y;
    });
}

py::array avg_pool_backward(const char* op, const py::array& ga, const Pool2dGeometry& g,
                            const AvgPoolOptions& opt) {
    const DType dt = float_dtype(ga, op, "grad_out");
    check_grad_out(op, g, shape_of(ga));
    return dispatch(dt, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto dx = new_array<T>(op, g.x_shape());
        T* dxp = dx.mutable_data();
        without_gil([&] { convext::avg_pool2d_backward<T>(g, opt, gc.data(), dxp); });
        return dx;
    });
}

py::object max_pool2d(py::object x, py::object kernel_size, py::object stride, py::object padding,
                      py::object dilation, py::object ceil_mode, py::object return_indices) {
    const char* op = "max_pool2d";
    py::array xa = as_array(x, op, "x");
    float_dtype(xa, op, "x");
    const Pool2dGeometry g =
        pool_geometry(op, shape_of(xa), kernel_size, stride, padding, dilation, ceil_mode);
    return max_pool(op, xa, g, to_bool(return_indices, op, "return_indices"));
}

py::array max_pool2d_backward(py::object grad_out, py::object x, py::object kernel_size,
                              py::object stride, py::object padding, py::object dilation,
                              py::object ceil_mode, py::object indices) {
    const char* op = "max_pool2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    const Pool2dGeometry g =
        pool_geometry(op, shape_of(xa), kernel_size, stride, padding, dilation, ceil_mode);
    return max_pool_backward(op, ga, xa, g, indices);
}

py::array avg_pool2d(py::object x, py::object kernel_size, py::object stride, py::object padding,
                     py::object ceil_mode, py::object count_include_pad,
                     py::object divisor_override) {
    const char* op = "avg_pool2d";
    py::array xa = as_array(x, op, "x");
    float_dtype(xa, op, "x");
    const Pool2dGeometry g = pool_geometry(op, shape_of(xa), kernel_size, stride, padding,
                                           py::int_(1), ceil_mode);
    return avg_pool(op, xa, g, avg_options(op, count_include_pad, divisor_override));
}

py::array avg_pool2d_backward(py::object grad_out, py::object input_shape, py::object kernel_size,
                              py::object stride, py::object padding, py::object ceil_mode,
                              py::object count_include_pad, py::object divisor_override) {
    const char* op = "avg_pool2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out");
    float_dtype(ga, op, "grad_out");
    const Pool2dGeometry g = pool_geometry(op, to_shape(input_shape, op, "input_shape", 4),
                                           kernel_size, stride, padding, py::int_(1), ceil_mode,
                                           "input_shape");
    return avg_pool_backward(op, ga, g, avg_options(op, count_include_pad, divisor_override));
}

py::object adaptive_max_pool2d(py::object x, py::object output_size, py::object return_indices) {
    const char* op = "adaptive_max_pool2d";
    py::array xa = as_array(x, op, "x");
    float_dtype(xa, op, "x");
    const Pool2dGeometry g = adaptive_geometry(op, shape_of(xa), output_size);
    return max_pool(op, xa, g, to_bool(return_indices, op, "return_indices"));
}

py::array adaptive_max_pool2d_backward(py::object grad_out, py::object x, py::object indices) {
    const char* op = "adaptive_max_pool2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    const Shape gs = shape_of(ga);
    if (gs.size() != 4)
        throw std::invalid_argument(msg(op, ": grad_out must be 4-D (N, C, Ho, Wo), got shape ",
                                        shape_str(gs)));
    const Pool2dGeometry g = make_adaptive_pool2d_geometry(op, shape_of(xa), {gs[2], gs[3]});
    return max_pool_backward(op, ga, xa, g, indices);
}

py::array adaptive_avg_pool2d(py::object x, py::object output_size) {
    const char* op = "adaptive_avg_pool2d";
    py::array xa = as_array(x, op, "x");
    float_dtype(xa, op, "x");
    return avg_pool(op, xa, adaptive_geometry(op, shape_of(xa), output_size), {});
}

py::array adaptive_avg_pool2d_backward(py::object grad_out, py::object input_shape) {
    const char* op = "adaptive_avg_pool2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out");
    float_dtype(ga, op, "grad_out");
    const Shape gs = shape_of(ga);
    if (gs.size() != 4)
        throw std::invalid_argument(msg(op, ": grad_out must be 4-D (N, C, Ho, Wo), got shape ",
                                        shape_str(gs)));
    const Pool2dGeometry g = make_adaptive_pool2d_geometry(
        op, to_shape(input_shape, op, "input_shape", 4), {gs[2], gs[3]}, "input_shape");
    return avg_pool_backward(op, ga, g, {});
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
          "padding"_a = 0, "ceil_mode"_a = false, "count_include_pad"_a = true,
          "divisor_override"_a = py::none());
    m.def("avg_pool2d_backward", &avg_pool2d_backward, "grad_out"_a, "input_shape"_a,
          "kernel_size"_a, "stride"_a = py::none(), "padding"_a = 0, "ceil_mode"_a = false,
          "count_include_pad"_a = true, "divisor_override"_a = py::none());
    m.def("adaptive_max_pool2d", &adaptive_max_pool2d, "x"_a, "output_size"_a,
          "return_indices"_a = false);
    m.def("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward, "grad_out"_a, "x"_a,
          "indices"_a = py::none());
    m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d, "x"_a, "output_size"_a);
    m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, "grad_out"_a,
          "input_shape"_a);
}

}  // namespace convext::bind
