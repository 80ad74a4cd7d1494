"""convext.correlate2d / convolve2d / rot180 against the reference and scipy."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import convext
from convext import reference as ref

SHAPES = [
    pytest.param((5, 6), (3, 2), id="in1_larger"),
    pytest.param((4, 4), (4, 4), id="kernel_eq_input"),
    pytest.param((1, 1), (1, 1), id="one_by_one"),
    pytest.param((1, 1), (3, 2), id="one_by_one_in1"),
    pytest.param((6, 7), (1, 1), id="one_by_one_kernel"),
    pytest.param((1, 9), (1, 4), id="single_row"),
    pytest.param((7, 1), (3, 1), id="single_col"),
    pytest.param((2, 3), (5, 6), id="in2_larger_swapped"),
    pytest.param((3, 4), (3, 6), id="in2_wider_equal_height"),
    pytest.param((3, 5), (4, 2), id="neither_larger"),
    pytest.param((8, 9), (5, 4), id="odd_even_kernel"),
    pytest.param((9, 10), (4, 6), id="even_kernel"),
    pytest.param((40, 37), (7, 5), id="medium"),
    pytest.param((3, 50), (2, 9), id="wide"),
]
MODES = ["valid", "full", "same"]
OPS = ["correlate2d", "convolve2d"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape1, shape2", SHAPES)
@pytest.mark.parametrize("name", OPS)
def test_correlate(name, shape1, shape2, mode, dtype, rng, assert_close, snapshot,
                   assert_new_array):
    a = rng.standard_normal(shape1).astype(dtype)
    b = rng.standard_normal(shape2).astype(dtype)
    ours = getattr(convext, name)
    try:
        expected = getattr(ref, name)(a, b, mode)
    except ValueError:
        with pytest.raises(ValueError, match="valid"):
            ours(a, b, mode)
        return
    unchanged = snapshot(a, b)
    got = ours(a, b, mode=mode)
    unchanged()
    assert_new_array(got, a, b)
    assert_close(got, expected, reduction=min(a.size, b.size))
    # and scipy itself, for the shape and dtype contract
    theirs = getattr(scipy.signal, name)(a, b, mode)
    assert got.shape == theirs.shape and got.dtype == theirs.dtype


@pytest.mark.parametrize("name", OPS)
def test_correlate_defaults_are_scipys(name, rng):
    """mode="full", boundary="fill", fillvalue=0, as scipy.signal (convext <= 0.1 had "valid")."""
    a, b = rng.standard_normal((6, 5)), rng.standard_normal((2, 3))
    np.testing.assert_array_equal(getattr(convext, name)(a, b),
                                  getattr(convext, name)(a, b, "full", "fill", 0))
    assert getattr(convext, name)(a, b).shape == (7, 7)
    np.testing.assert_allclose(getattr(convext, name)(a, b), getattr(scipy.signal, name)(a, b),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", OPS)
def test_correlate_nan_inf_propagate(name):
    a = np.zeros((5, 5))
    a[1, 1] = np.nan
    a[4, 4] = np.inf
    b = np.ones((2, 2))
    for mode in MODES:
        got = getattr(convext, name)(a, b, mode)
        expected = getattr(ref, name)(a, b, mode)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which", ["both", "in1_only", "in2_only"])
@pytest.mark.parametrize("name", OPS)
def test_correlate_any_layout(name, which, mode, layout, dtype, rng, as_layout, assert_close,
                              snapshot):
    if layout == "nested_list":
        dtype = np.dtype(np.float64)
    a = rng.standard_normal((7, 6)).astype(dtype)
    b = rng.standard_normal((3, 4)).astype(dtype)
    al = as_layout(a, layout) if which in ("both", "in1_only") else a
    bl = as_layout(b, layout) if which in ("both", "in2_only") else b
    unchanged = snapshot(al, bl)
    got = getattr(convext, name)(al, bl, mode)
    unchanged()
    assert_close(got, getattr(ref, name)(a, b, mode), reduction=12)


def test_correlate_transposed_views(rng, assert_close):
    a = rng.standard_normal((9, 7)).T
    b = rng.standard_normal((4, 3))[::2, ::-1]
    for mode in MODES:
        assert_close(convext.correlate2d(a, b, mode), ref.correlate2d(a, b, mode), reduction=6)
        assert_close(convext.convolve2d(b, a, mode), scipy.signal.convolve2d(b, a, mode),
                     reduction=6)


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (2, 3, 4), (2, 1, 3, 5), (2, 2, 1, 3, 4)],
                         ids=["2d_one", "2d", "3d", "4d", "5d"])
def test_rot180(shape, dtype, rng, layout, as_layout, snapshot, assert_new_array):
    if layout == "nested_list":
        dtype = np.dtype(np.float64)
    w = rng.standard_normal(shape).astype(dtype)
    wl = as_layout(w, layout)
    unchanged = snapshot(wl)
    r = convext.rot180(wl)
    unchanged()
    assert_new_array(r, wl)
    assert r.dtype == dtype and r.shape == w.shape
    np.testing.assert_array_equal(r, w[..., ::-1, ::-1])
    np.testing.assert_array_equal(r, ref.rot180(w))
    np.testing.assert_array_equal(convext.rot180(r), w)


def _shift_add_int64(x, k):
    """'valid' correlation in numpy int64 (wrapping, exact modulo 2**64)."""
    R, S = k.shape
    Ho, Wo = x.shape[0] - R + 1, x.shape[1] - S + 1
    out = np.zeros((Ho, Wo), np.int64)
    for r in range(R):
        for s in range(S):
            out += x[r:r + Ho, s:s + Wo] * k[r, s]
    return out


@pytest.mark.parametrize("magnitude", [2**20, 2**24 - 1, 2**40, 2**62],
                         ids=["float64_path", "float64_path_at_bound", "uint64_path",
                              "uint64_path_wrapping"])
@pytest.mark.parametrize("name", OPS)
def test_integer_results_exact(name, magnitude, rng):
    """int64 results are exact (and wrap mod 2**64 as scipy's) on either path.

    2**24 - 1 with a 5 x 5 kernel of values up to 2**24 - 1: the largest
    partial sums (25 * (2**24 - 1)**2 < 2**53) are integers float64 holds only
    without rounding -- a path that rounds (float32, Winograd) fails here.
    """
    x = rng.integers(-magnitude, magnitude, (9, 11), dtype=np.int64, endpoint=True)
    k = rng.integers(-magnitude, magnitude, (5, 5), dtype=np.int64, endpoint=True)
    x[0, 0], k[0, 0] = magnitude, magnitude
    kk = k if name == "correlate2d" else k[::-1, ::-1]
    got = getattr(convext, name)(x, k, "full")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _shift_add_int64(np.pad(x, 4), kk))
    np.testing.assert_array_equal(got, getattr(scipy.signal, name)(x, k, "full"))


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("name", OPS)
def test_complex_and_boundaries_match_scipy(name, boundary, rng):
    a = rng.standard_normal((13, 9)) + 1j * rng.standard_normal((13, 9))
    b = rng.standard_normal((4, 15)) + 1j * rng.standard_normal((4, 15))
    for mode in MODES[1:]:
        got = getattr(convext, name)(a, b, mode, boundary, 0.5 - 2j)
        theirs = getattr(scipy.signal, name)(a, b, mode, boundary, 0.5 - 2j)
        assert got.dtype == theirs.dtype and got.flags.c_contiguous
        np.testing.assert_allclose(got, theirs, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("kind", ["int32", "int64_wide", "complex128", "float32_symm"])
@pytest.mark.parametrize("name", OPS)
def test_new_paths_any_layout(name, kind, layout, rng, as_layout, snapshot, assert_new_array):
    """Integer, complex and symm inputs in every memory layout: scipy's result, inputs kept."""
    if kind == "int32":
        a, b = rng.integers(-300, 300, (7, 6)).astype(np.int32), rng.integers(-9, 9, (3, 4))
    elif kind == "int64_wide":  # the uint64 tap-by-tap path
        a, b = rng.integers(-2**60, 2**60, (7, 6)), rng.integers(-2**10, 2**10, (3, 4))
    elif kind == "complex128":
        a = rng.standard_normal((7, 6)) + 1j * rng.standard_normal((7, 6))
        b = rng.standard_normal((3, 4)) - 1j * rng.standard_normal((3, 4))
    else:
        a, b = rng.standard_normal((7, 6)).astype(np.float32), rng.standard_normal((3, 4))
    boundary = "symm" if kind == "float32_symm" else "fill"
    if layout == "nested_list" and kind != "int64_wide":
        a, b = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), b.astype(a.dtype)
    al, bl = as_layout(a, layout), as_layout(b, layout)
    unchanged = snapshot(al, bl)
    for mode in MODES:
        got = getattr(convext, name)(al, bl, mode, boundary, 2)
        theirs = getattr(scipy.signal, name)(a, b, mode, boundary, 2)
        unchanged()
        assert_new_array(got, al, bl)
        assert got.dtype == theirs.dtype and got.shape == theirs.shape
        if got.dtype.kind in "iu":
            np.testing.assert_array_equal(got, theirs)
        else:
            np.testing.assert_allclose(got, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("boundary, np_mode", [("wrap", "wrap"), ("symm", "symmetric")])
def test_extension_is_numpys_pad(boundary, np_mode, rng):
    """in1's wrap / symm extension (own fast path for pads <= in1, np.pad beyond) is np.pad's."""
    from convext.functional import _extend

    for H, W in [(1, 1), (1, 4), (3, 2), (4, 4)]:
        x = rng.standard_normal((H, W))
        for t, b, l, r in np.ndindex(H + 2, H + 2, W + 2, W + 2):
            pads = ((t, b), (l, r))
            np.testing.assert_array_equal(_extend(x, pads, boundary, 0),
                                          np.pad(x, pads, mode=np_mode), err_msg=str(pads))


def test_new_paths_bitwise_for_any_thread_count(rng):
    """The uint64 / long double tap-by-tap kernel and the complex path: 1 thread == 3 threads."""
    cases = [(rng.integers(-2**60, 2**60, (70, 300)), rng.integers(-9, 9, (5, 7))),
             (rng.standard_normal((70, 300)).astype(np.longdouble),
              rng.standard_normal((5, 7)).astype(np.longdouble)),
             (rng.standard_normal((70, 300)) + 1j, rng.standard_normal((5, 7)) - 2j)]
    before = convext.get_num_threads()
    try:
        for a, b in cases:
            results = []
            for n in (1, 3):
                convext.set_num_threads(n)
                results.append(convext.correlate2d(a, b, "same", "symm"))
            assert results[0].tobytes() == results[1].tobytes(), a.dtype
    finally:
        convext.set_num_threads(before)
