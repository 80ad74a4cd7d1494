"""convext as the convolution engine of JAX (and Flax) CNN code, on the CPU.

The functions here take and return ``jax.Array`` s and work under
``jax.jit``, ``jax.grad`` (to any order: every backward is made of
differentiable convext ops), ``jax.vmap`` and ``jax.hessian``, for float32
and float64 (``jax.config.update("jax_enable_x64", True)``). The compute is a
``jax.pure_callback`` into convext's numpy API on zero-copy views of XLA's
host buffers; see ``docs/jax.md`` for the per-call overhead and timings.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import convext.jax as cj
>>> x = jnp.ones((2, 3, 16, 16)); w = jnp.ones((8, 3, 3, 3))
>>> y = jax.jit(lambda x, w: cj.conv2d(x, w, padding="SAME"))(x, w)
>>> g = jax.grad(lambda w: cj.max_pool2d(cj.relu(cj.conv2d(x, w)), 2).sum())(w)

Notes
-----
Only importable when JAX is installed (``pip install "convext[jax]"``).
``convext.jax.flax`` holds a ``flax.linen.Conv`` replacement (needs Flax).
Inside this package ``jax`` is JAX itself (absolute imports).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp
from jax import lax

from convext._args import IntPair, Pair, pair
from convext.jax import _ops
from convext.jax._ops import ConvGeom, PoolGeom

__all__ = [
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "relu",
    "benchmark",
]

Padding = Union[str, int, Sequence[int], Sequence[Sequence[int]]]
Pads = tuple[Pair, Pair]

_FLOATS = (jnp.float32, jnp.float64)


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------
def _pair(op: str, name: str, v: Any, minimum: int) -> Pair:
    """An int or a pair of ints (``convext._args.pair``), each at least ``minimum``."""
    p = pair(v, f"convext.jax.{op}: {name}")
    if min(p) < minimum:
        raise ValueError(f"convext.jax.{op}: {name} must be >= {minimum}, got {p}")
    return p


def _same_pads(in_hw: Pair, span: Pair, stride: Pair) -> Pads:
    """``"SAME"`` as XLA defines it: output ``ceil(in / stride)``, the extra pixel at the end."""
    pads = []
    for i in range(2):
        out = -(-in_hw[i] // stride[i])
        total = max((out - 1) * stride[i] + span[i] - in_hw[i], 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0], pads[1])


def _pads(op: str, padding: Padding, in_hw: Pair, span: Pair, stride: Pair) -> Pads:
    """Resolve every padding form to ``((lo, hi), (lo, hi))`` of non-negative ints."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode == "SAME":
            return _same_pads(in_hw, span, stride)
        raise ValueError(f"convext.jax.{op}: padding must be 'SAME', 'VALID', an int, a pair or a pair of (low, high) pairs, got {padding!r}")
    if isinstance(padding, int) and not isinstance(padding, bool):
        p = _pair(op, "padding", padding, 0)
        return ((p[0], p[0]), (p[1], p[1]))
    try:
        items = list(padding)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"convext.jax.{op}: padding must be a string, an int or a sequence, got {padding!r}") from None
    if len(items) == 2 and all(isinstance(e, int) and not isinstance(e, bool) for e in items):
        p = _pair(op, "padding", items, 0)
        return ((p[0], p[0]), (p[1], p[1]))
    if len(items) == 2:
        lo_hi = (_pair(op, "padding[0]", items[0], 0), _pair(op, "padding[1]", items[1], 0))
        return lo_hi
    raise ValueError(f"convext.jax.{op}: padding must be 'SAME', 'VALID', an int, a pair or a pair of (low, high) pairs, got {padding!r}")


def _check_array(op: str, name: str, a: Any, ndim: int) -> jax.Array:
    a = jnp.asarray(a)
    if a.dtype not in _FLOATS:
        raise TypeError(f"convext.jax.{op}: {name} has dtype {a.dtype}; convext supports float32 and float64")
    if a.ndim != ndim:
        raise ValueError(f"convext.jax.{op}: {name} must be {ndim}-D, got shape {a.shape}")
    return a


