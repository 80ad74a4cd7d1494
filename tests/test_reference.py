"""The numpy oracle ``convext.reference`` against scipy.signal and torch.

Everything else is tested against the reference, so the reference itself is
checked here against two independent implementations.  These tests do not
need the C++ engine.
"""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

torch = pytest.importorskip("torch")
F = torch.nn.functional

try:
    from convext import reference as ref
except ImportError:  # engine not built: the oracle does not need it
    _path = Path(__file__).resolve().parents[1] / "python" / "convext" / "reference.py"
    _spec = importlib.util.spec_from_file_location("convext_reference_standalone", _path)
    ref = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(ref)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# ----------------------------------------------------------------------------
# correlate2d / convolve2d vs scipy.signal
# ----------------------------------------------------------------------------
CORR_SHAPES = [
    pytest.param((5, 6), (3, 2), id="in1_larger"),
    pytest.param((4, 4), (4, 4), id="kernel_eq_input"),
    pytest.param((1, 1), (1, 1), id="one_by_one"),
    pytest.param((1, 7), (1, 3), id="single_row"),
    pytest.param((6, 1), (2, 1), id="single_col"),
    pytest.param((2, 3), (5, 6), id="in2_larger_swapped"),
    pytest.param((3, 5), (4, 2), id="neither_larger"),
    pytest.param((7, 4), (2, 4), id="equal_width"),
    pytest.param((8, 9), (5, 4), id="odd_even_kernel"),
    pytest.param((9, 10), (4, 6), id="even_kernel"),
]


@pytest.mark.parametrize("mode", ["valid", "full", "same"])
@pytest.mark.parametrize("shape1, shape2", CORR_SHAPES)
@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_correlate_vs_scipy(name, shape1, shape2, mode, dtype, rng, assert_close):
    a = rng.standard_normal(shape1).astype(dtype)
    b = rng.standard_normal(shape2).astype(dtype)
    ours = getattr(ref, name)
    theirs = getattr(scipy.signal, name)
    try:
        expected = theirs(a, b, mode=mode)
    except ValueError:
        with pytest.raises(ValueError, match="valid"):
            ours(a, b, mode=mode)
        return
    got = ours(a, b, mode=mode)
    assert_close(got, expected, reduction=b.size)


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_correlate_default_mode_is_valid(name, rng):
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((2, 3))
    assert getattr(ref, name)(a, b).shape == (4, 4)


def test_correlate_nan_propagates():
    a = np.ones((4, 4))
    a[1, 1] = np.nan
    out = ref.correlate2d(a, np.ones((2, 2)), "valid")
    expected = scipy.signal.correlate2d(a, np.ones((2, 2)), "valid")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))


def test_correlate_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        ref.correlate2d(np.ones((3, 3)), np.ones((2, 2)), "bogus")


def test_rot180():
    w = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    r = ref.rot180(w)
    np.testing.assert_array_equal(r, np.flip(w, axis=(-2, -1)))
    assert not np.shares_memory(r, w)
    np.testing.assert_array_equal(ref.rot180(ref.rot180(w)), w)
    with pytest.raises(ValueError):
        ref.rot180(np.ones(3))


