"""The derivation's identities, checked with convext's public API only.

* convolution is correlation with the filter rotated by 180 degrees;
* dX is the *full* correlation of dY (stride -> zeros inserted between its
  rows/cols) with rot180(W), summed over output channels, then cropped by the
  padding;
* dW is the valid correlation of the (padded) input X with dY, summed over
  the batch;
* conv2d_backward returns exactly those plus dY summed over N, H, W.
"""
from __future__ import annotations

import numpy as np
import pytest

import convext


def dilate(a: np.ndarray, step: int) -> np.ndarray:
    """Insert ``step - 1`` zeros between the rows and columns of a 2-D array."""
    if step == 1:
        return a
    out = np.zeros(((a.shape[0] - 1) * step + 1, (a.shape[1] - 1) * step + 1), a.dtype)
    out[::step, ::step] = a
    return out


@pytest.mark.parametrize("shape1, shape2", [((7, 6), (3, 2)), ((5, 5), (5, 5)), ((4, 9), (2, 4)),
                                            ((2, 3), (4, 5))],
                         ids=["in1_larger", "kernel_eq_input", "even_kernel", "in2_larger"])
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_convolve_is_correlate_with_rot180(shape1, shape2, mode, dtype, rng, assert_close):
    a = rng.standard_normal(shape1).astype(dtype)
    b = rng.standard_normal(shape2).astype(dtype)
    assert_close(convext.convolve2d(a, b, mode),
                 convext.correlate2d(a, convext.rot180(b), mode), reduction=b.size)


@pytest.mark.parametrize("kernel", [(3, 3), (2, 4), (1, 2)], ids=["odd", "even", "mixed"])
def test_convolve_same_is_centred_full_correlation(kernel, rng, assert_close):
    """'same' differs only by where the window sits in the full result."""
    a = rng.standard_normal((6, 7))
    b = rng.standard_normal(kernel)
    R, S = kernel
    full = convext.correlate2d(a, convext.rot180(b), "full")
    assert_close(convext.convolve2d(a, b, "same"),
                 full[(R - 1) // 2:(R - 1) // 2 + 6, (S - 1) // 2:(S - 1) // 2 + 7],
                 reduction=b.size)
    full = convext.correlate2d(a, b, "full")
    assert_close(convext.correlate2d(a, b, "same"), full[R // 2:R // 2 + 6, S // 2:S // 2 + 7],
                 reduction=b.size)


INPUT_GRAD_CASES = [
    # id, x shape, weight shape, stride, padding, dilation
    ("stride1", (2, 3, 6, 5), (4, 3, 3, 2), 1, 0, 1),
    ("stride1_padded", (2, 3, 6, 5), (4, 3, 3, 3), 1, 1, 1),
    ("stride2", (2, 2, 9, 8), (3, 2, 3, 3), 2, 0, 1),
    ("stride2_padded_skips_tail", (1, 3, 8, 7), (2, 3, 3, 2), 2, 1, 1),
    ("stride_gt_kernel", (1, 2, 10, 9), (2, 2, 2, 2), 3, 0, 1),
    ("dilation2", (1, 2, 9, 8), (3, 2, 3, 2), 1, 1, 2),
]


@pytest.mark.parametrize("case", INPUT_GRAD_CASES, ids=[c[0] for c in INPUT_GRAD_CASES])
def test_input_grad_is_full_correlation_with_rot180(case, rng, assert_close):
    _, xs, ws, s, p, d = case
    N, C, H, W = xs
    K, _, R, S = ws
    w = rng.standard_normal(ws)
    y = convext.conv2d(np.zeros(xs), w, stride=s, padding=p, dilation=d)
    gy = rng.standard_normal(y.shape)

    expected = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for n in range(N):
        for c in range(C):
            for k in range(K):
                filt = dilate(w[k, c], d)  # filter dilation: zeros between taps
                full = convext.correlate2d(dilate(gy[n, k], s), convext.rot180(filt), "full")
                # rows/cols beyond the last window are never read: they stay 0
                expected[n, c, :full.shape[0], :full.shape[1]] += full
    expected = expected[:, :, p:p + H, p:p + W]  # padding becomes cropping

    got = convext.conv2d_input_grad(gy, w, xs, stride=s, padding=p, dilation=d)
    assert_close(got, expected, reduction=K * R * S)


WEIGHT_GRAD_CASES = [
    ("stride1", (2, 3, 6, 5), (4, 3, 3, 2), 1, 0),
    ("stride1_padded", (3, 2, 5, 5), (2, 2, 3, 3), 1, 1),
    ("stride2", (2, 2, 9, 8), (3, 2, 3, 3), 2, 0),
    ("stride2_padded_skips_tail", (1, 3, 8, 7), (2, 3, 3, 2), 2, 1),
]


@pytest.mark.parametrize("case", WEIGHT_GRAD_CASES, ids=[c[0] for c in WEIGHT_GRAD_CASES])
def test_weight_grad_is_correlation_of_x_with_dy(case, rng, assert_close):
    _, xs, ws, s, p = case
    N, C, H, W = xs
    K, _, R, S = ws
    x = rng.standard_normal(xs)
    y = convext.conv2d(x, np.zeros(ws), stride=s, padding=p)
    gy = rng.standard_normal(y.shape)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))

    expected = np.zeros(ws)
    for k in range(K):
        for c in range(C):
            for n in range(N):
                corr = convext.correlate2d(xp[n, c], dilate(gy[n, k], s), "valid")
                expected[k, c] += corr[:R, :S]  # a stride-skipped tail adds extra lags
    got = convext.conv2d_weight_grad(gy, x, ws, stride=s, padding=p)
    assert_close(got, expected, reduction=N * y.shape[2] * y.shape[3])


@pytest.mark.parametrize("groups", [1, 2, 4], ids=["dense", "groups2", "depthwise"])
def test_conv2d_backward_is_the_three_gradients(groups, dtype, rng, assert_close):
    x = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    w = rng.standard_normal((8, 4 // groups, 3, 2)).astype(dtype)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=groups)
    gy = rng.standard_normal(convext.conv2d(x, w, **kw).shape).astype(dtype)
    gx, gw, gb = convext.conv2d_backward(gy, x, w, **kw)
    assert_close(gx, convext.conv2d_input_grad(gy, w, x.shape, **kw), reduction=48)
    assert_close(gw, convext.conv2d_weight_grad(gy, x, w.shape, **kw), reduction=gy[:, 0].size)
    assert_close(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)).astype(dtype),
                 reduction=gy[:, 0].size)


def test_forward_is_per_channel_correlation(rng, assert_close):
    """conv2d == sum over input channels of valid 2-D correlations, plus bias."""
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    expected = np.zeros((2, 4, 5, 5))
    for n in range(2):
        for k in range(4):
            for c in range(3):
                expected[n, k] += convext.correlate2d(x[n, c], w[k, c], "valid")
            expected[n, k] += b[k]
    assert_close(convext.conv2d(x, w, b), expected, reduction=19)
