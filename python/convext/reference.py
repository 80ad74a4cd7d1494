"""Pure-numpy reference implementation of every convext op (the test oracle).

This module is deliberately independent of the C++ engine: it imports numpy
only, never ``convext._core``, and it is written straight from the defining
equations rather than from the correlation identities the engine relies on,
so that comparing the two actually tests something.

Conventions (the same as the public functional API):

* Layout is NCHW; conv weights are ``(K, C // groups, R, S)`` as in PyTorch.
* Parameters that take a pair accept an ``int`` or a 2-tuple ``(h, w)``.
* Every function vectorises over the output; Python loops run only over the
  filter (or pooling window) taps.
* float32 and float64 inputs are supported.  Sums (correlations, convolutions,
  average pooling, gradient scatters) are *accumulated in float64* and cast
  back to the input dtype at the end, so a float32 result here is the
  (nearly) correctly rounded value; the engine, which accumulates in float32,
  is compared with a tolerance.  Max pooling and ReLU only select values and
  are exact in the input dtype.

Definitions used below (``*`` is a product, sums over all taps):

* valid correlation   ``out[i, j] = sum_{r,s} in1[i + r, j + s] * in2[r, s]``;
  convolution is correlation with ``rot180(in2)``.
* conv2d              ``y[n, k, h, w] = b[k] + sum_{c,r,s}
  xpad[n, g*Cg + c, h*sh + r*dh, w*sw + s*dw] * W[k, c, r, s]``
  with ``g = k // (K // groups)``.
* input gradient      the adjoint of the above: each ``dy[n, k, h, w]``
  scatters ``dy * W[k, c, r, s]`` back to the input position it was read from
  (positions in the padding are dropped, positions never read stay 0).
* weight gradient     ``dW[k, c, r, s] = sum_{n,h,w} dy[n, k, h, w] *
  xpad[n, g*Cg + c, h*sh + r*dh, w*sw + s*dw]``.
"""
from __future__ import annotations

import numbers
import operator
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "correlate2d",
    "convolve2d",
    "rot180",
    "conv2d",
    "conv2d_backward",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu",
    "relu_backward",
]

IntPair = Union[int, Tuple[int, int]]
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ACC = np.float64  # accumulation dtype of every sum in this module


# ----------------------------------------------------------------------------
# argument helpers
# ----------------------------------------------------------------------------
def _int(value: Any, op: str, name: str) -> int:
    """Return ``value`` as a Python int; TypeError for bool/float/str/..."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an integer, got {value!r}")
    return operator.index(value)


def _pair(value: Any, op: str, name: str) -> Tuple[int, int]:
    """Accept an int or a sequence of two ints, PyTorch style."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        return (_int(value[0], op, name), _int(value[1], op, name))
    v = _int(value, op, name)
    return (v, v)


def _positive(pair: Tuple[int, int], op: str, name: str) -> Tuple[int, int]:
    if pair[0] < 1 or pair[1] < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {pair}")
    return pair


def _nonneg(pair: Tuple[int, int], op: str, name: str) -> Tuple[int, int]:
    if pair[0] < 0 or pair[1] < 0:
        raise ValueError(f"{op}: {name} must be >= 0, got {pair}")
    return pair


def _float_array(a: ArrayLike, op: str, name: str, ndim: Optional[int] = None) -> NDArray[Any]:
    """np.asarray + dtype/ndim/emptiness checks (never copies needlessly)."""
    arr = np.asarray(a)
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{op}: {name} must not be empty, got shape {arr.shape}")
    return arr


def _same_dtype(op: str, **arrays: NDArray[Any]) -> np.dtype:
    items = list(arrays.items())
    name0, a0 = items[0]
    for name, a in items[1:]:
        if a.dtype != a0.dtype:
            raise TypeError(
                f"{op}: all arrays must share one dtype, "
                f"got {name0} {a0.dtype} and {name} {a.dtype}"
            )
    return a0.dtype


