"""The lines of the layer suite: what each peer runs for a conv, pool, ReLU or 2-D row."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convext.bench.accuracy import conv_accuracy, split_by_op
from convext.bench.peers import (
    Peers,
    numpy_conv2d,
    numpy_conv2d_backward,
    numpy_relu_backward,
    onnx_conv_task,
    torch_backward,
    torch_forward,
)
from convext.bench.suite import RELU_PREFIX, ConvSpec, CorrSpec, PoolSpec
from convext.bench.timing import CONVEXT, CONVEXT_F64, Case, Task

__all__ = [
    "rng_arrays",
    "row_info",
    "conv_cases",
    "pool_cases",
    "relu_cases",
    "correlate_cases",
    "build_cases",
]

Array = NDArray[Any]


def rng_arrays(
    shapes: dict[str, tuple[int, ...]], dtype: np.dtype[Any], seed: int = 0
) -> dict[str, Array]:
    """Standard-normal arrays of the given shapes (integers in [-100, 100) for an
    integer dtype, real and imaginary parts standard normal for a complex one).

    Parameters
    ----------
    shapes : dict of str to tuple of int
    dtype : numpy dtype
    seed : int, optional

    Returns
    -------
    dict of str to ndarray
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    out: dict[str, Array] = {}
    for name, shape in shapes.items():
        if dtype.kind in "iub":
            lo = 0 if dtype.kind in "ub" else -100
            out[name] = rng.integers(lo, 2 if dtype.kind == "b" else 100, shape).astype(dtype)
        elif dtype.kind == "c":
            real = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
            out[name] = real.astype(dtype)
        else:
            out[name] = rng.standard_normal(shape, dtype=dtype)
    return out


def row_info(spec: ConvSpec | PoolSpec | CorrSpec, **extra: Any) -> dict[str, Any]:
    """What a result line records of its row: name, array shapes, parameters.

    Parameters
    ----------
    spec : ConvSpec, PoolSpec or CorrSpec
    **extra
        More fields (stride, mode, ...).

    Returns
    -------
    dict
    """
    return {"row": spec.name, **{k: list(v) for k, v in spec.shapes().items()}, **extra}


def conv_cases(
    spec: ConvSpec,
    dtype: np.dtype[Any],
    peers: Peers,
    f64_ratio: bool,
    numpy_peer: bool = True,
    kind: str = "conv2d",
    with_bias: bool = True,
    accuracy: bool = False,
) -> list[Case]:
    """Forward and backward lines of one conv2d row.

    Parameters
    ----------
    spec : ConvSpec
        The row.
    dtype : numpy dtype
        float32 or float64.
    peers : Peers
        Available libraries (ONNX Runtime gets a forward column where present).
    f64_ratio : bool
        Also time convext in float64 (peer ``convext_f64``).
    numpy_peer : bool, optional
        Time the numpy im2col layer too (the zoo leaves it out).
    kind : str, optional
        The lines' kind (``conv2d`` for the suite, ``zoo`` for ``--zoo``).
    with_bias : bool, optional
        Forward with a bias (the backward always returns its gradient).
    accuracy : bool, optional
        Measure the float32 errors of convext and torch against float64
        (:func:`convext.bench.accuracy.conv_accuracy`) and attach them.

    Returns
    -------
    list of Case
        ``fwd`` (conv2d) and ``bwd`` (grad_x, grad_weight, grad_bias).
    """
    cx = peers.convext
    a = rng_arrays(spec.shapes(), dtype)
    x, w, gy = a["x"], a["weight"], a["out"]
    b = a["bias"] if with_bias else None
    kw = spec.kwargs
    fwd = {CONVEXT: Task(lambda: cx.conv2d(x, w, b, **kw))}
    bwd = {CONVEXT: Task(lambda: cx.conv2d_backward(gy, x, w, **kw))}
    if f64_ratio:
        x64, w64, gy64 = (arr.astype(np.float64) for arr in (x, w, gy))
        b64 = None if b is None else b.astype(np.float64)
        fwd[CONVEXT_F64] = Task(lambda: cx.conv2d(x64, w64, b64, **kw))
        bwd[CONVEXT_F64] = Task(lambda: cx.conv2d_backward(gy64, x64, w64, **kw))
    if peers.torch is not None:
        torch_conv = peers.torch.nn.functional.conv2d

        def conv(xt: Any, wt: Any, bt: Any = None) -> Any:
            return torch_conv(xt, wt, bt, spec.stride, spec.padding, spec.dilation, spec.groups)

        fwd["torch"] = torch_forward(peers.torch, conv, x, w, b)
        # the bias leaf is always there so that torch computes grad_bias as convext does
        bwd["torch"] = torch_backward(peers.torch, conv, gy, x, w, a["bias"])
    if peers.onnxruntime is not None:
        fwd["onnxruntime"] = onnx_conv_task(peers, spec, x, w, b)
    if numpy_peer:
        fwd["numpy"] = Task(lambda: numpy_conv2d(x, w, b, spec))
        bwd["numpy"] = Task(lambda: numpy_conv2d_backward(gy, x, w, spec))
    shape = row_info(spec, **kw)
    cases = [
        Case(spec.name, kind, "fwd", shape, spec.flops, fwd),
        Case(spec.name, kind, "bwd", shape, 2 * spec.flops, bwd, compare=3),
    ]
    if accuracy:
        measured = conv_accuracy(spec, peers)
        for case in cases:
            case.accuracy = split_by_op(measured, case.op)
    return cases


