"""convext.jax against stock JAX (lax.conv_general_dilated / lax.reduce_window) and convext.reference."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import convext.jax as cj  # noqa: E402
from convext import reference  # noqa: E402

jax.config.update("jax_enable_x64", True)

TOL = {np.float32: 2e-4, np.float64: 1e-10}
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]


def _rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jnp.asarray(rng.standard_normal(shape).astype(dtype))


def _close(a: Any, b: Any, dtype: Any, scale: float = 1.0) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    tol = TOL[dtype] * scale * max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)


def _lax_pads(padding: Any, x: Any, r: int, s: int, stride: int, dil: tuple[int, int]) -> Any:
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return padding


CONV_CASES = [
    pytest.param(dict(padding=0), id="valid_int"),
    pytest.param(dict(padding=1, stride=2), id="pad1_stride2"),
    pytest.param(dict(padding=(2, 1), dilation=(2, 1)), id="pair_dilated"),
    pytest.param(dict(padding=((0, 1), (2, 0)), stride=2), id="asym_lo_hi"),
    pytest.param(dict(padding="SAME", stride=2), id="same_stride2"),
    pytest.param(dict(padding="SAME", kernel=(2, 4)), id="same_even_kernel"),
    pytest.param(dict(padding="VALID", groups=2), id="valid_groups2"),
    pytest.param(dict(padding=1, groups=4, k=4), id="depthwise"),
]


def _conv_pair(case: dict, dtype: Any, seed: int = 0) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    g = case.get("groups", 1)
    r, s = case.get("kernel", (3, 3))
    k = case.get("k", 6)
    x = _rand(rng, (2, 4, 9, 8), dtype)
    w = _rand(rng, (k, 4 // g, r, s), dtype)
    st, pad, dil = case.get("stride", 1), case["padding"], case.get("dilation", (1, 1))

    def ours(x: Any, w: Any) -> Any:
        return cj.conv2d(x, w, stride=st, padding=pad, dilation=dil, groups=g)

    def stock(x: Any, w: Any) -> Any:
        return lax.conv_general_dilated(
            x, w, (st, st), _lax_pads(pad, x, r, s, st, dil), rhs_dilation=dil, feature_group_count=g,
            precision=lax.Precision.HIGHEST,
        )

    return x, w, ours, stock


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_grad_jit(case: dict, dtype: Any) -> None:
    x, w, ours, stock = _conv_pair(case, dtype)
    _close(jax.jit(ours)(x, w), stock(x, w), dtype)
    loss = lambda f: (lambda x, w: (jnp.sin(f(x, w)) ** 2).sum())  # noqa: E731
    for a, b in zip(jax.jit(jax.grad(loss(ours), (0, 1)))(x, w), jax.grad(loss(stock), (0, 1))(x, w)):
        _close(a, b, dtype, 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[3], CONV_CASES[7]])
def test_conv2d_second_derivatives(case: dict, dtype: Any) -> None:
    x, w, ours, stock = _conv_pair(case, dtype)
    loss = lambda f: (lambda x, w: (f(x, w) ** 3).sum())  # noqa: E731
    # grad of grad (mixed x/w terms go through I, W and F of the backward)
    gg = lambda f: jax.grad(lambda x, w: jax.grad(loss(f), 1)(x, w).sum(), (0, 1))  # noqa: E731
    for a, b in zip(gg(ours)(x, w), gg(stock)(x, w)):
        _close(a, b, dtype, 50)
    # Hessian-vector product, reverse over reverse
    v = jax.tree_util.tree_map(jnp.ones_like, (x, w))
    hvp = lambda f: jax.grad(  # noqa: E731
        lambda x, w: sum(jnp.vdot(a, b) for a, b in zip(jax.grad(loss(f), (0, 1))(x, w), v)), (0, 1)
    )
    for a, b in zip(jax.jit(hvp(ours))(x, w), hvp(stock)(x, w)):
        _close(a, b, dtype, 50)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_full_hessian_small(dtype: Any) -> None:
    x, w, ours, stock = _conv_pair(dict(padding="SAME", groups=2), dtype)
    x = x[:1, :, :4, :4]
    loss = lambda f: (lambda x, w: (f(x, w) ** 3).sum())  # noqa: E731
    h = jax.jacrev(jax.jacrev(loss(ours), (0, 1)), (0, 1))(x, w)
    hr = jax.hessian(loss(stock), (0, 1))(x, w)
    for i in range(2):
        for j in range(2):
            _close(h[i][j], hr[i][j], dtype, 50)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mapped", ["x", "w", "both"])
def test_conv2d_vmap(mapped: str, dtype: Any) -> None:
    x, w, ours, stock = _conv_pair(dict(padding=((1, 0), (0, 2)), groups=2, stride=2), dtype)
    xb = jnp.stack([x, 2 * x, -x]) if mapped != "w" else x
    wb = jnp.stack([w, 0.5 * w, -w]) if mapped != "x" else w
    axes = (0 if mapped != "w" else None, 0 if mapped != "x" else None)
    _close(jax.vmap(ours, axes)(xb, wb), jax.vmap(stock, axes)(xb, wb), dtype)
    loss = lambda f: (lambda x, w: (f(x, w) ** 2).sum())  # noqa: E731
    for a, b in zip(jax.vmap(jax.grad(loss(ours), (0, 1)), axes)(xb, wb), jax.vmap(jax.grad(loss(stock), (0, 1)), axes)(xb, wb)):
        _close(a, b, dtype, 10)
    nested = jax.jit(jax.vmap(jax.vmap(lambda x: ours(x, w))))(jnp.stack([x[None], x[None]]))
    _close(nested[1, 0], stock(x, w), dtype)


def test_conv2d_nhwc_and_reference() -> None:
    x, w, ours, stock = _conv_pair(dict(padding=1, groups=2), np.float64)
    xh, wh = jnp.transpose(x, (0, 2, 3, 1)), jnp.transpose(w, (2, 3, 1, 0))
    y = cj.conv2d(xh, wh, padding=1, groups=2, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    _close(jnp.transpose(y, (0, 3, 1, 2)), stock(x, w), np.float64)
    ref = reference.conv2d(np.asarray(x), np.asarray(w), None, 1, 1, 1, 2)
    _close(cj.conv2d(x, w, padding=1, groups=2), jnp.asarray(ref), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_is_input_vjp(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    w = _rand(rng, (6, 2, 3, 3), dtype)
    dy = _rand(rng, (2, 6, 5, 5), dtype)
    x0 = jnp.zeros((2, 4, 10, 10), dtype)
    fwd = lambda x: lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), feature_group_count=2)  # noqa: E731
    ref = jax.vjp(fwd, x0)[1](dy)[0]
    out = jax.jit(lambda dy, w: cj.conv_transpose2d(dy, w, 2, 1, output_padding=1, groups=2))(dy, w)
    _close(out, ref, dtype)
    g = jax.grad(lambda w: (cj.conv_transpose2d(dy, w, 2, 1, 1, groups=2) ** 2).sum())(w)
    gr = jax.grad(lambda w: (jax.vjp(lambda x: lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), feature_group_count=2), x0)[1](dy)[0] ** 2).sum())(w)
    _close(g, gr, dtype, 10)


POOL_PADS = [
    pytest.param(0, id="none"),
    pytest.param(1, id="int"),
    pytest.param("SAME", id="same"),
    pytest.param(((0, 1), (1, 0)), id="asym"),
]


def _window(x: Any, init: float, op: Any, k: int, s: int, pad: Any) -> Any:
    pads = pad if isinstance(pad, str) else ((0, 0), (0, 0)) + tuple(_lax_pads(pad, x, k, k, s, (1, 1)))
    return lax.reduce_window(x, init, op, (1, 1, k, k), (1, 1, s, s), pads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad", POOL_PADS)
def test_pools(pad: Any, dtype: Any) -> None:
    x = _rand(np.random.default_rng(5), (2, 3, 9, 8), dtype)  # continuous data: no ties
    mx = lambda x: cj.max_pool2d(x, 3, 2, pad)  # noqa: E731
    mr = lambda x: _window(x, -jnp.inf, lax.max, 3, 2, pad)  # noqa: E731
    av = lambda x: cj.avg_pool2d(x, 3, 2, pad)  # noqa: E731
    ar = lambda x: _window(x, 0.0, lax.add, 3, 2, pad) / 9  # noqa: E731
    for ours, stock in ((mx, mr), (av, ar)):
        _close(jax.jit(ours)(x), stock(x), dtype)
        loss = lambda f: (lambda x: (f(x) ** 3).sum())  # noqa: E731
        _close(jax.jit(jax.grad(loss(ours)))(x), jax.grad(loss(stock))(x), dtype, 10)
        gg = lambda f: jax.grad(lambda x: jnp.vdot(jax.grad(loss(f))(x), x))  # noqa: E731
        _close(gg(ours)(x), gg(stock)(x), dtype, 10)
        xb = jnp.stack([x, -x])
        _close(jax.vmap(jax.grad(loss(ours)))(xb), jax.vmap(jax.grad(loss(stock)))(xb), dtype, 10)


def test_pools_nhwc_and_reference() -> None:
    x = _rand(np.random.default_rng(6), (2, 3, 8, 8), np.float64)
    xh = jnp.transpose(x, (0, 2, 3, 1))
    y = cj.max_pool2d(xh, 2, layout="NHWC")
    _close(jnp.transpose(y, (0, 3, 1, 2)), jnp.asarray(reference.max_pool2d(np.asarray(x), 2)), np.float64)
    y = cj.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    _close(y, jnp.asarray(reference.avg_pool2d(np.asarray(x), 3, 1, 1, False, False)), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu(dtype: Any) -> None:
    x = _rand(np.random.default_rng(7), (3, 4, 5), dtype)
    _close(jax.jit(cj.relu)(x), jax.nn.relu(x), dtype)
    loss = lambda f: (lambda x: (f(x) ** 3).sum())  # noqa: E731
    _close(jax.grad(loss(cj.relu))(x), jax.grad(loss(jax.nn.relu))(x), dtype)
    gg = lambda f: jax.grad(lambda x: jnp.vdot(jax.grad(loss(f))(x), x))  # noqa: E731
    _close(gg(cj.relu)(x), gg(jax.nn.relu)(x), dtype)
    xb = jnp.stack([x, -x])
    _close(jax.vmap(jax.grad(loss(cj.relu)))(xb), jax.vmap(jax.grad(loss(jax.nn.relu)))(xb), dtype)


def test_errors() -> None:
    x, w = jnp.ones((1, 4, 8, 8), jnp.float32), jnp.ones((6, 2, 3, 3), jnp.float32)
    with pytest.raises(ValueError, match="groups"):
        cj.conv2d(x, w)
    with pytest.raises(ValueError, match="padding"):
        cj.conv2d(x, w, padding="FULL", groups=2)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cj.conv2d(x, w, stride=0, groups=2)
    with pytest.raises(TypeError, match="dtype"):
        cj.conv2d(x.astype(jnp.int32), w, groups=2)
    with pytest.raises(ValueError, match="count_include_pad"):
        cj.avg_pool2d(x, 3, 2, ((0, 1), (0, 1)), count_include_pad=False)
    with pytest.raises(ValueError, match="output_padding"):
        cj.conv_transpose2d(jnp.ones((1, 6, 4, 4), jnp.float32), w, 2, output_padding=2, groups=2)


def test_flax_conv_matches_linen() -> None:
    nn = pytest.importorskip("flax.linen")
    from convext.jax import flax as cflax

    x = _rand(np.random.default_rng(8), (2, 9, 9, 4), np.float32)
    for kw in (dict(padding="SAME", strides=2), dict(padding=((1, 0), (0, 1)), feature_group_count=2), dict(padding="VALID", kernel_dilation=2)):
        ref = nn.Conv(6, (3, 3), **kw)
        params = ref.init(jax.random.PRNGKey(0), x)
        ours = cflax.Conv(6, (3, 3), **kw)
        assert jax.tree_util.tree_structure(ours.init(jax.random.PRNGKey(0), x)) == jax.tree_util.tree_structure(params)
        _close(ours.apply(params, x), ref.apply(params, x), np.float32)
        g = jax.grad(lambda p: (ours.apply(p, x) ** 2).sum())(params)
        gr = jax.grad(lambda p: (ref.apply(p, x) ** 2).sum())(params)
        for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(gr)):
            _close(a, b, np.float32, 10)
