#include "bindings/util.hpp"

#include <chrono>
#include <climits>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace convext::bind {

void reacquire_gil(PyThreadState* state) {
#if PY_VERSION_HEX >= 0x030D0000
    const bool finalizing = Py_IsFinalizing();
#else
    const bool finalizing = _Py_IsFinalizing();
#endif
    if (finalizing)
        for (;;) {
#if defined(__unix__) || defined(__APPLE__)
            pause();
#else
            std::this_thread::sleep_for(std::chrono::hours(1));
#endif
        }
    PyEval_RestoreThread(state);
}

namespace {

// The Python error set now is one a failed conversion of a bad argument
// raises (TypeError, ValueError); anything else (KeyboardInterrupt,
// MemoryError, RecursionError, an error of the argument's own __index__ or
// __array__) must reach the caller as raised.
bool conversion_error_pending() {
    return PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError);
}

}  // namespace

py::array as_array(py::handle obj, const char* op, const char* name) {
    if (obj.is_none()) throw py::type_error(msg(op, ": ", name, " must be an array, got None"));
    auto& api = py::detail::npy_api::get();
    PyObject* raw =
        api.PyArray_FromAny_(obj.ptr(), nullptr, 0, 0, py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_, nullptr);
    if (raw) return py::reinterpret_steal<py::array>(raw);
    if (!conversion_error_pending()) throw py::error_already_set();
    PyErr_Clear();
    throw py::type_error(msg(op, ": ", name, " must be an array or array-like, got ",
                                 std::string(py::str(py::type::of(obj).attr("__name__")))));
}

DType float_dtype(const py::array& a, const char* op, const char* name) {
    const py::dtype dt = a.dtype();
    if (dt.kind() == 'f' && dt.itemsize() == 4) return DType::f32;
    if (dt.kind() == 'f' && dt.itemsize() == 8) return DType::f64;
    throw py::type_error(msg(op, ": ", name, " has dtype ", std::string(py::str(dt)),
                             "; convext computes in float32 and float64 only"));
}

void require_same_dtype(const char* op, const char* an, const py::array& a, const char* bn,
                        const py::array& b) {
    const DType da = float_dtype(a, op, an), db = float_dtype(b, op, bn);
    if (da != db)
        throw py::type_error(msg(op, ": ", an, " is ", std::string(py::str(a.dtype())), " but ",
                                 bn, " is ", std::string(py::str(b.dtype())),
                                 "; pass arrays of one dtype"));
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

index_t to_index(py::handle obj, const char* op, const char* name) {
    // Python ints and numpy integer scalars (anything with __index__), not bool.
    auto type_error = [&] {
        return py::type_error(msg(op, ": ", name, " must be an int, got ",
                                  std::string(py::repr(obj)), " of type ",
                                  std::string(py::str(py::type::of(obj).attr("__name__")))));
    };
    if (PyBool_Check(obj.ptr()) || py::isinstance(obj, py::module_::import("numpy").attr("bool_")) ||
        !PyIndex_Check(obj.ptr()))
        throw type_error();
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
    if (!as_int) {
        if (!conversion_error_pending()) throw py::error_already_set();
        PyErr_Clear();
        throw type_error();
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(as_int.ptr(), &overflow);
    if (overflow != 0)
        throw std::invalid_argument(
            msg(op, ": ", name, " = ", std::string(py::repr(obj)), " does not fit in 64 bits"));
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    return static_cast<index_t>(v);
}

Pair to_pair(py::handle obj, const char* op, const char* name, const Pair* fallback) {
    if (obj.is_none() && fallback) return *fallback;
    const bool is_array = py::isinstance<py::array>(obj) && py::array(py::reinterpret_borrow<py::array>(obj)).ndim() > 0;
    if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj) || is_array) {
        py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
        if (seq.size() != 1 && seq.size() != 2)
            throw std::invalid_argument(msg(op, ": ", name,
                                            " must be an int or a pair of ints, got ",
                                            std::string(py::repr(obj))));
        // (v,) means (v, v), as in PyTorch
        return {to_index(seq[0], op, name), to_index(seq[seq.size() - 1], op, name)};
    }
    const index_t v = to_index(obj, op, name);
    return {v, v};
}

Shape to_shape(py::handle obj, const char* op, const char* name, std::size_t ndim) {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
        throw py::type_error(msg(op, ": ", name, " must be a tuple of ", ndim, " ints, got ",
                                 std::string(py::repr(obj))));
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != ndim)
        throw std::invalid_argument(msg(op, ": ", name, " must have ", ndim, " entries, got ",
                                        std::string(py::repr(obj))));
    Shape s;
    for (py::handle item : seq) s.push_back(to_index(item, op, name));
    return s;
}

bool to_bool(py::handle obj, const char* op, const char* name) {
    if (PyBool_Check(obj.ptr()) || py::isinstance(obj, py::module_::import("numpy").attr("bool_")))
        return PyObject_IsTrue(obj.ptr()) == 1;
    throw py::type_error(msg(op, ": ", name, " must be a bool, got ", std::string(py::repr(obj))));
}

}  // namespace convext::bind
