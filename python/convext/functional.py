"""The functional API: numpy arrays in, new numpy arrays out.

Every function here validates its arguments in C++ (one shape check per op
family, shared by forward and backward) and computes with the GIL released.
Conventions, as in PyTorch:

* layout NCHW; weights ``(K, C // groups, R, S)``;
* ``stride``, ``padding``, ``dilation`` and ``kernel_size`` take an int or a
  pair ``(h, w)``;
* float32 and float64 are computed natively and the result has the input's
  dtype; all arrays of one call must share it;
* any memory layout is accepted; inputs are never written.

Errors: ``ValueError`` for shapes and parameters (the message names the
argument and the values), ``TypeError`` for dtypes and non-integer
parameters, ``MemoryError`` for sizes that cannot be allocated.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convext import _core
from convext._args import FloatArray, IntPair, pair, positive_int

__all__ = [
    "UnsupportedDTypeError",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "conv_transpose2d",
    "conv_transpose2d_output_size",
    "convolve2d",
    "correlate2d",
    "get_num_threads",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "rot180",
    "set_num_threads",
    "show_config",
]


# --------------------------------------------------------------------------- 2-D


class UnsupportedDTypeError(TypeError, ValueError):
    """A dtype correlate2d / convolve2d do not compute (bool, float16, object).

    Both a ``TypeError`` (convext's convention for dtypes) and a
    ``ValueError`` (what ``scipy.signal.correlate2d`` raises for them).
    """


_MODES = ("valid", "same", "full")
_BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap",
               "symm": "symm", "symmetric": "symm"}
_NP_PAD: dict[str, Any] = {"fill": "constant", "wrap": "wrap", "symm": "symmetric"}
#: integer correlations go through the float64 GEMM paths while every partial
#: sum is an integer of magnitude below this (so float64 holds it exactly)
_EXACT_FLOAT64 = 2**53


def correlate2d(in1: ArrayLike, in2: ArrayLike, mode: str = "full", boundary: str = "fill",
                fillvalue: Any = 0) -> NDArray[Any]:
    """Cross-correlate two 2-D arrays: a drop-in for ``scipy.signal.correlate2d``.

    ``out[i, j] = sum_{r, s} ext(in1)[i + r - p, j + s - q] * conj(in2[r, s])``
    where ``ext`` extends ``in1`` beyond its edges as ``boundary`` says and the
    offsets ``p, q`` follow from ``mode``.

    Parameters
    ----------
    in1, in2 : array_like
        2-D arrays. The result dtype is ``numpy.result_type(in1, in2)``, as
        scipy's. float32 / float64 are computed natively; complex through
        real correlations of the real and imaginary parts (three, Gauss'
        trick; two when one side is real); integers exactly (see Notes);
        long double tap by tap. bool-only and float16 inputs are refused, as
        scipy refuses them.
    mode : {"full", "valid", "same"}
        ``"full"`` (default, as scipy): every overlap; ``"valid"``: only
        positions where one input lies inside the other (if ``in2`` is the
        larger in every dimension, the inputs are swapped and the result
        reversed, as scipy does); ``"same"``: the size of ``in1``, centred as
        scipy centres it.
    boundary : {"fill", "wrap", "symm"}
        How ``in1`` is extended: ``"fill"`` (or ``"pad"``) with
        ``fillvalue``, ``"wrap"`` (or ``"circular"``) periodically,
        ``"symm"`` (or ``"symmetric"``) by mirroring with the edge repeated.
    fillvalue : scalar, optional
        The padding value for ``boundary="fill"`` (default 0), cast to the
        result dtype as scipy casts it.

    Returns
    -------
    ndarray
        A new C-contiguous array of the result dtype.

    Raises
    ------
    ValueError
        Not 2-D, empty, unknown ``mode`` or ``boundary``, a ``fillvalue`` that
        does not cast to the result dtype or is not one element, or in
        'valid' mode neither input at least as large as the other. Messages
        start with scipy's.
    UnsupportedDTypeError
        (a TypeError and a ValueError) bool-only, float16 or object inputs.

    Notes
    -----
    Integer results are exact and wrap to the result dtype as scipy's do
    (scipy sums in the result dtype, i.e. modulo 2**bits). They are computed
    in float64 when ``max|in1| * max|in2| * in2.size < 2**53`` (with
    ``|fillvalue|`` counted in ``max|in1|``), where every partial sum is an
    exactly representable integer, and otherwise by a tap-by-tap uint64
    kernel (exact modulo 2**64). With infinities in complex inputs, Gauss'
    trick can give NaN where the four-product form gives inf.
    """
    return _correlate_or_convolve("correlate2d", in1, in2, mode, boundary, fillvalue)


def convolve2d(in1: ArrayLike, in2: ArrayLike, mode: str = "full", boundary: str = "fill",
               fillvalue: Any = 0) -> NDArray[Any]:
    """Convolve two 2-D arrays: a drop-in for ``scipy.signal.convolve2d``.

    Convolution is correlation with the kernel rotated by 180 degrees (and
    not conjugated): ``convolve2d(a, b) == correlate2d(a, rot180(b))`` in
    'valid' and 'full' modes for real inputs ('same' centres the two
    differently, as scipy does).

    Parameters
    ----------
    in1, in2 : array_like
        As in :func:`correlate2d`.
    mode : {"full", "valid", "same"}
        As in :func:`correlate2d` (in 'valid' mode a swap needs no reversal:
        convolution commutes).
    boundary : {"fill", "wrap", "symm"}
        As in :func:`correlate2d`.
    fillvalue : scalar, optional
        As in :func:`correlate2d`.

    Returns
    -------
    ndarray
        A new C-contiguous array of the result dtype.

    Raises
    ------
    ValueError, UnsupportedDTypeError
        As :func:`correlate2d`.
    """
    return _correlate_or_convolve("convolve2d", in1, in2, mode, boundary, fillvalue)


def _correlate_or_convolve(op: str, in1: ArrayLike, in2: ArrayLike, mode: Any, boundary: Any,
                           fillvalue: Any) -> NDArray[Any]:
    """scipy's argument rules (in scipy's order), then the computation."""
    a, b = np.asarray(in1), np.asarray(in2)
    if not a.ndim == b.ndim == 2:
        raise ValueError(f"{op} inputs must both be 2-D arrays, got in1 with shape {a.shape} "
                         f"and in2 with shape {b.shape}")
    swapped = False
    if isinstance(mode, str) and mode == "valid":
        ok1 = a.shape[0] >= b.shape[0] and a.shape[1] >= b.shape[1]
        ok2 = b.shape[0] >= a.shape[0] and b.shape[1] >= a.shape[1]
        if not (ok1 or ok2):
            raise ValueError("For 'valid' mode, one must be at least as large as the other in "
                             f"every dimension, got in1 {a.shape} and in2 {b.shape}")
        swapped = not ok1
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"Acceptable mode flags are 'valid', 'same', or 'full'; {op} got "
                         f"mode={mode!r}")
    bnd = _BOUNDARIES.get(boundary) if isinstance(boundary, str) else None
    if bnd is None:
        raise ValueError("Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and "
                         f"'symmetric' (or 'symm'); {op} got boundary={boundary!r}")
    for name, arr in (("in1", a), ("in2", b)):
        if arr.size == 0:
            raise ValueError(f"{op}: {name} must not be empty, got shape {arr.shape}")
    rt = np.result_type(a.dtype, b.dtype)
    if rt.kind not in "iufc" or rt == np.float16:
        raise UnsupportedDTypeError(
            f"{op} not available for this type: in1 is {a.dtype}, in2 is {b.dtype} (result "
            f"{rt}); like scipy.signal, convext computes integer, float32, float64, long "
            "double and complex inputs")
    fill = _fill_scalar(fillvalue, rt) if bnd == "fill" else rt.type(0)
    convolve = op == "convolve2d"
    x_real = a.dtype.kind != "c" and b.dtype.kind != "c" or (
        (b if swapped else a).dtype.kind != "c" and np.imag(fill) == 0)
    k_real = (a if swapped else b).dtype.kind != "c"
    x, k = (b, a) if swapped else (a, b)
    x = x.astype(rt, copy=False)
    k = k.astype(rt, copy=False)
    if not convolve and rt.kind == "c" and not k_real:
        k = np.conj(k)
    R, S = k.shape
    pads = _pads(mode, convolve, R, S)
    if rt.kind == "c":
        out = _complex(x, k, fill, x_real, k_real, mode, bnd, pads, convolve)
    elif rt.kind in "iu":
        out = _integer(x, k, fill, mode, bnd, pads, convolve)
    else:
        out = _real(x, k, fill, mode, bnd, pads, convolve)
    if swapped and not convolve:
        out = out[::-1, ::-1].copy()  # scipy: valid-mode correlate with in2 larger, reversed
    return out


def _fill_scalar(fillvalue: Any, rt: np.dtype[Any]) -> Any:
    """``fillvalue`` as a scalar of the result dtype, by scipy's rules."""
    try:
        if isinstance(fillvalue, (np.ndarray, np.generic)) and not np.can_cast(
                fillvalue.dtype, rt, "safe"):
            raise TypeError  # numpy arrays convert only safely, as in scipy
        f = np.asarray(fillvalue, dtype=rt)
    except (TypeError, ValueError, OverflowError):
        np.asarray(fillvalue, dtype=np.complex128)  # scipy's second try: its error stands
        raise ValueError("could not cast `fillvalue` directly to the output type (it was first "
                         f"converted to complex); got fillvalue={fillvalue!r} for result dtype "
                         f"{rt}") from None
    if f.size != 1:
        if f.size == 0:
            raise ValueError("`fillvalue` cannot be an empty array.")
        raise ValueError("`fillvalue` must be scalar or an array with one element, got shape "
                         f"{f.shape}")
    return f.reshape(())[()]


