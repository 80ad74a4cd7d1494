// Bindings of the conv2d family: convert, check, plan, allocate, release the
// GIL, run. Every entry point goes through a Conv2dPlan (conv2d/plan.hpp):
// the functions build one per call, convext.Conv2dPlan keeps one.
#include "conv2d/plan.hpp"
#include "bindings/register.hpp"
#include "bindings/util.hpp"

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

// "float32" / "float64" (what numpy.dtype(...).name gives).
DType plan_dtype(const std::string& name) {
    if (name == "float32") return DType::f32;
    if (name == "float64") return DType::f64;
    throw py::type_error(msg("Conv2dPlan: dtype must be float32 or float64, got ", name));
}

std::size_t elem_size(DType d) { return d == DType::f32 ? sizeof(float) : sizeof(double); }

// The plan's dtype must be the arrays'.
void require_plan_dtype(const char* op, const char* name, const py::array& a, DType plan_dtype) {
    if (float_dtype(a, op, name) != plan_dtype)
        throw py::type_error(msg(op, ": ", name, " has dtype ", std::string(py::str(a.dtype())),
                                 " but the plan was made for ",
                                 plan_dtype == DType::f32 ? "float32" : "float64"));
}

// {"forward": ..., "input_grad": ..., "weight_grad": ...}: the algorithms to
// use instead of the selectors' ("phases[direct]" also forces the core of the
// input gradient's phases).
Conv2dAlgoRequest algo_request(const char* op, py::handle algorithms) {
    Conv2dAlgoRequest req;
    if (algorithms.is_none()) return req;
    if (!py::isinstance<py::dict>(algorithms))
        throw py::type_error(msg(op, ": algorithms must be a dict or None, got ",
                                 std::string(py::repr(algorithms))));
    for (auto item : py::reinterpret_borrow<py::dict>(algorithms)) {
        const std::string key = py::str(item.first), value = py::str(item.second);
        if (key == "forward") {
            req.forward = parse_corr_algo(op, value);
        } else if (key == "input_grad") {
            const auto open = value.find('[');
            if (open != std::string::npos && value.back() == ']') {
                req.input_grad = parse_input_grad_algo(op, value.substr(0, open));
                req.input_core = parse_corr_algo(op, value.substr(open + 1, value.size() - open - 2));
            } else {
                req.input_grad = parse_input_grad_algo(op, value);
            }
        } else if (key == "weight_grad") {
            req.weight_grad = parse_weight_grad_algo(op, value);
        } else {
            throw std::invalid_argument(msg(op, ": algorithms has an unknown key '", key,
                                            "' (keys: forward, input_grad, weight_grad)"));
        }
    }
    return req;
}

// One layer shape and dtype, planned once: what convext.Conv2dPlan wraps.
class PyConv2dPlan {
public:
    PyConv2dPlan(const char* op, const Conv2dGeometry& g, DType dtype, py::handle algorithms)
        : dtype_(dtype), plan_(make_conv2d_plan(op, g, elem_size(dtype), algo_request(op, algorithms))) {}

    PyConv2dPlan(py::object x_shape, py::object w_shape, py::object stride, py::object padding,
                 py::object dilation, py::object groups, const std::string& dtype,
                 py::object algorithms)
        : PyConv2dPlan("Conv2dPlan",
                       geometry("Conv2dPlan", to_shape(x_shape, "Conv2dPlan", "x_shape", 4),
                                to_shape(w_shape, "Conv2dPlan", "w_shape", 4),
                                conv_params("Conv2dPlan", stride, padding, dilation, groups),
                                "x_shape", "w_shape"),
                       plan_dtype(dtype), algorithms) {}

    const Conv2dGeometry& g() const { return plan_.g; }

    py::array forward(const char* op, py::handle x, py::handle weight, py::handle bias) const {
        py::array xa = as_array(x, op, "x"), wa = as_array(weight, op, "weight");
        check_input(op, "x", xa, g().x_shape());
        check_input(op, "weight", wa, g().w_shape());
        const bool has_bias = !bias.is_none();
        py::array ba;  // note: a default py::array is an empty array, not a null handle
        if (has_bias) {
            ba = as_array(bias, op, "bias");
            require_plan_dtype(op, "bias", ba, dtype_);
            check_bias(op, g(), shape_of(ba));
        }
        return dispatch(dtype_, [&](auto tag) -> py::array {
            using T = decltype(tag);
            auto xc = contiguous<T>(xa, op, "x");
            auto wc = contiguous<T>(wa, op, "weight");
            py::array_t<T, py::array::c_style> bc;
            if (has_bias) bc = contiguous<T>(ba, op, "bias");
            auto y = new_array<T>(op, g().y_shape());
            const T* bp = has_bias ? bc.data() : nullptr;
            T* yp = y.mutable_data();
            without_gil([&] { conv2d_forward<T>(plan_, xc.data(), wc.data(), bp, yp); });
            return y;
        });
    }

