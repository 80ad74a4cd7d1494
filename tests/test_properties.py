"""Property-based tests: every public op of convext against ``convext.reference``.

Hypothesis draws valid configurations (shapes, strides, paddings, dilations,
groups incl. depthwise, pooling options, correlate modes, float32/float64)
and a memory layout per array argument (C order, Fortran order, negative
strides, strided views into a NaN-filled bigger array, read-only, unaligned,
zero-stride broadcasts, nested lists).  Each call must

* agree with the float64 reference within the rounding-error bound of its
  reduction (see :func:`_assert_within_bound`), or bitwise for the ops that
  only select values (max pooling, ReLU, rot180, pooling indices);
* return a fresh, writable, C-contiguous ``numpy.ndarray`` of the input dtype
  that shares no memory with any input;
* leave every input (including the hidden gaps of strided views) unchanged.

A second family of strategies mutates one aspect of a valid call into an
invalid one (stride/dilation/kernel < 1, negative padding, kernel larger than
the padded input, channel/group mismatch, wrong bias/grad_out/input_shape,
bad dtypes, non-integer parameters, pool padding > kernel // 2, ...) and
asserts that convext *and* the reference raise the documented ValueError or
TypeError: never a crash, never a silent result.

The number of examples comes from the hypothesis profile of
``tests/conftest.py`` ("ci" by default, "long" with
``CONVEXT_HYPOTHESIS_PROFILE=long``).
"""
from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import convext
from convext import reference as ref

F64 = np.float64
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# ----------------------------------------------------------------------------
# data and memory layouts
# ----------------------------------------------------------------------------
#: value distributions: "normal" exercises rounding, "ints" gives exact sums,
#: exact zeros and many ties (first-max rule of max pooling), "positive" is a
#: post-ReLU activation (no cancellation: the hardest case for rounding).
KINDS = ("normal", "ints", "positive")

#: every layout any array argument may arrive in
LAYOUTS = (
    "c_order",
    "fortran_order",
    "negative_strides",
    "negative_strides_hw",
    "strided_view",
    "read_only",
    "unaligned",
    "broadcast_axis0",
    "nested_list",  # float64 only: lists become float64 arrays
)


def make_values(shape: Sequence[int], dtype: Any, seed: int, kind: str) -> np.ndarray:
    """Reproducible C-contiguous test data of ``dtype``."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        a = rng.standard_normal(shape)
    elif kind == "ints":
        a = rng.integers(-3, 4, size=shape).astype(F64)
    elif kind == "positive":
        a = rng.uniform(0.0, 2.0, size=shape)
    else:  # pragma: no cover - strategy bug
        raise AssertionError(kind)
    return np.ascontiguousarray(a, dtype=dtype)


def as_layout(a: np.ndarray, layout: str) -> Any:
    """``a`` (or, for ``broadcast_axis0``, ``a[:1]`` repeated) in ``layout``."""
    if layout == "c_order":
        return np.array(a, order="C", copy=True)
    if layout == "fortran_order":
        return np.array(a, order="F", copy=True)
    if layout == "negative_strides":
        flip = (slice(None, None, -1),) * a.ndim
        return a[flip].copy()[flip]
    if layout == "negative_strides_hw":
        flip = (Ellipsis, slice(None, None, -1), slice(None, None, -1)) if a.ndim >= 2 else (
            slice(None, None, -1),)
        return a[flip].copy()[flip]
    if layout == "strided_view":
        # every axis has step 2 inside a NaN-filled array: reading a gap poisons the result
        big = np.full(tuple(2 * n + 1 for n in a.shape), np.nan, dtype=a.dtype)
        view = tuple(slice(1, 2 * n + 1, 2) for n in a.shape)
        big[view] = a
        return big[view]
    if layout == "read_only":
        out = a.copy()
        out.setflags(write=False)
        return out
    if layout == "unaligned":
        raw = np.empty(a.nbytes + 1, dtype=np.uint8)
        out = raw[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        assert not out.flags.aligned
        return out
    if layout == "broadcast_axis0":
        return np.broadcast_to(a[:1], a.shape)  # zero stride, read-only
    if layout == "nested_list":
        return a.tolist()
    raise AssertionError(layout)


def layouts_for(dtype: np.dtype) -> st.SearchStrategy[str]:
    names = LAYOUTS if dtype == np.float64 else tuple(l for l in LAYOUTS if l != "nested_list")
    return st.sampled_from(names)


def _root(a: Any) -> Any:
    """The array that owns ``a``'s memory (so strided-view gaps are compared too)."""
    while isinstance(a, np.ndarray) and isinstance(a.base, np.ndarray):
        a = a.base
    return a


class Snapshot:
    """Copies of the arguments (and of the memory they live in)."""

    def __init__(self, *args: Any) -> None:
        self.saved = []
        for a in args:
            if isinstance(a, np.ndarray):
                root = _root(a)
                self.saved.append((a, root, root.tobytes(), a.flags.writeable))
            elif isinstance(a, list):
                self.saved.append((a, None, repr(a), None))

    def check(self) -> None:
        for i, (a, root, data, writeable) in enumerate(self.saved):
            if root is None:
                assert repr(a) == data, f"nested-list argument {i} was modified"
            else:
                assert root.tobytes() == data, f"argument {i} (or memory around it) was written"
                assert a.flags.writeable == writeable, f"argument {i} changed its writeable flag"


def f64(a: Any) -> np.ndarray:
    """The values of an argument as a fresh float64 array."""
    return np.array(a, dtype=F64)


def assert_fresh(out: Any, dtype: np.dtype, shape: Tuple[int, ...], inputs: Sequence[Any]) -> None:
    """``out`` is a new, writable, C-contiguous ndarray of ``dtype`` and ``shape``."""
    assert type(out) is np.ndarray, f"expected numpy.ndarray, got {type(out)!r}"
    assert out.dtype == dtype, f"dtype {out.dtype}, expected {dtype}"
    assert out.shape == tuple(shape), f"shape {out.shape}, expected {tuple(shape)}"
    assert out.flags.c_contiguous, "output is not C-contiguous"
    assert out.flags.writeable, "output is read-only"
    for i, a in enumerate(inputs):
        if isinstance(a, np.ndarray):
            assert not np.may_share_memory(out, a), f"output shares memory with input {i}"