def _dimension_numbers(op: str, dn: Any, x: jax.Array, w: jax.Array) -> lax.ConvDimensionNumbers:
    if dn is None:
        dn = ("NCHW", "OIHW", "NCHW")
    try:
        return lax.conv_dimension_numbers(x.shape, w.shape, dn)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"convext.jax.{op}: bad dimension_numbers {dn!r} ({exc})") from None


def _to_nchw(a: jax.Array, spec: Sequence[int]) -> jax.Array:
    """Transpose so that the axes named by ``spec`` (batch/out, feature/in, H, W) come in that order."""
    perm = tuple(int(i) for i in spec)
    return a if perm == (0, 1, 2, 3) else jnp.transpose(a, perm)


def _from_nchw(a: jax.Array, spec: Sequence[int]) -> jax.Array:
    perm = tuple(sorted(range(4), key=lambda i: int(spec[i])))
    return a if perm == (0, 1, 2, 3) else jnp.transpose(a, perm)


# ---------------------------------------------------------------------------
# public ops
# ---------------------------------------------------------------------------
def conv2d(
    x: jax.Array,
    w: jax.Array,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    dimension_numbers: Any = None,
) -> jax.Array:
    """2-D convolution (a correlation), like ``lax.conv_general_dilated``.

    ``y[n, k, i, j] = sum_{c, r, s} w[k, c, r, s] * x[n, g*C/groups + c,
    i*sh + r*dh - ph_lo, j*sw + s*dw - pw_lo]`` with zero padding.

    Parameters
    ----------
    x : jax.Array
        Input, ``(N, C, H, W)`` (or as ``dimension_numbers`` says).
    w : jax.Array
        Filters, ``(K, C // groups, R, S)`` (OIHW, or as ``dimension_numbers`` says).
    stride, dilation : int or (int, int)
        ``>= 1``; ``dilation`` is the kernel (rhs) dilation.
    padding : int, (int, int), ((int, int), (int, int)), "SAME" or "VALID"
        Symmetric per axis, or ``(low, high)`` per axis as in
        ``lax.conv_general_dilated``; "SAME" as XLA (extra pixel at the end).
    groups : int
        ``feature_group_count``: divides ``C`` and ``K``.
    dimension_numbers : tuple of 3 str, lax.ConvDimensionNumbers or None
        As in ``lax.conv_general_dilated``, e.g. ``("NHWC", "HWIO", "NHWC")``;
        ``None`` means ``("NCHW", "OIHW", "NCHW")``. Other layouts are
        transposed to NCHW by XLA around the convext call.

    Returns
    -------
    jax.Array
        ``(N, K, Ho, Wo)`` (in the output layout), dtype of ``x``.

    Raises
    ------
    ValueError
        Wrong ndim, channel/group mismatch, bad parameters or padding, a
        dilated kernel larger than the padded input.
    TypeError
        Non-float or mismatched dtypes, non-integer parameters.
    """
    op = "conv2d"
    x, w = _check_array(op, "x", x, 4), _check_array(op, "w", w, 4)
    if x.dtype != w.dtype:
        raise TypeError(f"convext.jax.conv2d: x has dtype {x.dtype} but w has dtype {w.dtype}")
    dn = _dimension_numbers(op, dimension_numbers, x, w)
    xn, wn = _to_nchw(x, dn.lhs_spec), _to_nchw(w, dn.rhs_spec)
    st = _pair(op, "stride", stride, 1)
    dil = _pair(op, "dilation", dilation, 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"convext.jax.conv2d: groups must be an int >= 1, got {groups!r}")
    n, c, h, wd = xn.shape
    k, cg, r, s = wn.shape
    if c % groups or k % groups or cg * groups != c:
        raise ValueError(
            f"convext.jax.conv2d: x has {c} channels and w has shape {tuple(wn.shape)} (OIHW); "
            f"need C == (C // groups) * groups and K divisible by groups={groups}"
        )
    span = (dil[0] * (r - 1) + 1, dil[1] * (s - 1) + 1)
    pads = _pads(op, padding, (h, wd), span, st)
    for i, name in enumerate(("height", "width")):
        padded = (h, wd)[i] + sum(pads[i])
        if padded < span[i]:
            raise ValueError(
                f"convext.jax.conv2d: padded input {name} {padded} is smaller than the dilated kernel {span[i]}"
            )
    y = _ops.conv_forward(xn, wn, ConvGeom(st, pads, dil, groups))
    return _from_nchw(y, dn.out_spec)