    py::array input_grad(const char* op, py::handle grad_out, py::handle weight) const {
        py::array ga = as_array(grad_out, op, "grad_out"), wa = as_array(weight, op, "weight");
        check_grad(op, ga);
        check_input(op, "weight", wa, g().w_shape());
        return dispatch(dtype_, [&](auto tag) -> py::array {
            using T = decltype(tag);
            auto dx = new_array<T>(op, g().x_shape());
            run_input_grad<T>(op, ga, wa, dx.mutable_data());
            return dx;
        });
    }

    py::array weight_grad(const char* op, py::handle grad_out, py::handle x) const {
        py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
        check_grad(op, ga);
        check_input(op, "x", xa, g().x_shape());
        return dispatch(dtype_, [&](auto tag) -> py::array {
            using T = decltype(tag);
            auto dw = new_array<T>(op, g().w_shape());
            run_weight_grad<T>(op, ga, xa, dw.mutable_data(), nullptr);
            return dw;
        });
    }

    py::tuple backward(const char* op, py::handle grad_out, py::handle x, py::handle weight) const {
        py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x"),
                  wa = as_array(weight, op, "weight");
        check_grad(op, ga);
        check_input(op, "x", xa, g().x_shape());
        check_input(op, "weight", wa, g().w_shape());
        return dispatch(dtype_, [&](auto tag) -> py::tuple {
            using T = decltype(tag);
            py::array gc = contiguous<T>(ga, op, "grad_out");  // once for both gradients
            auto dx = new_array<T>(op, g().x_shape());
            auto dw = new_array<T>(op, g().w_shape());
            auto db = new_array<T>(op, {g().K});
            run_input_grad<T>(op, gc, wa, dx.mutable_data());
            run_weight_grad<T>(op, gc, xa, dw.mutable_data(), db.mutable_data());
            return py::make_tuple(dx, dw, db);
        });
    }

    py::dict algorithms() const {
        py::dict d;
        d["forward"] = algo_name(plan_.forward);
        d["input_grad"] = plan_.input_grad_name();
        d["weight_grad"] = algo_name(plan_.weight_grad);
        return d;
    }

    py::tuple output_shape() const { return shape_tuple(g().y_shape()); }
    py::tuple x_shape() const { return shape_tuple(g().x_shape()); }
    py::tuple w_shape() const { return shape_tuple(g().w_shape()); }
    py::str dtype() const { return dtype_ == DType::f32 ? "float32" : "float64"; }

private:
    static py::tuple shape_tuple(const Shape& s) {
        py::tuple t(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) t[i] = s[i];
        return t;
    }

    void check_input(const char* op, const char* name, const py::array& a, const Shape& want) const {
        require_plan_dtype(op, name, a, dtype_);
        if (shape_of(a) != want)
            throw std::invalid_argument(msg(op, ": ", name, " must have shape ", shape_str(want),
                                            " (the plan's), got ", shape_str(shape_of(a))));
    }

    void check_grad(const char* op, const py::array& ga) const {
        require_plan_dtype(op, "grad_out", ga, dtype_);
        check_grad_out(op, g(), shape_of(ga));
    }

    template <class T>
    void run_input_grad(const char* op, const py::array& ga, const py::array& wa, T* dx) const {
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto wc = contiguous<T>(wa, op, "weight");
        without_gil([&] { conv2d_backward_input<T>(plan_, gc.data(), wc.data(), dx); });
    }

    template <class T>
    void run_weight_grad(const char* op, const py::array& ga, const py::array& xa, T* dw,
                         T* db) const {
        auto gc = contiguous<T>(ga, op, "grad_out");
        auto xc = contiguous<T>(xa, op, "x");
        without_gil([&] { conv2d_backward_weight<T>(plan_, gc.data(), xc.data(), dw, db); });
    }

    DType dtype_;
    Conv2dPlan plan_;
};

// The functions: a plan for this call, dtype from the first array.
py::array conv2d(py::object x, py::object weight, py::object bias, py::object stride,
                 py::object padding, py::object dilation, py::object groups) {
    const char* op = "conv2d";
    py::array xa = as_array(x, op, "x"), wa = as_array(weight, op, "weight");
    require_same_dtype(op, "x", xa, "weight", wa);
    const PyConv2dPlan plan(op, geometry(op, shape_of(xa), shape_of(wa),
                                         conv_params(op, stride, padding, dilation, groups)),
                            float_dtype(xa, op, "x"), py::none());
    if (!bias.is_none()) require_same_dtype(op, "x", xa, "bias", as_array(bias, op, "bias"));
    return plan.forward(op, xa, wa, bias);
}