# ----------------------------------------------------------------------------
# conv2d vs torch
# ----------------------------------------------------------------------------
CONV_CASES = [
    # id, x shape, weight shape, stride, padding, dilation, groups
    ("basic", (2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ("one_by_one_input", (1, 1, 1, 1), (1, 1, 1, 1), 1, 0, 1, 1),
    ("one_by_one_kernel", (2, 5, 4, 3), (3, 5, 1, 1), 1, 0, 1, 1),
    ("kernel_eq_input", (2, 2, 5, 4), (3, 2, 5, 4), 1, 0, 1, 1),
    ("kernel_eq_padded_input", (1, 2, 3, 2), (2, 2, 5, 4), 1, 1, 1, 1),
    ("non_square", (2, 3, 9, 5), (2, 3, 2, 4), (2, 1), (1, 0), 1, 1),
    ("stride_gt_kernel", (2, 2, 9, 10), (3, 2, 2, 2), 3, 0, 1, 1),
    ("stride_skips_tail", (1, 2, 8, 9), (2, 2, 3, 3), 2, 0, 1, 1),
    ("padding_gt_kernel", (1, 2, 3, 3), (2, 2, 2, 2), 1, 3, 1, 1),
    ("dilation", (2, 2, 9, 8), (3, 2, 3, 2), 1, 0, (2, 3), 1),
    ("all_params", (2, 3, 10, 11), (4, 3, 3, 3), 2, (1, 2), 2, 1),
    ("groups2", (2, 4, 6, 6), (6, 2, 3, 3), 1, 0, 1, 2),
    ("groups_several_channels", (1, 6, 5, 7), (9, 2, 3, 2), (1, 2), 1, 1, 3),
    ("depthwise", (2, 4, 6, 5), (4, 1, 3, 3), 1, 1, 1, 4),
    ("depthwise_multiplier", (1, 3, 5, 5), (6, 1, 2, 2), 2, 0, 1, 3),
    ("many_channels", (1, 16, 4, 4), (8, 16, 3, 3), 1, 1, 1, 1),
]
CONV_IDS = [c[0] for c in CONV_CASES]


def _torch_conv_args(case):
    _, xs, ws, stride, padding, dilation, groups = case
    return xs, ws, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_forward_vs_torch(case, with_bias, rng, assert_close):
    xs, ws, kw = _torch_conv_args(case)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if with_bias else None
    expected = F.conv2d(T(x), T(w), None if b is None else T(b), **kw).numpy()
    got = ref.conv2d(x, w, b, **kw)
    assert_close(got, expected, reduction=int(np.prod(ws[1:])) + 1)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_grads_vs_torch(case, rng, assert_close):
    xs, ws, kw = _torch_conv_args(case)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    ys = ref.conv2d(x, w, **kw).shape
    gy = rng.standard_normal(ys)
    red_x = ws[0] * ws[2] * ws[3]
    red_w = ys[0] * ys[2] * ys[3]

    gx = ref.conv2d_input_grad(gy, w, xs, **kw)
    gw = ref.conv2d_weight_grad(gy, x, ws, **kw)
    assert_close(gx, torch.nn.grad.conv2d_input(xs, T(w), T(gy), **kw).numpy(), reduction=red_x)
    assert_close(gw, torch.nn.grad.conv2d_weight(T(x), ws, T(gy), **kw).numpy(), reduction=red_w)

    # and through autograd, including the bias
    tx, tw = T(x).requires_grad_(), T(w).requires_grad_()
    tb = torch.zeros(ws[0], dtype=torch.float64, requires_grad=True)
    F.conv2d(tx, tw, tb, **kw).backward(T(gy))
    bx, bw, bb = ref.conv2d_backward(gy, x, w, **kw)
    assert_close(bx, tx.grad.numpy(), reduction=red_x)
    assert_close(bw, tw.grad.numpy(), reduction=red_w)
    assert_close(bb, tb.grad.numpy(), reduction=red_w)


def test_conv2d_stride_skips_tail_gives_zero_grad():
    x = np.ones((1, 1, 6, 6))
    w = np.ones((1, 1, 3, 3))
    gy = np.ones((1, 1, 2, 2))  # (6 - 3) // 2 + 1 = 2: row/col 5 never read
    gx = ref.conv2d_input_grad(gy, w, x.shape, stride=2)
    assert np.all(gx[..., 5, :] == 0) and np.all(gx[..., :, 5] == 0)
    assert np.all(gx[..., :5, :5] > 0)


def test_conv2d_float32_matches_torch(rng, assert_close):
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    got = ref.conv2d(x, w, b, **kw)
    assert got.dtype == np.float32
    assert_close(got, F.conv2d(T(x), T(w), T(b), **kw).numpy(), reduction=19)
    gy = rng.standard_normal(got.shape).astype(np.float32)
    gx, gw, gb = ref.conv2d_backward(gy, x, w, **kw)
    assert gx.dtype == gw.dtype == gb.dtype == np.float32
    assert_close(gx, torch.nn.grad.conv2d_input(x.shape, T(w), T(gy), **kw).numpy(), reduction=54)
    assert_close(gw, torch.nn.grad.conv2d_weight(T(x), w.shape, T(gy), **kw).numpy(),
                 reduction=gy[:, 0].size)


def test_conv2d_channel_mismatch_message():
    with pytest.raises(ValueError, match="x has 3 channels but weight expects 4"):
        ref.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)))