def _assert_within_bound(got: np.ndarray, want64: np.ndarray, scale64: np.ndarray, terms: int,
                         dtype: np.dtype, what: str) -> None:
    """``|got - want| <= (terms + 2) * eps * scale + (terms + 2) * tiny`` elementwise.

    ``want64`` is the float64 reference on the same (exactly representable)
    inputs and ``scale64`` the reference applied to their absolute values, so
    ``terms * eps/2 * scale`` is the classical worst-case bound of a
    ``terms``-long sum/dot product in any order (Higham, Thm. 3.1); the extra
    terms cover the final rounding to ``dtype`` and the reference's own error,
    ``tiny`` covers underflow.  This holds for any summation order and
    blocking, so it never flakes, yet a dropped/duplicated tap, a wrong index
    or a lower-precision accumulator breaks it.
    """
    assert got.shape == want64.shape, f"{what}: shape {got.shape} != {want64.shape}"
    fi = np.finfo(dtype)
    n = terms + 2
    tol = n * float(fi.eps) * scale64 + n * float(fi.tiny)
    err = np.abs(got.astype(F64) - want64)
    bad = ~(err <= tol)  # also catches NaN
    if bad.any():
        idx = tuple(int(i[0]) for i in np.nonzero(bad))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} elements out of bound; first at {idx}: "
            f"got {got[idx]!r}, reference {want64[idx]!r}, bound {tol[idx]!r} "
            f"(max error {np.nanmax(err):.3g}, terms={terms}, dtype={dtype})"
        )


def _assert_exact(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.array_equal(got, want, equal_nan=True), (
        f"{what}: differs at {np.argwhere(~((got == want) | (np.isnan(got) & np.isnan(want))))[:5].tolist()}"
    )


# ----------------------------------------------------------------------------
# parameter forms
# ----------------------------------------------------------------------------
@st.composite
def pair_arg(draw, h: int, w: int) -> Any:
    """An equivalent spelling of the pair (h, w): int, tuple, list or numpy ints."""
    forms = ["tuple", "list", "numpy_tuple"]
    if h == w:
        forms += ["int", "int", "numpy_int"]
    form = draw(st.sampled_from(forms))
    if form == "int":
        return h
    if form == "numpy_int":
        return np.int64(h)
    if form == "list":
        return [h, w]
    if form == "numpy_tuple":
        return (np.int32(h), np.int64(w))
    return (h, w)


def _pair(v: Any) -> Tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


# ----------------------------------------------------------------------------
# conv2d
# ----------------------------------------------------------------------------
class ConvCase(NamedTuple):
    dtype: np.dtype
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    groups: int
    params: Dict[str, Any]  # stride/padding/dilation/groups as passed
    bias: bool
    seed: int
    kind: str
    layouts: Dict[str, str]

    @property
    def eff(self) -> Tuple[int, int]:
        dh, dw = _pair(self.params["dilation"])
        return dh * (self.R - 1) + 1, dw * (self.S - 1) + 1

    @property
    def out_hw(self) -> Tuple[int, int]:
        (sh, sw), (ph, pw) = _pair(self.params["stride"]), _pair(self.params["padding"])
        eh, ew = self.eff
        return (self.H + 2 * ph - eh) // sh + 1, (self.W + 2 * pw - ew) // sw + 1

    def arrays(self) -> Dict[str, np.ndarray]:
        """C-order data: x, weight, bias, grad_out (of the forward's output shape)."""
        Ho, Wo = self.out_hw
        s = self.seed
        return {
            "x": make_values((self.N, self.C, self.H, self.W), self.dtype, s, self.kind),
            "weight": make_values((self.K, self.C // self.groups, self.R, self.S), self.dtype,
                                  s + 1, "normal" if self.kind == "positive" else self.kind),
            "bias": make_values((self.K,), self.dtype, s + 2, self.kind),
            "grad_out": make_values((self.N, self.K, Ho, Wo), self.dtype, s + 3,
                                    "normal" if self.kind == "positive" else self.kind),
        }

    def laid_out(self) -> Dict[str, Any]:
        return {k: as_layout(v, self.layouts[k]) for k, v in self.arrays().items()}


@st.composite
def conv_cases(draw, max_extra: int = 5) -> ConvCase:
    dtype = draw(st.sampled_from(DTYPES))
    if draw(st.booleans()):  # depthwise (channel multiplier 1 or 2)
        C = groups = draw(st.integers(1, 4))
        K = C * draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 3))
        C = groups * draw(st.integers(1, 3))
        K = groups * draw(st.integers(1, 3))
    N = draw(st.integers(1, 3))
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # smallest input that the dilated kernel fits into once padded, plus a few
    H = max(1, dh * (R - 1) + 1 - 2 * ph) + draw(st.integers(0, max_extra))
    W = max(1, dw * (S - 1) + 1 - 2 * pw) + draw(st.integers(0, max_extra))
    params = {
        "stride": draw(pair_arg(sh, sw)),
        "padding": draw(pair_arg(ph, pw)),
        "dilation": draw(pair_arg(dh, dw)),
        "groups": groups,
    }
    lay = layouts_for(dtype)
    layouts = {k: draw(lay) for k in ("x", "weight", "bias", "grad_out")}
    return ConvCase(dtype, N, C, H, W, K, R, S, groups, params, draw(st.booleans()),
                    draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from(KINDS)), layouts)


@given(case=conv_cases())
def test_conv2d_matches_reference(case: ConvCase) -> None:
    note(repr(case))
    a = case.laid_out()
    x, w = a["x"], a["weight"]
    b = a["bias"] if case.bias else None
    snap = Snapshot(x, w, b)
    got = convext.conv2d(x, w, b, **case.params)
    snap.check()
    Ho, Wo = case.out_hw
    assert_fresh(got, case.dtype, (case.N, case.K, Ho, Wo), [x, w, b])
    b64 = None if b is None else f64(b)
    want = ref.conv2d(f64(x), f64(w), b64, **case.params)
    scale = ref.conv2d(np.abs(f64(x)), np.abs(f64(w)), None if b is None else np.abs(b64),
                       **case.params)
    terms = case.C // case.groups * case.R * case.S + (b is not None)
    _assert_within_bound(got, want, scale, terms, case.dtype, "conv2d")


