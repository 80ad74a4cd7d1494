"""Every class of bad input raises ValueError/TypeError/MemoryError, never crashes.

Messages are matched loosely on the argument they are about (``match="stride"``),
not on full sentences.
"""
from __future__ import annotations

import numpy as np
import pytest

import convext

f64 = np.float64


def z(*shape, dtype=f64):
    return np.zeros(shape, dtype)


X = z(1, 2, 5, 5)  # conv input
Wt = z(3, 2, 3, 3)  # conv weight
GY = z(1, 3, 3, 3)  # conv2d(X, Wt) grad_out
P = z(1, 2, 6, 6)  # pool input
PGY = z(1, 2, 3, 3)  # max_pool2d(P, 2) grad_out
BIG = 2**62

conv = convext.conv2d
conv_bwd = convext.conv2d_backward
conv_dx = convext.conv2d_input_grad
conv_dw = convext.conv2d_weight_grad
maxp = convext.max_pool2d
maxp_bwd = convext.max_pool2d_backward
avgp = convext.avg_pool2d
avgp_bwd = convext.avg_pool2d_backward

VALUE_ERRORS = [
    # --- wrong ndim / empty
    ("conv_x_3d", lambda: conv(z(2, 5, 5), Wt), "x"),
    ("conv_x_5d", lambda: conv(z(1, 1, 2, 5, 5), Wt), "x"),
    ("conv_weight_3d", lambda: conv(X, z(2, 3, 3)), "weight"),
    ("conv_bias_2d", lambda: conv(X, Wt, z(3, 1)), "bias"),
    ("conv_empty_x", lambda: conv(z(0, 2, 5, 5), Wt), "x"),
    ("conv_empty_x_spatial", lambda: conv(z(1, 2, 0, 5), Wt), "x"),
    ("conv_empty_weight", lambda: conv(X, z(0, 2, 3, 3)), "weight"),
    ("conv_bwd_grad_out_3d", lambda: conv_bwd(z(3, 3, 3), X, Wt), "grad_out"),
    ("pool_x_3d", lambda: maxp(z(2, 6, 6), 2), "x"),
    ("avg_pool_x_2d", lambda: avgp(z(6, 6), 2), "x"),
    ("pool_empty_x", lambda: maxp(z(1, 0, 6, 6), 2), "x"),
    ("relu_empty", lambda: convext.relu(z(0)), "x|empty"),
    ("corr_in1_1d", lambda: convext.correlate2d(z(5), z(2, 2)), "in1"),
    ("corr_in2_3d", lambda: convext.correlate2d(z(5, 5), z(1, 2, 2)), "in2"),
    ("corr_empty", lambda: convext.correlate2d(z(0, 5), z(2, 2)), "in1"),
    ("conv_empty_in2", lambda: convext.convolve2d(z(5, 5), z(2, 0)), "in2"),
    ("rot180_1d", lambda: convext.rot180(z(4)), "w"),
    # --- channels / groups
    ("conv_channel_mismatch", lambda: conv(z(1, 3, 5, 5), z(2, 4, 3, 3)),
     r"3 channels.*4|4.*3 channels"),
    ("conv_groups_not_dividing_c", lambda: conv(z(1, 3, 5, 5), z(2, 1, 3, 3), groups=2), "groups"),
    ("conv_groups_not_dividing_k", lambda: conv(z(1, 4, 5, 5), z(3, 2, 3, 3), groups=2), "groups"),
    ("conv_groups_channel_mismatch", lambda: conv(z(1, 4, 5, 5), z(4, 1, 3, 3), groups=2),
     "groups"),
    ("conv_groups_zero", lambda: conv(X, Wt, groups=0), "groups"),
    ("conv_groups_negative", lambda: conv(X, Wt, groups=-2), "groups"),
    # --- kernel vs input / output size
    ("conv_kernel_larger_than_input", lambda: conv(z(1, 2, 3, 3), z(1, 2, 5, 5)), "kernel"),
    ("conv_kernel_larger_one_axis", lambda: conv(z(1, 2, 6, 3), z(1, 2, 2, 4)), "kernel"),
    ("conv_dilated_kernel_too_large", lambda: conv(X, Wt, dilation=3), "kernel|dilation"),
    ("pool_kernel_larger_than_input", lambda: maxp(z(1, 1, 2, 2), 3), "kernel|output"),
    ("avg_pool_kernel_larger_than_input", lambda: avgp(z(1, 1, 3, 2), (2, 3)), "kernel|output"),
    ("pool_dilated_kernel_too_large", lambda: maxp(z(1, 1, 4, 4), 2, dilation=4),
     "kernel|output|dilation"),
    # --- stride / dilation / kernel < 1, negative padding
    ("conv_stride_zero", lambda: conv(X, Wt, stride=0), "stride"),
    ("conv_stride_negative", lambda: conv(X, Wt, stride=(1, -1)), "stride"),
    ("conv_dilation_zero", lambda: conv(X, Wt, dilation=(0, 1)), "dilation"),
    ("conv_padding_negative", lambda: conv(X, Wt, padding=-1), "padding"),
    ("conv_dx_stride_zero", lambda: conv_dx(GY, Wt, X.shape, stride=0), "stride"),
    ("conv_dw_padding_negative", lambda: conv_dw(GY, X, Wt.shape, padding=(0, -1)), "padding"),
    ("conv_bwd_dilation_zero", lambda: conv_bwd(GY, X, Wt, dilation=0), "dilation"),
    ("pool_kernel_zero", lambda: maxp(P, 0), "kernel_size"),
    ("pool_kernel_negative", lambda: maxp(P, (2, -1)), "kernel_size"),
    ("pool_stride_zero", lambda: maxp(P, 2, stride=0), "stride"),
    ("pool_dilation_zero", lambda: maxp(P, 2, dilation=0), "dilation"),
    ("pool_padding_negative", lambda: maxp(P, 2, padding=-1), "padding"),
    ("avg_pool_kernel_zero", lambda: avgp(P, (0, 2)), "kernel_size"),
    ("avg_pool_stride_zero", lambda: avgp(P, 2, stride=(2, 0)), "stride"),
    ("avg_pool_padding_negative", lambda: avgp(P, 2, padding=-1), "padding"),
    ("pool_padding_gt_half_kernel", lambda: maxp(P, 3, padding=2), "padding"),
    ("avg_pool_padding_gt_half_kernel", lambda: avgp(P, (4, 2), padding=(1, 2)), "padding"),
    ("max_pool_bwd_padding_gt_half", lambda: maxp_bwd(PGY, P, 2, padding=2), "padding"),
    # --- wrong pair arity
    ("conv_stride_three", lambda: conv(X, Wt, stride=(1, 1, 1)), "stride"),
    ("conv_padding_empty", lambda: conv(X, Wt, padding=()), "padding"),
    ("pool_kernel_three", lambda: maxp(P, (2, 2, 2)), "kernel_size"),
    # --- bias
    ("conv_bias_wrong_length", lambda: conv(X, Wt, z(4)), "bias"),
    ("conv_bias_scalar", lambda: conv(X, Wt, np.float64(1.0)), "bias"),
    # --- grad_out shapes
    ("conv_bwd_grad_out_shape", lambda: conv_bwd(z(1, 3, 3, 4), X, Wt), "grad_out"),
    ("conv_bwd_grad_out_channels", lambda: conv_bwd(z(1, 2, 3, 3), X, Wt), "grad_out"),
    ("conv_bwd_grad_out_batch", lambda: conv_bwd(z(2, 3, 3, 3), X, Wt), "grad_out"),
    ("conv_dx_grad_out_shape", lambda: conv_dx(z(1, 3, 4, 3), Wt, X.shape), "grad_out"),
    ("conv_dw_grad_out_shape", lambda: conv_dw(z(1, 3, 3, 2), X, Wt.shape), "grad_out"),
    ("conv_dx_grad_out_stride", lambda: conv_dx(GY, Wt, X.shape, stride=2), "grad_out"),
    ("max_pool_bwd_grad_out_shape", lambda: maxp_bwd(z(1, 2, 3, 2), P, 2), "grad_out"),
    ("avg_pool_bwd_grad_out_shape", lambda: avgp_bwd(z(1, 2, 2, 3), P.shape, 2), "grad_out"),
    ("relu_bwd_shape", lambda: convext.relu_backward(z(2, 3), z(3, 2)), "grad_out|shape"),
    # --- indices
    ("max_pool_bwd_indices_shape", lambda: maxp_bwd(PGY, P, 2, indices=np.zeros((1, 2, 3, 2),
                                                                                np.int64)),
     "indices"),
    ("max_pool_bwd_indices_too_large", lambda: maxp_bwd(PGY, P, 2,
                                                        indices=np.full(PGY.shape, 36, np.int64)),
     "indices"),
    ("max_pool_bwd_indices_negative", lambda: maxp_bwd(PGY, P, 2,
                                                       indices=np.full(PGY.shape, -1, np.int64)),
     "indices"),
    # --- shape tuples
    ("conv_dx_input_shape_len3", lambda: conv_dx(GY, Wt, (2, 5, 5)), "input_shape"),
    ("conv_dx_input_shape_len5", lambda: conv_dx(GY, Wt, (1, 1, 2, 5, 5)), "input_shape"),
    ("conv_dx_input_shape_zero", lambda: conv_dx(GY, Wt, (1, 2, 0, 5)), "input_shape"),
    ("conv_dx_input_shape_negative", lambda: conv_dx(GY, Wt, (1, 2, -5, 5)), "input_shape"),
    ("conv_dx_input_shape_channels", lambda: conv_dx(GY, Wt, (1, 3, 5, 5)),
     "input_shape|channels"),
    ("conv_dx_input_shape_spatial", lambda: conv_dx(GY, Wt, (1, 2, 7, 5)),
     "input_shape|grad_out"),
    ("conv_dw_weight_shape_len3", lambda: conv_dw(GY, X, (3, 3, 3)), "weight_shape"),
    ("conv_dw_weight_shape_zero", lambda: conv_dw(GY, X, (3, 2, 0, 3)), "weight_shape"),
    ("conv_dw_weight_shape_channels", lambda: conv_dw(GY, X, (3, 1, 3, 3)),
     "weight_shape|channels"),
    ("conv_dw_weight_shape_filters", lambda: conv_dw(GY, X, (4, 2, 3, 3)),
     "weight_shape|grad_out"),
    ("avg_pool_bwd_input_shape_len2", lambda: avgp_bwd(PGY, (6, 6), 2), "input_shape"),
    ("avg_pool_bwd_input_shape_zero", lambda: avgp_bwd(PGY, (1, 2, 0, 6), 2), "input_shape"),
    ("avg_pool_bwd_input_shape_mismatch", lambda: avgp_bwd(PGY, (1, 2, 8, 6), 2),
     "input_shape|grad_out"),
    # --- modes
    ("corr_unknown_mode", lambda: convext.correlate2d(z(5, 5), z(2, 2), "bogus"), "mode"),
    ("convolve_mode_case", lambda: convext.convolve2d(z(5, 5), z(2, 2), "Valid"), "mode"),
    ("corr_valid_neither_larger", lambda: convext.correlate2d(z(3, 5), z(4, 2), "valid"),
     "valid"),
    ("convolve_valid_neither_larger", lambda: convext.convolve2d(z(5, 3), z(2, 4), "valid"),
     "valid"),
]