def _shape4(shape: Any, op: str, name: str) -> Tuple[int, int, int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 4:
        raise ValueError(f"{op}: {name} must be a tuple of 4 ints, got {shape!r}")
    out = tuple(_int(v, op, name) for v in shape)
    if min(out) < 1:
        raise ValueError(f"{op}: {name} must have positive entries, got {out}")
    return out  # type: ignore[return-value]


def _tap_slice(start: int, step: int, count: int) -> slice:
    """Slice selecting ``start, start + step, ..., start + (count - 1) * step``."""
    return slice(start, start + step * (count - 1) + 1, step)


# ----------------------------------------------------------------------------
# 2-D correlation / convolution (scipy.signal semantics, zero fill)
# ----------------------------------------------------------------------------
_MODES = ("valid", "full", "same")


def _corr_valid(a: NDArray[Any], k: NDArray[Any]) -> NDArray[np.float64]:
    """Valid correlation of ``a`` (H, W) with ``k`` (R, S), R <= H, S <= W, float64."""
    H, W = a.shape
    R, S = k.shape
    Ho, Wo = H - R + 1, W - S + 1
    a64 = a.astype(_ACC, copy=False)
    k64 = k.astype(_ACC, copy=False)
    out = np.zeros((Ho, Wo), dtype=_ACC)
    for r in range(R):
        for s in range(S):
            out += k64[r, s] * a64[r : r + Ho, s : s + Wo]
    return out


def _check_corr_inputs(in1: ArrayLike, in2: ArrayLike, mode: Any, op: str):
    a = np.asarray(in1)
    b = np.asarray(in2)
    for name, arr in (("in1", a), ("in2", b)):
        if arr.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{op}: {name} must be 2-D, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{op}: {name} must not be empty, got shape {arr.shape}")
    _same_dtype(op, in1=a, in2=b)
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of 'valid', 'full', 'same', got {mode!r}")
    return a, b


def _correlate2d(a: NDArray[Any], b: NDArray[Any], mode: str, same_offset) -> NDArray[Any]:
    H, W = a.shape
    R, S = b.shape
    if mode == "valid":
        if R <= H and S <= W:
            out = _corr_valid(a, b)
        elif R >= H and S >= W:
            # scipy swaps the operands; correlation with swapped operands is
            # the 180-degree rotation of the original one.
            out = _corr_valid(b, a)[::-1, ::-1]
        else:
            raise ValueError(
                "correlate2d: for 'valid' mode one of in1 and in2 must be at least as large "
                f"as the other in every dimension, got in1 {a.shape} and in2 {b.shape}"
            )
    else:
        # full correlation = valid correlation of in1 zero-padded by (R-1, S-1)
        padded = np.zeros((H + 2 * (R - 1), W + 2 * (S - 1)), dtype=a.dtype)
        padded[R - 1 : R - 1 + H, S - 1 : S - 1 + W] = a
        out = _corr_valid(padded, b)
        if mode == "same":
            oh, ow = same_offset(R), same_offset(S)
            out = out[oh : oh + H, ow : ow + W]
    return np.ascontiguousarray(out, dtype=a.dtype)


def correlate2d(in1: ArrayLike, in2: ArrayLike, mode: str = "valid") -> NDArray[Any]:
    """2-D cross-correlation, as ``scipy.signal.correlate2d`` with zero fill.

    Parameters
    ----------
    in1, in2 : array_like
        2-D float32/float64 arrays of the same dtype.
    mode : {"valid", "full", "same"}
        "same" returns the part of "full" of in1's shape, starting at
        ``(R // 2, S // 2)`` (scipy's centring for correlation).

    Returns
    -------
    numpy.ndarray
        New array of in1's dtype.
    """
    a, b = _check_corr_inputs(in1, in2, mode, "correlate2d")
    return _correlate2d(a, b, mode, lambda n: n // 2)


def convolve2d(in1: ArrayLike, in2: ArrayLike, mode: str = "valid") -> NDArray[Any]:
    """2-D convolution, as ``scipy.signal.convolve2d`` with zero fill.

    Convolution is correlation with ``rot180(in2)``; for "same" scipy centres
    the window at ``((R - 1) // 2, (S - 1) // 2)`` of the "full" result.

    Parameters
    ----------
    in1, in2 : array_like
        2-D float32/float64 arrays of the same dtype.
    mode : {"valid", "full", "same"}

    Returns
    -------
    numpy.ndarray
        New array of in1's dtype.
    """
    a, b = _check_corr_inputs(in1, in2, mode, "convolve2d")
    return _correlate2d(a, b[::-1, ::-1], mode, lambda n: (n - 1) // 2)


def rot180(w: ArrayLike) -> NDArray[Any]:
    """Rotate the last two axes by 180 degrees (any ndim >= 2); a new array.

    Parameters
    ----------
    w : array_like
        Array with at least two dimensions.

    Returns
    -------
    numpy.ndarray
        ``w[..., ::-1, ::-1]`` as a new C-contiguous array of w's dtype.
    """
    arr = np.asarray(w)
    if arr.ndim < 2:
        raise ValueError(f"rot180: w must have at least 2 dimensions, got shape {arr.shape}")
    return np.array(arr[..., ::-1, ::-1], order="C", copy=True)


# ----------------------------------------------------------------------------
# conv2d
# ----------------------------------------------------------------------------
class _ConvGeom:
    """Shape arithmetic of one conv2d call (checked)."""

    def __init__(self, op, x_shape, w_shape, stride, padding, dilation, groups):
        self.stride = _positive(_pair(stride, op, "stride"), op, "stride")
        self.padding = _nonneg(_pair(padding, op, "padding"), op, "padding")
        self.dilation = _positive(_pair(dilation, op, "dilation"), op, "dilation")
        groups = _int(groups, op, "groups")
        if groups < 1:
            raise ValueError(f"{op}: groups must be >= 1, got {groups}")
        N, C, H, W = x_shape
        K, Cg, R, S = w_shape
        if C % groups != 0:
            raise ValueError(f"{op}: x has {C} channels, not divisible by groups={groups}")
        if K % groups != 0:
            raise ValueError(f"{op}: weight has {K} filters, not divisible by groups={groups}")
        if Cg * groups != C:
            raise ValueError(
                f"{op}: x has {C} channels but weight expects {Cg * groups} (groups={groups})"
            )
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        Hp, Wp = H + 2 * ph, W + 2 * pw
        Rd, Sd = dh * (R - 1) + 1, dw * (S - 1) + 1
        if Rd > Hp or Sd > Wp:
            raise ValueError(
                f"{op}: padded input {Hp}x{Wp} is smaller than the dilated kernel {Rd}x{Sd}"
            )
        self.N, self.C, self.H, self.W = N, C, H, W
        self.K, self.Cg, self.R, self.S = K, Cg, R, S
        self.G, self.Kg = groups, K // groups
        self.Ho = (Hp - Rd) // sh + 1
        self.Wo = (Wp - Sd) // sw + 1

    @property
    def out_shape(self) -> Tuple[int, int, int, int]:
        return (self.N, self.K, self.Ho, self.Wo)

    def taps(self):
        """Yield (r, s, row slice, col slice) into the padded input per tap."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        for r in range(self.R):
            for s in range(self.S):
                yield r, s, _tap_slice(r * dh, sh, self.Ho), _tap_slice(s * dw, sw, self.Wo)

    def pad(self, x: NDArray[Any]) -> NDArray[np.float64]:
        ph, pw = self.padding
        xp = np.zeros((self.N, self.C, self.H + 2 * ph, self.W + 2 * pw), dtype=_ACC)
        xp[:, :, ph : ph + self.H, pw : pw + self.W] = x
        return xp


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> NDArray[Any]:
    """2-D convolution layer forward pass (``torch.nn.functional.conv2d``).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    weight : array_like, shape (K, C // groups, R, S)
    bias : array_like, shape (K,), optional
    stride, padding, dilation : int or (int, int)
    groups : int

    Returns
    -------
    numpy.ndarray, shape (N, K, Ho, Wo), x's dtype
    """
    op = "conv2d"
    xa = _float_array(x, op, "x", 4)
    wa = _float_array(weight, op, "weight", 4)
    arrays = {"x": xa, "weight": wa}
    if bias is not None:
        ba = _float_array(bias, op, "bias", 1)
        arrays["bias"] = ba
    dtype = _same_dtype(op, **arrays)
    g = _ConvGeom(op, xa.shape, wa.shape, stride, padding, dilation, groups)
    if bias is not None and ba.shape[0] != g.K:
        raise ValueError(f"{op}: bias must have {g.K} elements, got shape {ba.shape}")

    xp = g.pad(xa).reshape(g.N, g.G, g.Cg, xa.shape[2] + 2 * g.padding[0], -1)
    w64 = wa.astype(_ACC).reshape(g.G, g.Kg, g.Cg, g.R, g.S)
    out = np.zeros((g.N, g.G, g.Kg, g.Ho, g.Wo), dtype=_ACC)
    for r, s, rows, cols in g.taps():
        out += np.einsum("ngchw,gkc->ngkhw", xp[:, :, :, rows, cols], w64[:, :, :, r, s])
    out = out.reshape(g.out_shape)
    if bias is not None:
        out += ba.astype(_ACC)[None, :, None, None]
    return out.astype(dtype)


def conv2d_input_grad(
    grad_out: ArrayLike,
    weight: ArrayLike,
    input_shape: Sequence[int],
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> NDArray[Any]:
    """Gradient of conv2d with respect to its input (``torch.nn.grad.conv2d_input``).

    Parameters
    ----------
    grad_out : array_like, shape (N, K, Ho, Wo)
    weight : array_like, shape (K, C // groups, R, S)
    input_shape : tuple of 4 ints (N, C, H, W)
    stride, padding, dilation, groups : as for :func:`conv2d`

    Returns
    -------
    numpy.ndarray, shape input_shape
        Rows/columns of x that no output reads (a stride skipping the tail)
        get 0.
    """
    op = "conv2d_input_grad"
    gy = _float_array(grad_out, op, "grad_out", 4)
    wa = _float_array(weight, op, "weight", 4)
    dtype = _same_dtype(op, grad_out=gy, weight=wa)
    shape = _shape4(input_shape, op, "input_shape")
    g = _ConvGeom(op, shape, wa.shape, stride, padding, dilation, groups)
    if gy.shape != g.out_shape:
        raise ValueError(f"{op}: grad_out must have shape {g.out_shape}, got {gy.shape}")
    ph, pw = g.padding
    gxp = np.zeros((g.N, g.G, g.Cg, g.H + 2 * ph, g.W + 2 * pw), dtype=_ACC)
    gy64 = gy.astype(_ACC).reshape(g.N, g.G, g.Kg, g.Ho, g.Wo)
    w64 = wa.astype(_ACC).reshape(g.G, g.Kg, g.Cg, g.R, g.S)
    for r, s, rows, cols in g.taps():
        # the strided slice of one tap never hits the same element twice
        gxp[:, :, :, rows, cols] += np.einsum("ngkhw,gkc->ngchw", gy64, w64[:, :, :, r, s])
    gx = gxp.reshape(g.N, g.C, g.H + 2 * ph, g.W + 2 * pw)[:, :, ph : ph + g.H, pw : pw + g.W]
    return np.ascontiguousarray(gx, dtype=dtype)


def conv2d_weight_grad(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight_shape: Sequence[int],
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> NDArray[Any]:
    """Gradient of conv2d with respect to its weight (``torch.nn.grad.conv2d_weight``).

    Parameters
    ----------
    grad_out : array_like, shape (N, K, Ho, Wo)
    x : array_like, shape (N, C, H, W)
    weight_shape : tuple of 4 ints (K, C // groups, R, S)
    stride, padding, dilation, groups : as for :func:`conv2d`

    Returns
    -------
    numpy.ndarray, shape weight_shape
    """
    op = "conv2d_weight_grad"
    gy = _float_array(grad_out, op, "grad_out", 4)
    xa = _float_array(x, op, "x", 4)
    dtype = _same_dtype(op, grad_out=gy, x=xa)
    shape = _shape4(weight_shape, op, "weight_shape")
    g = _ConvGeom(op, xa.shape, shape, stride, padding, dilation, groups)
    if gy.shape != g.out_shape:
        raise ValueError(f"{op}: grad_out must have shape {g.out_shape}, got {gy.shape}")
    xp = g.pad(xa).reshape(g.N, g.G, g.Cg, xa.shape[2] + 2 * g.padding[0], -1)
    gy64 = gy.astype(_ACC).reshape(g.N, g.G, g.Kg, g.Ho, g.Wo)
    gw = np.zeros((g.G, g.Kg, g.Cg, g.R, g.S), dtype=_ACC)
    for r, s, rows, cols in g.taps():
        gw[:, :, :, r, s] = np.einsum("ngkhw,ngchw->gkc", gy64, xp[:, :, :, rows, cols])
    return gw.reshape(shape).astype(dtype)


def conv2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """All three conv2d gradients.

    Parameters
    ----------
    grad_out : array_like, shape (N, K, Ho, Wo)
    x : array_like, shape (N, C, H, W)
    weight : array_like, shape (K, C // groups, R, S)
    stride, padding, dilation, groups : as for :func:`conv2d`

    Returns
    -------
    (grad_x, grad_weight, grad_bias)
        grad_bias is ``grad_out.sum((0, 2, 3))``.
    """
    op = "conv2d_backward"
    gy = _float_array(grad_out, op, "grad_out", 4)
    xa = _float_array(x, op, "x", 4)
    wa = _float_array(weight, op, "weight", 4)
    dtype = _same_dtype(op, grad_out=gy, x=xa, weight=wa)
    g = _ConvGeom(op, xa.shape, wa.shape, stride, padding, dilation, groups)
    if gy.shape != g.out_shape:
        raise ValueError(f"{op}: grad_out must have shape {g.out_shape}, got {gy.shape}")
    gx = conv2d_input_grad(gy, wa, xa.shape, stride, padding, dilation, groups)
    gw = conv2d_weight_grad(gy, xa, wa.shape, stride, padding, dilation, groups)
    gb = gy.astype(_ACC).sum(axis=(0, 2, 3)).astype(dtype)
    return gx, gw, gb


# ----------------------------------------------------------------------------
# pooling (PyTorch semantics)
# ----------------------------------------------------------------------------
def _pool_out_size(size: int, k: int, pad: int, stride: int, dil: int, ceil_mode: bool) -> int:
    """ATen's pooling_output_shape: floor/ceil, and with ceil_mode the last
    window must start inside the input or the left padding."""
    numer = size + 2 * pad - dil * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numer // stride + 1  # floor division, like ATen's div_rtn
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class _PoolGeom:
    def __init__(self, op, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
        self.k = _positive(_pair(kernel_size, op, "kernel_size"), op, "kernel_size")
        self.s = self.k if stride is None else _positive(_pair(stride, op, "stride"), op, "stride")
        self.p = _nonneg(_pair(padding, op, "padding"), op, "padding")
        self.d = _positive(_pair(dilation, op, "dilation"), op, "dilation")
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
        if self.p[0] > self.k[0] // 2 or self.p[1] > self.k[1] // 2:
            raise ValueError(
                f"{op}: padding must be at most half of kernel_size, got padding={self.p} "
                f"and kernel_size={self.k}"
            )
        self.N, self.C, self.H, self.W = x_shape
        ceil = bool(ceil_mode)
        self.Ho = _pool_out_size(self.H, self.k[0], self.p[0], self.s[0], self.d[0], ceil)
        self.Wo = _pool_out_size(self.W, self.k[1], self.p[1], self.s[1], self.d[1], ceil)
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(
                f"{op}: output size {self.Ho}x{self.Wo} is too small for input {self.H}x{self.W} "
                f"(kernel_size={self.k}, stride={self.s}, padding={self.p}, dilation={self.d})"
            )

    @property
    def out_shape(self) -> Tuple[int, int, int, int]:
        return (self.N, self.C, self.Ho, self.Wo)

    def starts(self) -> Tuple[NDArray[np.int64], NDArray[np.int64]]:
        """First input row/col (may be negative) of every output row/col."""
        oh = np.arange(self.Ho, dtype=np.int64)
        ow = np.arange(self.Wo, dtype=np.int64)
        return oh * self.s[0] - self.p[0], ow * self.s[1] - self.p[1]


def _max_pool_forward(xa: NDArray[Any], g: _PoolGeom):
    """Max and flat argmax (ih * W + iw) per window, as ATen's NCHW CPU kernel:
    scan window rows then columns, replace when ``val > max or isnan(val)``
    starting from max = -inf and index = first in-bounds tap.  Hence the
    first maximum wins ties and the last NaN in scan order wins."""
    H, W = g.H, g.W
    (kh, kw), (dh, dw) = g.k, g.d
    h0, w0 = g.starts()
    # first in-bounds tap of each window (ATen: while (ih0 < 0) ih0 += dil)
    h_first = np.where(h0 < 0, h0 + (-h0 + dh - 1) // dh * dh, h0)
    w_first = np.where(w0 < 0, w0 + (-w0 + dw - 1) // dw * dw, w0)
    best = np.full(g.out_shape, -np.inf, dtype=xa.dtype)
    index = np.broadcast_to(h_first[:, None] * W + w_first[None, :], g.out_shape).copy()
    for i in range(kh):
        ih = h0 + i * dh
        hvalid = (ih >= 0) & (ih < H)
        ihc = np.clip(ih, 0, H - 1)
        for j in range(kw):
            iw = w0 + j * dw
            wvalid = (iw >= 0) & (iw < W)
            iwc = np.clip(iw, 0, W - 1)
            val = xa[:, :, ihc[:, None], iwc[None, :]]
            valid = hvalid[:, None] & wvalid[None, :]
            take = valid & ((val > best) | np.isnan(val))
            best = np.where(take, val, best)
            index = np.where(take, (ih[:, None] * W + iw[None, :]), index)
    return best, index


def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """2-D max pooling (``torch.nn.functional.max_pool2d``).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel_size, stride, padding, dilation : int or (int, int)
        stride defaults to kernel_size; padding at most kernel_size // 2.
    ceil_mode : bool
    return_indices : bool
        Also return int64 indices of the maxima, flat in the H*W plane.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
    """
    op = "max_pool2d"
    xa = _float_array(x, op, "x", 4)
    g = _PoolGeom(op, xa.shape, kernel_size, stride, padding, dilation, ceil_mode)
    best, index = _max_pool_forward(xa, g)
    if return_indices:
        return best, index.astype(np.int64)
    return best


def max_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    indices: Optional[ArrayLike] = None,
) -> NDArray[Any]:
    """Gradient of :func:`max_pool2d`: grad_out scattered (summed) to the argmax.

    Parameters
    ----------
    grad_out : array_like, shape of the max_pool2d output
    x : array_like, shape (N, C, H, W)
    kernel_size, stride, padding, dilation, ceil_mode : as for :func:`max_pool2d`
    indices : array_like of int, optional
        The indices returned by ``max_pool2d(..., return_indices=True)``; when
        omitted they are recomputed from x.

    Returns
    -------
    numpy.ndarray, shape of x
    """
    op = "max_pool2d_backward"
    gy = _float_array(grad_out, op, "grad_out", 4)
    xa = _float_array(x, op, "x", 4)
    dtype = _same_dtype(op, grad_out=gy, x=xa)
    g = _PoolGeom(op, xa.shape, kernel_size, stride, padding, dilation, ceil_mode)
    if gy.shape != g.out_shape:
        raise ValueError(f"{op}: grad_out must have shape {g.out_shape}, got {gy.shape}")
    if indices is None:
        _, idx = _max_pool_forward(xa, g)
    else:
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{op}: indices must be an integer array, got dtype {idx.dtype}")
        if idx.shape != g.out_shape:
            raise ValueError(f"{op}: indices must have shape {g.out_shape}, got {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= g.H * g.W):
            raise ValueError(f"{op}: indices must lie in [0, {g.H * g.W}), got values outside")
    plane = g.H * g.W
    gx = np.zeros((g.N * g.C, plane), dtype=_ACC)
    rows = np.broadcast_to(np.arange(g.N * g.C)[:, None], (g.N * g.C, g.Ho * g.Wo))
    flat = idx.reshape(g.N * g.C, -1).astype(np.int64)
    ok = (flat >= 0) & (flat < plane)  # ATen degenerate empty windows point outside
    np.add.at(gx, (rows[ok], flat[ok]), gy.reshape(g.N * g.C, -1).astype(_ACC)[ok])
    return gx.reshape(xa.shape).astype(dtype)


def _avg_divisor(g: _PoolGeom, count_include_pad: bool) -> NDArray[np.float64]:
    """ATen's divide_factor: the window clipped to the padded input when
    count_include_pad, else the number of in-bounds elements."""
    h0, w0 = g.starts()
    (kh, kw), (ph, pw) = g.k, g.p
    h1 = np.minimum(h0 + kh, g.H + ph)
    w1 = np.minimum(w0 + kw, g.W + pw)
    if count_include_pad:
        dh, dw = h1 - h0, w1 - w0
    else:
        dh = np.minimum(h1, g.H) - np.maximum(h0, 0)
        dw = np.minimum(w1, g.W) - np.maximum(w0, 0)
    div = (dh[:, None] * dw[None, :]).astype(_ACC)
    return np.where(div > 0, div, 1.0)  # empty windows give 0 / 1 = 0


def _avg_buffer_shape(g: _PoolGeom) -> Tuple[int, int]:
    """Input plane with left/top padding p and room for every window tap."""
    (kh, kw), (sh, sw), (ph, pw) = g.k, g.s, g.p
    bh = max(g.H + ph, (g.Ho - 1) * sh + kh)
    bw = max(g.W + pw, (g.Wo - 1) * sw + kw)
    return bh, bw


def _avg_geom(op, shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"{op}: count_include_pad must be a bool, got {count_include_pad!r}")
    return _PoolGeom(op, shape, kernel_size, stride, padding, 1, ceil_mode)


def avg_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> NDArray[Any]:
    """2-D average pooling (``torch.nn.functional.avg_pool2d``).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)
    ceil_mode, count_include_pad : bool

    Returns
    -------
    numpy.ndarray, x's dtype
    """
    op = "avg_pool2d"
    xa = _float_array(x, op, "x", 4)
    g = _avg_geom(op, xa.shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
    (kh, kw), (sh, sw), (ph, pw) = g.k, g.s, g.p
    bh, bw = _avg_buffer_shape(g)
    buf = np.zeros((g.N, g.C, bh, bw), dtype=_ACC)
    buf[:, :, ph : ph + g.H, pw : pw + g.W] = xa
    total = np.zeros(g.out_shape, dtype=_ACC)
    for i in range(kh):
        for j in range(kw):
            total += buf[:, :, _tap_slice(i, sh, g.Ho), _tap_slice(j, sw, g.Wo)]
    return (total / _avg_divisor(g, bool(count_include_pad))).astype(xa.dtype)


def avg_pool2d_backward(
    grad_out: ArrayLike,
    input_shape: Sequence[int],
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> NDArray[Any]:
    """Gradient of :func:`avg_pool2d`: each grad_out / divisor is spread over
    the in-bounds elements of its window.

    Parameters
    ----------
    grad_out : array_like, shape of the avg_pool2d output
    input_shape : tuple of 4 ints (N, C, H, W)
    kernel_size, stride, padding, ceil_mode, count_include_pad : as for :func:`avg_pool2d`

    Returns
    -------
    numpy.ndarray, shape input_shape, grad_out's dtype
    """
    op = "avg_pool2d_backward"
    gy = _float_array(grad_out, op, "grad_out", 4)
    shape = _shape4(input_shape, op, "input_shape")
    g = _avg_geom(op, shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
    if gy.shape != g.out_shape:
        raise ValueError(f"{op}: grad_out must have shape {g.out_shape}, got {gy.shape}")
    (kh, kw), (sh, sw), (ph, pw) = g.k, g.s, g.p
    scaled = gy.astype(_ACC) / _avg_divisor(g, bool(count_include_pad))
    buf = np.zeros((g.N, g.C) + _avg_buffer_shape(g), dtype=_ACC)
    for i in range(kh):
        for j in range(kw):
            buf[:, :, _tap_slice(i, sh, g.Ho), _tap_slice(j, sw, g.Wo)] += scaled
    return np.ascontiguousarray(buf[:, :, ph : ph + g.H, pw : pw + g.W], dtype=gy.dtype)


# ----------------------------------------------------------------------------
# relu
# ----------------------------------------------------------------------------
def relu(x: ArrayLike) -> NDArray[Any]:
    """``max(x, 0)`` elementwise; NaN stays NaN (as torch.relu).

    Parameters
    ----------
    x : array_like of float32/float64, any shape

    Returns
    -------
    numpy.ndarray, x's dtype
    """
    xa = _float_array(x, "relu", "x")
    keep = (xa > 0) | np.isnan(xa)
    return np.where(keep, xa, xa.dtype.type(0))


def relu_backward(grad_out: ArrayLike, x: ArrayLike) -> NDArray[Any]:
    """Gradient of :func:`relu`: 0 where ``x <= 0``, else grad_out (so a NaN
    in x lets the gradient through, as torch's threshold_backward).

    Parameters
    ----------
    grad_out, x : array_like of the same shape and dtype

    Returns
    -------
    numpy.ndarray
    """
    op = "relu_backward"
    gy = _float_array(grad_out, op, "grad_out")
    xa = _float_array(x, op, "x")
    dtype = _same_dtype(op, grad_out=gy, x=xa)
    if gy.shape != xa.shape:
        raise ValueError(f"{op}: grad_out must have the shape of x {xa.shape}, got {gy.shape}")
    return np.where(xa <= 0, dtype.type(0), gy)
