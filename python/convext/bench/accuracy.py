"""The accuracy column (``--accuracy``): float32 errors of convext and torch against float64.

For a conv layer: x ~ N(0, 1), weights and bias ~ N(0, 1) / sqrt(fan-in)
(fan-in = C/groups * R * S, as a trained layer's scale), grad_out ~ N(0, 1),
all rounded to float32.  The reference is the numpy im2col layer of
:mod:`convext.bench.peers` in float64 on those same values (independent of
both convext and torch), run over chunks of the batch so that its patch matrix
stays small.  Each float32 result's error is max |got - ref| / max |ref|.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convext.bench.peers import Peers, numpy_conv2d, numpy_conv2d_backward
from convext.bench.suite import ConvSpec

__all__ = ["ACCURACY_KEYS", "max_rel_error", "reference_conv64", "conv_accuracy", "split_by_op"]

ACCURACY_KEYS = ("forward", "input_grad", "weight_grad", "bias_grad")
# Bytes of float64 patches per chunk of the reference (one sample at least).
_CHUNK_BYTES = 256 << 20

Array = NDArray[Any]


def max_rel_error(got: Any, ref: Array) -> float:
    """max |got - ref| / max |ref| (computed in float64).

    Parameters
    ----------
    got : array-like
        A result (any float dtype; a torch tensor is detached first).
    ref : ndarray
        The float64 reference of the same shape.

    Returns
    -------
    float
        0 where both are all zero; inf where only ``ref`` is.
    """
    if hasattr(got, "detach"):
        got = got.detach().numpy()
    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if scale == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / scale


def reference_conv64(
    spec: ConvSpec, x: Array, weight: Array, bias: Array, grad_out: Array
) -> dict[str, Array]:
    """Forward and gradients of the layer in float64 by the numpy im2col layer.

    Parameters
    ----------
    spec : ConvSpec
        The layer.
    x, weight, bias, grad_out : ndarray
        The values (cast to float64 here).

    Returns
    -------
    dict of str to ndarray
        ``forward``, ``input_grad``, ``weight_grad``, ``bias_grad``.
    """
    x, weight, bias, grad_out = (np.asarray(a, dtype=np.float64) for a in (x, weight, bias, grad_out))
    ho, wo = spec.out_hw
    per_sample = 8 * spec.C * spec.R * spec.S * ho * wo
    chunk = max(1, _CHUNK_BYTES // max(per_sample, 1))
    outs, gxs = [], []
    gw = np.zeros(weight.shape)
    for start in range(0, spec.N, chunk):
        stop = min(spec.N, start + chunk)
        part = dataclasses.replace(spec, N=stop - start)
        outs.append(numpy_conv2d(x[start:stop], weight, bias, part))
        gx, gw_part, _ = numpy_conv2d_backward(grad_out[start:stop], x[start:stop], weight, part)
        gxs.append(gx)
        gw += gw_part
    return {
        "forward": np.concatenate(outs),
        "input_grad": np.concatenate(gxs),
        "weight_grad": gw,
        "bias_grad": grad_out.sum(axis=(0, 2, 3)),
    }


def conv_accuracy(spec: ConvSpec, peers: Peers, seed: int = 0) -> dict[str, Any]:
    """float32 errors of convext (and torch, where installed) on one conv layer.

    Parameters
    ----------
    spec : ConvSpec
        The layer (its batch is used as given).
    peers : Peers
        convext and, optionally, torch.
    seed : int, optional
        Seed of the random values.

    Returns
    -------
    dict
        ``convext`` and ``torch``: each a dict of the :data:`ACCURACY_KEYS`
        errors; ``ratio``: convext's error over torch's per key (only with
        torch; 1 where both are 0).
    """
    rng = np.random.default_rng(seed)
    shapes = spec.shapes()
    scale = 1.0 / np.sqrt((spec.C // spec.groups) * spec.R * spec.S)
    x = rng.standard_normal(shapes["x"]).astype(np.float32)
    w = (rng.standard_normal(shapes["weight"]) * scale).astype(np.float32)
    b = (rng.standard_normal(shapes["bias"]) * scale).astype(np.float32)
    gy = rng.standard_normal(shapes["out"]).astype(np.float32)
    ref = reference_conv64(spec, x, w, b, gy)
    cx = peers.convext
    got = {"forward": cx.conv2d(x, w, b, **spec.kwargs)}
    got["input_grad"], got["weight_grad"], got["bias_grad"] = cx.conv2d_backward(
        gy, x, w, **spec.kwargs
    )
    result: dict[str, Any] = {"convext": {k: max_rel_error(got[k], ref[k]) for k in ACCURACY_KEYS}}
    torch = peers.torch
    if torch is not None:
        xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
        out = torch.nn.functional.conv2d(
            xt, wt, bt, spec.stride, spec.padding, spec.dilation, spec.groups
        )
        out.backward(torch.from_numpy(gy))
        tgot = {"forward": out, "input_grad": xt.grad, "weight_grad": wt.grad, "bias_grad": bt.grad}
        result["torch"] = {k: max_rel_error(tgot[k], ref[k]) for k in ACCURACY_KEYS}
        result["ratio"] = {
            k: _ratio(result["convext"][k], result["torch"][k]) for k in ACCURACY_KEYS
        }
    return result


def _ratio(a: float, b: float) -> float:
    if b == 0.0:
        return 1.0 if a == 0.0 else float("inf")
    return a / b


def split_by_op(acc: dict[str, Any], op: str) -> dict[str, Any]:
    """The part of :func:`conv_accuracy`'s result that a ``fwd`` or ``bwd`` line shows.

    Parameters
    ----------
    acc : dict
        Output of :func:`conv_accuracy`.
    op : str
        ``fwd`` (the forward error) or ``bwd`` (the three gradients).

    Returns
    -------
    dict
        Same layout as ``acc`` with only that op's keys.
    """
    keys = ACCURACY_KEYS[:1] if op == "fwd" else ACCURACY_KEYS[1:]
    return {peer: {k: v[k] for k in keys} for peer, v in acc.items()}