def conv_transpose2d(
    x: jax.Array,
    w: jax.Array,
    stride: IntPair = 1,
    padding: Padding = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> jax.Array:
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d`` (NCHW).

    The gradient of :func:`conv2d` with respect to its input, as an op:
    ``conv_transpose2d(dy, w, ...) == vjp(lambda x: conv2d(x, w, ...), x)(dy)``
    for an ``x`` of the output's shape.

    Parameters
    ----------
    x : jax.Array
        ``(N, C_in, H, W)``.
    w : jax.Array
        ``(C_in, C_out // groups, R, S)`` (PyTorch's layout for transposed
        convolutions: the forward convolution's OIHW).
    stride, dilation : int or (int, int)
        ``>= 1``.
    padding : int, (int, int) or ((int, int), (int, int))
        The padding of the forward convolution this transposes: it is
        removed from the output (``(low, high)`` pairs allowed).
    output_padding : int or (int, int)
        Extra rows/columns at the bottom/right, ``< stride``.
    groups : int
        Divides ``C_in`` and ``C_out``.

    Returns
    -------
    jax.Array
        ``(N, C_out, Ho, Wo)`` with ``Ho = (H-1)*sh - (ph_lo + ph_hi) + dh*(R-1) + 1 + oph``.

    Raises
    ------
    ValueError, TypeError
        As :func:`conv2d`; ``output_padding >= stride``; a non-positive output size.
    """
    op = "conv_transpose2d"
    x, w = _check_array(op, "x", x, 4), _check_array(op, "w", w, 4)
    if x.dtype != w.dtype:
        raise TypeError(f"convext.jax.conv_transpose2d: x has dtype {x.dtype} but w has dtype {w.dtype}")
    st = _pair(op, "stride", stride, 1)
    dil = _pair(op, "dilation", dilation, 1)
    opad = _pair(op, "output_padding", output_padding, 0)
    if opad[0] >= st[0] or opad[1] >= st[1]:
        raise ValueError(f"convext.jax.conv_transpose2d: output_padding must be < stride {st}, got {opad}")
    if isinstance(padding, str):
        raise ValueError("convext.jax.conv_transpose2d: padding must be an int, a pair or (low, high) pairs, not a string")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"convext.jax.conv_transpose2d: groups must be an int >= 1, got {groups!r}")
    n, cin, h, wd = x.shape
    if w.shape[0] != cin or cin % groups:
        raise ValueError(
            f"convext.jax.conv_transpose2d: x has {cin} channels but w has shape {tuple(w.shape)}; "
            f"need w.shape[0] == C_in, divisible by groups={groups}"
        )
    r, s = w.shape[2], w.shape[3]
    pads = _pads(op, padding, (h, wd), (1, 1), (1, 1))
    out_hw = tuple(
        ((h, wd)[i] - 1) * st[i] - sum(pads[i]) + dil[i] * ((r, s)[i] - 1) + 1 + opad[i]
        for i in range(2)
    )
    if min(out_hw) < 1:
        raise ValueError(f"convext.jax.conv_transpose2d: output size {out_hw} is not positive")
    return _ops.conv_input_grad(x, w, ConvGeom(st, pads, dil, groups), (out_hw[0], out_hw[1]))


def _pool_args(
    op: str, x: Any, kernel_size: IntPair, stride: IntPair | None, padding: Padding, layout: str
) -> tuple[jax.Array, PoolGeom, bool]:
    x = _check_array(op, "x", x, 4)
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"convext.jax.{op}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    nhwc = layout == "NHWC"
    if nhwc:
        x = jnp.transpose(x, (0, 3, 1, 2))
    k = _pair(op, "kernel_size", kernel_size, 1)
    st = k if stride is None else _pair(op, "stride", stride, 1)
    h, w = x.shape[2], x.shape[3]
    pads = _pads(op, padding, (h, w), k, st)
    for i, name in enumerate(("height", "width")):
        if (h, w)[i] + sum(pads[i]) < k[i]:
            raise ValueError(f"convext.jax.{op}: padded input {name} {(h, w)[i] + sum(pads[i])} is smaller than the kernel {k[i]}")
        if max(pads[i]) >= k[i]:
            raise ValueError(f"convext.jax.{op}: padding must be smaller than kernel_size {k}, got {pads}")
    return x, PoolGeom(k, st, pads), nhwc


def max_pool2d(
    x: jax.Array,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
) -> jax.Array:
    """2-D max pooling, like ``lax.reduce_window(x, -inf, lax.max, ...)``.

    Parameters
    ----------
    x : jax.Array
        ``(N, C, H, W)``, or ``(N, H, W, C)`` with ``layout="NHWC"``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int, (int, int), ((int, int), (int, int)), "SAME" or "VALID"
        Padded positions are never selected; each pad ``< kernel_size``.
    layout : {"NCHW", "NHWC"}

    Returns
    -------
    jax.Array
        ``(N, C, Ho, Wo)`` in ``layout``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.

    Notes
    -----
    Of equal maxima the first (row-major) gets the gradient (XLA's
    ``reduce_window`` gradient may pick another).
    """
    xn, geom, nhwc = _pool_args("max_pool2d", x, kernel_size, stride, padding, layout)
    y = _ops.max_pool(xn, geom)
    return jnp.transpose(y, (0, 2, 3, 1)) if nhwc else y


def avg_pool2d(
    x: jax.Array,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: Padding = 0,
    count_include_pad: bool = True,
    layout: str = "NCHW",
) -> jax.Array:
    """2-D average pooling (``flax.linen.avg_pool``; with padding counted, ``reduce_window`` sum / window size).

    Parameters
    ----------
    x : jax.Array
        ``(N, C, H, W)``, or ``(N, H, W, C)`` with ``layout="NHWC"``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int, (int, int), ((int, int), (int, int)), "SAME" or "VALID"
        Zero padding, each pad ``< kernel_size``.
    count_include_pad : bool
        Divide by the window size (True) or by the number of input elements
        in the window (False; then the padding must be symmetric and at most
        half the kernel).
    layout : {"NCHW", "NHWC"}

    Returns
    -------
    jax.Array
        ``(N, C, Ho, Wo)`` in ``layout``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    xn, geom, nhwc = _pool_args("avg_pool2d", x, kernel_size, stride, padding, layout)
    geom = geom._replace(count_include_pad=bool(count_include_pad))
    if not count_include_pad and any(v for pair in geom.extra for v in pair):
        raise ValueError(
            "convext.jax.avg_pool2d: count_include_pad=False needs symmetric padding of at most half "
            f"the kernel {geom.kernel}, got {geom.pads}"
        )
    y = _ops.avg_pool(xn, geom)
    return jnp.transpose(y, (0, 2, 3, 1)) if nhwc else y


def relu(x: jax.Array) -> jax.Array:
    """``max(x, 0)`` elementwise (NaN kept), any shape.

    Parameters
    ----------
    x : jax.Array
        float32 or float64, not empty.

    Returns
    -------
    jax.Array

    Raises
    ------
    TypeError
        Non-float dtype.
    ValueError
        Empty input.
    """
    x = jnp.asarray(x)
    if x.dtype not in _FLOATS:
        raise TypeError(f"convext.jax.relu: x has dtype {x.dtype}; convext supports float32 and float64")
    if x.size == 0:
        raise ValueError(f"convext.jax.relu: x is empty (shape {x.shape})")
    return _ops.relu(x)


def benchmark(*args: Any, **kwargs: Any) -> Any:
    """Time stock JAX against convext.jax; see :func:`convext.jax._bench.benchmark`."""
    from convext.jax import _bench

    return _bench.benchmark(*args, **kwargs)
