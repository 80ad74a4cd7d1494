"""The peers: which libraries are installed, and how each one runs an op.

* PyTorch CPU (``torch.nn.functional`` forward, autograd ``.backward`` for the
  backward pass, ``torch.set_num_threads`` to the same thread count);
* a numpy im2col + matmul layer written here (forward and backward, BLAS
  threads limited with ``threadpoolctl``);
* ``scipy.signal.correlate2d`` / ``convolve2d`` for the 2-D rows;
* ONNX Runtime's forward of a one-Conv model built with ``onnx.helper``
  (``--zoo`` and the suite's conv rows, where ``onnxruntime`` and ``onnx``
  are installed).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from convext.bench.suite import ConvSpec
from convext.bench.timing import Task

__all__ = [
    "OPTIONAL",
    "Peers",
    "load_peers",
    "numpy_conv2d",
    "numpy_conv2d_backward",
    "numpy_relu_backward",
    "onnx_conv_task",
    "set_onnx_threads",
    "torch_forward",
    "torch_backward",
]

Array = NDArray[Any]

# Optional packages the bench uses, with what each one adds (the run prints
# those that are missing).
OPTIONAL = {
    "torch": "PyTorch columns, --models, --zoo and the accuracy column",
    "scipy": "scipy.signal columns of the 2-D rows",
    "onnxruntime": "ONNX Runtime forward column (needs onnx too)",
    "onnx": "building the one-Conv ONNX models for ONNX Runtime",
    "threadpoolctl": "limiting numpy's BLAS threads to --threads",
    "matplotlib": "--plot",
}


@dataclass
class Peers:
    """The libraries this run uses (None where not installed or skipped)."""

    convext: Any
    torch: Any = None
    scipy_signal: Any = None
    onnxruntime: Any = None
    onnx: Any = None
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def load_peers(skip: Sequence[str] = ()) -> Peers:
    """Import every peer that is installed and not skipped.

    Parameters
    ----------
    skip : sequence of str, optional
        Peers to leave out (``torch``, ``scipy``, ``onnxruntime``).

    Returns
    -------
    Peers
        With ``missing`` naming the optional packages that are not installed
        and ``notes`` saying what each absence (or skip) removes.
    """
    import convext

    peers = Peers(convext=convext)
    peers.torch = _optional_import("torch", "torch", skip, peers)
    peers.scipy_signal = _optional_import("scipy", "scipy.signal", skip, peers)
    peers.onnxruntime = _optional_import("onnxruntime", "onnxruntime", skip, peers)
    peers.onnx = _optional_import("onnx", "onnx", skip, peers) if peers.onnxruntime else None
    if peers.onnx is None:
        peers.onnxruntime = None
    for name in ("threadpoolctl", "matplotlib"):
        if importlib.util.find_spec(name) is None:
            peers.missing.append(name)
            peers.notes.append(f"{name} not installed: no {OPTIONAL[name]}")
    return peers


def _optional_import(peer: str, module: str, skip: Sequence[str], peers: Peers) -> Any:
    """Import a peer's module, or note why its columns are missing."""
    if peer in skip or (peer == "onnx" and "onnxruntime" in skip):
        peers.notes.append(f"{peer} skipped (--skip)")
        return None
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        peers.missing.append(peer)
        peers.notes.append(f"{peer} not installed: no {OPTIONAL[peer]} ({exc})")
        return None


# --------------------------------------------------------------------------
# The numpy peer: an im2col + matmul layer, forward and backward
# --------------------------------------------------------------------------


