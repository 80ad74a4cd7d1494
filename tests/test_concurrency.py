"""Threads: the GIL is released, concurrent calls are safe, thread counts are
honoured (set_num_threads and threadpoolctl), results do not depend on them.

* A Python thread keeps running while a large call computes in another.
* 8 Python threads calling conv2d / conv2d_backward / max_pool2d / ... at once
  (each call using the OpenMP pool) give results bitwise equal to serial calls.
* ``set_num_threads(n)`` is reflected by ``get_num_threads()`` in every thread
  and really sizes the OpenMP team; ``threadpoolctl`` finds convext's libgomp
  and ``threadpool_limits(k)`` limits convext to ``k`` threads inside the
  context.
* Every op gives bitwise-identical results with 1, 2 and 3 threads.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest
import threadpoolctl

import convext

F32, F64 = np.float32, np.float64


@pytest.fixture(autouse=True)
def restore_num_threads():
    """Every test here leaves convext's thread count as it found it."""
    n = convext.get_num_threads()
    yield
    convext.set_num_threads(n)


def data(seed: int, *shape: int, dtype: Any = F32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def same_bits(a: Any, b: Any) -> bool:
    """Bitwise equality of (tuples of) arrays."""
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same_bits, a, b))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ----------------------------------------------------------------------------
# the GIL is released while C++ computes
# ----------------------------------------------------------------------------
def _long_call(op: str) -> Callable[[], Any]:
    """A call of ``op`` taking roughly 0.3-1 s on one thread (grown until it does)."""
    def make(n: int) -> Callable[[], Any]:
        if op == "conv2d":
            x, w = data(0, n, 32, 32, 32), data(1, 64, 32, 3, 3)
            return lambda: convext.conv2d(x, w, padding=1)
        if op == "conv2d_backward":
            x, w, gy = data(0, n, 32, 32, 32), data(1, 64, 32, 3, 3), data(2, n, 64, 32, 32)
            return lambda: convext.conv2d_backward(gy, x, w, padding=1)
        if op == "correlate2d":
            a, b = data(0, 64 * n, 256), data(1, 25, 25)
            return lambda: convext.correlate2d(a, b, mode="same")
        raise AssertionError(op)

    n = 1
    while True:
        call = make(n)
        t0 = time.perf_counter()
        call()
        if time.perf_counter() - t0 > 0.3 or n >= 1024:
            return call
        n *= 2


@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward", "correlate2d"])
def test_python_thread_runs_while_op_computes(op: str) -> None:
    convext.set_num_threads(1)  # leave a core to the Python thread
    call = _long_call(op)
    stop = threading.Event()
    counter = [0]
    stamps: List[float] = []

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1
            if counter[0] % 64 == 0:
                stamps.append(time.perf_counter())

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    time.sleep(0.05)
    before = counter[0]
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    during = counter[0] - before
    stop.set()
    spinner.join()

    # A held GIL would freeze the spinner for the whole call. Demand progress in
    # every quarter of it, not just a burst before the C++ code started.
    quarters = [0, 0, 0, 0]
    for s in stamps:
        if t0 <= s < t1:
            quarters[min(3, int(4 * (s - t0) / (t1 - t0)))] += 1
    assert all(quarters), (f"the Python thread stalled during {op} ({t1 - t0:.2f} s): "
                           f"progress per quarter {quarters}")
    assert during >= 1000, f"counter advanced only {during} times in {t1 - t0:.2f} s"