@given(case=conv_cases())
def test_conv2d_gradients_match_reference(case: ConvCase) -> None:
    """conv2d_backward, conv2d_input_grad and conv2d_weight_grad."""
    note(repr(case))
    a = case.laid_out()
    x, w, gy = a["x"], a["weight"], a["grad_out"]
    x64, w64, gy64 = f64(x), f64(w), f64(gy)
    ax, aw, agy = np.abs(x64), np.abs(w64), np.abs(gy64)
    p = case.params
    Ho, Wo = case.out_hw
    x_shape = (case.N, case.C, case.H, case.W)
    w_shape = (case.K, case.C // case.groups, case.R, case.S)
    snap = Snapshot(x, w, gy)

    gx, gw, gb = convext.conv2d_backward(gy, x, w, **p)
    gx_only = convext.conv2d_input_grad(gy, w, x_shape, **p)
    gw_only = convext.conv2d_weight_grad(gy, x, w_shape, **p)
    snap.check()
    for name, out, shape in (("grad_x", gx, x_shape), ("grad_weight", gw, w_shape),
                             ("grad_bias", gb, (case.K,)), ("conv2d_input_grad", gx_only, x_shape),
                             ("conv2d_weight_grad", gw_only, w_shape)):
        note(name)
        assert_fresh(out, case.dtype, shape, [x, w, gy])

    want_gx = ref.conv2d_input_grad(gy64, w64, x_shape, **p)
    scale_gx = ref.conv2d_input_grad(agy, aw, x_shape, **p)
    want_gw = ref.conv2d_weight_grad(gy64, x64, w_shape, **p)
    scale_gw = ref.conv2d_weight_grad(agy, ax, w_shape, **p)
    terms_gx = case.K // case.groups * case.R * case.S
    terms_gw = case.N * Ho * Wo
    _assert_within_bound(gx, want_gx, scale_gx, terms_gx, case.dtype, "conv2d_backward grad_x")
    _assert_within_bound(gx_only, want_gx, scale_gx, terms_gx, case.dtype, "conv2d_input_grad")
    _assert_within_bound(gw, want_gw, scale_gw, terms_gw, case.dtype, "conv2d_backward grad_weight")
    _assert_within_bound(gw_only, want_gw, scale_gw, terms_gw, case.dtype, "conv2d_weight_grad")
    _assert_within_bound(gb, gy64.sum(axis=(0, 2, 3)), agy.sum(axis=(0, 2, 3)), terms_gw,
                         case.dtype, "conv2d_backward grad_bias")
    # the reference's own three-in-one agrees with its parts (guards the oracle)
    r_gx, r_gw, r_gb = ref.conv2d_backward(gy64, x64, w64, **p)
    np.testing.assert_array_equal(r_gx, want_gx)
    np.testing.assert_array_equal(r_gw, want_gw)


# ----------------------------------------------------------------------------
# pooling
# ----------------------------------------------------------------------------
class PoolCase(NamedTuple):
    dtype: np.dtype
    shape: Tuple[int, int, int, int]
    params: Dict[str, Any]  # kernel_size/stride/padding/(dilation)/ceil_mode[/count_include_pad]
    seed: int
    kind: str
    layouts: Dict[str, str]

    def out_shape(self) -> Tuple[int, int, int, int]:
        N, C, H, W = self.shape
        k = _pair(self.params["kernel_size"])
        s = k if self.params.get("stride") is None else _pair(self.params["stride"])
        p = _pair(self.params.get("padding", 0))
        d = _pair(self.params.get("dilation", 1))
        ceil = self.params.get("ceil_mode", False)
        out = []
        for size, kk, ss, pp, dd in zip((H, W), k, s, p, d):
            o = (size + 2 * pp - dd * (kk - 1) - 1 + (ss - 1 if ceil else 0)) // ss + 1
            if ceil and (o - 1) * ss >= size + pp:
                o -= 1
            out.append(o)
        return (N, C, out[0], out[1])

    def laid_out(self) -> Dict[str, Any]:
        """x and grad_out: the drawn values in the drawn memory layouts."""
        arrays = {"x": make_values(self.shape, self.dtype, self.seed, self.kind),
                  "grad_out": make_values(self.out_shape(), self.dtype, self.seed + 1, self.kind)}
        return {k: as_layout(v, self.layouts[k]) for k, v in arrays.items()}


@st.composite
def pool_cases(draw, avg: bool) -> PoolCase:
    dtype = draw(st.sampled_from(DTYPES))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (1, 1) if avg else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 6))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    params: Dict[str, Any] = {"kernel_size": draw(pair_arg(kh, kw))}
    stride_form = draw(st.sampled_from(["default", "none", "given"]))
    if stride_form == "none":
        params["stride"] = None
    elif stride_form == "given":
        params["stride"] = draw(pair_arg(draw(st.integers(1, 4)), draw(st.integers(1, 4))))
    if ph or pw or draw(st.booleans()):
        params["padding"] = draw(pair_arg(ph, pw))
    if not avg and (dh > 1 or dw > 1 or draw(st.booleans())):
        params["dilation"] = draw(pair_arg(dh, dw))
    params["ceil_mode"] = draw(st.booleans())
    if avg:
        params["count_include_pad"] = draw(st.booleans())
    lay = layouts_for(dtype)
    layouts = {k: draw(lay) for k in ("x", "grad_out")}
    return PoolCase(dtype, shape, params, draw(st.integers(0, 2**32 - 1)),
                    draw(st.sampled_from(KINDS)), layouts)


