// Helpers shared by the binding files: turn Python arguments into checked C++
// values (with the GIL held) and allocate outputs. No maths here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "core/common.hpp"
#include "core/geometry.hpp"
#include "core/parallel.hpp"

namespace convext::bind {

namespace py = pybind11;

enum class DType { f32, f64 };

// obj as an ndarray (array-likes are converted); TypeError if impossible.
py::array as_array(py::handle obj, const char* op, const char* name);
// float32 / float64, else TypeError naming the argument and its dtype.
DType float_dtype(const py::array& a, const char* op, const char* name);
// TypeError unless b has a's dtype.
void require_same_dtype(const char* op, const char* an, const py::array& a, const char* bn,
                        const py::array& b);
Shape shape_of(const py::array& a);

// int (not bool, not float) -> index_t; TypeError / ValueError with the name.
index_t to_index(py::handle obj, const char* op, const char* name);
// int or pair of ints -> Pair. None -> `fallback` when given.
Pair to_pair(py::handle obj, const char* op, const char* name, const Pair* fallback = nullptr);
// A tuple/list of ints of length ndim.
Shape to_shape(py::handle obj, const char* op, const char* name, std::size_t ndim);
bool to_bool(py::handle obj, const char* op, const char* name);

// A C-contiguous, aligned array of T holding a's values; no copy when a
// already is one (an unaligned view, e.g. from a byte buffer, is copied). A
// copy that cannot be made (a zero-stride view standing for terabytes)
// raises MemoryError naming op, the argument and the size; never a null
// array for the caller to read.
// ExtraFlags: py::array::forcecast to accept any dtype numpy can cast to T.
template <class T, int ExtraFlags = 0>
py::array_t<T, py::array::c_style> contiguous(const py::array& a, const char* op = "convext",
                                              const char* name = "an input") {
    using Out = py::array_t<T, py::array::c_style>;
    constexpr int kAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if ((a.flags() & kAligned) && Out::check_(a)) return py::reinterpret_borrow<Out>(a);
    const Shape shape = shape_of(a);
    const index_t bytes = checked_mul(numel(op, shape), index_t(sizeof(T)), op);
    if (bytes > physical_memory_bytes())
        throw alloc_error(msg(op, ": a contiguous copy of ", name, ", shape ", shape_str(shape),
                              ", would take ", bytes, " bytes, more than this machine's ",
                              physical_memory_bytes(), " bytes of memory"));
    auto& api = py::detail::npy_api::get();
    PyObject* copy = api.PyArray_FromAny_(
        a.ptr(), py::dtype::of<T>().release().ptr(), 0, 0,
        py::detail::npy_api::NPY_ARRAY_ENSUREARRAY_ | py::array::c_style | kAligned | ExtraFlags,
        nullptr);
    if (!copy) throw py::error_already_set();  // numpy's MemoryError (or other) as raised
    return py::reinterpret_steal<Out>(copy);
}

// Runs f() with the GIL released, under one ThreadSnapshot (the call's thread
// count, for its scratch and its parallel loops alike). Taking the GIL back
// is not left to a destructor: at interpreter exit CPython ends a daemon
// thread that asks for the GIL with pthread_exit, whose unwinding through a
// noexcept destructor is std::terminate ("terminate called without an
// active exception"). A thread that finishes its call while the interpreter
// is finalizing parks instead (the process is ending; CPython >= 3.14 does
// the same itself).
void reacquire_gil(PyThreadState* state);
template <class F>
void without_gil(F&& f) {
    PyThreadState* state = PyEval_SaveThread();
    try {
        const ThreadSnapshot threads;
        f();
    } catch (...) {
        reacquire_gil(state);
        throw;
    }
    reacquire_gil(state);
}

// A new output array; a refused allocation becomes MemoryError naming the op,
// the shape and the size.
template <class T>
py::array_t<T> new_array(const char* op, const Shape& shape) {
    std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    const index_t bytes = checked_mul(numel(op, shape), index_t(sizeof(T)), op);
    if (bytes > physical_memory_bytes())
        throw alloc_error(msg(op, ": the result, shape ", shape_str(shape), ", would take ", bytes,
                              " bytes, more than this machine's ", physical_memory_bytes(),
                              " bytes of memory"));
    try {
        return py::array_t<T>(dims);
    } catch (py::error_already_set& e) {
        if (!e.matches(PyExc_MemoryError)) throw;
        throw alloc_error(msg(op, ": cannot allocate the result, shape ", shape_str(shape), " (",
                              bytes, " bytes)"));
    }
}

// Call f(T{}) with T = float or double.
template <class F>
decltype(auto) dispatch(DType d, F&& f) {
    if (d == DType::f32) return f(float{});
    return f(double{});
}

}  // namespace convext::bind