def pool_cases(spec: PoolSpec, dtype: np.dtype[Any], peers: Peers) -> list[Case]:
    """Max-pool forward (with indices) and backward lines of one pool row.

    Parameters
    ----------
    spec : PoolSpec
        The row.
    dtype : numpy dtype
        float32 or float64.
    peers : Peers
        Available libraries.

    Returns
    -------
    list of Case
        ``fwd`` (``max_pool2d(..., return_indices=True)``) and ``bwd``
        (``max_pool2d_backward`` from those indices).  PyTorch's forward also
        returns indices, as its training forward does.
    """
    cx = peers.convext
    a = rng_arrays(spec.shapes(), dtype)
    x, gy = a["x"], a["out"]
    kw = spec.kwargs
    _, indices = cx.max_pool2d(x, **kw, return_indices=True)
    fwd = {CONVEXT: Task(lambda: cx.max_pool2d(x, **kw, return_indices=True))}
    bwd = {CONVEXT: Task(lambda: cx.max_pool2d_backward(gy, x, **kw, indices=indices))}
    if peers.torch is not None:
        max_pool = peers.torch.nn.functional.max_pool2d
        fwd["torch"] = torch_forward(
            peers.torch, lambda t: max_pool(t, **kw, return_indices=True), x
        )
        bwd["torch"] = torch_backward(peers.torch, lambda t: max_pool(t, **kw), gy, x)
    shape = row_info(spec, **kw)
    return [
        Case(spec.name, "pool", "fwd", shape, None, fwd),
        Case(spec.name, "pool", "bwd", shape, None, bwd),
    ]


def relu_cases(spec: PoolSpec, dtype: np.dtype[Any], peers: Peers) -> list[Case]:
    """ReLU forward and backward on the input shape of a pool row.

    Parameters
    ----------
    spec : PoolSpec
        The pool row whose input shape is used; the line is named
        ``relu@<row>``.
    dtype : numpy dtype
        float32 or float64.
    peers : Peers
        Available libraries.

    Returns
    -------
    list of Case
        ``fwd`` (relu) and ``bwd`` (relu_backward).
    """
    cx = peers.convext
    shape = spec.shapes()["x"]
    a = rng_arrays({"x": shape, "grad": shape}, dtype)
    x, gy = a["x"], a["grad"]
    fwd = {CONVEXT: Task(lambda: cx.relu(x))}
    bwd = {CONVEXT: Task(lambda: cx.relu_backward(gy, x))}
    if peers.torch is not None:
        relu = peers.torch.nn.functional.relu
        fwd["torch"] = torch_forward(peers.torch, relu, x)
        bwd["torch"] = torch_backward(peers.torch, relu, gy, x)
    fwd["numpy"] = Task(lambda: np.maximum(x, x.dtype.type(0)))
    bwd["numpy"] = Task(lambda: numpy_relu_backward(gy, x))
    name = RELU_PREFIX + spec.name
    info = {"row": name, "x": list(shape)}
    return [Case(name, "relu", "fwd", info, None, fwd), Case(name, "relu", "bwd", info, None, bwd)]


