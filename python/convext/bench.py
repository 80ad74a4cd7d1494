"""Benchmark convext against its peers on the layer suite: ``python -m convext bench``.

Every row of ``shared/bench/suite.json`` (which lies beside the repository
checkout) is timed for convext and, in the same process and interleaved
round-robin, for the peers that are installed:

* PyTorch CPU (``torch.nn.functional`` forward, autograd ``.backward`` for the
  backward pass, ``torch.set_num_threads`` to the same thread count);
* a numpy im2col + matmul layer written here (forward and backward, BLAS
  threads limited with ``threadpoolctl``);
* ``scipy.signal.correlate2d`` / ``convolve2d`` for the 2-D rows.

Timing: every peer's result is first cross-checked against convext's
(untimed); then each repetition gives every peer one turn, in a rotating
order.  A turn waits until the previous peer's worker threads are idle,
calls the op untimed for ``--warm-ms``, then times one call; the median over
``--repeat`` turns is reported (all samples go to ``--json``).  All
libraries get the same thread count (``--threads``; numpy's BLAS through
``threadpoolctl``).

The table reports the median milliseconds of each peer, convext's GFLOP/s,
the ratio peer/convext (> 1 means convext is faster) and convext's fraction of
a large numpy GEMM timed in the same run (the machine's peak proxy).  A
``memory`` line gives the extra peak RSS of one ``res3x3_56`` call per peer,
each measured in a fresh subprocess.  Nothing here is a test: no time is
asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = [
    "BenchError",
    "ConvSpec",
    "Peers",
    "PoolSpec",
    "CorrSpec",
    "Task",
    "Case",
    "find_suite",
    "load_suite",
    "numpy_conv2d",
    "numpy_conv2d_backward",
    "Timing",
    "time_tasks",
    "wait_for_idle_threads",
    "measure_gemm_peak",
    "measure_memory",
    "main",
]

SUITE_RELPATH = Path("shared") / "bench" / "suite.json"
SUITE_ENV = "CONVEXT_BENCH_SUITE"
CONVEXT = "convext"
CONVEXT_F64 = "convext_f64"
MEMORY_ROW = "res3x3_56"
RELU_PREFIX = "relu@"
# Relative error above which a peer's result is reported as disagreeing.
# Loose on purpose: this flags wrong results, the test suite checks accuracy.
TOLERANCE = {"float32": 1e-3, "float64": 1e-9}

Array = NDArray[Any]
Pair = tuple[int, int]


class BenchError(Exception):
    """A problem with the command line or the suite (not with a library)."""


# --------------------------------------------------------------------------
# The suite: where it lies and what its rows mean
# --------------------------------------------------------------------------


def _ancestors(start: Path) -> Iterator[Path]:
    start = start.resolve()
    yield start
    yield from start.parents


def find_suite(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate the benchmark suite file.

    Parameters
    ----------
    explicit : str or path-like, optional
        A path given on the command line (``--suite``); it wins when given.

    Returns
    -------
    pathlib.Path
        The suite file: ``explicit``, else the ``CONVEXT_BENCH_SUITE``
        environment variable, else the first ``shared/bench/suite.json`` found
        walking up from the current directory and then from this package's
        source directory (so ``../shared/bench/suite.json`` beside a checkout
        is found from anywhere inside it).

    Raises
    ------
    FileNotFoundError
        If the named file does not exist or no suite is found; the message
        lists every place searched.
    """
    named = explicit if explicit is not None else os.environ.get(SUITE_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            source = "--suite" if explicit is not None else SUITE_ENV
            raise FileNotFoundError(f"bench: suite file from {source} does not exist: {path}")
        return path
    searched: list[str] = []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for directory in _ancestors(start):
            candidate = directory / SUITE_RELPATH
            if candidate.is_file():
                return candidate
            searched.append(str(candidate))
    raise FileNotFoundError(
        "bench: cannot find the layer suite shared/bench/suite.json (it lies beside the "
        f"repository checkout); pass --suite PATH or set {SUITE_ENV}. Searched:\n  "
        + "\n  ".join(dict.fromkeys(searched))
    )


def load_suite(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Read the suite file.

    Parameters
    ----------
    path : str or path-like
        The suite JSON file.

    Returns
    -------
    dict
        The ``conv2d``, ``pool`` and ``correlate2d`` row lists (missing
        sections are empty lists), rows exactly as written.

    Raises
    ------
    BenchError
        If the file is not a JSON object.
    """
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise BenchError(f"bench: suite {path} must be a JSON object, got {type(data).__name__}")
    return {key: list(data.get(key, [])) for key in ("conv2d", "pool", "correlate2d")}


def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def _out_len(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvSpec:
    """Geometry of one conv2d row (NCHW input, weight (K, C/groups, R, S))."""

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1

    @classmethod
    def from_row(cls, row: dict[str, Any], batch: int | None = None) -> ConvSpec:
        """Build the spec of a suite row, optionally with a smaller batch."""
        return cls(
            name=row["name"],
            N=int(batch if batch is not None else row["N"]),
            **{key: int(row[key]) for key in ("C", "H", "W", "K", "R", "S")},
            stride=_pair(row.get("stride", 1)),
            padding=_pair(row.get("padding", 0)),
            dilation=_pair(row.get("dilation", 1)),
            groups=int(row.get("groups", 1)),
        )

    @property
    def out_hw(self) -> Pair:
        """Output height and width."""
        return (
            _out_len(self.H, self.R, self.stride[0], self.padding[0], self.dilation[0]),
            _out_len(self.W, self.S, self.stride[1], self.padding[1], self.dilation[1]),
        )

    @property
    def flops(self) -> float:
        """Forward FLOPs: 2 * N * K * (C/groups) * R * S * Ho * Wo."""
        ho, wo = self.out_hw
        return 2.0 * self.N * self.K * (self.C // self.groups) * self.R * self.S * ho * wo

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by conv2d and conv2d_backward."""
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of x, weight, bias and the output."""
        return {
            "x": (self.N, self.C, self.H, self.W),
            "weight": (self.K, self.C // self.groups, self.R, self.S),
            "bias": (self.K,),
            "out": (self.N, self.K, *self.out_hw),
        }


@dataclass(frozen=True)
class PoolSpec:
    """Geometry of one max-pool row (square kernel, PyTorch semantics)."""

    name: str
    N: int
    C: int
    H: int
    W: int
    kernel: int
    stride: int
    padding: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any], batch: int | None = None) -> PoolSpec:
        """Build the spec of a suite row, optionally with a smaller batch."""
        return cls(
            name=row["name"],
            N=int(batch if batch is not None else row["N"]),
            C=int(row["C"]),
            H=int(row["H"]),
            W=int(row["W"]),
            kernel=int(row["kernel"]),
            stride=int(row.get("stride", row["kernel"])),
            padding=int(row.get("padding", 0)),
        )

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by max_pool2d and max_pool2d_backward."""
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of x and the output."""
        ho = _out_len(self.H, self.kernel, self.stride, self.padding, 1)
        wo = _out_len(self.W, self.kernel, self.stride, self.padding, 1)
        return {"x": (self.N, self.C, self.H, self.W), "out": (self.N, self.C, ho, wo)}


@dataclass(frozen=True)
class CorrSpec:
    """One 2-D correlate2d/convolve2d row: an H x W image and an R x S kernel."""

    name: str
    H: int
    W: int
    R: int
    S: int
    mode: str = "valid"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CorrSpec:
        """Build the spec of a suite row."""
        return cls(
            row["name"],
            *(int(row[key]) for key in ("H", "W", "R", "S")),
            mode=row.get("mode", "valid"),
        )

    @property
    def out_hw(self) -> Pair:
        """Output height and width for the row's mode (scipy semantics)."""
        if self.mode == "full":
            return (self.H + self.R - 1, self.W + self.S - 1)
        if self.mode == "same":
            return (self.H, self.W)
        return (self.H - self.R + 1, self.W - self.S + 1)

    @property
    def flops(self) -> float:
        """2 * Ho * Wo * R * S (every tap counted, zero fill included)."""
        ho, wo = self.out_hw
        return 2.0 * ho * wo * self.R * self.S

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the image, the kernel and the output."""
        return {"in1": (self.H, self.W), "in2": (self.R, self.S), "out": self.out_hw}


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


def _numpy_relu_backward(grad_out: Array, x: Array) -> Array:
    return np.where(x > 0, grad_out, x.dtype.type(0))


# --------------------------------------------------------------------------
# One timing harness for every row
# --------------------------------------------------------------------------


@dataclass
class Task:
    """One peer's timed call.

    Attributes
    ----------
    run : callable
        The timed call; returns its result (an array or a tuple of arrays,
        which is dropped only after the clock stops).
    prepare : callable, optional
        Untimed setup before every call (e.g. PyTorch's graph-building
        forward pass before a timed ``.backward``).
    """

    run: Callable[[], Any]
    prepare: Callable[[], None] | None = None

    def __call__(self) -> Any:
        if self.prepare is not None:
            self.prepare()
        return self.run()


@dataclass
class Case:
    """One table line: a row, an op and the tasks of every available peer."""

    row: str
    kind: str
    op: str
    shape: dict[str, Any]
    flops: float | None
    tasks: dict[str, Task]
    compare: int = 1  # how many leading outputs are cross-checked between peers


def _thread_cpu_ns(tid: int) -> int:
    # Linux encodes another thread's CPU-time clock as (~tid << 3) | 6
    # (CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED), which clock_gettime accepts.
    return time.clock_gettime_ns(((~tid) << 3) | 6)


def _other_threads_cpu_ns() -> int | None:
    """CPU time used so far by every thread of this process but the caller."""
    try:
        me = threading.get_native_id()
        total = 0
        for entry in os.listdir("/proc/self/task"):
            if int(entry) != me:
                with contextlib.suppress(OSError):  # the thread may have exited
                    total += _thread_cpu_ns(int(entry))
        return total
    except (OSError, AttributeError, ValueError):
        return None


def wait_for_idle_threads(max_wait: float = 0.3, interval: float = 0.002) -> float:
    """Wait until the process's other threads stop using CPU.

    OpenBLAS worker threads busy-wait for about 2**28 cycles (~0.1 s) after
    every BLAS call before they sleep.  On a machine with few cores that
    spinning takes a core from whichever peer runs next (measured here: a
    3x3 conv after a numpy matmul ran 2.5x slower), so the harness lets the
    previous peer's threads park before starting the clock.

    Parameters
    ----------
    max_wait : float, optional
        Give up after this many seconds.
    interval : float, optional
        Polling interval in seconds; idle means the other threads used less
        than 5% of one core over an interval.

    Returns
    -------
    float
        Seconds waited (0 where per-thread CPU clocks are unavailable, i.e.
        outside Linux).
    """
    start = time.perf_counter()
    before = _other_threads_cpu_ns()
    if before is None:
        return 0.0
    while time.perf_counter() - start < max_wait:
        time.sleep(interval)
        now = _other_threads_cpu_ns()
        if now is None or now - before < 0.05 * interval * 1e9:
            break
        before = now
    return time.perf_counter() - start


@dataclass(frozen=True)
class Timing:
    """How every line is timed (see :func:`time_tasks`)."""

    repeat: int = 7
    warmup: int = 1
    settle: bool = True
    warm_s: float = 0.02

    def __call__(self, tasks: dict[str, Task]) -> dict[str, list[float]]:
        """Seconds of every timed call of each task."""
        return time_tasks(tasks, self.repeat, self.warmup, self.settle, self.warm_s)


def time_tasks(
    tasks: dict[str, Task], repeat: int, warmup: int, settle: bool = True, warm_s: float = 0.02
) -> dict[str, list[float]]:
    """Time peers interleaved: every repetition runs each peer once.

    Parameters
    ----------
    tasks : dict of str to Task
        The peers to time.
    repeat : int
        Timed repetitions per peer.
    warmup : int
        Untimed repetitions first.
    settle : bool, optional
        Give each peer's turn a clean start: wait until the previous peer's
        worker threads are idle (:func:`wait_for_idle_threads`), then call
        the same task untimed for ``warm_s`` seconds (at least once) right
        before the timed call, so that its own threads are awake and the
        cores busy, as in a loop of layers.  Measured on the 2-core VM this
        was written on: without the wait, a 3x3 conv timed after a numpy
        matmul ran 2.5x slower (OpenBLAS threads spinning); without ~20 ms
        of warm calls, a call after an idle pause took +4 ms about one time
        in three.
    warm_s : float, optional
        Seconds of untimed calls before each timed one when ``settle``.

    Returns
    -------
    dict of str to list of float
        Seconds of every timed call, per peer.  The order of the peers
        rotates from one repetition to the next so that none always runs
        right after the same other one.
    """
    names = list(tasks)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + repeat):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            if settle:
                wait_for_idle_threads()
                _warm(tasks[name], warm_s)
            elapsed = _timed_call(tasks[name])
            if i >= warmup:
                samples[name].append(elapsed)
    return samples


def _warm(task: Task, seconds: float) -> None:
    start = time.perf_counter()
    while True:
        _timed_call(task)
        if time.perf_counter() - start >= seconds:
            return


def _timed_call(task: Task) -> float:
    """Seconds of one ``task.run()`` after its untimed ``prepare``.

    The garbage collector is off while the clock runs, and the result is
    freed only after the clock stops.
    """
    if task.prepare is not None:
        task.prepare()
    gc.disable()
    try:
        start = time.perf_counter()
        result = task.run()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    del result
    return elapsed


def _as_arrays(result: Any, count: int) -> list[Array]:
    items = result if isinstance(result, (tuple, list)) else (result,)
    arrays = []
    for item in items[:count]:
        if hasattr(item, "detach"):
            item = item.detach().numpy()
        arrays.append(np.asarray(item, dtype=np.float64))
    return arrays


def _rel_err(got: list[Array], want: list[Array]) -> float:
    worst = 0.0
    for a, b in zip(got, want):
        if a.shape != b.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
        worst = max(worst, float(np.max(np.abs(a - b))) / scale if a.size else 0.0)
    return worst


def cross_check(case: Case) -> dict[str, float]:
    """Run every task once (untimed) and compare each result with convext's.

    Parameters
    ----------
    case : Case
        The line to check.

    Returns
    -------
    dict of str to float
        Max relative error (max abs difference over max abs of convext's
        result) of each peer against convext; NaN if convext is absent.
    """
    results = {name: _as_arrays(task(), case.compare) for name, task in case.tasks.items()}
    want = results.get(CONVEXT)
    if want is None:
        return {name: float("nan") for name in results}
    return {name: _rel_err(got, want) for name, got in results.items() if name != CONVEXT}


# --------------------------------------------------------------------------
# Peers: which libraries are present and how each one runs an op
# --------------------------------------------------------------------------


@dataclass
class Peers:
    """The libraries this run uses (None where not installed)."""

    convext: Any
    torch: Any = None
    scipy_signal: Any = None
    notes: list[str] = field(default_factory=list)


def _load_peers(skip: Sequence[str]) -> Peers:
    import convext

    peers = Peers(convext=convext)
    peers.torch = _optional_import("torch", "torch", skip, peers.notes)
    peers.scipy_signal = _optional_import("scipy", "scipy.signal", skip, peers.notes)
    return peers


def _optional_import(peer: str, module: str, skip: Sequence[str], notes: list[str]) -> Any:
    """Import a peer's module, or note why its columns are missing."""
    if peer in skip:
        notes.append(f"{peer} skipped (--skip)")
        return None
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        notes.append(f"{peer} not installed, its columns are skipped ({exc})")
        return None


def _torch_forward(torch: Any, fn: Callable[..., Any], *args: Any) -> Task:
    """A PyTorch forward call without autograd."""
    tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]

    def run() -> Any:
        with torch.no_grad():
            return fn(*tensors)

    return Task(run)


def _torch_backward(torch: Any, fn: Callable[..., Any], grad: Array, *args: Array | None) -> Task:
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


def _rng_arrays(
    shapes: dict[str, tuple[int, ...]], dtype: np.dtype[Any], seed: int = 0
) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=dtype) for name, shape in shapes.items()}


