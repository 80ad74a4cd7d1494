"""The differentiable, batchable JAX primitives behind :mod:`convext.jax`.

Every primitive is a ``jax.custom_vjp`` function whose forward is one
``jax.pure_callback`` into convext's numpy API (NCHW, zero-copy
``np.asarray`` views of XLA's host buffers), and whose backward is built from
the other primitives of the same family, so that derivatives of any order
compose (the seed's identities; see the README):

* conv2d ``y = F(x, w)``; input gradient ``dx = I(dy, w)`` (a transposed
  convolution); weight gradient ``dw = W(dy, x)``. All three are bilinear and
  ``<F(x, w), dy> = <x, I(dy, w)> = <w, W(dy, x)>``, so the VJP of ``F`` is
  ``(I, W)``, that of ``I`` is ``(F(g, w), W(dy, g))`` and that of ``W`` is
  ``(F(x, g), I(dy, g))``.
* max pooling ``y = M(x)`` with argmax indices; its VJP routes ``dy`` to the
  argmax (``R``, linear in ``dy``), whose VJP gathers at the argmax (an XLA
  gather, whose own transpose XLA knows).
* average pooling ``A`` and its transpose ``A^T`` (the spreading op): each is
  the other's VJP.
* relu and ``relu_backward(dy, x)``: linear in ``dy``; the VJP of the latter
  is itself (and zero for ``x``).

Under ``jax.vmap`` the callbacks use ``vmap_method="expand_dims"``: they get
the mapped axes as extra leading axes (size 1 for unmapped operands) and fold
them into the batch axis (only the data is mapped) or into the groups (the
weights are mapped: a per-example filter bank is a grouped convolution).

Padding: the engine pads symmetrically. A padding ``(low, high)`` with
``low != high`` (``"SAME"`` with an even kernel, or explicit pairs) is split
into the symmetric part ``min(low, high)``, passed to the engine, and the
remainder, written as explicit zeros (``-inf`` for max pooling) into a padded
copy of the input inside the callback; gradients with respect to the input
are computed for the padded copy and cropped.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

import convext as _cx
from convext._args import Pair

Pads = Tuple[Pair, Pair]

__all__ = [
    "ConvGeom",
    "PoolGeom",
    "conv_forward",
    "conv_input_grad",
    "conv_weight_grad",
    "max_pool",
    "avg_pool",
    "avg_pool_transpose",
    "relu",
    "relu_backward",
]


# ---------------------------------------------------------------------------
# geometry (hashable: these travel as static arguments)
# ---------------------------------------------------------------------------
class ConvGeom(NamedTuple):
    """Static parameters of one convolution: ``pads`` is ``((lo, hi), (lo, hi))``."""

    stride: Pair
    pads: Pads
    dilation: Pair
    groups: int

    @property
    def sym(self) -> Pair:
        """The symmetric padding the engine applies itself."""
        return (min(self.pads[0]), min(self.pads[1]))

    @property
    def extra(self) -> Pads:
        """The asymmetric remainder, padded explicitly in the callback."""
        (a, b), (c, d) = self.pads
        ph, pw = self.sym
        return ((a - ph, b - ph), (c - pw, d - pw))


class PoolGeom(NamedTuple):
    """Static parameters of one pooling: ``pads`` is ``((lo, hi), (lo, hi))``."""

    kernel: Pair
    stride: Pair
    pads: Pads
    count_include_pad: bool = True

    @property
    def sym(self) -> Pair:
        """Symmetric part the engine pads (at most half the kernel, its limit)."""
        return (
            min(self.pads[0][0], self.pads[0][1], self.kernel[0] // 2),
            min(self.pads[1][0], self.pads[1][1], self.kernel[1] // 2),
        )

    @property
    def extra(self) -> Pads:
        (a, b), (c, d) = self.pads
        ph, pw = self.sym
        return ((a - ph, b - ph), (c - pw, d - pw))


def _has_extra(extra: Pads) -> bool:
    return any(v != 0 for pair in extra for v in pair)


def _pad(a: np.ndarray, extra: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of ``a`` by ``extra`` (a copy only when needed)."""
    if not _has_extra(extra):
        return a
    width = [(0, 0)] * (a.ndim - 2) + [extra[0], extra[1]]
    return np.pad(a, width, mode="constant", constant_values=value)