py::array conv2d_input_grad(py::object grad_out, py::object weight, py::object input_shape,
                            py::object stride, py::object padding, py::object dilation,
                            py::object groups) {
    const char* op = "conv2d_input_grad";
    py::array ga = as_array(grad_out, op, "grad_out"), wa = as_array(weight, op, "weight");
    require_same_dtype(op, "grad_out", ga, "weight", wa);
    const PyConv2dPlan plan(op, geometry(op, to_shape(input_shape, op, "input_shape", 4), shape_of(wa),
                                         conv_params(op, stride, padding, dilation, groups),
                                         "input_shape"),
                            float_dtype(ga, op, "grad_out"), py::none());
    return plan.input_grad(op, ga, wa);
}

py::array conv2d_weight_grad(py::object grad_out, py::object x, py::object weight_shape,
                             py::object stride, py::object padding, py::object dilation,
                             py::object groups) {
    const char* op = "conv2d_weight_grad";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    const PyConv2dPlan plan(op, geometry(op, shape_of(xa), to_shape(weight_shape, op, "weight_shape", 4),
                                         conv_params(op, stride, padding, dilation, groups), "x",
                                         "weight_shape"),
                            float_dtype(ga, op, "grad_out"), py::none());
    return plan.weight_grad(op, ga, xa);
}

py::tuple conv2d_backward(py::object grad_out, py::object x, py::object weight, py::object stride,
                          py::object padding, py::object dilation, py::object groups) {
    const char* op = "conv2d_backward";
    py::array ga = as_array(grad_out, op, "grad_out"), xa = as_array(x, op, "x"),
              wa = as_array(weight, op, "weight");
    require_same_dtype(op, "grad_out", ga, "x", xa);
    require_same_dtype(op, "grad_out", ga, "weight", wa);
    const PyConv2dPlan plan(op, geometry(op, shape_of(xa), shape_of(wa),
                                         conv_params(op, stride, padding, dilation, groups)),
                            float_dtype(ga, op, "grad_out"), py::none());
    return plan.backward(op, ga, xa, wa);
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
    py::class_<PyConv2dPlan>(m, "Conv2dPlan")
        .def(py::init<py::object, py::object, py::object, py::object, py::object, py::object,
                      const std::string&, py::object>(),
             "x_shape"_a, "w_shape"_a, "stride"_a = 1, "padding"_a = 0, "dilation"_a = 1,
             "groups"_a = 1, "dtype"_a = "float32", "algorithms"_a = py::none())
        .def("forward", [](const PyConv2dPlan& p, py::object x, py::object w, py::object b) {
                 return p.forward("Conv2dPlan.forward", x, w, b);
             }, "x"_a, "weight"_a, "bias"_a = py::none())
        .def("backward", [](const PyConv2dPlan& p, py::object gy, py::object x, py::object w) {
                 return p.backward("Conv2dPlan.backward", gy, x, w);
             }, "grad_out"_a, "x"_a, "weight"_a)
        .def("input_grad", [](const PyConv2dPlan& p, py::object gy, py::object w) {
                 return p.input_grad("Conv2dPlan.input_grad", gy, w);
             }, "grad_out"_a, "weight"_a)
        .def("weight_grad", [](const PyConv2dPlan& p, py::object gy, py::object x) {
                 return p.weight_grad("Conv2dPlan.weight_grad", gy, x);
             }, "grad_out"_a, "x"_a)
        .def_property_readonly("algorithms", &PyConv2dPlan::algorithms)
        .def_property_readonly("output_shape", &PyConv2dPlan::output_shape)
        .def_property_readonly("x_shape", &PyConv2dPlan::x_shape)
        .def_property_readonly("w_shape", &PyConv2dPlan::w_shape)
        .def_property_readonly("dtype", &PyConv2dPlan::dtype)
        .def_property_readonly("stride", [](const PyConv2dPlan& p) { return py::make_tuple(p.g().stride.h, p.g().stride.w); })
        .def_property_readonly("padding", [](const PyConv2dPlan& p) { return py::make_tuple(p.g().padding.h, p.g().padding.w); })
        .def_property_readonly("dilation", [](const PyConv2dPlan& p) { return py::make_tuple(p.g().dilation.h, p.g().dilation.w); })
        .def_property_readonly("groups", [](const PyConv2dPlan& p) { return p.g().groups; });
}

}  // namespace convext::bind
