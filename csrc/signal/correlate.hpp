// 2-D correlation and convolution of single arrays (scipy.signal's
// correlate2d / convolve2d with zero fill), and the 180-degree rotation that
// turns one into the other: convolve(a, b) = correlate(a, rot180(b)).
#pragma once

#include "core/geometry.hpp"

namespace convext {

// out has shape (g.Ho, g.Wo); in1/in2 as given by the caller (the geometry
// records whether 'valid' mode swapped them).
template <class T>
void correlate2d(const Correlate2dGeometry& g, const T* in1, const T* in2, T* out);

template <class T>
void convolve2d(const Correlate2dGeometry& g, const T* in1, const T* in2, T* out);

// 'valid' correlation of a single (already padded) image, tap by tap in T's
// own arithmetic: out[i, j] = sum_{r, s} x[i + r, j + s] * k[r, s], summed in
// the order r, s for every output (so bitwise identical for any thread
// count). g: a 'valid'-mode geometry (H >= R, W >= S, no swap). For the
// types the GEMM paths do not cover: std::uint64_t (exact integer results
// modulo 2^64, which is what scipy's integer loops compute before wrapping to
// the result dtype) and long double.
template <class T>
void correlate2d_valid_direct(const Correlate2dGeometry& g, const T* x, const T* k, T* out);

// Rotate each trailing R x S plane of `planes` planes by 180 degrees.
template <class T>
void rot180(index_t planes, index_t R, index_t S, const T* w, T* out);

}  // namespace convext
