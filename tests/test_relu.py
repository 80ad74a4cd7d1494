"""convext.relu / relu_backward against the numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

import convext
from convext import reference as ref

SHAPES = [
    pytest.param((1, 1, 1, 1), id="one_element_4d"),
    pytest.param((2, 3, 5, 7), id="nchw"),
    pytest.param((4, 16, 33, 31), id="medium_nchw"),
    pytest.param((17,), id="vector"),
    pytest.param((3, 5), id="matrix"),
    pytest.param((2, 3, 4, 5, 2), id="five_d"),
]
SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 1.0, -1.0]


def _input(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    n = min(x.size, len(SPECIAL))
    x.reshape(-1)[:n] = SPECIAL[:n]
    if x.size > n:
        x.reshape(-1)[-1] = np.finfo(dtype).tiny / 4  # a subnormal
    return x


@pytest.mark.parametrize("shape", SHAPES)
def test_relu(shape, dtype, rng, snapshot, assert_new_array):
    x = _input(shape, dtype, rng)
    unchanged = snapshot(x)
    y = convext.relu(x)
    unchanged()
    assert_new_array(y, x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, ref.relu(x))  # NaN stays NaN


@pytest.mark.parametrize("shape", SHAPES)
def test_relu_backward(shape, dtype, rng, snapshot, assert_new_array):
    x = _input(shape, dtype, rng)
    gy = rng.standard_normal(shape).astype(dtype)
    gy.reshape(-1)[::5] = np.nan  # NaN gradients are blocked where x <= 0
    unchanged = snapshot(gy, x)
    g = convext.relu_backward(gy, x)
    unchanged()
    assert_new_array(g, gy, x)
    assert g.dtype == dtype and g.shape == x.shape
    np.testing.assert_array_equal(g, ref.relu_backward(gy, x))


def test_relu_special_values(dtype):
    x = np.array(SPECIAL, dtype)
    y = convext.relu(x)
    assert np.isnan(y[2]) and y[3] == np.inf and y[4] == 0 and y[5] == dtype.type(1e-30)
    assert y[0] == 0 and y[1] == 0 and y[6] == 0
    g = convext.relu_backward(np.full_like(x, 2.0), x)
    # 0 where x <= 0 (also -0.0 and -inf); NaN in x lets the gradient through
    np.testing.assert_array_equal(g, np.array([0, 0, 2, 2, 0, 2, 0, 2, 0], dtype))


@pytest.mark.parametrize("which", ["both", "grad_out_only", "x_only"])
def test_relu_any_layout(layout, which, dtype, rng, as_layout, snapshot):
    if layout == "nested_list":
        dtype = np.dtype(np.float64)
    x = _input((2, 3, 5, 4), dtype, rng)
    gy = rng.standard_normal(x.shape).astype(dtype)
    xl = as_layout(x, layout) if which in ("both", "x_only") else x
    gyl = as_layout(gy, layout) if which in ("both", "grad_out_only") else gy
    unchanged = snapshot(xl, gyl)
    np.testing.assert_array_equal(convext.relu(xl), ref.relu(x))
    np.testing.assert_array_equal(convext.relu_backward(gyl, xl), ref.relu_backward(gy, x))
    unchanged()