# ----------------------------------------------------------------------------
# pooling vs torch
# ----------------------------------------------------------------------------
POOL_CASES = [
    # id, x shape, kernel_size, stride, padding, dilation, ceil_mode
    ("basic_2x2", (2, 3, 6, 8), 2, None, 0, 1, False),
    ("kernel_eq_input", (1, 2, 5, 4), (5, 4), None, 0, 1, False),
    ("one_by_one_input", (1, 1, 1, 1), 1, None, 0, 1, False),
    ("kernel1_stride1", (2, 2, 3, 4), 1, 1, 0, 1, False),
    ("overlapping_padded", (2, 2, 7, 7), 3, 1, 1, 1, False),
    ("stride_gt_kernel", (1, 2, 10, 9), 2, 3, 0, 1, False),
    ("non_square", (2, 3, 9, 6), (3, 2), (2, 1), (1, 0), 1, False),
    ("floor_drops_tail", (1, 2, 7, 8), 3, 2, 0, 1, False),
    ("ceil_mode", (1, 2, 7, 7), 3, 2, 0, 1, True),
    ("ceil_mode_padded", (1, 2, 8, 5), (3, 2), 2, 1, 1, True),
    ("ceil_mode_last_window_dropped", (1, 1, 5, 5), 2, 2, 1, 1, True),
    ("ceil_mode_stride_gt_kernel", (1, 2, 10, 8), 2, 3, 1, 1, True),
    ("padding_half_kernel", (1, 1, 4, 4), (4, 2), 1, (2, 1), 1, False),
    ("dilation", (1, 2, 9, 9), 3, 1, 1, 2, False),
    ("dilation_ceil_non_square", (2, 1, 10, 7), (3, 2), (2, 3), 1, (2, 1), True),
    ("medium", (2, 8, 17, 16), 3, 2, 1, 1, False),
]
POOL_IDS = [c[0] for c in POOL_CASES]
AVG_CASES = [c for c in POOL_CASES if c[5] == 1]
AVG_IDS = [c[0] for c in AVG_CASES]


def _pool_kw(case):
    _, xs, k, s, p, d, ceil = case
    return xs, dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