def _row_info(spec: ConvSpec | PoolSpec | CorrSpec, **extra: Any) -> dict[str, Any]:
    """What a result line records of its row: name, array shapes, parameters."""
    return {"row": spec.name, **{k: list(v) for k, v in spec.shapes().items()}, **extra}


def conv_cases(spec: ConvSpec, dtype: np.dtype[Any], peers: Peers, f64_ratio: bool) -> list[Case]:
    """Forward and backward lines of one conv2d row.

    Parameters
    ----------
    spec : ConvSpec
        The row.
    dtype : numpy dtype
        float32 or float64.
    peers : Peers
        Available libraries.
    f64_ratio : bool
        Also time convext in float64 (peer ``convext_f64``).

    Returns
    -------
    list of Case
        ``fwd`` (conv2d with bias) and ``bwd`` (grad_x, grad_weight, grad_bias).
    """
    cx = peers.convext
    a = _rng_arrays(spec.shapes(), dtype)
    x, w, b, gy = a["x"], a["weight"], a["bias"], a["out"]
    kw = spec.kwargs
    fwd = {CONVEXT: Task(lambda: cx.conv2d(x, w, b, **kw))}
    bwd = {CONVEXT: Task(lambda: cx.conv2d_backward(gy, x, w, **kw))}
    if f64_ratio:
        x64, w64, b64, gy64 = (arr.astype(np.float64) for arr in (x, w, b, gy))
        fwd[CONVEXT_F64] = Task(lambda: cx.conv2d(x64, w64, b64, **kw))
        bwd[CONVEXT_F64] = Task(lambda: cx.conv2d_backward(gy64, x64, w64, **kw))
    if peers.torch is not None:
        torch_conv = peers.torch.nn.functional.conv2d

        def conv(xt: Any, wt: Any, bt: Any) -> Any:
            return torch_conv(xt, wt, bt, spec.stride, spec.padding, spec.dilation, spec.groups)

        fwd["torch"] = _torch_forward(peers.torch, conv, x, w, b)
        bwd["torch"] = _torch_backward(peers.torch, conv, gy, x, w, b)
    fwd["numpy"] = Task(lambda: numpy_conv2d(x, w, b, spec))
    bwd["numpy"] = Task(lambda: numpy_conv2d_backward(gy, x, w, spec))
    shape = _row_info(spec, **kw)
    return [
        Case(spec.name, "conv2d", "fwd", shape, spec.flops, fwd),
        Case(spec.name, "conv2d", "bwd", shape, 2 * spec.flops, bwd, compare=3),
    ]


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
    a = _rng_arrays(spec.shapes(), dtype)
    x, gy = a["x"], a["out"]
    kw = spec.kwargs
    _, indices = cx.max_pool2d(x, **kw, return_indices=True)
    fwd = {CONVEXT: Task(lambda: cx.max_pool2d(x, **kw, return_indices=True))}
    bwd = {CONVEXT: Task(lambda: cx.max_pool2d_backward(gy, x, **kw, indices=indices))}
    if peers.torch is not None:
        max_pool = peers.torch.nn.functional.max_pool2d
        fwd["torch"] = _torch_forward(
            peers.torch, lambda t: max_pool(t, **kw, return_indices=True), x
        )
        bwd["torch"] = _torch_backward(peers.torch, lambda t: max_pool(t, **kw), gy, x)
    shape = _row_info(spec, **kw)
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
    a = _rng_arrays({"x": shape, "grad": shape}, dtype)
    x, gy = a["x"], a["grad"]
    fwd = {CONVEXT: Task(lambda: cx.relu(x))}
    bwd = {CONVEXT: Task(lambda: cx.relu_backward(gy, x))}
    if peers.torch is not None:
        relu = peers.torch.nn.functional.relu
        fwd["torch"] = _torch_forward(peers.torch, relu, x)
        bwd["torch"] = _torch_backward(peers.torch, relu, gy, x)
    fwd["numpy"] = Task(lambda: np.maximum(x, x.dtype.type(0)))
    bwd["numpy"] = Task(lambda: _numpy_relu_backward(gy, x))
    name = RELU_PREFIX + spec.name
    info = {"row": name, "x": list(shape)}
    return [Case(name, "relu", "fwd", info, None, fwd), Case(name, "relu", "bwd", info, None, bwd)]