@pytest.mark.parametrize("call, match", [v[1:] for v in VALUE_ERRORS],
                         ids=[v[0] for v in VALUE_ERRORS])
def test_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# non-integer parameters: TypeError (or ValueError) naming the parameter
NON_INTEGER = [
    ("conv_stride_float", lambda: conv(X, Wt, stride=1.5), "stride"),
    ("conv_stride_str", lambda: conv(X, Wt, stride="2"), "stride"),
    ("conv_stride_float_in_tuple", lambda: conv(X, Wt, stride=(1, 2.0)), "stride"),
    ("conv_stride_none", lambda: conv(X, Wt, stride=None), "stride"),
    ("conv_padding_float", lambda: conv(X, Wt, padding=0.5), "padding"),
    ("conv_dilation_str", lambda: conv(X, Wt, dilation="1"), "dilation"),
    ("conv_groups_float", lambda: conv(X, Wt, groups=1.0), "groups"),
    ("conv_dx_input_shape_float", lambda: conv_dx(GY, Wt, (1, 2, 5.0, 5)), "input_shape"),
    ("conv_dx_input_shape_int", lambda: conv_dx(GY, Wt, 5), "input_shape"),
    ("conv_dw_weight_shape_str", lambda: conv_dw(GY, X, "3233"), "weight_shape"),
    ("pool_kernel_float", lambda: maxp(P, 2.0), "kernel_size"),
    ("pool_kernel_none", lambda: maxp(P, None), "kernel_size"),
    ("pool_stride_str", lambda: maxp(P, 2, stride="2"), "stride"),
    ("avg_pool_padding_float", lambda: avgp(P, 2, padding=0.0), "padding"),
    ("avg_pool_bwd_input_shape_float", lambda: avgp_bwd(PGY, (1, 2, 6.5, 6), 2), "input_shape"),
    ("max_pool_bwd_dilation_float", lambda: maxp_bwd(PGY, P, 2, dilation=1.5), "dilation"),
    ("corr_mode_int", lambda: convext.correlate2d(z(5, 5), z(2, 2), 1), "mode"),
    ("corr_mode_none", lambda: convext.correlate2d(z(5, 5), z(2, 2), None), "mode"),
]


