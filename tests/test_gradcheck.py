"""Central finite differences (float64) against convext's backward functions.

For a loss ``L = sum(f(inputs) * G)`` with a fixed random ``G``, the backward
function called with ``grad_out = G`` must give dL/d(input).  Every op here is
linear or piecewise linear in the perturbed input, so the central difference
is exact up to rounding as long as no kink (ReLU at 0, a change of argmax) is
crossed; the inputs are built to stay away from those.
"""
from __future__ import annotations

import numpy as np
import pytest

import convext

EPS = 1e-6
TOL = dict(rtol=1e-6, atol=1e-8)


def numeric_grad(loss, a: np.ndarray, eps: float = EPS) -> np.ndarray:
    """dL/da by central differences, one element at a time."""
    a = np.array(a, dtype=np.float64, copy=True)
    grad = np.zeros_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = loss(a)
        flat[i] = orig - eps
        minus = loss(a)
        flat[i] = orig
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


CONV_CASES = [
    # id, x shape, weight shape, stride, padding, dilation, groups
    ("plain", (2, 2, 5, 4), (3, 2, 3, 2), 1, 0, 1, 1),
    ("stride_padding", (1, 2, 6, 7), (2, 2, 3, 3), 2, 1, 1, 1),
    ("stride_skips_tail", (1, 1, 6, 6), (2, 1, 2, 3), (3, 2), 0, 1, 1),
    ("dilation", (1, 2, 6, 6), (2, 2, 2, 2), 1, (1, 0), 2, 1),
    ("groups", (1, 4, 4, 5), (4, 2, 2, 2), 1, 1, 1, 2),
    ("depthwise", (2, 3, 4, 4), (3, 1, 3, 3), (1, 2), 1, 1, 3),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_gradcheck(case, rng):
    _, xs, ws, stride, padding, dilation, groups = case
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    G = rng.standard_normal(convext.conv2d(x, w, b, **kw).shape)

    def loss(x_, w_, b_):
        return float(np.sum(convext.conv2d(x_, w_, b_, **kw) * G))

    gx, gw, gb = convext.conv2d_backward(G, x, w, **kw)
    np.testing.assert_allclose(gx, numeric_grad(lambda a: loss(a, w, b), x), **TOL)
    np.testing.assert_allclose(gw, numeric_grad(lambda a: loss(x, a, b), w), **TOL)
    np.testing.assert_allclose(gb, numeric_grad(lambda a: loss(x, w, a), b), **TOL)
    np.testing.assert_allclose(convext.conv2d_input_grad(G, w, xs, **kw), gx, **TOL)
    np.testing.assert_allclose(convext.conv2d_weight_grad(G, x, ws, **kw), gw, **TOL)


def distinct_values(shape, rng, gap=0.01):
    """Values at least ``gap`` apart (no ties, so the argmax is stable)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - n * gap / 2).reshape(shape)


POOL_CASES = [
    # id, x shape, kernel_size, stride, padding, dilation, ceil_mode
    ("plain_2x2", (2, 2, 4, 6), 2, None, 0, 1, False),
    ("overlapping_padded", (1, 2, 5, 5), 3, 1, 1, 1, False),
    ("stride_gt_kernel", (1, 1, 7, 8), 2, 3, 0, 1, False),
    ("non_square_ceil", (1, 2, 7, 5), (3, 2), (2, 2), (1, 0), 1, True),
    ("dilation", (1, 1, 7, 7), 2, 1, 1, 2, False),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_max_pool2d_gradcheck(case, rng):
    _, xs, k, s, p, d, ceil = case
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    x = distinct_values(xs, rng)
    G = rng.standard_normal(convext.max_pool2d(x, **kw).shape)

    def loss(a):
        return float(np.sum(convext.max_pool2d(a, **kw) * G))

    expected = numeric_grad(loss, x)
    np.testing.assert_allclose(convext.max_pool2d_backward(G, x, **kw), expected, **TOL)
    _, idx = convext.max_pool2d(x, return_indices=True, **kw)
    np.testing.assert_allclose(convext.max_pool2d_backward(G, x, indices=idx, **kw), expected,
                               **TOL)


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[5] == 1],
                         ids=[c[0] for c in POOL_CASES if c[5] == 1])
def test_avg_pool2d_gradcheck(case, count_include_pad, rng):
    _, xs, k, s, p, _, ceil = case
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
              count_include_pad=count_include_pad)
    x = rng.standard_normal(xs)
    G = rng.standard_normal(convext.avg_pool2d(x, **kw).shape)

    def loss(a):
        return float(np.sum(convext.avg_pool2d(a, **kw) * G))

    np.testing.assert_allclose(convext.avg_pool2d_backward(G, xs, **kw), numeric_grad(loss, x),
                               **TOL)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)], ids=["nchw", "vector"])
def test_relu_gradcheck(shape, rng):
    x = rng.standard_normal(shape)
    x = np.where(np.abs(x) < 0.1, 0.5, x)  # stay away from the kink at 0
    G = rng.standard_normal(shape)

    def loss(a):
        return float(np.sum(convext.relu(a) * G))

    np.testing.assert_allclose(convext.relu_backward(G, x), numeric_grad(loss, x), **TOL)


def test_composed_network_gradcheck(rng):
    """conv -> relu -> max_pool -> conv -> avg_pool, chained by hand."""
    x = rng.standard_normal((1, 2, 8, 8))
    w1 = rng.standard_normal((3, 2, 3, 3))
    w2 = rng.standard_normal((2, 3, 2, 2))

    def forward(x_, w1_):
        a = convext.conv2d(x_, w1_, padding=1)
        r = convext.relu(a)
        m = convext.max_pool2d(r, 2)
        c = convext.conv2d(m, w2)
        return a, r, m, c, convext.avg_pool2d(c, 3)

    *_, out = forward(x, w1)
    G = rng.standard_normal(out.shape)
    a, r, m, c, _ = forward(x, w1)
    # a kink crossed by a perturbation would make the numeric gradient wrong
    assert np.min(np.abs(a)) > 1e-4

    g_c = convext.avg_pool2d_backward(G, c.shape, 3)
    g_m, _, _ = convext.conv2d_backward(g_c, m, w2)
    g_r = convext.max_pool2d_backward(g_m, r, 2)
    g_a = convext.relu_backward(g_r, a)
    g_x, g_w1, _ = convext.conv2d_backward(g_a, x, w1, padding=1)

    def loss(x_, w1_):
        return float(np.sum(forward(x_, w1_)[-1] * G))

    np.testing.assert_allclose(g_x, numeric_grad(lambda v: loss(v, w1), x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_w1, numeric_grad(lambda v: loss(x, v), w1), rtol=1e-5,
                               atol=1e-7)