# ----------------------------------------------------------------------------
# many Python threads at once
# ----------------------------------------------------------------------------
def _workload(i: int) -> Dict[str, Callable[[], Any]]:
    """Per-thread calls (different shapes and data for each thread)."""
    dt = F32 if i % 2 == 0 else F64
    N, C, K, H = 2 + i % 3, 3 + i % 4, 4 + i % 5, 14 + i
    x, w, b = data(i, N, C, H, H + 3, dtype=dt), data(100 + i, K, C, 3, 3, dtype=dt), data(
        200 + i, K, dtype=dt)
    y = convext.conv2d(x, w, b, stride=1 + i % 2, padding=1)
    gy = data(300 + i, *y.shape, dtype=dt)
    p = {"stride": 1 + i % 2, "padding": 1}
    pooled, idx = convext.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    gp = data(400 + i, *pooled.shape, dtype=dt)
    return {
        "conv2d": lambda: convext.conv2d(x, w, b, **p),
        "conv2d_backward": lambda: convext.conv2d_backward(gy, x, w, **p),
        "conv2d_input_grad": lambda: convext.conv2d_input_grad(gy, w, x.shape, **p),
        "conv2d_weight_grad": lambda: convext.conv2d_weight_grad(gy, x, w.shape, **p),
        "max_pool2d": lambda: convext.max_pool2d(x, 3, stride=2, padding=1, return_indices=True),
        "max_pool2d_backward": lambda: convext.max_pool2d_backward(gp, x, 3, stride=2, padding=1,
                                                                   indices=idx),
        "avg_pool2d": lambda: convext.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        "correlate2d": lambda: convext.correlate2d(x[0, 0], w[0, 0], mode="full"),
        "relu": lambda: convext.relu(x),
    }


