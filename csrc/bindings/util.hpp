// Helpers shared by the binding files: turn Python arguments into checked C++
// values (with the GIL held) and allocate outputs. No maths here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "core/common.hpp"
#include "core/geometry.hpp"

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
// already is one (an unaligned view, e.g. from a byte buffer, is copied).
template <class T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        return py::array_t<T, py::array::c_style>::ensure(a.attr("copy")());
    return py::array_t<T, py::array::c_style>::ensure(a);
}

// Bytes of physical memory: no single result may ask for more.
index_t physical_memory_bytes();

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