def _pads(mode: str, convolve: bool, R: int, S: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows/columns added before and after in1 so that 'valid' gives ``mode``.

    'same' is centred on the convolution (scipy): a correlation with the
    rotated kernel then starts R // 2 rows in, a plain correlation (R - 1) // 2.
    """
    if mode == "valid":
        return (0, 0), (0, 0)
    if mode == "full":
        return (R - 1, R - 1), (S - 1, S - 1)
    top, left = (R // 2, S // 2) if convolve else ((R - 1) // 2, (S - 1) // 2)
    return (top, R - 1 - top), (left, S - 1 - left)


def _extend(x: NDArray[Any], pads: Any, bnd: str, fill: Any) -> NDArray[Any]:
    """in1 extended by ``pads`` as ``boundary`` says (one copy, numpy's pad)."""
    if pads == ((0, 0), (0, 0)):
        return x
    (t, b), (l, r) = pads
    H, W = x.shape
    if bnd == "fill" or max(t, b) > H or max(l, r) > W:
        # (np.pad repeats the extension when the pad is wider than in1)
        if bnd == "fill":
            return np.pad(x, pads, mode="constant", constant_values=fill)
        return np.pad(x, pads, mode=_NP_PAD[bnd])
    # One extension of each side: the same as np.pad, without its per-call overhead.
    out = np.empty((H + t + b, W + l + r), x.dtype)
    out[t:t + H, l:l + W] = x
    mid = out[t:t + H]
    if bnd == "wrap":
        mid[:, :l], mid[:, l + W:] = x[:, W - l:], x[:, :r]
        out[:t], out[t + H:] = mid[H - t:], mid[:b]
    else:  # symm: mirrored with the edge repeated
        mid[:, :l], mid[:, l + W:] = x[:, :l][:, ::-1], x[:, W - r:][:, ::-1]
        out[:t], out[t + H:] = mid[:t][::-1], mid[H - b:][::-1]
    return out


def _real(x: NDArray[Any], k: NDArray[Any], fill: Any, mode: str, bnd: str, pads: Any,
          convolve: bool) -> NDArray[Any]:
    """Correlation / convolution of two real arrays of one dtype.

    float32 / float64 with zero fill: the C++ paths pad implicitly; otherwise
    in1 is extended here and the 'valid' correlation does the rest. uint64
    (exact integers) and long double: tap by tap in C++.
    """
    if x.dtype in (np.float32, np.float64):
        fn = _core.convolve2d if convolve else _core.correlate2d
        if bnd == "fill" and fill == 0 and not np.signbit(fill):
            return fn(x, k, mode)
        return fn(_extend(x, pads, bnd, fill), k, "valid")
    if convolve:
        k = k[::-1, ::-1]
    return _core.correlate2d_valid_direct(_extend(x, pads, bnd, fill), k)


def _integer(x: NDArray[Any], k: NDArray[Any], fill: Any, mode: str, bnd: str, pads: Any,
             convolve: bool) -> NDArray[Any]:
    """Exact integer correlation, wrapped to the result dtype as scipy's."""
    rt = x.dtype
    m1 = max(int(x.max()), -int(x.min()))
    if bnd == "fill":
        m1 = max(m1, abs(int(fill)))
    m2 = max(int(k.max()), -int(k.min()))
    if m1 * m2 * k.size < _EXACT_FLOAT64:
        out = _real(x.astype(np.float64), k.astype(np.float64), float(fill), mode, bnd, pads,
                    convolve)
        return out.astype(np.int64).astype(rt, copy=False)
    u = np.uint64
    out = _real(x.astype(u), k.astype(u), np.asarray(fill).astype(u)[()], mode, bnd, pads,
                convolve)
    return out.view(np.int64) if rt == np.int64 else out.astype(rt, copy=False)


def _complex(x: NDArray[Any], k: NDArray[Any], fill: Any, x_real: bool, k_real: bool, mode: str,
             bnd: str, pads: Any, convolve: bool) -> NDArray[Any]:
    """Complex correlation from real ones (k already conjugated for correlate2d).

    (a + ib) * (c + id): Gauss' three products, k1 = (a + b) * c,
    k2 = a * (d - c), k3 = b * (c + d); real = k1 - k3, imag = k1 + k2. Two
    products when one side is real.
    """
    a, b, c, d = x.real, x.imag, k.real, k.imag
    fr, fi = np.real(fill), np.imag(fill)

    def f(u: NDArray[Any], v: NDArray[Any], fu: Any) -> NDArray[Any]:
        return _real(u, v, fu, mode, bnd, pads, convolve)

    if x_real or k_real:
        re, im = (f(a, c, fr), f(a, d, fr)) if x_real else (f(a, c, fr), f(b, c, fi))
        out = np.empty(re.shape, x.dtype)
        out.real = re
        out.imag = im
        return out
    k1, k2, k3 = f(a + b, c, fr + fi), f(a, d - c, fr), f(b, c + d, fi)
    out = np.empty(k1.shape, x.dtype)
    np.subtract(k1, k3, out=out.real)  # written straight into the interleaved result
    np.add(k1, k2, out=out.imag)
    return out


def rot180(w: ArrayLike) -> FloatArray:
    """Rotate the last two axes by 180 degrees: ``w[..., ::-1, ::-1]``, copied.

    Parameters
    ----------
    w : array_like
        float32 or float64, at least 2-D.

    Returns
    -------
    ndarray
        A new C-contiguous array.

    Raises
    ------
    ValueError
        Fewer than 2 dimensions.
    TypeError
        Non-float dtype.
    """
    return _core.rot180(w)


# ----------------------------------------------------------------------- conv2d


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """2-D convolution layer (a correlation), as ``torch.nn.functional.conv2d``.

    ``y[n, k, oh, ow] = bias[k] + sum_{c, r, s} weight[k, c, r, s] *
    x[n, g*C/groups + c, oh*sh + r*dh - ph, ow*sw + s*dw - pw]`` with zero
    padding, where ``g`` is the group of output channel ``k``.

    Parameters
    ----------
    x : array_like
        Input, shape ``(N, C, H, W)``.
    weight : array_like
        Filters, shape ``(K, C // groups, R, S)``.
    bias : array_like, optional
        Shape ``(K,)``.
    stride, padding, dilation : int or (int, int)
        ``stride >= 1``, ``padding >= 0``, ``dilation >= 1``.
    groups : int
        Divides both ``C`` and ``K``.

    Returns
    -------
    ndarray
        Shape ``(N, K, Ho, Wo)`` with ``Ho = (H + 2*ph - dh*(R-1) - 1) // sh + 1``.

    Raises
    ------
    ValueError
        Wrong ndim, empty arrays, channel/group mismatch, bias length, a
        dilated kernel larger than the padded input, bad parameter values.
    TypeError
        Non-float or mismatched dtypes, non-integer parameters.
    MemoryError
        The output or scratch memory cannot be allocated.
    """
    return _core.conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv2d_input_grad(
    grad_out: ArrayLike,
    weight: ArrayLike,
    input_shape: Sequence[int],
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """Gradient of :func:`conv2d` with respect to its input.

    The *full* correlation of the stride-dilated ``grad_out`` with the
    180-degree-rotated filters, input and output channels swapped; like
    ``torch.nn.grad.conv2d_input``. Input rows and columns that the forward
    stride skipped get 0.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, K, Ho, Wo)``: the forward output's shape.
    weight : array_like
        Shape ``(K, C // groups, R, S)``.
    input_shape : sequence of 4 ints
        ``(N, C, H, W)`` of the forward input.
    stride, padding, dilation, groups
        As in the forward call.

    Returns
    -------
    ndarray
        Shape ``input_shape``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d`; ``grad_out`` must match the forward output shape.
    """
    return _core.conv2d_input_grad(grad_out, weight, input_shape, stride, padding, dilation, groups)


def conv_transpose2d_output_size(
    x_shape: Sequence[int], weight_shape: Sequence[int], stride: IntPair = 1,
    padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1,
) -> tuple[int, int, int, int]:
    """The output shape of :func:`conv_transpose2d` (PyTorch's formula), with its checks.

    Parameters
    ----------
    x_shape, weight_shape : sequence of 4 ints
        ``(N, C_in, H, W)`` and ``(C_in, C_out // groups, kH, kW)``.
    stride, padding, output_padding, groups, dilation
        As in :func:`conv_transpose2d`.

    Returns
    -------
    (N, C_out, Ho, Wo) : tuple of int
        ``Ho = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``.

    Raises
    ------
    ValueError, TypeError
        Shapes that are not 4-D, ``output_padding`` not smaller than the
        stride or the dilation, groups not dividing ``C_in``, an output smaller
        than 1x1.
    """
    op = "conv_transpose2d"
    if len(x_shape) != 4 or len(weight_shape) != 4:
        raise ValueError(f"{op}: x and weight must be 4-D, got shapes {tuple(x_shape)} and "
                         f"{tuple(weight_shape)}")
    st, pad, opad, dil = (pair(v, f"{op}: {name}") for v, name in (
        (stride, "stride"), (padding, "padding"), (output_padding, "output_padding"),
        (dilation, "dilation")))
    groups = positive_int(groups, f"{op}: groups")
    if min(opad) < 0 or any(o >= max(s, d) for o, s, d in zip(opad, st, dil)):
        raise ValueError(f"{op}: output_padding must be >= 0 and smaller than either stride or "
                         f"dilation, got output_padding={opad}, stride={st}, dilation={dil}")
    n, cin, h, w = (int(v) for v in x_shape)
    if weight_shape[0] != cin or cin % groups:
        raise ValueError(f"{op}: weight {tuple(weight_shape)} must have x's {cin} input channels "
                         f"first, divisible by groups={groups}")
    ho = (h - 1) * st[0] - 2 * pad[0] + dil[0] * (weight_shape[2] - 1) + opad[0] + 1
    wo = (w - 1) * st[1] - 2 * pad[1] + dil[1] * (weight_shape[3] - 1) + opad[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"{op}: output size {ho}x{wo} is too small: input {h}x{w}, padding={pad}")
    return (n, int(weight_shape[1]) * groups, ho, wo)


def transpose_window(
    x_shape: Sequence[int], weight_shape: Sequence[int], stride: IntPair, padding: IntPair,
    output_padding: IntPair, dilation: IntPair,
) -> tuple[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]:
    """A transposed convolution as a window of the unpadded one (for output_padding >= stride).

    The engine's input-gradient op computes output rows up to the last one a
    product reaches when ``output_padding < stride``; past that (PyTorch
    admits ``output_padding`` up to the dilation) the result is the full
    transposed convolution (no padding) from row ``padding``, with zero rows
    appended where it runs out.

    Returns
    -------
    full : (int, int)
        The unpadded transposed convolution's spatial size.
    window : ((int, int), (int, int))
        Per dimension, the first row / column taken and the zeros appended.
    """
    st, pad, opad, dil = (pair(v, "conv_transpose2d") for v in (stride, padding, output_padding, dilation))
    full = tuple((x_shape[2 + i] - 1) * st[i] + dil[i] * (weight_shape[2 + i] - 1) + 1 for i in range(2))
    out = tuple(full[i] - 2 * pad[i] + opad[i] for i in range(2))
    window = tuple((pad[i], max(0, pad[i] + out[i] - full[i])) for i in range(2))
    return (full[0], full[1]), (window[0], window[1])


def conv_transpose2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> FloatArray:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`conv2d` with the same geometry, i.e. the seed's
    *full* convolution of ``x`` with the filters: computed by the engine's
    input-gradient path, ``conv2d_input_grad(x, weight, output_shape, ...)``.

    Parameters
    ----------
    x : array_like
        Shape ``(N, C_in, H, W)``.
    weight : array_like
        Shape ``(C_in, C_out // groups, kH, kW)`` (PyTorch's layout).
    bias : array_like, optional
        Shape ``(C_out,)``.
    stride, padding, dilation : int or (int, int)
        As in PyTorch (``padding`` removes ``dilation * (k - 1) - padding``
        of zero padding from each side of the full convolution).
    output_padding : int or (int, int)
        Rows / columns added at the bottom / right; smaller than the stride
        or the dilation.
    groups : int
        Number of channel groups.

    Returns
    -------
    ndarray
        Shape :func:`conv_transpose2d_output_size` gives.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d` and :func:`conv_transpose2d_output_size`.
    """
    xa, wa = np.asarray(x), np.asarray(weight)
    n, cout, ho, wo = conv_transpose2d_output_size(xa.shape, wa.shape, stride, padding,
                                                   output_padding, groups, dilation)
    st = pair(stride, "conv_transpose2d: stride")
    opad = pair(output_padding, "conv_transpose2d: output_padding")
    if all(o < s for o, s in zip(opad, st)):
        y = _core.conv2d_input_grad(xa, wa, (n, cout, ho, wo), stride, padding, dilation, groups)
    else:
        full, window = transpose_window(xa.shape, wa.shape, stride, padding, output_padding, dilation)
        y = _core.conv2d_input_grad(xa, wa, (n, cout) + full, stride, 0, dilation, groups)
        y = np.pad(y[:, :, window[0][0]:, window[1][0]:],
                   ((0, 0), (0, 0), (0, window[0][1]), (0, window[1][1])))[:, :, :ho, :wo].copy()
    if bias is not None:
        b = np.asarray(bias)
        if b.shape != (cout,):
            raise ValueError(f"conv_transpose2d: bias must have shape ({cout},), got {b.shape}")
        if b.dtype != y.dtype:
            raise TypeError(f"conv_transpose2d: bias has dtype {b.dtype} but x has {y.dtype}")
        y += b[:, None, None]
    return y


def conv2d_weight_grad(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight_shape: Sequence[int],
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """Gradient of :func:`conv2d` with respect to the weights.

    The correlation of the input with the (stride-dilated) ``grad_out``,
    summed over the batch; like ``torch.nn.grad.conv2d_weight``.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, K, Ho, Wo)``.
    x : array_like
        The forward input, shape ``(N, C, H, W)``.
    weight_shape : sequence of 4 ints
        ``(K, C // groups, R, S)``.
    stride, padding, dilation, groups
        As in the forward call.

    Returns
    -------
    ndarray
        Shape ``weight_shape``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d`.
    """
    return _core.conv2d_weight_grad(grad_out, x, weight_shape, stride, padding, dilation, groups)


def conv2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """All gradients of :func:`conv2d` at once.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, K, Ho, Wo)``.
    x, weight : array_like
        The forward call's input and filters.
    stride, padding, dilation, groups
        As in the forward call.

    Returns
    -------
    grad_x : ndarray
        As :func:`conv2d_input_grad`.
    grad_weight : ndarray
        As :func:`conv2d_weight_grad`.
    grad_bias : ndarray
        ``grad_out`` summed over N, H and W, shape ``(K,)``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d`.
    """
    return _core.conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)


# ---------------------------------------------------------------------- pooling


def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, NDArray[np.int64]]:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Padding is never selected; of equal maxima the first (row-major) wins; a
    NaN in a window is the maximum (the last NaN, as PyTorch's CPU kernel).

    Parameters
    ----------
    x : array_like
        Shape ``(N, C, H, W)``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        At most half of ``kernel_size``.
    dilation : int or (int, int)
    ceil_mode : bool
        Round the output size up; the last window must still start inside
        the input or the left padding.
    return_indices : bool
        Also return the argmax of each window as ``ih * W + iw`` (int64).

    Returns
    -------
    out : ndarray
        Shape ``(N, C, Ho, Wo)``.
    indices : ndarray of int64, only with ``return_indices``

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    return _core.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    indices: ArrayLike | None = None,
) -> FloatArray:
    """Gradient of :func:`max_pool2d`: ``grad_out`` routed to each window's argmax.

    Parameters
    ----------
    grad_out : array_like
        Shape of the forward output.
    x : array_like
        The forward input.
    kernel_size, stride, padding, dilation, ceil_mode
        As in the forward call.
    indices : array_like of int, optional
        The forward call's ``return_indices`` output; recomputed from ``x``
        when omitted.

    Returns
    -------
    ndarray
        Shape of ``x``; overlapping windows add up.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters, dtypes, or indices outside the plane.
    """
    return _core.max_pool2d_backward(
        grad_out, x, kernel_size, stride, padding, dilation, ceil_mode, indices
    )


def avg_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : array_like
        Shape ``(N, C, H, W)``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        At most half of ``kernel_size``.
    ceil_mode : bool
    count_include_pad : bool
        Divide by the window size including zero padding (clipped to the
        padded input), else by the number of input elements in the window.
    divisor_override : int, optional
        Divide every window's sum by this (any non-zero integer, as PyTorch) instead.

    Returns
    -------
    ndarray
        Shape ``(N, C, Ho, Wo)``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    return _core.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override)


def avg_pool2d_backward(
    grad_out: ArrayLike,
    input_shape: Sequence[int],
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d`: each window's share spread over it.

    Parameters
    ----------
    grad_out : array_like
        Shape of the forward output.
    input_shape : sequence of 4 ints
        ``(N, C, H, W)`` of the forward input.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in the forward call.

    Returns
    -------
    ndarray
        Shape ``input_shape``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    return _core.avg_pool2d_backward(
        grad_out, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
        divisor_override
    )


#: an adaptive pool's output size: an int, or a pair whose None entries keep
#: the input's size
OutputSize = Union[int, Sequence[Optional[int]]]


def adaptive_max_pool2d(
    x: ArrayLike, output_size: OutputSize, return_indices: bool = False
) -> FloatArray | tuple[FloatArray, NDArray[np.int64]]:
    """2-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d``.

    Output row ``i`` takes the maximum over input rows
    ``floor(i * H / Ho) <= r < ceil((i + 1) * H / Ho)``, columns alike; ties
    and NaNs as in :func:`max_pool2d`.

    Parameters
    ----------
    x : array_like
        Shape ``(N, C, H, W)``.
    output_size : int or (int or None, int or None)
        ``(Ho, Wo)``; None keeps that input dimension.
    return_indices : bool
        Also return the argmax of each window as ``ih * W + iw`` (int64).

    Returns
    -------
    out : ndarray
        Shape ``(N, C, Ho, Wo)``.
    indices : ndarray of int64, only with ``return_indices``

    Raises
    ------
    ValueError, TypeError
        Bad shapes, output sizes or dtypes.
    """
    return _core.adaptive_max_pool2d(x, output_size, return_indices)


def adaptive_max_pool2d_backward(
    grad_out: ArrayLike, x: ArrayLike, indices: ArrayLike | None = None
) -> FloatArray:
    """Gradient of :func:`adaptive_max_pool2d`: ``grad_out`` routed to each argmax.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, C, Ho, Wo)``: the forward output's (it gives the output size).
    x : array_like
        The forward input.
    indices : array_like of int, optional
        The forward call's indices; recomputed from ``x`` when omitted.

    Returns
    -------
    ndarray
        Shape of ``x``; overlapping windows add up.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, dtypes, or indices outside the plane.
    """
    return _core.adaptive_max_pool2d_backward(grad_out, x, indices)


def adaptive_avg_pool2d(x: ArrayLike, output_size: OutputSize) -> FloatArray:
    """2-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Each output is the mean of its window (the windows of
    :func:`adaptive_max_pool2d`), divided by the window's height and then
    by its width, as PyTorch rounds it.

    Parameters
    ----------
    x : array_like
        Shape ``(N, C, H, W)``.
    output_size : int or (int or None, int or None)
        ``(Ho, Wo)``; None keeps that input dimension.

    Returns
    -------
    ndarray
        Shape ``(N, C, Ho, Wo)``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, output sizes or dtypes.
    """
    return _core.adaptive_avg_pool2d(x, output_size)


def adaptive_avg_pool2d_backward(grad_out: ArrayLike, input_shape: Sequence[int]) -> FloatArray:
    """Gradient of :func:`adaptive_avg_pool2d`: each window's share spread over it.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, C, Ho, Wo)``: the forward output's.
    input_shape : sequence of 4 ints
        ``(N, C, H, W)`` of the forward input.

    Returns
    -------
    ndarray
        Shape ``input_shape``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes or dtypes.
    """
    return _core.adaptive_avg_pool2d_backward(grad_out, input_shape)


# ------------------------------------------------------------------------- relu


def relu(x: ArrayLike) -> FloatArray:
    """``max(x, 0)`` elementwise, NaN kept (any shape).

    Parameters
    ----------
    x : array_like
        float32 or float64, not empty.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Raises
    ------
    ValueError, TypeError
        Empty input, non-float dtype.
    """
    return _core.relu(x)


def relu_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """Gradient of :func:`relu`: ``grad_out`` where ``x > 0`` (or NaN), else 0.

    Parameters
    ----------
    grad_out : array_like
        Same shape and dtype as ``x``.
    x : array_like
        The forward input.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError, TypeError
        Shape or dtype mismatch, empty input.
    """
    return _core.relu_backward(grad_out, x)


# ---------------------------------------------------------------------- threads


def set_num_threads(n: int) -> None:
    """Set the number of OpenMP threads convext uses (process-wide).

    Parameters
    ----------
    n : int
        ``>= 1``.

    Raises
    ------
    ValueError
        ``n < 1``.

    Notes
    -----
    The default follows ``OMP_NUM_THREADS``, else all cores. Inside
    ``threadpoolctl.threadpool_limits(k)`` (which sets the calling thread's
    OpenMP limit) convext uses ``k`` threads for calls from that thread,
    except where ``k`` equals the thread's starting OpenMP count and the
    thread never called ``set_num_threads``: that limit cannot be told from
    none, and this process-wide count applies.
    """
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads a convext call from this thread would use."""
    return int(_core.get_num_threads())


def show_config(print_out: bool = True) -> dict[str, Any]:
    """Describe the build: chosen GEMM kernels, ISA, OpenMP, threads.

    Parameters
    ----------
    print_out : bool
        Print one ``key: value`` line per entry.

    Returns
    -------
    dict
    """
    config = dict(_core._config())
    if print_out:
        for key, value in config.items():
            print(f"{key}: {value}")
    return config