def correlate_cases(spec: CorrSpec, dtype: np.dtype[Any], peers: Peers) -> list[Case]:
    """correlate2d (op ``corr``) and convolve2d (op ``conv``) lines of a 2-D row.

    Parameters
    ----------
    spec : CorrSpec
        The row.
    dtype : numpy dtype
        float32 or float64.
    peers : Peers
        Available libraries.

    Returns
    -------
    list of Case
        One line per function that convext exports.
    """
    a = _rng_arrays(spec.shapes(), dtype)
    in1, in2 = a["in1"], a["in2"]
    shape = _row_info(spec, mode=spec.mode)
    cases = []
    for op, fname in (("corr", "correlate2d"), ("conv", "convolve2d")):
        cx_fn = getattr(peers.convext, fname, None)
        if cx_fn is None:
            continue
        tasks = {CONVEXT: Task(lambda f=cx_fn: f(in1, in2, spec.mode))}
        if peers.scipy_signal is not None:
            sp_fn = getattr(peers.scipy_signal, fname)
            tasks["scipy"] = Task(lambda f=sp_fn: f(in1, in2, spec.mode))
        cases.append(Case(spec.name, "correlate2d", op, shape, spec.flops, tasks))
    return cases


def row_names(suite: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every line name of the suite, in order (pool rows add ``relu@<row>``)."""
    names = [row["name"] for row in suite["conv2d"]]
    for row in suite["pool"]:
        names += [row["name"], RELU_PREFIX + row["name"]]
    return names + [row["name"] for row in suite["correlate2d"]]


def build_cases(
    suite: dict[str, list[dict[str, Any]]],
    selected: set[str] | None,
    dtype: np.dtype[Any],
    peers: Peers,
    batch: int | None,
    f64_ratio: bool,
) -> list[Case]:
    """All lines to time, in suite order.

    Parameters
    ----------
    suite : dict
        Output of :func:`load_suite`.
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

    Returns
    -------
    list of Case
    """

    def keep(name: str) -> bool:
        return selected is None or name in selected

    cases: list[Case] = []
    for row in suite["conv2d"]:
        if keep(row["name"]):
            cases += conv_cases(ConvSpec.from_row(row, batch), dtype, peers, f64_ratio)
    for row in suite["pool"]:
        spec = PoolSpec.from_row(row, batch)
        if keep(spec.name):
            cases += pool_cases(spec, dtype, peers)
        if keep(spec.name) or keep(RELU_PREFIX + spec.name):
            cases += relu_cases(spec, dtype, peers)
    for row in suite["correlate2d"]:
        if keep(row["name"]):
            cases += correlate_cases(CorrSpec.from_row(row), dtype, peers)
    return cases


# --------------------------------------------------------------------------
# Machine: threads, GEMM peak, description, memory
# --------------------------------------------------------------------------


def _set_threads(threads: int, peers: Peers) -> None:
    peers.convext.set_num_threads(threads)
    if peers.torch is not None:
        peers.torch.set_num_threads(threads)


def _blas_limits(threads: int, notes: list[str]) -> contextlib.AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        notes.append("threadpoolctl not installed: numpy's BLAS threads are not limited")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def measure_gemm_peak(n: int, dtype: np.dtype[Any], timing: Timing = Timing(5)) -> dict[str, Any]:
    """Time a large numpy matrix product as the machine's peak proxy.

    Parameters
    ----------
    n : int
        Square size (``n x n @ n x n``, 2 n^3 FLOPs).
    dtype : numpy dtype
        float32 (sgemm) or float64 (dgemm).
    timing : Timing, optional
        How to time it (default: median of 5).

    Returns
    -------
    dict
        ``op``, ``n``, ``median_ms``, ``samples_ms`` and ``gflops``.
    """
    a = _rng_arrays({"a": (n, n), "b": (n, n)}, dtype, seed=1)
    samples = timing({"gemm": Task(lambda: a["a"] @ a["b"])})["gemm"]
    median = statistics.median(samples)
    return {
        "op": "sgemm" if np.dtype(dtype) == np.float32 else "dgemm",
        "n": n,
        "median_ms": median * 1e3,
        "samples_ms": [s * 1e3 for s in samples],
        "gflops": 2.0 * n**3 / median / 1e9,
    }


def _cpu_model() -> tuple[str, list[str]]:
    """CPU model name and its SIMD extensions that matter here (Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    return model, [f for f in ("sse4_2", "avx", "fma", "avx2", "avx512f") if f in flags]


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_info(peers: Peers) -> dict[str, Any]:
    """Describe the machine and the library versions of this run."""
    cpu, isa = _cpu_model()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_isa": isa,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "convext": getattr(peers.convext, "__version__", "unknown"),
        "loadavg_start": _loadavg(),
    }
    if peers.torch is not None:
        info["torch"] = peers.torch.__version__
    if peers.scipy_signal is not None:
        import scipy

        info["scipy"] = scipy.__version__
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {
                k: p.get(k)
                for k in (
                    "user_api",
                    "internal_api",
                    "prefix",
                    "version",
                    "num_threads",
                    "filepath",
                )
            }
            for p in threadpool_info()
        ]
    return info


