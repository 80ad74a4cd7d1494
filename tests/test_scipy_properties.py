"""Property tests: convext.correlate2d / convolve2d against scipy.signal's.

Every dtype (and mixed pairs) x mode x boundary, random shapes (including the
'valid' swap and kernels larger than in1, which 'wrap'/'symm' extend more than
once), values and fill values. Integer results must be bitwise scipy's,
including where they overflow and wrap; float and complex results agree
within a bound scaled by the correlation of the magnitudes.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

scipy_signal = pytest.importorskip("scipy.signal")
import convext  # noqa: E402

INTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
DTYPES = [(d, d) for d in INTS + ["float32", "float64", "longdouble", "complex64",
                                   "complex128", "clongdouble", "bool"]] + [
    ("bool", "int16"), ("int8", "uint8"), ("int64", "uint64"), ("float32", "int16"),
    ("uint8", "float64"), ("float32", "complex128"), ("int32", "complex64"),
    ("complex64", "float64"),
]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]


def _elements(dtype: np.dtype[Any], small: bool) -> st.SearchStrategy[Any]:
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if small:
            return st.integers(max(info.min, -9), min(info.max, 9))
        return st.integers(int(info.min), int(info.max))
    real = st.floats(-100, 100, width=32 if dtype in (np.float32, np.complex64) else 64)
    if dtype.kind == "c":
        return st.builds(complex, real, real)
    return real


@st.composite
def cases(draw: Any, d1: str, d2: str) -> Any:
    small = draw(st.booleans())  # small values: the float64 path; full range: the uint64 one
    arrays = []
    for d in (d1, d2):
        dt = np.dtype(d)
        shape = draw(st.tuples(st.integers(1, 6), st.integers(1, 6)))
        gen = dt if dt != np.longdouble and dt != np.clongdouble else (
            np.dtype(np.float64) if dt.kind == "f" else np.dtype(np.complex128))
        a = draw(hnp.arrays(gen, shape, elements=_elements(gen, small)))
        arrays.append(a.astype(dt))
    fill = draw(st.sampled_from([0, 1, -3, 2.5, 1 + 2j]))
    return arrays[0], arrays[1], fill


def _call(fn: Any, *args: Any) -> Any:
    try:
        with warnings.catch_warnings():  # scipy warns on its way to a complex-fill error
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            return fn(*args)
    except ValueError as e:  # convext's dtype error is a TypeError and a ValueError
        return e


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("d1, d2", DTYPES, ids=[f"{a}-{b}" if a != b else a for a, b in DTYPES])
@settings(max_examples=12)
@given(data=st.data())
def test_matches_scipy(d1, d2, mode, boundary, data):
    in1, in2, fill = data.draw(cases(d1, d2))
    for name in ("correlate2d", "convolve2d"):
        args = (in1, in2, mode, boundary, fill)
        theirs = _call(getattr(scipy_signal, name), *args)
        ours = _call(getattr(convext, name), *args)
        if isinstance(theirs, Exception):
            assert isinstance(ours, ValueError), (name, theirs, ours)
            continue
        assert isinstance(ours, np.ndarray), (name, ours)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
        if ours.dtype.kind in "iu":
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
            continue
        # |error| <= c * eps * terms * (|in1| correlated with |in2|), per element
        mag = [np.abs(np.real(x).astype(np.float64)) + np.abs(np.imag(x).astype(np.float64))
               for x in (in1, in2)]
        if boundary == "fill":
            fmag = abs(np.real(fill)) + (abs(np.imag(fill)) if ours.dtype.kind == "c" else 0)
        else:
            fmag = 0
        bound = getattr(scipy_signal, name)(mag[0], mag[1], mode, boundary, fmag)
        eps = np.finfo(ours.dtype).eps
        np.testing.assert_array_less(np.abs(ours.astype(np.clongdouble) - theirs),
                                     8 * eps * (in2.size + 2) * bound + 1e-30, err_msg=name)
