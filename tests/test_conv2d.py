"""convext.conv2d and its gradients against the numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

import convext
from convext import reference as ref

CONV_CASES = [
    # id, x shape, weight shape, stride, padding, dilation, groups
    ("basic", (2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ("one_by_one_input", (1, 1, 1, 1), (1, 1, 1, 1), 1, 0, 1, 1),
    ("one_by_one_input_padded", (1, 2, 1, 1), (3, 2, 3, 3), 1, 1, 1, 1),
    ("one_by_one_kernel", (2, 5, 4, 3), (3, 5, 1, 1), 1, 0, 1, 1),
    ("one_by_one_kernel_strided", (2, 3, 7, 6), (4, 3, 1, 1), 2, 0, 1, 1),
    ("kernel_eq_input", (2, 2, 5, 4), (3, 2, 5, 4), 1, 0, 1, 1),
    ("kernel_eq_padded_input", (1, 2, 3, 2), (2, 2, 5, 4), 1, 1, 1, 1),
    ("non_square", (2, 3, 9, 5), (2, 3, 2, 4), (2, 1), (1, 0), 1, 1),
    ("stride_gt_kernel", (2, 2, 9, 10), (3, 2, 2, 2), 3, 0, 1, 1),
    ("stride_skips_tail", (1, 2, 8, 9), (2, 2, 3, 3), 2, 0, 1, 1),
    ("stride_gt_input", (1, 1, 3, 4), (2, 1, 2, 2), 5, 0, 1, 1),
    ("padding_gt_kernel", (1, 2, 3, 3), (2, 2, 2, 2), 1, 3, 1, 1),
    ("asymmetric_padding", (2, 2, 4, 6), (3, 2, 3, 2), 1, (0, 2), 1, 1),
    ("dilation", (2, 2, 9, 8), (3, 2, 3, 2), 1, 0, (2, 3), 1),
    ("dilated_kernel_eq_input", (1, 2, 5, 7), (2, 2, 3, 4), 1, 0, 2, 1),
    ("all_params", (2, 3, 10, 11), (4, 3, 3, 3), 2, (1, 2), 2, 1),
    ("groups2", (2, 4, 6, 6), (6, 2, 3, 3), 1, 0, 1, 2),
    ("groups_several_channels", (1, 6, 5, 7), (9, 2, 3, 2), (1, 2), 1, 1, 3),
    ("groups_strided_dilated", (2, 6, 11, 9), (4, 3, 3, 2), (2, 3), (2, 1), (1, 2), 2),
    ("depthwise", (2, 4, 6, 5), (4, 1, 3, 3), 1, 1, 1, 4),
    ("depthwise_multiplier", (1, 3, 5, 5), (6, 1, 2, 2), 2, 0, 1, 3),
    ("depthwise_5x5_strided", (2, 3, 13, 19), (3, 1, 5, 5), (1, 2), 2, 1, 3),  # 25 taps: 8+8+8+1
    ("many_channels", (1, 16, 4, 4), (8, 16, 3, 3), 1, 1, 1, 1),
    ("single_output_channel", (3, 5, 6, 6), (1, 5, 3, 3), 1, 1, 1, 1),
    ("wide_row", (1, 2, 1, 40), (3, 2, 1, 5), (1, 2), 0, 1, 1),
    ("medium", (4, 16, 20, 18), (24, 16, 3, 3), 1, 1, 1, 1),
    ("medium_strided_5x5", (2, 8, 23, 21), (16, 8, 5, 5), 2, 2, 1, 1),
    # the forward GEMM works on bands of output rows: a short last band, with
    # rows written one by one (wide), through scratch (narrow), and strided
    ("bands_wide_rows_tail", (1, 2, 21, 36), (5, 2, 5, 5), 1, 0, 1, 1),
    ("bands_narrow_rows_tail", (2, 3, 40, 9), (6, 3, 3, 3), 1, 1, 1, 1),
    ("bands_strided_stem_like", (1, 3, 70, 64), (8, 3, 7, 7), 2, 3, 1, 1),
    # few input channels, rows of whole vectors plus a tail: the weight
    # gradient's dot-product path, with a short last band and edge tiles
    ("dot_wgrad_tails", (2, 3, 50, 28), (5, 3, 5, 5), 1, 0, 1, 1),
    # few outputs from many inputs over 8+ images: multiply, then shift and
    # add (the input gradient here; the forward below), with bands of rows
    ("shift_add_input_grad", (8, 2, 12, 11), (16, 2, 3, 3), 1, 1, 1, 1),
    ("shift_add_dilated", (8, 9, 11, 13), (3, 9, 3, 2), 1, (2, 1), (2, 3), 1),
    ("shift_add_groups", (8, 16, 7, 9), (4, 8, 3, 3), 1, 1, 1, 2),
    ("shift_add_bands", (8, 8, 40, 30), (2, 8, 3, 3), 1, 1, 1, 1),
    # strided, few input channels, 8+ images: the input gradient's transposed
    # shift-add into stride-phase planes
    ("shift_add_stem_like", (8, 3, 21, 19), (8, 3, 7, 7), 2, 3, 1, 1),
    ("shift_add_strided_dilated", (8, 2, 17, 15), (9, 2, 3, 2), (2, 3), (1, 2), (2, 1), 1),
    ("shift_add_strided_groups", (8, 4, 9, 10), (16, 2, 3, 3), 2, 1, 1, 2),
    # ... with input columns and rows no tap reads (their gradient is zero)
    ("shift_add_strided_unread", (8, 2, 9, 11), (8, 2, 2, 2), 2, 0, 1, 1),
    ("shift_add_stride_3_4_unread", (8, 1, 14, 13), (12, 1, 3, 3), (4, 3), (1, 0), 1, 1),
    # few input channels, many output channels: the weight gradient's dot
    # path, 1x1 (a plane per channel) and with a dilation
    ("dot_wgrad_pointwise_strided", (3, 4, 13, 15), (6, 4, 1, 1), 2, 0, 1, 1),
    ("dot_wgrad_dilated", (2, 2, 17, 12), (9, 2, 3, 3), (1, 2), 2, (2, 3), 1),
    # pointwise: the indirect GEMM reads x in place (last tile: planes)
    ("pointwise_in_place", (3, 16, 7, 9), (12, 16, 1, 1), 1, 0, 1, 1),
    ("pointwise_groups", (2, 12, 5, 5), (16, 6, 1, 1), 1, 0, 1, 2),
]
CONV_IDS = [c[0] for c in CONV_CASES]


def _unpack(case):
    _, xs, ws, stride, padding, dilation, groups = case
    return xs, ws, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _out_shape(xs, ws, kw):
    return ref.conv2d(np.zeros(xs), np.zeros(ws), **kw).shape


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_forward(case, with_bias, dtype, rng, assert_close, snapshot, assert_new_array):
    xs, ws, kw = _unpack(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if with_bias else None
    unchanged = snapshot(x, w, *([] if b is None else [b]))
    y = convext.conv2d(x, w, b, **kw)
    unchanged()
    assert_new_array(y, x, w, b)
    assert_close(y, ref.conv2d(x, w, b, **kw), reduction=ws[1] * ws[2] * ws[3] + 1)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward(case, dtype, rng, assert_close, snapshot, assert_new_array):
    xs, ws, kw = _unpack(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    ys = _out_shape(xs, ws, kw)
    gy = rng.standard_normal(ys).astype(dtype)
    red_x = ws[0] // kw["groups"] * ws[2] * ws[3]
    red_w = ys[0] * ys[2] * ys[3]
    ex, ew, eb = ref.conv2d_backward(gy, x, w, **kw)

    unchanged = snapshot(gy, x, w)
    gx, gw, gb = convext.conv2d_backward(gy, x, w, **kw)
    unchanged()
    for out in (gx, gw, gb):
        assert_new_array(out, gy, x, w)
    assert_close(gx, ex, reduction=red_x)
    assert_close(gw, ew, reduction=red_w)
    assert_close(gb, eb, reduction=red_w)

    gx2 = convext.conv2d_input_grad(gy, w, xs, **kw)
    unchanged()
    assert_new_array(gx2, gy, w)
    assert_close(gx2, ex, reduction=red_x)

    gw2 = convext.conv2d_weight_grad(gy, x, ws, **kw)
    unchanged()
    assert_new_array(gw2, gy, x)
    assert_close(gw2, ew, reduction=red_w)


def test_conv2d_stride_skipped_tail_has_zero_grad(dtype):
    """Rows/cols that no output reads get exactly 0 in grad_x."""
    x = np.ones((1, 2, 8, 10), dtype)
    w = np.ones((3, 2, 3, 3), dtype)
    gy = np.ones((1, 3, 3, 4), dtype)  # 3 rows, 4 cols of windows: row 7, col 9 unread
    gx = convext.conv2d_input_grad(gy, w, x.shape, stride=2)
    assert np.all(gx[:, :, 7, :] == 0) and np.all(gx[:, :, :, 9] == 0)
    assert np.all(gx[:, :, :7, :9] > 0)
    gx_b, _, _ = convext.conv2d_backward(gy, x, w, stride=2)
    np.testing.assert_array_equal(gx_b, gx)


@pytest.mark.parametrize("which", ["all", "x_only", "weight_only", "grad_out_only"])
def test_conv2d_any_layout(layout, which, dtype, rng, as_layout, assert_close, snapshot):
    if layout == "nested_list":
        dtype = np.dtype(np.float64)  # lists carry no dtype: they become float64
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    x = rng.standard_normal((2, 4, 7, 8)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    gy = rng.standard_normal(_out_shape(x.shape, w.shape, kw)).astype(dtype)

    def lay(name, a):
        return as_layout(a, layout) if which in ("all", f"{name}_only") else a

    xl, wl, bl, gyl = lay("x", x), lay("weight", w), lay("bias", b), lay("grad_out", gy)
    unchanged = snapshot(xl, wl, bl, gyl)
    assert_close(convext.conv2d(xl, wl, bl, **kw), ref.conv2d(x, w, b, **kw), reduction=13)
    ex, ew, eb = ref.conv2d_backward(gy, x, w, **kw)
    gx, gw, gb = convext.conv2d_backward(gyl, xl, wl, **kw)
    assert_close(gx, ex, reduction=18)
    assert_close(gw, ew, reduction=gy[:, 0].size)
    assert_close(gb, eb, reduction=gy[:, 0].size)
    assert_close(convext.conv2d_input_grad(gyl, wl, x.shape, **kw), ex, reduction=18)
    assert_close(convext.conv2d_weight_grad(gyl, xl, w.shape, **kw), ew, reduction=gy[:, 0].size)
    unchanged()


def test_conv2d_transposed_views(rng, assert_close):
    """A view whose axes are permuted (not just reversed) is accepted."""
    base = rng.standard_normal((6, 5, 3, 2))  # (W, H, C, N)
    x = base.transpose(3, 2, 0, 1)  # neither C nor Fortran order
    w = rng.standard_normal((3, 3, 2, 4)).transpose(0, 1, 3, 2)
    assert not (x.flags.c_contiguous or x.flags.f_contiguous)
    assert_close(convext.conv2d(x, w, padding=1), ref.conv2d(x, w, padding=1), reduction=24)


def test_conv2d_pair_params_as_list_and_numpy_ints(rng, assert_close):
    x = rng.standard_normal((1, 2, 9, 8))
    w = rng.standard_normal((3, 2, 2, 3))
    expected = ref.conv2d(x, w, stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    got = convext.conv2d(x, w, stride=[2, 1], padding=[np.int64(1), 0],
                         dilation=(np.int32(1), np.int64(2)), groups=np.int64(1))
    assert_close(got, expected, reduction=12)
    got = convext.conv2d(x, w, stride=np.int64(2), padding=np.int32(1))
    assert_close(got, ref.conv2d(x, w, stride=2, padding=1), reduction=12)


def test_conv2d_shape_params_as_list(rng, assert_close):
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    gy = rng.standard_normal((2, 3, 3, 3))
    assert_close(convext.conv2d_input_grad(gy, w, list(x.shape)),
                 ref.conv2d_input_grad(gy, w, x.shape), reduction=27)
    assert_close(convext.conv2d_weight_grad(gy, x, [np.int64(v) for v in w.shape]),
                 ref.conv2d_weight_grad(gy, x, w.shape), reduction=18)


def test_conv2d_nan_and_inf_propagate(dtype, assert_close):
    x = np.zeros((1, 1, 5, 5), dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 4, 4] = np.inf
    w = np.ones((1, 1, 2, 2), dtype)
    y = convext.conv2d(x, w)
    expected = ref.conv2d(x, w)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(expected))
    assert np.isnan(y[0, 0, 0, 0]) and np.isinf(y[0, 0, 3, 3]) and y[0, 0, 1, 1] == 0