def convext_config(convext: Any) -> str:
    """The text of ``convext.show_config()`` (empty if it is missing or fails)."""
    show = getattr(convext, "show_config", None)
    if show is None:
        return ""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            returned = show()
    except Exception as exc:  # a broken show_config must not stop the benchmark
        return f"show_config() failed: {exc!r}"
    text = buffer.getvalue()
    if returned is not None and not text:
        text = (
            returned if isinstance(returned, str) else json.dumps(returned, indent=1, default=str)
        )
    return text.rstrip()


def _peak_rss_bytes() -> tuple[int, str]:
    """The process's peak resident set size and where it was read.

    Linux: ``VmHWM`` of ``/proc/self/status``.  ``getrusage().ru_maxrss`` is
    not used there because a child inherits its parent's peak at exec (the
    kernel folds the old mm's high-water mark into ``signal->maxrss``), so
    in a probe started by a large benchmark process it never moves.
    Elsewhere: ``ru_maxrss`` (bytes on macOS, KiB otherwise).
    """
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), "ru_maxrss"


def _reset_peak_rss() -> None:
    """Lower the peak-RSS mark to the current RSS (Linux), so that import-time
    transients do not hide the growth being measured."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")


def _nbytes(result: Any) -> int:
    items = result if isinstance(result, (tuple, list)) else (result,)
    return sum(
        int(item.nbytes) if hasattr(item, "nbytes") else int(item.numel() * item.element_size())
        for item in items
    )


def _memory_child(params: dict[str, Any]) -> dict[str, Any]:
    """Peak-RSS probe of one peer's conv2d; runs in a fresh subprocess.

    Inputs are made first, the peak mark is reset to the current RSS, then
    the forward and the backward run once each; the extra memory is the
    growth of the peak RSS minus the bytes of the returned outputs.
    """
    spec = ConvSpec(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in params["spec"].items()}
    )
    dtype, peer, threads = np.dtype(params["dtype"]), params["peer"], int(params["threads"])
    arrays = _rng_arrays(spec.shapes(), dtype)
    x, w, b, gy = arrays["x"], arrays["weight"], arrays["bias"], arrays["out"]
    if peer == "torch":
        import torch

        torch.set_num_threads(threads)
        conv = torch.nn.functional.conv2d
        leaves = [torch.from_numpy(a).requires_grad_(True) for a in (x, w, b)]
        gy_t = torch.from_numpy(gy)

        def forward() -> Any:
            return conv(*leaves, spec.stride, spec.padding, spec.dilation, spec.groups)

        def backward(out: Any) -> Any:
            out.backward(gy_t)
            return tuple(leaf.grad for leaf in leaves)

    else:
        if peer == CONVEXT:
            import convext

            convext.set_num_threads(threads)
            fwd_fn = lambda: convext.conv2d(x, w, b, **spec.kwargs)  # noqa: E731
            bwd_fn = lambda: convext.conv2d_backward(gy, x, w, **spec.kwargs)  # noqa: E731
        else:
            fwd_fn = lambda: numpy_conv2d(x, w, b, spec)  # noqa: E731
            bwd_fn = lambda: numpy_conv2d_backward(gy, x, w, spec)  # noqa: E731

        def forward() -> Any:
            return fwd_fn()

        def backward(out: Any) -> Any:
            return bwd_fn()

    gc.collect()
    _reset_peak_rss()
    base, counter = _peak_rss_bytes()
    out = forward()
    after_fwd, _ = _peak_rss_bytes()
    grads = backward(out)
    after_bwd, _ = _peak_rss_bytes()
    out_bytes, grad_bytes = _nbytes(out), _nbytes(grads)
    return {
        "peer": peer,
        "counter": counter,
        "baseline_peak_rss_bytes": base,
        "input_bytes": sum(int(a.nbytes) for a in arrays.values()),
        "output_bytes": out_bytes,
        "grad_bytes": grad_bytes,
        "forward_extra_bytes": after_fwd - base - out_bytes,
        "fwd_bwd_extra_bytes": after_bwd - base - out_bytes - grad_bytes,
    }


def _memory_child_main() -> None:
    """Run :func:`_memory_child` on the JSON in ``sys.argv[1]``; print JSON."""
    print(json.dumps(_memory_child(json.loads(sys.argv[1]))))


def measure_memory(
    spec: ConvSpec, dtype: np.dtype[Any], threads: int, peer_names: Sequence[str]
) -> dict[str, Any]:
    """Extra peak RSS of one conv2d forward and forward+backward, per peer.

    Parameters
    ----------
    spec : ConvSpec
        The row (the README quotes ``res3x3_56``).
    dtype : numpy dtype
        float32 or float64.
    threads : int
        Thread count of the probe.
    peer_names : sequence of str
        ``convext``, ``torch``, ``numpy``: each is measured in its own fresh
        subprocess, so that nothing from the timing run inflates its peak.

    Returns
    -------
    dict
        Per peer, the probe's byte counts (``forward_extra_bytes`` and
        ``fwd_bwd_extra_bytes`` are the peak-RSS growth minus the outputs), or
        an ``error`` string if the probe failed.
    """
    package_root = str(Path(__file__).absolute().parent.parent)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    script = "from convext.bench import _memory_child_main; _memory_child_main()"
    spec_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.__dict__.items()}
    results: dict[str, Any] = {}
    for peer in peer_names:
        params = {
            "spec": spec_dict,
            "dtype": np.dtype(dtype).name,
            "peer": peer,
            "threads": threads,
        }
        proc = subprocess.run(
            [sys.executable, "-c", script, json.dumps(params)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if proc.returncode == 0:
            results[peer] = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            results[peer] = {"peer": peer, "error": proc.stderr.strip()[-2000:]}
    return {"row": spec.name, "dtype": np.dtype(dtype).name, "threads": threads, "peers": results}


# --------------------------------------------------------------------------
# Results: summary, table, JSON, plot
# --------------------------------------------------------------------------


def summarize(
    case: Case, samples: dict[str, list[float]], errors: dict[str, float], peak_gflops: float
) -> dict[str, Any]:
    """Turn one line's samples into its result record.

    Parameters
    ----------
    case : Case
        The line.
    samples : dict of str to list of float
        Seconds per peer, from :func:`time_tasks`.
    errors : dict of str to float
        Cross-check errors from :func:`cross_check`.
    peak_gflops : float
        The GEMM peak of this run.

    Returns
    -------
    dict
        ``row``, ``kind``, ``op``, ``shape``, ``flops``, per-peer
        ``median_ms``/``samples_ms``/``gflops``/``max_rel_err``, ``ratios``
        (peer median / convext median), ``peak_fraction`` of convext and,
        with a ``convext_f64`` peer, ``f64_fraction`` (float64 throughput over
        float32 throughput).
    """
    peers: dict[str, Any] = {}
    for name, secs in samples.items():
        median = statistics.median(secs)
        peers[name] = {
            "median_ms": median * 1e3,
            "samples_ms": [s * 1e3 for s in secs],
            "gflops": case.flops / median / 1e9 if case.flops else None,
            "max_rel_err": errors.get(name),
        }
    record: dict[str, Any] = {
        "row": case.row,
        "kind": case.kind,
        "op": case.op,
        "shape": case.shape,
        "flops": case.flops,
        "peers": peers,
    }
    cx = peers.get(CONVEXT)
    if cx is not None:
        record["ratios"] = {
            name: p["median_ms"] / cx["median_ms"]
            for name, p in peers.items()
            if name not in (CONVEXT, CONVEXT_F64)
        }
        record["peak_fraction"] = (
            cx["gflops"] / peak_gflops if cx["gflops"] and peak_gflops else None
        )
        if CONVEXT_F64 in peers:
            record["f64_fraction"] = cx["median_ms"] / peers[CONVEXT_F64]["median_ms"]
    return record


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(records: list[dict[str, Any]]) -> str:
    """Render the results as an aligned text table.

    Parameters
    ----------
    records : list of dict
        Output of :func:`summarize`.

    Returns
    -------
    str
        Columns: row, op, ms per peer, convext GFLOP/s, its fraction of the
        GEMM peak, peer/convext ratios (> 1: convext faster) and, if measured,
        float64 throughput as a fraction of float32.
    """
    peers = list(dict.fromkeys(name for r in records for name in r["peers"]))
    others = [p for p in peers if p not in (CONVEXT, CONVEXT_F64)]
    with_f64 = any("f64_fraction" in r for r in records)
    header = [
        "row",
        "op",
        *(f"{p} ms" for p in peers),
        "cx GFLOP/s",
        "cx %peak",
        *(f"{p}/cx" for p in others),
    ]
    header += ["f64/f32"] if with_f64 else []
    lines = [header]
    for r in records:
        cx = r["peers"].get(CONVEXT, {})
        peak = r.get("peak_fraction")
        line = [r["row"], r["op"]]
        line += [
            _fmt(r["peers"][p]["median_ms"] if p in r["peers"] else None, ".3f") for p in peers
        ]
        line += [_fmt(cx.get("gflops"), ".1f"), _fmt(None if peak is None else 100 * peak, ".0f")]
        line += [_fmt(r.get("ratios", {}).get(p), ".2f") for p in others]
        line += [_fmt(r.get("f64_fraction"), ".2f")] if with_f64 else []
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(
        "ms: median per call; peer/cx: peer ms / convext ms (> 1: convext faster); GFLOP/s: "
        "2*N*K*(C/groups)*R*S*Ho*Wo forward, twice that backward, 2*Ho*Wo*R*S for 2-D rows"
    )
    if any((r.get("peak_fraction") or 0) > 1 for r in records):
        text.append(
            "%peak above 100: those FLOPs are of the direct algorithm; a fast one "
            "(e.g. Winograd) does fewer multiplications than it is credited with"
        )
    if with_f64:
        text.append("f64/f32: float64 throughput of convext as a fraction of float32")
    return "\n".join(text)


def format_memory(memory: dict[str, Any]) -> str:
    """One ``memory`` line per peer from :func:`measure_memory`."""
    lines = []
    for peer, m in memory["peers"].items():
        prefix = f"memory {memory['row']} {memory['dtype']} {memory['threads']} threads, {peer}:"
        if "error" in m:
            lines.append(
                f"{prefix} probe failed: {m['error'].splitlines()[-1] if m['error'] else '?'}"
            )
            continue
        mib = 1 << 20
        lines.append(
            f"{prefix} extra peak RSS forward {m['forward_extra_bytes'] / mib:.1f} MiB, "
            f"forward+backward {m['fwd_bwd_extra_bytes'] / mib:.1f} MiB "
            f"(inputs {m['input_bytes'] / mib:.1f} MiB, outputs {m['output_bytes'] / mib:.1f} MiB, "
            f"grads {m['grad_bytes'] / mib:.1f} MiB not counted)"
        )
    return "\n".join(lines)


def write_plot(
    records: list[dict[str, Any]], path: str | os.PathLike[str], title: str
) -> str | None:
    """Bar chart of the peer/convext ratios, one group of bars per line.

    Parameters
    ----------
    records : list of dict
        Output of :func:`summarize`.
    path : str or path-like
        PNG file to write.
    title : str
        Chart title.

    Returns
    -------
    str or None
        None on success, else why nothing was written (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "no plot written: matplotlib is not installed (pip install matplotlib)"
    rated = [r for r in records if r.get("ratios")]
    others = list(dict.fromkeys(p for r in rated for p in r["ratios"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rated) + 2), 4.5))
    width = 0.8 / max(len(others), 1)
    for i, peer in enumerate(others):
        xs = [
            j + (i - (len(others) - 1) / 2) * width
            for j, r in enumerate(rated)
            if peer in r["ratios"]
        ]
        ys = [r["ratios"][peer] for r in rated if peer in r["ratios"]]
        ax.bar(xs, ys, width, label=f"{peer} / convext")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ticks = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(ticks)
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(ticks)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xticks(range(len(rated)))
    ax.set_xticklabels(
        [f"{r['row']} {r['op']}" for r in rated], rotation=60, ha="right", fontsize=8
    )
    ax.set_ylabel("time ratio peer / convext (> 1: convext faster)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m convext bench",
        description="Time convext against PyTorch CPU, a numpy im2col layer and scipy.signal "
        "on the layer suite.",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every library (default: convext's)"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write every number (and all samples) as JSON"
    )
    parser.add_argument(
        "--plot", metavar="PATH", help="write a PNG bar chart of the ratios (needs matplotlib)"
    )
    parser.add_argument(
        "--rows", metavar="NAME,...", help="comma-separated row names (default: all)"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="timed runs per peer (default 7, --quick 3)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed rounds first (default 1, --quick 0)"
    )
    parser.add_argument(
        "--warm-ms",
        type=float,
        default=20.0,
        help="untimed calls of the same op for this long before each timed call (default 20)",
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="start each timed call at once: no wait for the previous peer's threads to idle "
        "and no warm calls (noisier on machines with few cores)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="batch 1, small GEMM peak, few runs: a smoke run"
    )
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="dtype of every input"
    )
    parser.add_argument(
        "--f64-ratio",
        action="store_true",
        help="also time convext conv2d in float64 (f64/f32 column)",
    )
    parser.add_argument(
        "--suite",
        metavar="PATH",
        help=f"suite file (default: ${SUITE_ENV}, else shared/bench/suite.json found upwards)",
    )
    parser.add_argument(
        "--peak-size",
        type=int,
        default=None,
        help="GEMM size of the peak proxy (default 2048, --quick 512)",
    )
    parser.add_argument(
        "--no-memory", action="store_true", help=f"skip the peak-RSS probe of {MEMORY_ROW}"
    )
    parser.add_argument(
        "--skip", metavar="PEER,...", default="", help="peers to leave out (torch, scipy)"
    )
    args = parser.parse_args(list(argv))
    for name in ("threads", "repeat", "peak_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    args.repeat = args.repeat or (3 if args.quick else 7)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if args.warm_ms < 0:
        parser.error(f"--warm-ms must be >= 0, got {args.warm_ms}")
    args.peak_size = args.peak_size or (512 if args.quick else 2048)
    if args.f64_ratio and args.dtype == "float64":
        args.f64_ratio = False
    return args


def _selected_rows(spec: str | None, known: list[str]) -> set[str] | None:
    if not spec:
        return None
    names = {name.strip() for name in spec.split(",") if name.strip()}
    unknown = sorted(names - set(known))
    if unknown:
        raise BenchError(
            f"bench: unknown row(s) {', '.join(unknown)}; the suite has: {', '.join(known)}"
        )
    return names


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings, so the file is strict JSON."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _report_errors(records: list[dict[str, Any]], dtype: str) -> list[str]:
    tol = TOLERANCE[dtype]
    warnings = []
    for r in records:
        for peer, p in r["peers"].items():
            err = p.get("max_rel_err")
            limit = TOLERANCE["float32"] if peer == CONVEXT_F64 else tol
            if err is not None and not err <= limit:
                warnings.append(
                    f"{r['row']} {r['op']}: {peer} differs from convext, "
                    f"max rel err {err:.3g} > {limit:g}"
                )
    return warnings


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by parsed command-line arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From the ``bench`` argument parser.

    Returns
    -------
    dict
        Everything the JSON file holds.

    Raises
    ------
    FileNotFoundError
        If the suite is not found.
    BenchError
        If ``--rows`` names an unknown row.
    """
    suite_path = find_suite(args.suite)
    suite = load_suite(suite_path)
    selected = _selected_rows(args.rows, row_names(suite))
    peers = _load_peers([s.strip() for s in args.skip.split(",")])
    threads = args.threads or int(peers.convext.get_num_threads())
    dtype = np.dtype(args.dtype)
    _set_threads(threads, peers)
    timing = Timing(args.repeat, args.warmup, not args.no_settle, args.warm_ms / 1e3)
    notes = list(peers.notes)
    config = convext_config(peers.convext)
    print(
        f"convext bench: suite {suite_path}, {args.dtype}, {threads} threads, "
        f"median of {args.repeat} after {args.warmup} warm-up round(s)"
        + ("" if args.no_settle else f", {args.warm_ms:g} ms of warm calls before each")
    )
    if config:
        print(config)
    with _blas_limits(threads, notes):
        info = machine_info(peers)
        print(_machine_line(info))
        peak = measure_gemm_peak(args.peak_size, dtype, Timing(5, 1, timing.settle, timing.warm_s))
        print(
            f"peak proxy: numpy {peak['op']} {args.peak_size}^3, {peak['median_ms']:.1f} ms"
            f" = {peak['gflops']:.1f} GFLOP/s"
        )
        cases = build_cases(
            suite, selected, dtype, peers, 1 if args.quick else None, args.f64_ratio
        )
        records = [_time_case(case, timing, peak["gflops"]) for case in cases]
    info["loadavg_end"] = _loadavg()
    for note in notes:
        print(f"note: {note}")
    print(format_table(records))
    warnings = _report_errors(records, args.dtype)
    for warning in warnings:
        print(f"WARNING: {warning}")
    result: dict[str, Any] = {
        "suite": str(suite_path),
        "dtype": args.dtype,
        "threads": threads,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "settle": timing.settle,
        "warm_ms": args.warm_ms,
        "quick": args.quick,
        "machine": info,
        "convext_config": config,
        "peak": peak,
        "notes": notes,
        "warnings": warnings,
        "results": records,
    }
    memory_rows = [row for row in suite["conv2d"] if row["name"] == MEMORY_ROW]
    if memory_rows and not args.no_memory and (selected is None or MEMORY_ROW in selected):
        _progress(f"  memory probe {MEMORY_ROW}")
        names = (
            [CONVEXT]
            if args.quick
            else [CONVEXT] + (["torch"] if peers.torch is not None else []) + ["numpy"]
        )
        result["memory"] = measure_memory(ConvSpec.from_row(memory_rows[0]), dtype, threads, names)
        print(format_memory(result["memory"]))
    return result


def _time_case(case: Case, timing: Timing, peak_gflops: float) -> dict[str, Any]:
    _progress(f"  timing {case.row} {case.op} ({', '.join(case.tasks)})")
    errors = cross_check(case)
    samples = timing(case.tasks)
    return summarize(case, samples, errors, peak_gflops)


def _machine_line(info: dict[str, Any]) -> str:
    isa = "/".join(info["cpu_isa"])
    line = f"machine: {info['cpu']} ({isa}), {info['cpu_count']} cpus; numpy {info['numpy']}"
    line += f", torch {info['torch']}" if "torch" in info else ""
    load = info.get("loadavg_start")
    if load is not None:
        line += f"; load average {load:.2f}"
        if load > 0.5:
            line += " (busy machine: times may be noisy)"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m convext bench``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``bench`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 if the suite is missing or a row name is unknown.
    """
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except (FileNotFoundError, BenchError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(_json_safe(result), fh, indent=1, allow_nan=False)
        print(f"wrote {args.json}")
    if args.plot:
        machine = result["machine"]["cpu"]
        title = f"convext vs peers, {args.dtype}, {result['threads']} threads ({machine})"
        problem = write_plot(result["results"], args.plot, title)
        print(problem if problem else f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