def _torch_maxpool(x, kw):
    kw = dict(kw)
    if kw["stride"] is None:
        kw["stride"] = kw["kernel_size"]
    return F.max_pool2d(T(x), return_indices=True, **kw)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("values", ["random", "ties", "nan", "inf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_max_pool2d_vs_torch(case, values, dtype, rng, assert_close):
    xs, kw = _pool_kw(case)
    if values == "random":
        x = rng.standard_normal(xs)
    elif values == "ties":
        x = rng.integers(0, 3, xs).astype(np.float64)
    elif values == "nan":
        x = rng.integers(-2, 3, xs).astype(np.float64)
        x[rng.random(xs) < 0.3] = np.nan  # several NaN per window: the last one wins
    else:
        x = rng.choice([-np.inf, np.inf, 0.0, -1.0], size=xs, p=[0.6, 0.1, 0.2, 0.1])
    x = x.astype(dtype)
    y, idx = ref.max_pool2d(x, return_indices=True, **kw)
    ty, tidx = _torch_maxpool(x, kw)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_array_equal(ref.max_pool2d(x, **kw), y)

    gy = rng.standard_normal(y.shape).astype(dtype)
    tx = T(x).requires_grad_()
    F.max_pool2d(tx, **{**kw, "stride": kw["stride"] or kw["kernel_size"]}).backward(T(gy))
    expected = tx.grad.numpy()
    overlap = int(np.prod(np.broadcast_to(kw["kernel_size"], 2)))  # windows sharing an input
    assert_close(ref.max_pool2d_backward(gy, x, **kw), expected, reduction=overlap)
    assert_close(ref.max_pool2d_backward(gy, x, indices=idx, **kw), expected, reduction=overlap)


def test_max_pool2d_tie_and_nan_rules():
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    y, i = ref.max_pool2d(x, 2, return_indices=True)
    assert y.item() == 3.0 and i.item() == 1  # first maximum in row-major scan
    x = np.array([[[[np.nan, 3.0], [np.nan, 2.0]]]])
    y, i = ref.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y.item()) and i.item() == 2  # last NaN in scan order
    x = np.full((1, 1, 2, 2), -np.inf)
    y, i = ref.max_pool2d(x, 2, padding=1, stride=1, return_indices=True)
    assert np.all(y == -np.inf)
    # all -inf: the index stays at the first in-bounds tap of each window
    np.testing.assert_array_equal(i[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


def test_max_pool2d_window_without_input_vs_torch():
    """Window 0 reads rows -1 and 2 of a 2-row input: ATen gives -inf, index past the plane."""
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    kw = dict(kernel_size=(2, 1), stride=1, padding=(1, 0), dilation=(3, 1), ceil_mode=False)
    y, i = ref.max_pool2d(x, return_indices=True, **kw)
    ty, ti = _torch_maxpool(x, kw)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    assert y[0, 0, 0, 0] == -np.inf
    gx = ref.max_pool2d_backward(np.ones(y.shape), x, **kw)
    np.testing.assert_array_equal(gx, 0)  # the gradient of an empty window goes nowhere


def test_max_pool2d_padding_never_chosen():
    x = -np.ones((1, 1, 3, 3))
    y = ref.max_pool2d(x, 3, stride=1, padding=1)
    assert np.all(y == -1)


@pytest.mark.parametrize("case", AVG_CASES, ids=AVG_IDS)
@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_avg_pool2d_vs_torch(case, count_include_pad, dtype, rng, assert_close):
    xs, kw = _pool_kw(case)
    kw.pop("dilation")
    kw["count_include_pad"] = count_include_pad
    x = rng.standard_normal(xs).astype(dtype)
    tx = T(x).requires_grad_()
    ty = F.avg_pool2d(tx, **kw)
    y = ref.avg_pool2d(x, **kw)
    assert y.dtype == dtype
    k = kw["kernel_size"]
    red = int(np.prod(k if isinstance(k, tuple) else (k, k)))
    assert_close(y, ty.detach().numpy(), reduction=red)

    gy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(T(gy))
    gx = ref.avg_pool2d_backward(gy, xs, **kw)
    assert_close(gx, tx.grad.numpy(), reduction=red)


def test_pool_padding_more_than_half_kernel_rejected():
    x = np.ones((1, 1, 6, 6))
    with pytest.raises(ValueError, match="padding"):
        ref.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="padding"):
        ref.avg_pool2d(x, (4, 2), padding=(1, 2))


@pytest.mark.parametrize("H, k, s, p, d", [
    c for c in itertools.product(range(1, 8), range(1, 4), range(1, 4), range(0, 2), range(1, 3))
    if c[3] <= c[1] // 2])
def test_pool_output_size_vs_torch(H, k, s, p, d):
    """Output-size rule (floor/ceil, last window inside input or left padding)."""
    x = np.zeros((1, 1, H, 1))
    for ceil in (False, True):
        kw = dict(kernel_size=(k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1),
                  ceil_mode=ceil)
        try:
            expected = _torch_maxpool(x, kw)[0].shape
        except RuntimeError:
            with pytest.raises(ValueError):
                ref.max_pool2d(x, **kw)
            continue
        assert ref.max_pool2d(x, **kw).shape == expected


# ----------------------------------------------------------------------------
# relu
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_relu_vs_torch(dtype, rng):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    x.flat[:6] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30]
    gy = rng.standard_normal(x.shape).astype(dtype)
    gy.flat[7] = np.nan
    y = ref.relu(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, torch.relu(T(x)).numpy())
    g = ref.relu_backward(gy, x)
    assert g.dtype == dtype
    expected = torch.ops.aten.threshold_backward(T(gy), T(x), 0).numpy()
    np.testing.assert_array_equal(g, expected)
    # NaN in x passes the gradient; x == 0 blocks it
    assert g.flat[2] == gy.flat[2] and g.flat[0] == 0 and g.flat[1] == 0