@pytest.mark.parametrize("call, match", [v[1:] for v in NON_INTEGER],
                         ids=[v[0] for v in NON_INTEGER])
def test_non_integer_parameters(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# mismatched dtypes: TypeError naming both dtypes
_BOTH = r"(?s)float32.*float64|float64.*float32"
f32 = np.float32
MIXED = [
    ("conv_x32_w64", lambda: conv(X.astype(f32), Wt)),
    ("conv_bias32", lambda: conv(X, Wt, z(3, dtype=f32))),
    ("conv_bwd_grad_out32", lambda: conv_bwd(GY.astype(f32), X, Wt)),
    ("conv_bwd_weight32", lambda: conv_bwd(GY, X, Wt.astype(f32))),
    ("conv_dx_mixed", lambda: conv_dx(GY.astype(f32), Wt, X.shape)),
    ("conv_dw_mixed", lambda: conv_dw(GY, X.astype(f32), Wt.shape)),
    ("max_pool_bwd_mixed", lambda: maxp_bwd(PGY.astype(f32), P, 2)),
    ("relu_bwd_mixed", lambda: convext.relu_backward(z(3, dtype=f32), z(3))),
]


@pytest.mark.parametrize("call", [v[1] for v in MIXED], ids=[v[0] for v in MIXED])
def test_mismatched_dtypes(call):
    with pytest.raises(TypeError, match=_BOTH):
        call()


BAD_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.float16, np.complex64, np.complex128,
              object]