def _crop(a: np.ndarray, extra: Pads) -> np.ndarray:
    """Undo :func:`_pad` on the last two axes."""
    if not _has_extra(extra):
        return a
    (t, b), (l, r) = extra
    return a[..., t : a.shape[-2] - b, l : a.shape[-1] - r]


# ---------------------------------------------------------------------------
# batching helpers for the callbacks (vmap_method="expand_dims")
# ---------------------------------------------------------------------------
def _lead(a: np.ndarray, core: int) -> tuple[int, ...]:
    return tuple(a.shape[: a.ndim - core])


def _unmapped(a: np.ndarray, core: int) -> bool:
    return math.prod(_lead(a, core)) == 1


def _stack(a: np.ndarray, batch: tuple[int, ...], core: int) -> np.ndarray:
    """``a`` broadcast to ``batch + core shape`` and flattened to one leading axis."""
    core_shape = a.shape[a.ndim - core :]
    return np.broadcast_to(a, batch + core_shape).reshape((-1,) + core_shape)


def _into_groups(a: np.ndarray) -> np.ndarray:
    """``(B, N, C, H, W) -> (N, B*C, H, W)``: the mapped axis becomes channel blocks."""
    b, n, c, h, w = a.shape
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3, 4)).reshape(n, b * c, h, w)


