"""Stock JAX (XLA's CPU convolutions) against convext.jax, jitted, interleaved, medians.

Run: ``python -m convext.jax._bench [--repeat 5] [--layers NAME ...]``
(set ``OMP_NUM_THREADS`` and XLA's ``--xla_cpu_multi_thread_eigen``/thread
flags as you want them; the numbers are ratios from one process).
"""
from __future__ import annotations

import argparse
import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import convext.jax as cj

__all__ = ["benchmark", "LAYERS"]

# Copied from the project's suite (fp32, NCHW).
LAYERS: list[dict[str, Any]] = [
    {"name": "lenet5x5", "N": 64, "C": 1, "H": 28, "W": 28, "K": 20, "R": 5, "S": 5, "stride": 1, "padding": 0},
    {"name": "res3x3_56", "N": 8, "C": 64, "H": 56, "W": 56, "K": 64, "R": 3, "S": 3, "stride": 1, "padding": 1},
    {"name": "res3x3_28", "N": 8, "C": 128, "H": 28, "W": 28, "K": 128, "R": 3, "S": 3, "stride": 1, "padding": 1},
    {"name": "res3x3_14", "N": 8, "C": 256, "H": 14, "W": 14, "K": 256, "R": 3, "S": 3, "stride": 1, "padding": 1},
    {"name": "stem7x7s2", "N": 8, "C": 3, "H": 224, "W": 224, "K": 64, "R": 7, "S": 7, "stride": 2, "padding": 3},
    {"name": "down1x1s2", "N": 8, "C": 64, "H": 56, "W": 56, "K": 128, "R": 1, "S": 1, "stride": 2, "padding": 0},
    {"name": "dw3x3_56", "N": 8, "C": 128, "H": 56, "W": 56, "K": 128, "R": 3, "S": 3, "stride": 1, "padding": 1, "groups": 128},
    {"name": "grp3x3_28_g32", "N": 8, "C": 128, "H": 28, "W": 28, "K": 128, "R": 3, "S": 3, "stride": 1, "padding": 1, "groups": 32},
]


def _time(fns: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Median seconds of each thunk, calls interleaved (A B A B ...)."""
    for f in fns:
        jax.block_until_ready(f())
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t = time.perf_counter()
            jax.block_until_ready(f())
            times[i].append(time.perf_counter() - t)
    return [float(np.median(t)) for t in times]


def _stock_conv(x: Any, w: Any, s: int, p: int, g: int) -> Any:
    return lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)), feature_group_count=g)


def _cx_conv(x: Any, w: Any, s: int, p: int, g: int) -> Any:
    return cj.conv2d(x, w, stride=s, padding=p, groups=g)


def _cnn(conv: Callable[..., Any], pool: Callable[..., Any]) -> Callable[..., Any]:
    def loss(params: dict[str, Any], x: Any, y: Any) -> Any:
        h = jax.nn.relu(conv(x, params["c1"], 1, 1, 1))       # 3 -> 32, 3x3
        h = pool(h)                                          # 2x2 max
        h = jax.nn.relu(conv(h, params["dw"], 1, 1, 32))      # depthwise 3x3
        h = jax.nn.relu(conv(h, params["g"], 1, 1, 8))        # grouped 3x3, 8 groups
        h = jax.nn.relu(conv(h, params["c2"], 2, 1, 1))       # 64 -> 64, stride 2
        logits = h.mean(axis=(2, 3)) @ params["fc"]
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * y, axis=1))

    @jax.jit
    def step(params: dict[str, Any], x: Any, y: Any) -> Any:
        l, g = jax.value_and_grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, d: p - 0.01 * d, params, g), l

    return step


def benchmark(repeat: int = 5, layers: list[str] | None = None, print_out: bool = True) -> list[dict[str, Any]]:
    """Time stock JAX against convext.jax (float32, jitted).

    Parameters
    ----------
    repeat : int
        Interleaved timed calls per variant (medians reported).
    layers : list of str, optional
        Names from :data:`LAYERS`; all by default.
    print_out : bool
        Print a markdown table.

    Returns
    -------
    list of dict
        One row per case: ``name``, ``stock_ms``, ``convext_ms``, ``speedup``.
    """
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    # per-call overhead: a tiny conv, jitted, against the numpy call it wraps
    import convext

    xt = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
    wt = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)
    f = jax.jit(lambda x, w: cj.conv2d(x, w))
    xj, wj = jnp.asarray(xt), jnp.asarray(wt)
    t_np, t_jx = _time([lambda: convext.conv2d(xt, wt), lambda: f(xj, wj)], max(200, repeat))
    rows.append({"name": "overhead_1x1x4x4", "stock_ms": t_np * 1e3, "convext_ms": t_jx * 1e3, "speedup": t_np / t_jx,
                 "note": "stock column = convext numpy call; convext column = jitted convext.jax call"})
    for L in LAYERS:
        if layers and L["name"] not in layers:
            continue
        g = L.get("groups", 1)
        x = jnp.asarray(rng.standard_normal((L["N"], L["C"], L["H"], L["W"])).astype(np.float32))
        w = jnp.asarray(rng.standard_normal((L["K"], L["C"] // g, L["R"], L["S"])).astype(np.float32) * 0.1)
        args = (L["stride"], L["padding"], g)
        fwd = [jax.jit(lambda x, w, c=c: c(x, w, *args)) for c in (_stock_conv, _cx_conv)]
        bwd = [jax.jit(jax.grad(lambda x, w, c=c: (c(x, w, *args) ** 2).sum(), (0, 1))) for c in (_stock_conv, _cx_conv)]
        for kind, pair in (("fwd", fwd), ("bwd", bwd)):
            ts = _time([functools.partial(p, x, w) for p in pair], repeat)
            rows.append({"name": f"{L['name']} {kind}", "stock_ms": ts[0] * 1e3, "convext_ms": ts[1] * 1e3, "speedup": ts[0] / ts[1]})
    # training step of a small CNN: conv, pool, depthwise, grouped
    params = {
        "c1": jnp.asarray(rng.standard_normal((32, 3, 3, 3)).astype(np.float32) * 0.2),
        "dw": jnp.asarray(rng.standard_normal((32, 1, 3, 3)).astype(np.float32) * 0.2),
        "g": jnp.asarray(rng.standard_normal((64, 4, 3, 3)).astype(np.float32) * 0.2),
        "c2": jnp.asarray(rng.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05),
        "fc": jnp.asarray(rng.standard_normal((64, 10)).astype(np.float32) * 0.1),
    }
    x = jnp.asarray(rng.standard_normal((32, 3, 32, 32)).astype(np.float32))
    y = jax.nn.one_hot(jnp.asarray(rng.integers(0, 10, 32)), 10)
    stock_pool = lambda h: lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")  # noqa: E731
    steps = [_cnn(_stock_conv, stock_pool), _cnn(_cx_conv, lambda h: cj.max_pool2d(h, 2))]
    ts = _time([functools.partial(s, params, x, y) for s in steps], repeat)
    rows.append({"name": "cnn_train_step N=32 32x32", "stock_ms": ts[0] * 1e3, "convext_ms": ts[1] * 1e3, "speedup": ts[0] / ts[1]})
    if print_out:
        print("| case | stock JAX ms | convext.jax ms | stock / convext |")
        print("| --- | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['name']} | {r['stock_ms']:.3f} | {r['convext_ms']:.3f} | {r['speedup']:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line entry: ``python -m convext.jax._bench``."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--layers", nargs="*")
    a = ap.parse_args(argv)
    benchmark(a.repeat, a.layers)


if __name__ == "__main__":
    main()