BAD_IDS = ["int32", "int64", "uint8", "bool", "float16", "complex64", "complex128", "object"]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=BAD_IDS)
@pytest.mark.parametrize("op", ["conv_x", "conv_all", "conv_bwd", "conv_dx", "conv_dw", "max_pool",
                                "max_pool_bwd", "avg_pool", "avg_pool_bwd", "relu", "relu_bwd"])
def test_unsupported_dtypes(op, bad):
    def c(a):
        return np.asarray(a).astype(bad)

    calls = {
        "conv_x": lambda: conv(c(X), Wt),
        "conv_all": lambda: conv(c(X), c(Wt), c(z(3))),
        "conv_bwd": lambda: conv_bwd(c(GY), c(X), c(Wt)),
        "conv_dx": lambda: conv_dx(c(GY), c(Wt), X.shape),
        "conv_dw": lambda: conv_dw(c(GY), c(X), Wt.shape),
        "max_pool": lambda: maxp(c(P), 2),
        "max_pool_bwd": lambda: maxp_bwd(c(PGY), c(P), 2),
        "avg_pool": lambda: avgp(c(P), 2),
        "avg_pool_bwd": lambda: avgp_bwd(c(PGY), P.shape, 2),
        "relu": lambda: convext.relu(c(z(2, 3))),
        "relu_bwd": lambda: convext.relu_backward(c(z(2, 3)), c(z(2, 3))),
    }
    with pytest.raises(TypeError):
        calls[op]()


@pytest.mark.parametrize("bad", [np.bool_, np.float16, object], ids=["bool", "float16", "object"])
@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_correlate_unsupported_dtypes(name, bad):
    """scipy.signal refuses these with ValueError; convext's error is also a TypeError.

    (Mixed dtypes, integers and complex are accepted: tests/test_scipy_properties.py.)"""
    for exc in (TypeError, ValueError):
        with pytest.raises(exc, match="not available"):
            getattr(convext, name)(z(5, 5).astype(bad), z(2, 2).astype(bad))