def _from_groups(a: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """``(N, B*K, H, W) -> batch + (N, K, H, W)``: inverse of :func:`_into_groups`."""
    n, bk, h, w = a.shape
    b = math.prod(batch)
    out = a.reshape(n, b, bk // b, h, w).transpose(1, 0, 2, 3, 4)
    return np.ascontiguousarray(out).reshape(batch + (n, bk // b, h, w))


def _shape_dtype(shape: Sequence[int], like: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(int(s) for s in shape), like.dtype)


def _call(fn: Any, out: Any, *args: Any) -> Any:
    return jax.pure_callback(fn, out, *args, vmap_method="expand_dims")


# ---------------------------------------------------------------------------
# conv2d: host callbacks
# ---------------------------------------------------------------------------
def _conv_out_hw(in_hw: Pair, w_rs: Pair, g: ConvGeom) -> Pair:
    out = []
    for i in range(2):
        span = g.dilation[i] * (w_rs[i] - 1) + 1
        out.append((in_hw[i] + sum(g.pads[i]) - span) // g.stride[i] + 1)
    return (out[0], out[1])


def _host_conv(x: Any, w: Any, *, g: ConvGeom) -> np.ndarray:
    x, w = np.asarray(x), np.asarray(w)
    args = (g.stride, g.sym, g.dilation)
    if _unmapped(w, 4):  # the data alone is mapped: fold the mapped axes into N
        xf = _pad(x.reshape((-1,) + x.shape[-3:]), g.extra)
        y = _cx.conv2d(xf, w.reshape(w.shape[-4:]), None, *args, g.groups)
        return y.reshape(_lead(x, 4) + (x.shape[-4],) + y.shape[1:])
    batch = np.broadcast_shapes(_lead(x, 4), _lead(w, 4))
    xb = _pad(_into_groups(_stack(x, batch, 4)), g.extra)
    wb = _stack(w, batch, 4)
    wb = wb.reshape((-1,) + wb.shape[2:])
    y = _cx.conv2d(xb, wb, None, *args, g.groups * math.prod(batch))
    return _from_groups(y, batch)


def _input_grad_engine(dy: np.ndarray, w: np.ndarray, shape: tuple[int, ...], g: ConvGeom, groups: int) -> np.ndarray:
    """``conv2d_input_grad`` for an input of ``shape``, computed over the rows and
    columns the forward windows cover and zero-extended past them.

    Why: the engine's input gradient returned non-zero values in trailing
    rows/columns that no window covers (seen with N=2, C=4, K=6, 10x10, 3x3,
    stride 2; see the notes); those entries are 0 by definition.
    """
    ho, wo = dy.shape[-2:]
    r, s = w.shape[-2:]
    cover = tuple(
        # windows span [-p, (o-1)*stride + span - p); trimming keeps the output size only if p < stride
        min(shape[2 + i], (o - 1) * g.stride[i] + g.dilation[i] * (k - 1) + 1 - g.sym[i])
        if g.sym[i] < g.stride[i] else shape[2 + i]
        for i, (o, k) in enumerate(((ho, r), (wo, s)))
    )
    if cover == tuple(shape[2:]):
        return _cx.conv2d_input_grad(dy, w, shape, g.stride, g.sym, g.dilation, groups)
    dx = _cx.conv2d_input_grad(dy, w, tuple(shape[:2]) + cover, g.stride, g.sym, g.dilation, groups)
    return np.pad(dx, [(0, 0), (0, 0), (0, shape[2] - cover[0]), (0, shape[3] - cover[1])])


def _host_input_grad(dy: Any, w: Any, *, g: ConvGeom, in_hw: Pair) -> np.ndarray:
    dy, w = np.asarray(dy), np.asarray(w)
    (et, eb), (el, er) = g.extra
    hw = (in_hw[0] + et + eb, in_hw[1] + el + er)
    c = w.shape[-3] * g.groups
    if _unmapped(w, 4):
        dyf = dy.reshape((-1,) + dy.shape[-3:])
        dx = _input_grad_engine(dyf, w.reshape(w.shape[-4:]), (dyf.shape[0], c) + hw, g, g.groups)
        dx = _crop(dx, g.extra)
        return np.ascontiguousarray(dx).reshape(_lead(dy, 4) + (dy.shape[-4], c) + in_hw)
    batch = np.broadcast_shapes(_lead(dy, 4), _lead(w, 4))
    nb = math.prod(batch)
    dyb = _into_groups(_stack(dy, batch, 4))
    wb = _stack(w, batch, 4)
    wb = wb.reshape((-1,) + wb.shape[2:])
    dx = _input_grad_engine(dyb, wb, (dyb.shape[0], nb * c) + hw, g, g.groups * nb)
    return _from_groups(np.ascontiguousarray(_crop(dx, g.extra)), batch)


def _host_weight_grad(dy: Any, x: Any, *, g: ConvGeom, w_rs: Pair) -> np.ndarray:
    dy, x = np.asarray(dy), np.asarray(x)
    args = (g.stride, g.sym, g.dilation)
    k, cg = dy.shape[-3], x.shape[-3] // g.groups
    batch = np.broadcast_shapes(_lead(dy, 4), _lead(x, 4))
    nb = math.prod(batch)
    if nb == 1:
        dyf = dy.reshape(dy.shape[-4:])
        xf = _pad(x.reshape(x.shape[-4:]), g.extra)
        dw = _cx.conv2d_weight_grad(dyf, xf, (k, cg) + w_rs, *args, g.groups)
        return dw.reshape(batch + dw.shape)
    # A sum over N cannot absorb a mapped axis; the mapped axis becomes groups.
    dyb = _into_groups(_stack(dy, batch, 4))
    xb = _pad(_into_groups(_stack(x, batch, 4)), g.extra)
    dw = _cx.conv2d_weight_grad(dyb, xb, (nb * k, cg) + w_rs, *args, g.groups * nb)
    return dw.reshape(batch + (k, cg) + w_rs)


# ---------------------------------------------------------------------------
# conv2d: primitives
# ---------------------------------------------------------------------------
def _conv_call(x: jax.Array, w: jax.Array, g: ConvGeom) -> jax.Array:
    n, _, h, wd = x.shape
    oh, ow = _conv_out_hw((h, wd), (w.shape[2], w.shape[3]), g)
    out = _shape_dtype((n, w.shape[0], oh, ow), x)
    return _call(partial(_host_conv, g=g), out, x, w)


def _input_grad_call(dy: jax.Array, w: jax.Array, g: ConvGeom, in_hw: Pair) -> jax.Array:
    out = _shape_dtype((dy.shape[0], w.shape[1] * g.groups) + tuple(in_hw), dy)
    return _call(partial(_host_input_grad, g=g, in_hw=(in_hw[0], in_hw[1])), out, dy, w)


def _weight_grad_call(dy: jax.Array, x: jax.Array, g: ConvGeom, w_rs: Pair) -> jax.Array:
    out = _shape_dtype((dy.shape[1], x.shape[1] // g.groups) + tuple(w_rs), dy)
    return _call(partial(_host_weight_grad, g=g, w_rs=(w_rs[0], w_rs[1])), out, dy, x)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_forward(x: jax.Array, w: jax.Array, g: ConvGeom) -> jax.Array:
    """``F(x, w)``: NCHW/OIHW convolution (a correlation)."""
    return _conv_call(x, w, g)


def _conv_forward_fwd(x: jax.Array, w: jax.Array, g: ConvGeom) -> tuple[jax.Array, Any]:
    # The forward rule calls the primitive itself (not the raw callback) so that
    # it can be differentiated again: higher derivatives trace through it.
    return conv_forward(x, w, g), (x, w)


def _conv_forward_bwd(g: ConvGeom, res: Any, dy: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, w = res
    return (
        conv_input_grad(dy, w, g, (x.shape[2], x.shape[3])),
        conv_weight_grad(dy, x, g, (w.shape[2], w.shape[3])),
    )


conv_forward.defvjp(_conv_forward_fwd, _conv_forward_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_input_grad(dy: jax.Array, w: jax.Array, g: ConvGeom, in_hw: Pair) -> jax.Array:
    """``I(dy, w)``: the input gradient of :func:`conv_forward` (a transposed convolution)."""
    return _input_grad_call(dy, w, g, in_hw)


def _conv_input_grad_fwd(dy: jax.Array, w: jax.Array, g: ConvGeom, in_hw: Pair) -> tuple[jax.Array, Any]:
    return conv_input_grad(dy, w, g, in_hw), (dy, w)


def _conv_input_grad_bwd(g: ConvGeom, in_hw: Pair, res: Any, gx: jax.Array) -> tuple[jax.Array, jax.Array]:
    dy, w = res
    return conv_forward(gx, w, g), conv_weight_grad(dy, gx, g, (w.shape[2], w.shape[3]))


conv_input_grad.defvjp(_conv_input_grad_fwd, _conv_input_grad_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_weight_grad(dy: jax.Array, x: jax.Array, g: ConvGeom, w_rs: Pair) -> jax.Array:
    """``W(dy, x)``: the weight gradient of :func:`conv_forward` (summed over the batch)."""
    return _weight_grad_call(dy, x, g, w_rs)


def _conv_weight_grad_fwd(dy: jax.Array, x: jax.Array, g: ConvGeom, w_rs: Pair) -> tuple[jax.Array, Any]:
    return conv_weight_grad(dy, x, g, w_rs), (dy, x)


def _conv_weight_grad_bwd(g: ConvGeom, w_rs: Pair, res: Any, gw: jax.Array) -> tuple[jax.Array, jax.Array]:
    dy, x = res
    return conv_forward(x, gw, g), conv_input_grad(dy, gw, g, (x.shape[2], x.shape[3]))


conv_weight_grad.defvjp(_conv_weight_grad_fwd, _conv_weight_grad_bwd)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
def _pool_out_hw(in_hw: Pair, p: PoolGeom) -> Pair:
    return (
        (in_hw[0] + sum(p.pads[0]) - p.kernel[0]) // p.stride[0] + 1,
        (in_hw[1] + sum(p.pads[1]) - p.kernel[1]) // p.stride[1] + 1,
    )


def _fold(a: np.ndarray) -> np.ndarray:
    return a.reshape((-1,) + a.shape[-3:])


def _host_max_pool(x: Any, *, p: PoolGeom) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    xf = _pad(_fold(x), p.extra, -np.inf)
    y, idx = _cx.max_pool2d(xf, p.kernel, p.stride, p.sym, 1, False, True)
    lead = _lead(x, 4) + (x.shape[-4],)
    return y.reshape(lead + y.shape[1:]), idx.astype(np.int32).reshape(lead + y.shape[1:])


def _host_max_route(dy: Any, x: Any, idx: Any, *, p: PoolGeom) -> np.ndarray:
    dy, x, idx = np.asarray(dy), np.asarray(x), np.asarray(idx)
    batch = np.broadcast_shapes(_lead(dy, 4), _lead(x, 4), _lead(idx, 4))
    xf = _pad(_stack(x, batch, 4).reshape((-1,) + x.shape[-3:]), p.extra, -np.inf)
    dyf = _stack(dy, batch, 4).reshape((-1,) + dy.shape[-3:])
    idf = _stack(idx, batch, 4).reshape((-1,) + idx.shape[-3:])
    dx = _cx.max_pool2d_backward(dyf, xf, p.kernel, p.stride, p.sym, 1, False, idf)
    dx = np.ascontiguousarray(_crop(dx, p.extra))
    return dx.reshape(batch + x.shape[-4:])


def _max_pool_call(x: jax.Array, p: PoolGeom) -> tuple[jax.Array, jax.Array]:
    n, c, h, w = x.shape
    shape = (n, c) + _pool_out_hw((h, w), p)
    out = (_shape_dtype(shape, x), jax.ShapeDtypeStruct(shape, jnp.int32))
    return _call(partial(_host_max_pool, p=p), out, x)


def _gather_at(gx: jax.Array, idx: jax.Array, p: PoolGeom) -> jax.Array:
    """``gx`` read at each window's argmax (the VJP of the routing op; plain XLA)."""
    (et, eb), (el, er) = p.extra
    gp = jnp.pad(gx, ((0, 0), (0, 0), (et, eb), (el, er)))
    n, c = gp.shape[:2]
    flat = jnp.take_along_axis(gp.reshape(n, c, -1), idx.reshape(n, c, -1), axis=2)
    return flat.reshape(idx.shape)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _max_route(dy: jax.Array, x: jax.Array, idx: jax.Array, p: PoolGeom) -> jax.Array:
    return _call(partial(_host_max_route, p=p), _shape_dtype(x.shape, x), dy, x, idx)


def _max_route_fwd(dy: jax.Array, x: jax.Array, idx: jax.Array, p: PoolGeom) -> tuple[jax.Array, Any]:
    return _max_route(dy, x, idx, p), (x, idx)


def _max_route_bwd(p: PoolGeom, res: Any, gx: jax.Array) -> tuple[Any, ...]:
    x, idx = res
    # The argmax is locally constant in x: no gradient flows to x or idx.
    return _gather_at(gx, idx, p), jnp.zeros_like(x), None


_max_route.defvjp(_max_route_fwd, _max_route_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool_indices(x: jax.Array, p: PoolGeom) -> tuple[jax.Array, jax.Array]:
    return _max_pool_call(x, p)


def _max_pool_indices_fwd(x: jax.Array, p: PoolGeom) -> tuple[tuple[jax.Array, jax.Array], Any]:
    y, idx = _max_pool_indices(x, p)
    return (y, idx), (x, idx)


def _max_pool_indices_bwd(p: PoolGeom, res: Any, cts: Any) -> tuple[jax.Array]:
    x, idx = res
    return (_max_route(cts[0], x, idx, p),)  # the indices' cotangent is symbolic zero


_max_pool_indices.defvjp(_max_pool_indices_fwd, _max_pool_indices_bwd)


def max_pool(x: jax.Array, p: PoolGeom) -> jax.Array:
    """NCHW max pooling (padding never selected); gradient routed to the first argmax."""
    return _max_pool_indices(x, p)[0]


def _host_avg_pool(x: Any, *, p: PoolGeom) -> np.ndarray:
    x = np.asarray(x)
    y = _cx.avg_pool2d(_pad(_fold(x), p.extra), p.kernel, p.stride, p.sym, False, p.count_include_pad)
    return y.reshape(_lead(x, 4) + (x.shape[-4],) + y.shape[1:])


def _host_avg_spread(dy: Any, *, p: PoolGeom, in_hw: Pair) -> np.ndarray:
    dy = np.asarray(dy)
    (et, eb), (el, er) = p.extra
    dyf = _fold(dy)
    shape = dyf.shape[:2] + (in_hw[0] + et + eb, in_hw[1] + el + er)
    dx = _cx.avg_pool2d_backward(dyf, shape, p.kernel, p.stride, p.sym, False, p.count_include_pad)
    dx = np.ascontiguousarray(_crop(dx, p.extra))
    return dx.reshape(_lead(dy, 4) + (dy.shape[-4], dy.shape[-3]) + tuple(in_hw))


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def avg_pool(x: jax.Array, p: PoolGeom) -> jax.Array:
    """NCHW average pooling ``A(x)`` (linear)."""
    n, c, h, w = x.shape
    out = _shape_dtype((n, c) + _pool_out_hw((h, w), p), x)
    return _call(partial(_host_avg_pool, p=p), out, x)


def _avg_pool_fwd(x: jax.Array, p: PoolGeom) -> tuple[jax.Array, Any]:
    return avg_pool(x, p), (x.shape[2], x.shape[3])


def _avg_pool_bwd(p: PoolGeom, in_hw: Pair, dy: jax.Array) -> tuple[jax.Array]:
    return (avg_pool_transpose(dy, p, in_hw),)


avg_pool.defvjp(_avg_pool_fwd, _avg_pool_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def avg_pool_transpose(dy: jax.Array, p: PoolGeom, in_hw: Pair) -> jax.Array:
    """``A^T(dy)``: each window's share of ``dy`` spread over the window."""
    out = _shape_dtype(dy.shape[:2] + tuple(in_hw), dy)
    return _call(partial(_host_avg_spread, p=p, in_hw=(in_hw[0], in_hw[1])), out, dy)


def _avg_pool_transpose_fwd(dy: jax.Array, p: PoolGeom, in_hw: Pair) -> tuple[jax.Array, Any]:
    return avg_pool_transpose(dy, p, in_hw), None


def _avg_pool_transpose_bwd(p: PoolGeom, in_hw: Pair, res: Any, gx: jax.Array) -> tuple[jax.Array]:
    return (avg_pool(gx, p),)


avg_pool_transpose.defvjp(_avg_pool_transpose_fwd, _avg_pool_transpose_bwd)


# ---------------------------------------------------------------------------
# relu
# ---------------------------------------------------------------------------
def _host_relu(x: Any) -> np.ndarray:
    return _cx.relu(np.asarray(x))


def _host_relu_backward(dy: Any, x: Any) -> np.ndarray:
    dy, x = np.asarray(dy), np.asarray(x)
    if dy.shape != x.shape:  # a mapped and an unmapped operand
        shape = np.broadcast_shapes(dy.shape, x.shape)
        dy, x = np.broadcast_to(dy, shape), np.broadcast_to(x, shape)
    return _cx.relu_backward(dy, x)


@jax.custom_vjp
def relu(x: jax.Array) -> jax.Array:
    """``max(x, 0)`` (NaN kept)."""
    return _call(_host_relu, _shape_dtype(x.shape, x), x)


def _relu_fwd(x: jax.Array) -> tuple[jax.Array, Any]:
    return relu(x), x


def _relu_bwd(x: jax.Array, dy: jax.Array) -> tuple[jax.Array]:
    return (relu_backward(dy, x),)


relu.defvjp(_relu_fwd, _relu_bwd)


@jax.custom_vjp
def relu_backward(dy: jax.Array, x: jax.Array) -> jax.Array:
    """``dy`` where ``x > 0`` (or NaN), else 0: linear in ``dy``, locally constant in ``x``."""
    return _call(_host_relu_backward, _shape_dtype(x.shape, dy), dy, x)


def _relu_backward_fwd(dy: jax.Array, x: jax.Array) -> tuple[jax.Array, Any]:
    return relu_backward(dy, x), x


def _relu_backward_bwd(x: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    return relu_backward(g, x), jnp.zeros_like(x)


relu_backward.defvjp(_relu_backward_fwd, _relu_backward_bwd)