def correlate_cases(spec: CorrSpec, dtype: np.dtype[Any], peers: Peers) -> list[Case]:
    """correlate2d (op ``corr``) and convolve2d (op ``conv``) lines of a 2-D row.

    A row may name its own dtype (int64, complex128, ...) and a ``boundary``
    (scipy.signal's "fill", "wrap", "symm").  Where convext rejects the row's
    arguments (TypeError or ValueError on a trial call), its column is
    reported as unsupported, with the reason, and scipy is timed alone: such
    rows light up once convext accepts them.

    Parameters
    ----------
    spec : CorrSpec
        The row.
    dtype : numpy dtype
        The run's dtype, used when the row names none.
    peers : Peers
        Available libraries.

    Returns
    -------
    list of Case
        One line per function that convext exports.
    """
    row_dtype = np.dtype(spec.dtype) if spec.dtype else np.dtype(dtype)
    a = rng_arrays(spec.shapes(), row_dtype)
    in1, in2 = a["in1"], a["in2"]
    kw = spec.kwargs
    extra: dict[str, Any] = {"mode": spec.mode, "dtype": row_dtype.name}
    if spec.boundary != "fill":
        extra["boundary"] = spec.boundary
    shape = row_info(spec, **extra)
    cases = []
    for op, fname in (("corr", "correlate2d"), ("conv", "convolve2d")):
        cx_fn = getattr(peers.convext, fname, None)
        if cx_fn is None:
            continue
        tasks: dict[str, Task] = {}
        unsupported: dict[str, str] = {}
        try:
            cx_fn(in1, in2, **kw)  # a trial call
        except (TypeError, ValueError) as exc:
            unsupported[CONVEXT] = f"{type(exc).__name__}: {exc}"
        else:
            tasks[CONVEXT] = Task(functools.partial(cx_fn, in1, in2, **kw))
        if peers.scipy_signal is not None:
            sp_fn = getattr(peers.scipy_signal, fname)
            tasks["scipy"] = Task(functools.partial(sp_fn, in1, in2, **kw))
        cases.append(
            Case(spec.name, "correlate2d", op, shape, spec.flops, tasks, unsupported=unsupported)
        )
    return cases


def build_cases(
    suite: dict[str, list[dict[str, Any]]],
    selected: set[str] | None,
    dtype: np.dtype[Any],
    peers: Peers,
    batch: int | None,
    f64_ratio: bool,
    accuracy: bool = False,
) -> list[Case]:
    """All suite lines to time, in suite order.

    Parameters
    ----------
    suite : dict
        Output of :func:`convext.bench.load_suite`.
    selected : set of str, optional
        Row names to keep (None keeps all); selecting a pool row also
        selects its ``relu@`` line.
    dtype : numpy dtype
        float32 or float64.
    peers : Peers
        Available libraries.
    batch : int, optional
        Batch size replacing the rows' N (``--quick``).
    f64_ratio : bool
        Also time convext conv2d in float64.
    accuracy : bool, optional
        Attach the accuracy measurement to the conv2d lines.

    Returns
    -------
    list of Case
    """

    def keep(name: str) -> bool:
        return selected is None or name in selected

    cases: list[Case] = []
    for row in suite["conv2d"]:
        if keep(row["name"]):
            spec = ConvSpec.from_row(row, batch)
            cases += conv_cases(spec, dtype, peers, f64_ratio, accuracy=accuracy)
    for row in suite["pool"]:
        pool = PoolSpec.from_row(row, batch)
        if keep(pool.name):
            cases += pool_cases(pool, dtype, peers)
        if keep(pool.name) or keep(RELU_PREFIX + pool.name):
            cases += relu_cases(pool, dtype, peers)
    for row in suite["correlate2d"]:
        if keep(row["name"]):
            cases += correlate_cases(CorrSpec.from_row(row), dtype, peers)
    return cases
