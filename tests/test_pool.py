"""convext max/avg pooling and their gradients against the numpy reference."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convext
from convext import reference as ref

POOL_CASES = [
    # id, x shape, kernel_size, stride, padding, dilation, ceil_mode
    ("basic_2x2", (2, 3, 6, 8), 2, None, 0, 1, False),
    ("kernel_eq_input", (1, 2, 5, 4), (5, 4), None, 0, 1, False),
    ("kernel_eq_padded_input", (1, 2, 3, 2), (5, 4), 1, (1, 1), 1, False),
    ("one_by_one_input", (1, 1, 1, 1), 1, None, 0, 1, False),
    ("one_by_one_input_padded", (2, 1, 1, 1), 2, 1, 1, 1, False),
    ("kernel1_stride1", (2, 2, 3, 4), 1, 1, 0, 1, False),
    ("kernel1_stride2", (1, 2, 5, 6), 1, 2, 0, 1, True),
    ("overlapping_padded", (2, 2, 7, 7), 3, 1, 1, 1, False),
    ("stride_gt_kernel", (1, 2, 10, 9), 2, 3, 0, 1, False),
    ("stride_gt_input", (1, 2, 3, 3), 2, 4, 0, 1, True),
    ("non_square", (2, 3, 9, 6), (3, 2), (2, 1), (1, 0), 1, False),
    ("floor_drops_tail", (1, 2, 7, 8), 3, 2, 0, 1, False),
    ("ceil_mode", (1, 2, 7, 7), 3, 2, 0, 1, True),
    ("ceil_mode_padded", (1, 2, 8, 5), (3, 2), 2, 1, 1, True),
    ("ceil_mode_last_window_dropped", (1, 1, 5, 5), 2, 2, 1, 1, True),
    ("ceil_mode_stride_gt_kernel", (1, 2, 10, 8), 2, 3, 1, 1, True),
    ("padding_half_kernel", (1, 1, 4, 4), (4, 2), 1, (2, 1), 1, False),
    ("dilation", (1, 2, 9, 9), 3, 1, 1, 2, False),
    ("dilation_ceil_non_square", (2, 1, 10, 7), (3, 2), (2, 3), 1, (2, 1), True),
    ("wide_row", (1, 3, 1, 33), (1, 3), (1, 2), (0, 1), 1, False),
    ("medium", (4, 16, 24, 22), 3, 2, 1, 1, False),
    ("medium_2x2", (4, 16, 32, 32), 2, None, 0, 1, False),
]
POOL_IDS = [c[0] for c in POOL_CASES]
AVG_CASES = [c for c in POOL_CASES if c[5] == 1]
AVG_IDS = [c[0] for c in AVG_CASES]
VALUES = ["random", "ties", "nan", "inf"]


def _unpack(case):
    _, xs, k, s, p, d, ceil = case
    return xs, dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


def _avg_unpack(case):
    xs, kw = _unpack(case)
    kw.pop("dilation")
    return xs, kw


def _kernel_area(kw):
    return int(np.prod(np.broadcast_to(kw["kernel_size"], 2)))


def _values(kind, shape, dtype, rng):
    if kind == "random":
        x = rng.standard_normal(shape)
    elif kind == "ties":
        x = rng.integers(0, 3, shape).astype(np.float64)
    elif kind == "nan":
        x = rng.integers(-2, 3, shape).astype(np.float64)
        x[rng.random(shape) < 0.3] = np.nan
    else:  # windows of only -inf, +inf among finite values
        x = rng.choice([-np.inf, np.inf, 0.0, -1.0], size=shape, p=[0.6, 0.1, 0.2, 0.1])
    return x.astype(dtype)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d(case, values, dtype, rng, assert_close, snapshot, assert_new_array):
    xs, kw = _unpack(case)
    x = _values(values, xs, dtype, rng)
    ey, eidx = ref.max_pool2d(x, return_indices=True, **kw)
    unchanged = snapshot(x)

    y = convext.max_pool2d(x, **kw)
    unchanged()
    assert_new_array(y, x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ey)

    y2, idx = convext.max_pool2d(x, return_indices=True, **kw)
    unchanged()
    assert_new_array(idx, x)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(y2, ey)
    np.testing.assert_array_equal(idx, eidx)

    gy = rng.standard_normal(ey.shape).astype(dtype)
    expected = ref.max_pool2d_backward(gy, x, **kw)
    unchanged = snapshot(x, gy, idx)
    gx = convext.max_pool2d_backward(gy, x, **kw)
    unchanged()
    assert_new_array(gx, x, gy)
    assert_close(gx, expected, reduction=_kernel_area(kw))
    gx_i = convext.max_pool2d_backward(gy, x, indices=idx, **kw)
    unchanged()
    assert_close(gx_i, expected, reduction=_kernel_area(kw))


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", AVG_CASES, ids=AVG_IDS)
def test_avg_pool2d(case, count_include_pad, dtype, rng, assert_close, snapshot,
                    assert_new_array):
    xs, kw = _avg_unpack(case)
    kw["count_include_pad"] = count_include_pad
    x = rng.standard_normal(xs).astype(dtype)
    unchanged = snapshot(x)
    y = convext.avg_pool2d(x, **kw)
    unchanged()
    assert_new_array(y, x)
    area = _kernel_area(kw)
    assert_close(y, ref.avg_pool2d(x, **kw), reduction=area)

    gy = rng.standard_normal(y.shape).astype(dtype)
    unchanged = snapshot(gy)
    gx = convext.avg_pool2d_backward(gy, xs, **kw)
    unchanged()
    assert_new_array(gx, gy)
    assert_close(gx, ref.avg_pool2d_backward(gy, xs, **kw), reduction=area)


def test_avg_pool2d_nan_inf_propagate(dtype):
    x = np.zeros((1, 1, 4, 4), dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 3, 3] = np.inf
    y = convext.avg_pool2d(x, 2)
    expected = ref.avg_pool2d(x, 2)
    np.testing.assert_array_equal(y, expected)  # NaN == NaN in assert_array_equal


def test_max_pool2d_tie_rules_explicit():
    # first maximum in row-major scan wins ties
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    y, i = convext.max_pool2d(x, 2, return_indices=True)
    assert y.item() == 3.0 and i.item() == 1
    # the last NaN in scan order wins
    x = np.array([[[[np.nan, 3.0], [np.nan, 2.0]]]])
    y, i = convext.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y.item()) and i.item() == 2
    # a window of -inf reports its first in-bounds element, padding never wins
    x = np.full((1, 1, 2, 2), -np.inf)
    y, i = convext.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(i[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])
    y = convext.max_pool2d(-np.ones((1, 1, 3, 3)), 3, stride=1, padding=1)
    assert np.all(y == -1)


def test_pool_stride_defaults_to_kernel(rng):
    x = rng.standard_normal((1, 2, 9, 8))
    np.testing.assert_array_equal(convext.max_pool2d(x, (3, 2)),
                                  convext.max_pool2d(x, (3, 2), stride=(3, 2)))
    np.testing.assert_array_equal(convext.max_pool2d(x, (3, 2), stride=None),
                                  ref.max_pool2d(x, (3, 2)))
    np.testing.assert_allclose(convext.avg_pool2d(x, (3, 2)), ref.avg_pool2d(x, (3, 2)),
                               rtol=1e-12)
    gy = rng.standard_normal((1, 2, 3, 4))
    np.testing.assert_allclose(convext.avg_pool2d_backward(gy, x.shape, (3, 2)),
                               ref.avg_pool2d_backward(gy, x.shape, (3, 2)), rtol=1e-12)


def test_max_pool2d_indices_round_trip(dtype, rng, assert_close):
    """Indices from either implementation drive either backward identically."""
    kw = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)
    x = _values("ties", (2, 3, 9, 8), dtype, rng)
    _, idx = convext.max_pool2d(x, return_indices=True, **kw)
    _, ridx = ref.max_pool2d(x, return_indices=True, **kw)
    np.testing.assert_array_equal(idx, ridx)
    gy = rng.standard_normal(idx.shape).astype(dtype)
    expected = ref.max_pool2d_backward(gy, x, indices=ridx, **kw)
    assert_close(convext.max_pool2d_backward(gy, x, indices=idx, **kw), expected, reduction=9)
    # indices need not be the argmax: backward scatters wherever they point
    other = np.zeros_like(idx)
    got = convext.max_pool2d_backward(gy, x, indices=other, **kw)
    expected = np.zeros(x.shape, np.float64)
    expected[:, :, 0, 0] = gy.astype(np.float64).sum(axis=(2, 3))
    assert_close(got, expected.astype(dtype), reduction=gy[0, 0].size)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_pool_any_layout(op, layout, dtype, rng, as_layout, assert_close, snapshot):
    if layout == "nested_list":
        dtype = np.dtype(np.float64)
    kw = dict(kernel_size=(3, 2), stride=(2, 1), padding=1, ceil_mode=True)
    x = _values("ties" if op == "max" else "random", (2, 3, 9, 7), dtype, rng)
    xl = as_layout(x, layout)
    if op == "max":
        ey, eidx = ref.max_pool2d(x, return_indices=True, **kw)
        gy = rng.standard_normal(ey.shape).astype(dtype)
        gyl, idxl = as_layout(gy, layout), as_layout(eidx, layout)
        unchanged = snapshot(xl, gyl, idxl)
        y, idx = convext.max_pool2d(xl, return_indices=True, **kw)
        np.testing.assert_array_equal(y, ey)
        np.testing.assert_array_equal(idx, eidx)
        expected = ref.max_pool2d_backward(gy, x, **kw)
        assert_close(convext.max_pool2d_backward(gyl, xl, **kw), expected, reduction=6)
        assert_close(convext.max_pool2d_backward(gyl, xl, indices=idxl, **kw), expected,
                     reduction=6)
    else:
        ey = ref.avg_pool2d(x, **kw)
        gy = rng.standard_normal(ey.shape).astype(dtype)
        gyl = as_layout(gy, layout)
        unchanged = snapshot(xl, gyl)
        assert_close(convext.avg_pool2d(xl, **kw), ey, reduction=6)
        assert_close(convext.avg_pool2d_backward(gyl, x.shape, **kw),
                     ref.avg_pool2d_backward(gy, x.shape, **kw), reduction=6)
    unchanged()


# H = 2, kernel 2, padding 1, dilation 3: the first window's taps are rows -1
# and 2, both outside the input. ATen reports -inf with an index past the
# plane; no input element may receive that window's gradient.
_EMPTY_WINDOW = dict(kernel_size=(2, 1), stride=1, padding=(1, 0), dilation=(3, 1))


def test_max_pool2d_window_without_input_forward(dtype):
    x = np.arange(6, dtype=dtype).reshape(1, 1, 2, 3)
    y, idx = convext.max_pool2d(x, return_indices=True, **_EMPTY_WINDOW)
    ey, eidx = ref.max_pool2d(x, return_indices=True, **_EMPTY_WINDOW)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(idx, eidx)


def test_max_pool2d_window_without_input_backward():
    """Run in a subprocess: an out-of-bounds scatter must not take pytest down."""
    code = textwrap.dedent(f"""
        import numpy as np, convext
        from convext import reference as ref
        kw = {_EMPTY_WINDOW!r}
        x = np.arange(6.0).reshape(1, 1, 2, 3)
        gy = np.ones(ref.max_pool2d(x, **kw).shape)
        got = convext.max_pool2d_backward(gy, x, **kw)
        np.testing.assert_array_equal(got, ref.max_pool2d_backward(gy, x, **kw))
        print("ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(convext.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