@given(case=pool_cases(avg=False))
def test_max_pool2d_matches_reference(case: PoolCase) -> None:
    """Forward (values and indices, bitwise) and backward with and without indices."""
    note(repr(case))
    out_shape = case.out_shape()
    a = case.laid_out()
    x, gy = a["x"], a["grad_out"]
    snap = Snapshot(x, gy)
    p = case.params
    y = convext.max_pool2d(x, **p)
    y2, idx = convext.max_pool2d(x, return_indices=True, **p)
    gx = convext.max_pool2d_backward(gy, x, **p)
    gx_idx = convext.max_pool2d_backward(gy, x, indices=idx, **p)
    snap.check()

    xr = np.array(x, dtype=case.dtype)
    want_y, want_idx = ref.max_pool2d(xr, return_indices=True, **p)
    for name, out in (("y", y), ("y with indices", y2)):
        assert_fresh(out, case.dtype, out_shape, [x, gy])
        _assert_exact(out, want_y, f"max_pool2d {name}")
    assert_fresh(idx, np.dtype(np.int64), out_shape, [x, gy])
    _assert_exact(idx, want_idx, "max_pool2d indices")

    gy64 = f64(gy)
    want_gx = ref.max_pool2d_backward(gy64, f64(xr), **p)
    scale = ref.max_pool2d_backward(np.abs(gy64), f64(xr), **p)
    terms = out_shape[2] * out_shape[3]
    for name, out in (("recomputed argmax", gx), ("given indices", gx_idx)):
        assert_fresh(out, case.dtype, case.shape, [x, gy, idx])
        _assert_within_bound(out, want_gx, scale, terms, case.dtype, f"max_pool2d_backward {name}")


@given(case=pool_cases(avg=True))
def test_avg_pool2d_matches_reference(case: PoolCase) -> None:
    note(repr(case))
    out_shape = case.out_shape()
    a = case.laid_out()
    x, gy = a["x"], a["grad_out"]
    snap = Snapshot(x, gy)
    p = case.params
    y = convext.avg_pool2d(x, **p)
    gx = convext.avg_pool2d_backward(gy, case.shape, **p)
    snap.check()
    assert_fresh(y, case.dtype, out_shape, [x, gy])
    assert_fresh(gx, case.dtype, case.shape, [x, gy])
    x64, gy64 = f64(x), f64(gy)
    kh, kw = _pair(p["kernel_size"])
    _assert_within_bound(y, ref.avg_pool2d(x64, **p), ref.avg_pool2d(np.abs(x64), **p),
                         kh * kw + 1, case.dtype, "avg_pool2d")
    _assert_within_bound(gx, ref.avg_pool2d_backward(gy64, case.shape, **p),
                         ref.avg_pool2d_backward(np.abs(gy64), case.shape, **p),
                         out_shape[2] * out_shape[3] + 1, case.dtype, "avg_pool2d_backward")


# ----------------------------------------------------------------------------
# relu, rot180, correlate2d / convolve2d
# ----------------------------------------------------------------------------
@given(dtype=st.sampled_from(DTYPES),
       shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6),
       seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(KINDS), data=st.data())
def test_relu_matches_reference(dtype, shape, seed, kind, data) -> None:
    lay = layouts_for(dtype)
    x = as_layout(make_values(shape, dtype, seed, kind), data.draw(lay, label="x layout"))
    gy = as_layout(make_values(shape, dtype, seed + 1, "normal"), data.draw(lay, label="gy layout"))
    snap = Snapshot(x, gy)
    y = convext.relu(x)
    gx = convext.relu_backward(gy, x)
    snap.check()
    xr, gyr = np.array(x, dtype=dtype), np.array(gy, dtype=dtype)
    assert_fresh(y, dtype, shape, [x, gy])
    assert_fresh(gx, dtype, shape, [x, gy])
    _assert_exact(y, ref.relu(xr), "relu")
    _assert_exact(gx, ref.relu_backward(gyr, xr), "relu_backward")


@given(w=st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=2, max_dims=5, min_side=1, max_side=4),
    elements=st.floats(-8, 8, width=dt.itemsize * 8))), layout=st.sampled_from(LAYOUTS[:-1]))
def test_rot180_matches_reference(w: np.ndarray, layout: str) -> None:
    arg = as_layout(w, layout)
    snap = Snapshot(arg)
    got = convext.rot180(arg)
    snap.check()
    assert_fresh(got, w.dtype, w.shape, [arg])
    want = np.array(arg)[..., ::-1, ::-1]
    _assert_exact(got, want, "rot180")
    _assert_exact(got, ref.rot180(np.array(arg)), "rot180 vs reference")
    _assert_exact(convext.rot180(got), np.array(arg), "rot180 twice")


@st.composite
def correlate_cases(draw):
    dtype = draw(st.sampled_from(DTYPES))
    mode = draw(st.sampled_from(["valid", "full", "same"]))
    H, W = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    if mode == "valid":
        R, S = draw(st.integers(1, H)), draw(st.integers(1, W))
        if draw(st.booleans()):  # in2 at least as large in every dimension: scipy swaps
            H, W, R, S = R, S, H, W
    else:
        R, S = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(KINDS))
    lay = layouts_for(dtype)
    in1 = as_layout(make_values((H, W), dtype, seed, kind), draw(lay, label="in1 layout"))
    in2 = as_layout(make_values((R, S), dtype, seed + 1, kind), draw(lay, label="in2 layout"))
    return dtype, mode, in1, in2


@pytest.mark.parametrize("op", ["correlate2d", "convolve2d"])
@given(case=correlate_cases())
def test_correlate_convolve_match_reference_and_scipy(op: str, case) -> None:
    dtype, mode, in1, in2 = case
    snap = Snapshot(in1, in2)
    got = getattr(convext, op)(in1, in2, mode=mode)
    got_default = getattr(convext, op)(in1, in2) if mode == "full" else got
    snap.check()
    a64, b64 = f64(in1), f64(in2)
    want = getattr(ref, op)(a64, b64, mode)
    want_scipy = getattr(scipy.signal, op)(a64, b64, mode=mode)
    np.testing.assert_allclose(want, want_scipy, rtol=1e-12, atol=1e-12)  # oracle sanity
    scale = getattr(ref, op)(np.abs(a64), np.abs(b64), mode)
    assert_fresh(got, dtype, want.shape, [in1, in2])
    terms = min(a64.size, b64.size)
    _assert_within_bound(got, want, scale, terms, dtype, f"{op} {mode}")
    _assert_exact(got_default, got, f"{op} default mode is 'full' (scipy's)")


