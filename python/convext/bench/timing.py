"""One timing harness for every line: interleaved peers, settled threads, medians.

Every peer's result is first cross-checked against convext's (untimed); then
each repetition gives every peer one turn, in a rotating order.  A turn waits
until the previous peer's worker threads are idle, calls the op untimed for
``warm_s`` seconds, then times one call; the median over the repetitions is
reported.  Nothing here asserts a time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CONVEXT",
    "CONVEXT_F64",
    "Task",
    "Case",
    "Timing",
    "time_tasks",
    "wait_for_idle_threads",
    "cross_check",
    "rel_err",
    "as_arrays",
]

CONVEXT = "convext"
CONVEXT_F64 = "convext_f64"

Array = NDArray[Any]


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
    unsupported: dict[str, str] = field(default_factory=dict)  # peer -> why it cannot run the line
    accuracy: dict[str, Any] | None = None  # filled by --accuracy (see convext.bench.accuracy)
    tolerance: float | None = None  # cross-check limit when not the dtype's default


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
    warm_calls: bool = True

    def __call__(self, tasks: dict[str, Task]) -> dict[str, list[float]]:
        """Seconds of every timed call of each task."""
        return time_tasks(
            tasks, self.repeat, self.warmup, self.settle, self.warm_s, self.warm_calls
        )


def time_tasks(
    tasks: dict[str, Task],
    repeat: int,
    warmup: int,
    settle: bool = True,
    warm_s: float = 0.02,
    warm_calls: bool = True,
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
    warm_calls : bool, optional
        With ``settle``, make the warm calls (at least one, up to
        ``warm_s``); False keeps only the wait for idle threads, for calls
        long enough (whole models) that waking the threads is noise.

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
                if warm_calls:
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


def as_arrays(result: Any, count: int) -> list[Array]:
    """The first ``count`` outputs of a call as float64 (complex128) numpy arrays."""
    items = result if isinstance(result, (tuple, list)) else (result,)
    arrays = []
    for item in items[:count]:
        if hasattr(item, "detach"):
            item = item.detach().numpy()
        item = np.asarray(item)
        arrays.append(item.astype(np.complex128 if np.iscomplexobj(item) else np.float64))
    return arrays


def rel_err(got: list[Array], want: list[Array]) -> float:
    """Max |got - want| / max |want| over pairs of arrays (inf on a shape mismatch).

    Parameters
    ----------
    got, want : list of ndarray

    Returns
    -------
    float
        The worst pair's error; 0 for empty arrays.
    """
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
        result) of each peer against convext; empty if convext is absent.
    """
    results = {name: as_arrays(task(), case.compare) for name, task in case.tasks.items()}
    want = results.get(CONVEXT)
    if want is None:  # convext cannot run the line: nothing to compare with
        return {}
    return {name: rel_err(got, want) for name, got in results.items() if name != CONVEXT}