def test_max_pool_bwd_float_indices_rejected():
    with pytest.raises((TypeError, ValueError), match="indices"):
        maxp_bwd(PGY, P, 2, indices=z(*PGY.shape))


# huge parameters and sizes whose products overflow: fail fast, no crash
_HUGE_ERRORS = (ValueError, MemoryError)
HUGE = [
    ("conv_padding_2_62", lambda: conv(X, Wt, padding=BIG)),
    ("conv_padding_2_62_one_axis", lambda: conv(X, Wt, padding=(0, BIG))),
    ("conv_padding_2_40", lambda: conv(X, Wt, padding=2**40)),
    ("conv_padding_2_22_memory", lambda: conv(X, Wt, padding=2**22)),  # ~1.6 PiB output
    ("conv_dilation_2_62", lambda: conv(X, Wt, dilation=BIG)),
    ("conv_stride_2_62", lambda: conv(X, Wt, stride=BIG, padding=BIG)),
    ("conv_groups_2_62", lambda: conv(X, Wt, groups=BIG)),
    ("conv_dx_input_shape_overflow", lambda: conv_dx(GY, Wt, (BIG, 2, 5, 5))),
    ("conv_dx_input_shape_product_overflow",
     lambda: conv_dx(z(1, 3, 1, 1), Wt, (1, 2, 2**40, 2**40), stride=2**40)),
    ("conv_dx_input_shape_huge_memory", lambda: conv_dx(z(1, 3, 1, 1), Wt, (1, 2, 2**22, 2**22),
                                                        stride=2**22)),
    ("conv_dw_weight_shape_overflow", lambda: conv_dw(GY, X, (BIG, 2, 3, 3))),
    ("conv_dw_weight_shape_product_overflow", lambda: conv_dw(GY, X, (3, 2, BIG, BIG))),
    ("pool_kernel_2_62", lambda: maxp(P, BIG)),
    ("pool_dilation_2_62", lambda: maxp(P, 2, dilation=BIG)),
    ("avg_pool_bwd_input_shape_overflow",
     lambda: avgp_bwd(z(1, 2, 1, 1), (1, 2, 2**40, 2**40), 2**40)),
    ("avg_pool_bwd_input_shape_huge_memory",
     lambda: avgp_bwd(z(1, 2, 1, 1), (1, 2, 2**22, 2**22), 2**22)),
]


@pytest.mark.parametrize("call", [v[1] for v in HUGE], ids=[v[0] for v in HUGE])
def test_huge_sizes(call):
    with pytest.raises(_HUGE_ERRORS):
        call()


@pytest.mark.parametrize("value", [2**63, 2**64 + 1, -(2**63) - 1],
                         ids=["2_63", "2_64", "neg_2_63"])
def test_parameters_beyond_int64(value):
    """Python ints that do not fit in 64 bits: a clean error, not OverflowError."""
    with pytest.raises((ValueError, TypeError), match="padding"):
        conv(X, Wt, padding=value)
    with pytest.raises((ValueError, TypeError), match="stride"):
        maxp(P, 2, stride=value)


def test_errors_leave_inputs_unchanged(snapshot):
    x = np.arange(50.0).reshape(1, 2, 5, 5)
    w = np.ones((3, 2, 3, 3))
    unchanged = snapshot(x, w)
    with pytest.raises(ValueError):
        conv(x, w, stride=0)
    with pytest.raises(ValueError):
        conv_bwd(z(1, 3, 2, 2), x, w)
    unchanged()


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
def test_avg_pool_window_area_beyond_int64(count_include_pad):
    """kernel 2**62 with padding 2**61: with count_include_pad the divisor
    (2**62)**2 overflows int64. Reject the sizes or divide by the right
    number; never divide by a wrapped-around one."""
    x = np.ones((1, 2, 6, 6))
    kw = dict(kernel_size=BIG, padding=BIG // 2, count_include_pad=count_include_pad)
    area = 2.0**124 if count_include_pad else 36.0
    try:
        y = avgp(x, **kw)
    except _HUGE_ERRORS:
        return
    np.testing.assert_allclose(y, np.full((1, 2, 1, 1), 36.0 / area), rtol=1e-12)
    gx = avgp_bwd(np.ones((1, 2, 1, 1)), x.shape, **kw)
    np.testing.assert_allclose(gx, np.full(x.shape, 1.0 / area), rtol=1e-12)