def test_eight_threads_at_once_match_serial_calls() -> None:
    n_threads, repeats = 8, 3
    work = [_workload(i) for i in range(n_threads)]
    serial = [{name: call() for name, call in w.items()} for w in work]
    barrier = threading.Barrier(n_threads)
    results: List[List[Dict[str, Any]]] = [[] for _ in range(n_threads)]
    errors: List[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(repeats):
                results[i].append({name: call() for name, call in work[i].items()})
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a worker thread hung"
    if errors:
        raise errors[0]
    for i in range(n_threads):
        assert len(results[i]) == repeats
        for rep in results[i]:
            for name, out in rep.items():
                assert same_bits(out, serial[i][name]), f"thread {i}: {name} differs from serial"


def test_threads_setting_different_limits_at_once() -> None:
    """Threads inside different threadpool_limits contexts (per-thread OpenMP
    limits) compute at the same time and still match serial results."""
    x, w = data(0, 4, 8, 24, 24), data(1, 16, 8, 3, 3)
    gy = data(2, 4, 16, 24, 24)
    want = convext.conv2d_backward(gy, x, w, padding=1)
    seen: Dict[int, Tuple[int, bool]] = {}
    errors: List[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(limit: int) -> None:
        try:
            with threadpoolctl.threadpool_limits(limits=limit, user_api="openmp"):
                barrier.wait()
                ok = all(same_bits(convext.conv2d_backward(gy, x, w, padding=1), want)
                         for _ in range(3))
                seen[limit] = (convext.get_num_threads(), ok)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(k,)) for k in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    for limit, (n, ok) in seen.items():
        assert ok, f"results under threadpool_limits({limit}) differ from serial"
    assert seen[1][0] == 1, seen


# ----------------------------------------------------------------------------
# set_num_threads / get_num_threads
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_set_num_threads_is_reflected_in_every_thread(n: int) -> None:
    convext.set_num_threads(n)
    assert convext.get_num_threads() == n
    seen: List[int] = []
    t = threading.Thread(target=lambda: seen.append(convext.get_num_threads()))
    t.start()
    t.join()
    assert seen == [n], "set_num_threads is process-wide: other threads must see it too"


@pytest.mark.parametrize("bad", [0, -1, -2**31], ids=["zero", "minus_one", "minus_2e31"])
def test_set_num_threads_rejects_non_positive(bad: int) -> None:
    before = convext.get_num_threads()
    with pytest.raises(ValueError):
        convext.set_num_threads(bad)
    assert convext.get_num_threads() == before


@pytest.mark.parametrize("bad", [1.5, "2", None, 2.0], ids=["float", "str", "none", "integral_float"])
def test_set_num_threads_rejects_non_integers(bad: Any) -> None:
    with pytest.raises(TypeError):
        convext.set_num_threads(bad)


def test_set_num_threads_sizes_the_openmp_team() -> None:
    """After a call with n threads, the process has at least n OS threads."""
    code = textwrap.dedent(
        """
        import numpy as np, psutil, convext
        convext.set_num_threads(4)
        x, w = np.ones((8, 16, 32, 32), np.float32), np.ones((32, 16, 3, 3), np.float32)
        for _ in range(3):
            convext.conv2d(x, w, padding=1)
            convext.conv2d_backward(np.ones((8, 32, 32, 32), np.float32), x, w, padding=1)
        print(psutil.Process().num_threads())
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[-1]) >= 4


# ----------------------------------------------------------------------------
# threadpoolctl
# ----------------------------------------------------------------------------
def test_threadpoolctl_finds_the_openmp_runtime_loaded_by_convext() -> None:
    """In a fresh interpreter, importing convext adds a libgomp entry."""
    code = textwrap.dedent(
        """
        import json, numpy, threadpoolctl
        before = {i["filepath"] for i in threadpoolctl.threadpool_info()}
        import convext
        after = [i for i in threadpoolctl.threadpool_info() if i["filepath"] not in before]
        print(json.dumps(after))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    new = json.loads(run.stdout.strip().splitlines()[-1])
    assert any(i["user_api"] == "openmp" and i["prefix"] == "libgomp" for i in new), new


def test_threadpoolctl_lists_an_openmp_runtime_in_this_process() -> None:
    info = threadpoolctl.threadpool_info()
    assert any(i["user_api"] == "openmp" and i["internal_api"] == "openmp" for i in info), info


@pytest.mark.parametrize("user_api", [None, "openmp"], ids=["all_apis", "openmp_api"])
def test_threadpool_limits_1_limits_convext(user_api: Any) -> None:
    x, w, gy = data(0, 5, 6, 17, 19), data(1, 7, 6, 3, 3), data(2, 5, 7, 17, 19)
    convext.set_num_threads(2)
    want = convext.conv2d_backward(gy, x, w, padding=1)
    with threadpoolctl.threadpool_limits(limits=1, user_api=user_api):
        assert convext.get_num_threads() == 1
        assert same_bits(convext.conv2d_backward(gy, x, w, padding=1), want)
    assert convext.get_num_threads() == 2, "the limit must be lifted when the context exits"


def test_threadpool_limits_equal_to_the_default_is_honoured() -> None:
    """Inside threadpool_limits(k) convext uses at most k threads, also when k
    equals the process default (fresh interpreter: the default is known)."""
    code = textwrap.dedent(
        """
        import threadpoolctl, convext
        k = convext.get_num_threads()          # the default: OMP_NUM_THREADS or all cores
        convext.set_num_threads(k + 1)
        with threadpoolctl.threadpool_limits(limits=k, user_api="openmp"):
            inside = convext.get_num_threads()
        print(k, inside, convext.get_num_threads())
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    k, inside, after = map(int, run.stdout.split()[-3:])
    assert inside <= k, (f"set_num_threads({k + 1}) then threadpool_limits({k}): convext uses "
                         f"{inside} threads")
    assert after == k + 1


# ----------------------------------------------------------------------------
# results do not depend on the thread count
# ----------------------------------------------------------------------------
def _thread_invariance_cases() -> Dict[str, Callable[[], Any]]:
    # odd sizes so static partitions split unevenly; big reductions for the
    # weight gradient (where a racy or order-dependent sum would show)
    x, w, b = data(0, 5, 6, 23, 29), data(1, 9, 6, 3, 3), data(2, 9)
    xd, wd = data(3, 3, 6, 21, 22, dtype=F64), data(4, 12, 2, 5, 3, dtype=F64)
    y = convext.conv2d(x, w, b, stride=(2, 1), padding=1)
    gy = data(5, *y.shape)
    yd = convext.conv2d(xd, wd, groups=3, dilation=2, padding=(3, 1))
    gyd = data(6, *yd.shape, dtype=F64)
    pooled = convext.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
    gp = data(7, *pooled.shape)
    a, k = data(8, 301, 257), data(9, 7, 5)
    gx_relu = data(10, *x.shape)
    return {
        "conv2d": lambda: convext.conv2d(x, w, b, stride=(2, 1), padding=1),
        "conv2d_grouped_float64": lambda: convext.conv2d(xd, wd, groups=3, dilation=2, padding=(3, 1)),
        "conv2d_backward": lambda: convext.conv2d_backward(gy, x, w, stride=(2, 1), padding=1),
        "conv2d_backward_grouped_float64": lambda: convext.conv2d_backward(
            gyd, xd, wd, groups=3, dilation=2, padding=(3, 1)),
        "conv2d_input_grad": lambda: convext.conv2d_input_grad(gy, w, x.shape, stride=(2, 1), padding=1),
        "conv2d_weight_grad": lambda: convext.conv2d_weight_grad(gy, x, w.shape, stride=(2, 1), padding=1),
        "max_pool2d": lambda: convext.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                                 return_indices=True),
        "max_pool2d_backward": lambda: convext.max_pool2d_backward(gp, x, 3, stride=2, padding=1,
                                                                   ceil_mode=True),
        "avg_pool2d": lambda: convext.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        "avg_pool2d_backward": lambda: convext.avg_pool2d_backward(gp, x.shape, 3, stride=2, padding=1,
                                                                   ceil_mode=True),
        "correlate2d_valid": lambda: convext.correlate2d(a, k),
        "correlate2d_full": lambda: convext.correlate2d(a, k, mode="full"),
        "convolve2d_same": lambda: convext.convolve2d(a, k, mode="same"),
        "relu": lambda: convext.relu(x),
        "relu_backward": lambda: convext.relu_backward(gx_relu, x),
    }


THREAD_CASES = list(_thread_invariance_cases())


@pytest.mark.parametrize("op", THREAD_CASES)
def test_results_bitwise_equal_for_1_2_3_threads(op: str) -> None:
    call = _thread_invariance_cases()[op]
    outs = []
    for n in (1, 2, 3):
        convext.set_num_threads(n)
        assert convext.get_num_threads() == n
        outs.append(call())
    assert same_bits(outs[0], outs[1]), f"{op}: 1 and 2 threads differ"
    assert same_bits(outs[0], outs[2]), f"{op}: 1 and 3 threads differ"
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert same_bits(call(), outs[0]), f"{op}: threadpool_limits(1) differs"


def test_threadpool_limits_equal_to_the_default_is_the_documented_exception() -> None:
    """issue 13 item 11, as the README states it: in a fresh thread, a limit
    other than the starting OpenMP count wins over set_num_threads; a limit
    equal to it cannot be told from none, and set_num_threads' count applies."""
    default = convext.get_num_threads()
    seen: Dict[str, int] = {}

    def worker() -> None:
        start = threadpoolctl.threadpool_info()
        icv = next(p["num_threads"] for p in start if p["user_api"] == "openmp")
        other = icv + 1
        with threadpoolctl.threadpool_limits(limits=other, user_api="openmp"):
            seen["other"], seen["other_limit"] = convext.get_num_threads(), other
        with threadpoolctl.threadpool_limits(limits=icv, user_api="openmp"):
            seen["same"] = convext.get_num_threads()

    convext.set_num_threads(1)
    try:
        t = threading.Thread(target=worker)
        t.start()
        t.join(timeout=60)
    finally:
        convext.set_num_threads(default)
    assert seen["other"] == seen["other_limit"]
    assert seen["same"] == 1  # the process-wide count, not the limit