def _im2col(x: Array, spec: ConvSpec) -> Array:
    """Patches of ``x`` as a (N, groups, C/g * R * S, Ho * Wo) matrix stack.

    ``sliding_window_view`` gives every (dilated) window as a view; slicing by
    the stride and the dilation leaves the (N, C, Ho, Wo, R, S) patches, and
    the final reshape copies them into GEMM order (this copy *is* im2col).
    """
    (ph, pw), (sh, sw), (dh, dw) = spec.padding, spec.stride, spec.dilation
    ho, wo = spec.out_hw
    g = spec.groups
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    extent = (dh * (spec.R - 1) + 1, dw * (spec.S - 1) + 1)
    win = sliding_window_view(xp, extent, axis=(2, 3))
    win = win[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, ::dh, ::dw]
    win = win.reshape(spec.N, g, spec.C // g, ho, wo, spec.R, spec.S)
    return win.transpose(0, 1, 2, 5, 6, 3, 4).reshape(spec.N, g, -1, ho * wo)


def numpy_conv2d(x: Array, weight: Array, bias: Array | None, spec: ConvSpec) -> Array:
    """Forward convolution of the numpy im2col + matmul layer.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input.
    weight : ndarray, shape (K, C/groups, R, S)
        Filters.
    bias : ndarray, shape (K,), optional
        Added per output channel.
    spec : ConvSpec
        Geometry (stride, padding, dilation, groups).

    Returns
    -------
    ndarray, shape (N, K, Ho, Wo)
        ``torch.nn.functional.conv2d(x, weight, bias, ...)``; groups are a
        batch axis of the matmul, one GEMM per sample and group.
    """
    g = spec.groups
    cols = _im2col(x, spec)
    out = np.matmul(weight.reshape(g, spec.K // g, -1), cols)
    out = out.reshape(spec.N, spec.K, *spec.out_hw)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def numpy_conv2d_backward(
    grad_out: Array, x: Array, weight: Array, spec: ConvSpec
) -> tuple[Array, Array, Array]:
    """Backward pass of the numpy im2col + matmul layer.

    Parameters
    ----------
    grad_out : ndarray, shape (N, K, Ho, Wo)
        Gradient of the loss with respect to the output.
    x : ndarray, shape (N, C, H, W)
        Input of the forward pass (the patches are recomputed, as convext does).
    weight : ndarray, shape (K, C/groups, R, S)
        Filters.
    spec : ConvSpec
        Geometry.

    Returns
    -------
    grad_x, grad_weight, grad_bias : ndarray
        Gradients with the shapes of ``x``, ``weight`` and the bias.  grad_x is
        col2im of ``W^T dY``: one strided add per filter tap.
    """
    (ph, pw), (sh, sw), (dh, dw) = spec.padding, spec.stride, spec.dilation
    ho, wo = spec.out_hw
    g, cg, kg = spec.groups, spec.C // spec.groups, spec.K // spec.groups
    gy = np.ascontiguousarray(grad_out).reshape(spec.N, g, kg, ho * wo)
    cols = _im2col(x, spec)
    grad_w = np.matmul(gy, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(weight.shape)
    w_t = weight.reshape(g, kg, -1).transpose(0, 2, 1)
    dcols = np.matmul(w_t, gy).reshape(spec.N, g, cg, spec.R, spec.S, ho, wo)
    gxp = np.zeros((spec.N, g, cg, spec.H + 2 * ph, spec.W + 2 * pw), dtype=x.dtype)
    for r in range(spec.R):
        for s in range(spec.S):
            rows = slice(r * dh, r * dh + sh * (ho - 1) + 1, sh)
            cols_ = slice(s * dw, s * dw + sw * (wo - 1) + 1, sw)
            gxp[:, :, :, rows, cols_] += dcols[:, :, :, r, s]
    grad_x = np.ascontiguousarray(gxp[..., ph : ph + spec.H, pw : pw + spec.W]).reshape(x.shape)
    return grad_x, grad_w, grad_out.sum(axis=(0, 2, 3))


def numpy_relu_backward(grad_out: Array, x: Array) -> Array:
    return np.where(x > 0, grad_out, x.dtype.type(0))


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------


def torch_forward(torch: Any, fn: Callable[..., Any], *args: Any) -> Task:
    """A PyTorch forward call without autograd."""
    tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]

    def run() -> Any:
        with torch.no_grad():
            return fn(*tensors)

    return Task(run)


def torch_backward(torch: Any, fn: Callable[..., Any], grad: Array, *args: Array | None) -> Task:
    """A timed autograd ``.backward(grad)``; the forward runs untimed before it.

    Every array argument becomes a leaf tensor requiring grad; their grads are
    reset before each forward so that backward allocates them afresh (as
    convext does) instead of accumulating.
    """
    leaves = [None if a is None else torch.from_numpy(a.copy()).requires_grad_(True) for a in args]
    grad_t = torch.from_numpy(grad)
    graph: dict[str, Any] = {}

    def prepare() -> None:
        for leaf in leaves:
            if leaf is not None:
                leaf.grad = None
        graph["out"] = fn(*leaves)

    def run() -> tuple[Any, ...]:
        graph.pop("out").backward(grad_t)
        return tuple(leaf.grad for leaf in leaves if leaf is not None)

    return Task(run, prepare)


# --------------------------------------------------------------------------
# ONNX Runtime: a one-Conv model per layer
# --------------------------------------------------------------------------


def onnx_conv_task(peers: Peers, spec: ConvSpec, x: Array, weight: Array, bias: Array | None) -> Task:
    """ONNX Runtime's forward of one Conv node with the layer's geometry.

    The model is built with ``onnx.helper`` (weights as initializers, so
    the runtime may pre-pack them, as it does for a real model), and run in a
    session with ``intra_op_num_threads`` set by :func:`set_onnx_threads`
    (the session is created when the task is made).

    Parameters
    ----------
    peers : Peers
        With ``onnx`` and ``onnxruntime`` loaded.
    spec : ConvSpec
        The layer.
    x, weight, bias : ndarray
        float32 (or float64) input, filters and optional bias.

    Returns
    -------
    Task
        Returns the output array.
    """
    onnx, ort = peers.onnx, peers.onnxruntime
    helper, tp = onnx.helper, onnx.TensorProto
    elem = tp.FLOAT if x.dtype == np.float32 else tp.DOUBLE
    (ph, pw), (sh, sw), (dh, dw) = spec.padding, spec.stride, spec.dilation
    inits = [onnx.numpy_helper.from_array(weight, "W")]
    inputs = ["X", "W"]
    if bias is not None:
        inits.append(onnx.numpy_helper.from_array(bias, "B"))
        inputs.append("B")
    node = helper.make_node(
        "Conv",
        inputs,
        ["Y"],
        kernel_shape=[spec.R, spec.S],
        strides=[sh, sw],
        pads=[ph, pw, ph, pw],
        dilations=[dh, dw],
        group=spec.groups,
    )
    graph = helper.make_graph(
        [node],
        spec.name,
        [helper.make_tensor_value_info("X", elem, list(x.shape))],
        [helper.make_tensor_value_info("Y", elem, list(spec.shapes()["out"]))],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
    options = ort.SessionOptions()
    options.intra_op_num_threads = _ONNX_THREADS[0]
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feed = {"X": x}
    return Task(lambda: session.run(None, feed)[0])


_ONNX_THREADS = [1]


def set_onnx_threads(threads: int) -> None:
    """Thread count of the ONNX Runtime sessions created after this call.

    Parameters
    ----------
    threads : int
    """
    _ONNX_THREADS[0] = int(threads)