# ----------------------------------------------------------------------------
# convext.nn layers against the functional reference
# ----------------------------------------------------------------------------
@given(case=conv_cases(max_extra=4), data=st.data())
def test_nn_layers_match_reference(case: ConvCase, data) -> None:
    """Conv2d -> ReLU -> MaxPool2d / AvgPool2d, forward and backward (twice:
    parameter gradients accumulate) against the reference."""
    from convext import nn  # lazily: the layer module may land after this file

    p = case.params
    conv = nn.Conv2d(case.C, case.K, (case.R, case.S), stride=p["stride"], padding=p["padding"],
                     dilation=p["dilation"], groups=case.groups, bias=case.bias,
                     dtype=case.dtype, rng=case.seed)
    a = case.arrays()
    x = as_layout(a["x"], case.layouts["x"])
    x64, w64 = f64(x), f64(conv.weight.data)
    b64 = None if conv.bias is None else f64(conv.bias.data)
    Ho, Wo = case.out_hw

    y = conv(x)
    terms = case.C // case.groups * case.R * case.S + case.bias
    _assert_within_bound(y, ref.conv2d(x64, w64, b64, **p),
                         ref.conv2d(np.abs(x64), np.abs(w64), None if b64 is None else np.abs(b64), **p),
                         terms, case.dtype, "nn.Conv2d forward")

    relu = nn.ReLU()
    r = relu(y)
    _assert_exact(r, ref.relu(y), "nn.ReLU forward")

    k = data.draw(st.integers(1, 3), label="pool kernel")
    k = min(k, Ho, Wo)
    pool_kind = data.draw(st.sampled_from(["max", "avg"]), label="pool")
    pool = nn.MaxPool2d(k, stride=1, padding=k // 2) if pool_kind == "max" else nn.AvgPool2d(
        k, stride=1, padding=k // 2, count_include_pad=False)
    z = pool(r)
    pool_ref = ref.max_pool2d if pool_kind == "max" else ref.avg_pool2d
    extra = {} if pool_kind == "max" else {"count_include_pad": False}
    z_ref = pool_ref(f64(r), k, 1, k // 2, **extra)
    _assert_within_bound(z, z_ref, pool_ref(np.abs(f64(r)), k, 1, k // 2, **extra), k * k,
                         case.dtype, f"nn.{type(pool).__name__} forward")

    gz = make_values(z.shape, case.dtype, case.seed + 7, "normal")
    gz64 = f64(gz)
    gr = pool.backward(gz)
    if pool_kind == "max":
        gr_ref = ref.max_pool2d_backward(gz64, f64(r), k, 1, k // 2)
        gr_scale = ref.max_pool2d_backward(np.abs(gz64), f64(r), k, 1, k // 2)
    else:
        gr_ref = ref.avg_pool2d_backward(gz64, r.shape, k, 1, k // 2, count_include_pad=False)
        gr_scale = ref.avg_pool2d_backward(np.abs(gz64), r.shape, k, 1, k // 2,
                                           count_include_pad=False)
    _assert_within_bound(gr, gr_ref, gr_scale, k * k + 1, case.dtype,
                         f"nn.{type(pool).__name__} backward")
    gyv = relu.backward(gr)
    _assert_exact(gyv, ref.relu_backward(gr, y), "nn.ReLU backward")

    gy64 = f64(gyv)
    gx = conv.backward(gyv)
    _assert_within_bound(gx, ref.conv2d_input_grad(gy64, w64, x64.shape, **p),
                         ref.conv2d_input_grad(np.abs(gy64), np.abs(w64), x64.shape, **p),
                         case.K // case.groups * case.R * case.S, case.dtype, "nn.Conv2d grad_x")
    want_gw = ref.conv2d_weight_grad(gy64, x64, w64.shape, **p)
    scale_gw = ref.conv2d_weight_grad(np.abs(gy64), np.abs(x64), w64.shape, **p)
    terms_gw = case.N * Ho * Wo
    _assert_within_bound(conv.weight.grad, want_gw, scale_gw, terms_gw, case.dtype,
                         "nn.Conv2d weight.grad")
    if conv.bias is not None:
        _assert_within_bound(conv.bias.grad, gy64.sum((0, 2, 3)), np.abs(gy64).sum((0, 2, 3)),
                             terms_gw, case.dtype, "nn.Conv2d bias.grad")
    # a second backward accumulates into .grad
    conv.backward(gyv)
    _assert_within_bound(conv.weight.grad, 2 * want_gw, 2 * scale_gw, terms_gw + 1, case.dtype,
                         "nn.Conv2d weight.grad after two backward calls")


# ----------------------------------------------------------------------------
# invalid calls
# ----------------------------------------------------------------------------
class BadCall(NamedTuple):
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any]
    expected: Tuple[type, ...]


VALUE = (ValueError,)
TYPE = (TypeError,)
VALUE_OR_TYPE = (ValueError, TypeError)
BAD_DTYPES = (np.int32, np.int64, np.uint8, np.bool_, np.float16, np.complex128)
#: non-integer spellings of an integer parameter
NON_INTEGERS = (1.5, 2.0, "1", None, np.float64(1.0), (1, 1.5), (1, 1, 1), (), [1, "a"])
#: a bad-call test only needs a few base configurations per mutation
BAD_CALL_SETTINGS = settings(max_examples=max(8, settings.default.max_examples // 5))


def _astype(a: Any, dt: Any) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(a).astype(dt)


def _check_bad_call(op: str, call: BadCall) -> None:
    """convext raises the expected error, and so does the reference (the
    strategy really produced an invalid call)."""
    note(repr(call))
    with pytest.raises(call.expected):
        getattr(convext, op)(*call.args, **call.kwargs)
    with pytest.raises(call.expected):
        getattr(ref, op)(*call.args, **call.kwargs)


# -- conv2d family ------------------------------------------------------------
_CONV_USES = {
    "conv2d": {"x", "weight", "bias"},
    "conv2d_backward": {"grad_out", "x", "weight"},
    "conv2d_input_grad": {"grad_out", "weight", "input_shape"},
    "conv2d_weight_grad": {"grad_out", "x", "weight_shape"},
}
_CONV_MUTATIONS = {
    # mutation: the argument it needs (None: every op)
    "stride_lt_1": None, "dilation_lt_1": None, "padding_negative": None, "groups_lt_1": None,
    "groups_not_dividing_channels": None, "filters_not_dividing_groups": None,
    "channel_mismatch": None, "kernel_larger_than_padded_input": None,
    "non_integer_stride": None, "non_integer_padding": None, "non_integer_dilation": None,
    "non_integer_groups": None, "bad_dtype": None, "mixed_dtypes": None,
    "weight_ndim": "weight", "weight_empty": "weight", "x_ndim": "x", "x_empty": "x",
    "bias_wrong_length": "bias", "bias_wrong_ndim": "bias", "bias_bad_dtype": "bias",
    "grad_out_wrong_shape": "grad_out", "grad_out_wrong_ndim": "grad_out",
    "input_shape_mismatch": "input_shape", "input_shape_negative": "input_shape",
    "input_shape_zero": "input_shape", "input_shape_wrong_length": "input_shape",
    "input_shape_non_integer": "input_shape",
    "weight_shape_mismatch": "weight_shape", "weight_shape_negative": "weight_shape",
    "weight_shape_wrong_length": "weight_shape",
}
CONV_BAD_CASES = [(op, m) for op, uses in _CONV_USES.items() for m, need in _CONV_MUTATIONS.items()
                  if need is None or need in uses]


@st.composite
def bad_conv_calls(draw, op: str, m: str) -> BadCall:
    """A valid conv call of ``op`` with one aspect ``m`` made invalid."""
    case = draw(conv_cases(max_extra=3))
    uses = _CONV_USES[op]
    arr = case.arrays()
    x, w, b, gy = arr["x"], arr["weight"], arr["bias"], arr["grad_out"]
    bias: Optional[np.ndarray] = b if (case.bias or "bias" in m) else None
    p = dict(case.params)
    x_shape, w_shape = list(x.shape), list(w.shape)
    (sh, sw), (ph, pw) = _pair(p["stride"]), _pair(p["padding"])
    which = draw(st.integers(0, 2))  # which axis / argument a mutation hits
    arrays = sorted(uses & {"x", "weight", "bias", "grad_out"})
    expected = VALUE

    def pair_with(bad: Any) -> Any:
        return [(bad, 1), (1, bad), bad][which]

    def new(shape: Sequence[int], dt: Any = case.dtype) -> np.ndarray:
        return make_values(shape, dt, case.seed + 5, "normal")

    if m == "stride_lt_1":
        p["stride"] = pair_with(draw(st.sampled_from([0, -1, -2**40])))
    elif m == "dilation_lt_1":
        p["dilation"] = pair_with(draw(st.sampled_from([0, -1])))
    elif m == "padding_negative":
        p["padding"] = pair_with(draw(st.sampled_from([-1, -3, -2**62])))
    elif m == "groups_lt_1":
        p["groups"] = draw(st.sampled_from([0, -1, -case.C]))
    elif m == "groups_not_dividing_channels":
        p["groups"] = case.C + 1
    elif m == "filters_not_dividing_groups":  # K = 2 * Kg + 1 with groups = 2
        p["groups"] = 2
        x = new((case.N, 2, case.H, case.W))
        w = new((3, 1, case.R, case.S))
        x_shape, w_shape = list(x.shape), list(w.shape)
    elif m == "channel_mismatch":
        x = new((case.N, case.C + 1, case.H, case.W))
        x_shape = list(x.shape)
    elif m == "kernel_larger_than_padded_input":
        R, S = case.R, case.S
        if which != 1:
            R = case.H + 2 * ph + 1
        if which != 0:
            S = case.W + 2 * pw + 1
        w = new((case.K, case.C // case.groups, R, S))
        w_shape = list(w.shape)
    elif m.startswith("non_integer_"):
        p[m[len("non_integer_"):]] = draw(st.sampled_from(NON_INTEGERS))
        expected = VALUE_OR_TYPE
    elif m == "bad_dtype":
        dt = draw(st.sampled_from(BAD_DTYPES))
        target = draw(st.sampled_from(arrays))
        x, w, gy = [_astype(v, dt) if target == k else v
                    for k, v in (("x", x), ("weight", w), ("grad_out", gy))]
        bias = _astype(b, dt) if target == "bias" else bias
        expected = TYPE
    elif m in ("mixed_dtypes", "bias_bad_dtype"):
        other = np.float32 if case.dtype == np.float64 else np.float64
        target = "bias" if m == "bias_bad_dtype" else draw(st.sampled_from(arrays))
        x, w, gy = [v.astype(other) if target == k else v
                    for k, v in (("x", x), ("weight", w), ("grad_out", gy))]
        bias = b.astype(other) if target == "bias" else bias
        expected = TYPE
    elif m == "weight_ndim":
        w = w[0] if which else w[None]
    elif m == "weight_empty":
        w = [w[:0], w[:, :, :0], w[:, :, :, :0]][which]
    elif m == "x_ndim":
        x = x[0] if which else x[None]
    elif m == "x_empty":
        x = [x[:0], x[:, :0], x[:, :, :0]][which]
    elif m == "bias_wrong_length":
        bias = new((case.K + 1,))
    elif m == "bias_wrong_ndim":
        bias = b.reshape(1, -1)
    elif m == "grad_out_wrong_shape":
        N, K, Ho, Wo = gy.shape
        gy = new([(N, K, Ho + 1, Wo), (N, K + 1, Ho, Wo), (N, K, Ho, Wo + 1)][which])
    elif m == "grad_out_wrong_ndim":
        gy = gy[0] if which else gy[None]
    elif m == "input_shape_mismatch":  # a shape whose forward output differs from grad_out
        x_shape = [[case.N, case.C, case.H + sh, case.W], [case.N, case.C, case.H, case.W + sw],
                   [case.N + 1, case.C, case.H, case.W]][which]
    elif m == "input_shape_negative":
        x_shape[[2, 3, 0][which]] *= -1
    elif m == "input_shape_zero":
        x_shape[which] = 0
    elif m == "input_shape_wrong_length":
        x_shape = [x_shape[1:], x_shape + [1], []][which]
        expected = VALUE_OR_TYPE
    elif m == "input_shape_non_integer":
        x_shape[2] = [float(x_shape[2]), str(x_shape[2]), None][which]
        expected = VALUE_OR_TYPE
    elif m == "weight_shape_mismatch":
        w_shape = [[case.K + case.groups] + w_shape[1:], [w_shape[0], w_shape[1] + 1] + w_shape[2:],
                   [case.K + case.groups] + w_shape[1:]][which]
    elif m == "weight_shape_negative":
        w_shape[[2, 3, 0][which]] = -1
    elif m == "weight_shape_wrong_length":
        w_shape = [w_shape[1:], w_shape + [1], []][which]
        expected = VALUE_OR_TYPE
    else:  # pragma: no cover
        raise AssertionError(m)

    args = {
        "conv2d": (x, w, bias),
        "conv2d_backward": (gy, x, w),
        "conv2d_input_grad": (gy, w, tuple(x_shape)),
        "conv2d_weight_grad": (gy, x, tuple(w_shape)),
    }[op]
    return BadCall(args, p, expected)


@pytest.mark.parametrize("op, mutation", CONV_BAD_CASES, ids=[f"{o}-{m}" for o, m in CONV_BAD_CASES])
@BAD_CALL_SETTINGS
@given(data=st.data())
def test_conv_ops_reject_invalid_calls(op: str, mutation: str, data) -> None:
    _check_bad_call(op, data.draw(bad_conv_calls(op, mutation), label="call"))


# -- pooling -------------------------------------------------------------------
_POOL_MUTATIONS = {
    "kernel_lt_1": None, "stride_lt_1": None, "padding_negative": None,
    "padding_gt_half_kernel": None, "kernel_larger_than_padded_input": None,
    "non_integer_kernel_size": None, "non_integer_stride": None, "non_integer_padding": None,
    "dilation_lt_1": "max", "non_integer_dilation": "max",
    "x_ndim": "x", "x_empty": "x", "bad_dtype": "x",
    "grad_out_wrong_shape": "backward", "grad_out_bad_dtype": "backward",
    "mixed_dtypes": "max_pool2d_backward", "indices_wrong_shape": "max_pool2d_backward",
    "indices_float": "max_pool2d_backward", "indices_out_of_range": "max_pool2d_backward",
    "input_shape_mismatch": "avg_pool2d_backward", "input_shape_negative": "avg_pool2d_backward",
    "input_shape_wrong_length": "avg_pool2d_backward",
}


def _pool_applies(op: str, need: Optional[str]) -> bool:
    if need is None or need == op:
        return True
    if need == "max":
        return op.startswith("max")
    if need == "x":
        return op != "avg_pool2d_backward"
    if need == "backward":
        return op.endswith("backward")
    return False


POOL_BAD_CASES = [(op, m) for op in ("max_pool2d", "max_pool2d_backward", "avg_pool2d",
                                     "avg_pool2d_backward")
                  for m, need in _POOL_MUTATIONS.items() if _pool_applies(op, need)]


@st.composite
def bad_pool_calls(draw, op: str, m: str) -> BadCall:
    """A valid pooling call of ``op`` with one aspect ``m`` made invalid."""
    case = draw(pool_cases(avg=op.startswith("avg")))
    p = dict(case.params)
    N, C, H, W = case.shape
    x = make_values(case.shape, case.dtype, case.seed, case.kind)
    gy = make_values(case.out_shape(), case.dtype, case.seed + 1, "normal")
    in_shape: Any = list(case.shape)
    kh, kw = _pair(p["kernel_size"])
    sh, sw = _pair(p.get("stride") or p["kernel_size"])
    indices: Any = None
    which = draw(st.integers(0, 2))
    expected = VALUE

    def pair_with(bad: Any) -> Any:
        return [(bad, 1), (1, bad), bad][which]

    if m == "kernel_lt_1":
        p["kernel_size"] = pair_with(draw(st.sampled_from([0, -1])))
        p["padding"] = 0
    elif m == "stride_lt_1":
        p["stride"] = pair_with(draw(st.sampled_from([0, -1])))
    elif m == "dilation_lt_1":
        p["dilation"] = pair_with(draw(st.sampled_from([0, -2])))
    elif m == "padding_negative":
        p["padding"] = pair_with(-1)
    elif m == "padding_gt_half_kernel":
        p["padding"] = [(kh // 2 + 1, 0), (0, kw // 2 + 1), (kh // 2 + 1, kw // 2 + 1)][which]
    elif m == "kernel_larger_than_padded_input":
        p["kernel_size"] = [(H + 1, kw), (kh, W + 1), (H + 1, W + 1)][which]
        p["padding"] = 0
        p["ceil_mode"] = False  # PyTorch's ceil_mode accepts such a kernel (one window)
        p.pop("dilation", None)
    elif m.startswith("non_integer_"):
        key = m[len("non_integer_"):]
        bad = draw(st.sampled_from(NON_INTEGERS))
        if key == "stride" and bad is None:
            bad = 1.5  # None is the legitimate "default to kernel_size"
        p[key] = bad
        expected = VALUE_OR_TYPE
    elif m == "x_ndim":
        x = x[0] if which else x[None]
    elif m == "x_empty":
        x = [x[:0], x[:, :0], x[:, :, :0]][which]
    elif m == "bad_dtype":
        x = _astype(x, draw(st.sampled_from(BAD_DTYPES)))
        expected = TYPE
    elif m == "grad_out_wrong_shape":
        s = list(gy.shape)
        s[[2, 3, 1][which]] += 1
        gy = make_values(s, case.dtype, 0, "normal")
    elif m == "grad_out_bad_dtype":
        gy = _astype(gy, draw(st.sampled_from(BAD_DTYPES)))
        expected = TYPE
    elif m == "mixed_dtypes":
        gy = gy.astype(np.float32 if case.dtype == np.float64 else np.float64)
        expected = TYPE
    elif m.startswith("indices_"):
        # dilation 1: no window lies wholly in the padding, so every valid index
        # is inside the plane and any index outside it is invalid
        p.pop("dilation", None)
        _, indices = ref.max_pool2d(x, return_indices=True, **p)
        indices = indices.copy()
        gy = make_values(indices.shape, case.dtype, case.seed + 1, "normal")
        if m == "indices_wrong_shape":
            indices = [indices[:, :, :-1] if indices.shape[2] > 1 else indices[:, :, :, :0],
                       indices[None], indices.reshape(-1)][which]
        elif m == "indices_float":
            indices = indices.astype(np.float64)
            expected = TYPE
        else:
            indices.flat[draw(st.integers(0, indices.size - 1))] = [-1, H * W, 2**40][which]
    elif m == "input_shape_mismatch":  # a shape whose pooled size differs from grad_out
        in_shape[2 + which % 2] += sh if which % 2 == 0 else sw
        if which == 2:
            in_shape[1] += 1
    elif m == "input_shape_negative":
        in_shape[[2, 3, 0][which]] *= -1
    elif m == "input_shape_wrong_length":
        in_shape = [in_shape[1:], in_shape + [1], []][which]
        expected = VALUE_OR_TYPE
    else:  # pragma: no cover
        raise AssertionError(m)

    if op == "max_pool2d":
        args: Tuple[Any, ...] = (x,)
        p["return_indices"] = draw(st.booleans())
    elif op == "max_pool2d_backward":
        args = (gy, x)
        if indices is not None:
            p["indices"] = indices
    elif op == "avg_pool2d":
        args = (x,)
    else:
        args = (gy, tuple(in_shape))
    return BadCall(args, p, expected)


@pytest.mark.parametrize("op, mutation", POOL_BAD_CASES, ids=[f"{o}-{m}" for o, m in POOL_BAD_CASES])
@BAD_CALL_SETTINGS
@given(data=st.data())
def test_pool_ops_reject_invalid_calls(op: str, mutation: str, data) -> None:
    _check_bad_call(op, data.draw(bad_pool_calls(op, mutation), label="call"))


# -- relu, rot180, correlate2d / convolve2d -------------------------------------
OTHER_BAD_CASES = (
    [("relu", m) for m in ("bad_dtype", "empty")]
    + [("relu_backward", m) for m in ("shape_mismatch", "mixed_dtypes", "bad_dtype", "empty")]
    + [("rot180", m) for m in ("ndim_0", "ndim_1")]
    + [(op, m) for op in ("correlate2d", "convolve2d")
       for m in ("unknown_mode", "non_string_mode", "in1_ndim", "in2_ndim", "empty",
                 "valid_mode_neither_larger")]  # complex: accepted since issue 16
)


@st.composite
def bad_other_calls(draw, op: str, m: str) -> BadCall:
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    a = make_values((draw(st.integers(1, 5)), draw(st.integers(2, 5))), dtype, seed, "normal")
    b = make_values((draw(st.integers(1, a.shape[0])), draw(st.integers(1, a.shape[1]))), dtype,
                    seed + 1, "normal")
    which = draw(st.integers(0, 1))
    other = np.float32 if dtype == np.float64 else np.float64
    mode = draw(st.sampled_from(["valid", "full", "same"]))
    bad_dt = draw(st.sampled_from(BAD_DTYPES))
    table = {
        ("relu", "bad_dtype"): ((_astype(a, bad_dt),), {}, TYPE),
        ("relu", "empty"): ((a[:0],), {}, VALUE),
        ("relu_backward", "shape_mismatch"): ([(a, a[:, :-1]), (a[:, :-1], a)][which], {}, VALUE),
        ("relu_backward", "mixed_dtypes"): ([(a, a.astype(other)), (a.astype(other), a)][which],
                                            {}, TYPE),
        ("relu_backward", "bad_dtype"): ([(_astype(a, bad_dt), a), (a, _astype(a, bad_dt))][which],
                                         {}, TYPE),
        ("relu_backward", "empty"): ((a[:0], a[:0]), {}, VALUE),
        ("rot180", "ndim_0"): ((a[0, 0],), {}, VALUE),
        ("rot180", "ndim_1"): ((a[0],), {}, VALUE),
    }
    if (op, m) in table:
        return BadCall(*table[(op, m)])
    if m == "unknown_mode":
        return BadCall((a, b), {"mode": draw(st.sampled_from(["bogus", "VALID", "", "full "]))},
                       VALUE)
    if m == "non_string_mode":
        return BadCall((a, b), {"mode": draw(st.sampled_from([None, 0, 1.0]))}, VALUE_OR_TYPE)
    if m == "in1_ndim":
        return BadCall(([a[0], a[None]][which], b), {"mode": mode}, VALUE)
    if m == "in2_ndim":
        return BadCall((a, [b[0], b[None]][which]), {"mode": mode}, VALUE)
    if m == "empty":
        return BadCall([(a[:0], b), (a, b[:, :0])][which], {"mode": mode}, VALUE)
    if m == "complex":
        return BadCall([(a.astype(np.complex128), b), (a, b.astype(np.complex128))][which],
                       {"mode": mode}, TYPE)
    if m == "valid_mode_neither_larger":  # in1 is taller, in2 is wider
        H = draw(st.integers(2, 6))
        W = draw(st.integers(1, 5))
        tall = make_values((H, W), dtype, seed, "normal")
        wide = make_values((draw(st.integers(1, H - 1)), W + draw(st.integers(1, 3))), dtype,
                           seed + 1, "normal")
        return BadCall([(tall, wide), (wide, tall)][which], {"mode": "valid"}, VALUE)
    raise AssertionError((op, m))  # pragma: no cover


@pytest.mark.parametrize("op, mutation", OTHER_BAD_CASES,
                         ids=[f"{o}-{m}" for o, m in OTHER_BAD_CASES])
@BAD_CALL_SETTINGS
@given(data=st.data())
def test_other_ops_reject_invalid_calls(op: str, mutation: str, data) -> None:
    _check_bad_call(op, data.draw(bad_other_calls(op, mutation), label="call"))
