"""Hostile environments (issue 13): each class in its own subprocess with a
timeout, so a crash or hang fails the test and never kills the suite."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convext
from convext import reference as ref


def run(code: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    full = {**os.environ, **(env or {})}
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env=full)
    except subprocess.TimeoutExpired:
        pytest.fail("the child process hung")


def ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert "ok" in r.stdout, r.stdout


def test_set_num_threads_racing_calls_keeps_the_heap_intact() -> None:
    ok(run("""
        import threading, numpy as np, convext as cx
        x = np.ones((4, 8, 20, 20), np.float32); gy = np.ones((4, 8, 10, 10), np.float32)
        def flip():
            i = 0
            while True: cx.set_num_threads(1 + i % 2); i += 1
        threading.Thread(target=flip, daemon=True).start()
        want = cx.conv2d_weight_grad(gy, x, (8, 8, 3, 3), stride=2, padding=1)
        for _ in range(1500):
            assert np.array_equal(cx.conv2d_weight_grad(gy, x, (8, 8, 3, 3), stride=2, padding=1), want)
        print("ok")
    """))


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "conv2d", "conv2d_weight_grad", "correlate2d"])
def test_uncopyable_view_raises_memory_error(op: str) -> None:
    big = np.broadcast_to(np.float32(1), (1, 1, 2**17, 2**17))
    calls = {
        "max_pool2d": lambda: convext.max_pool2d(big, 2**17),
        "avg_pool2d": lambda: convext.avg_pool2d(big, 2**17),
        "conv2d": lambda: convext.conv2d(big, np.ones((1, 1, 2**17, 2**17), np.float32)[:, :, :1, :1].repeat(1, 0), stride=2**17),
        "conv2d_weight_grad": lambda: convext.conv2d_weight_grad(np.ones((1, 1, 1, 1), np.float32), big, (1, 1, 2**17, 2**17)),
        "correlate2d": lambda: convext.correlate2d(big[0, 0], np.ones((1, 1), np.float32)),
    }
    with pytest.raises(MemoryError):
        calls[op]()


def test_forked_child_after_threaded_call_works() -> None:
    ok(run("""
        import os, numpy as np, convext as cx
        cx.set_num_threads(2)
        x = np.ones((8, 16, 32, 32), np.float32); w = np.ones((16, 16, 3, 3), np.float32)
        want = cx.conv2d(x, w)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if np.array_equal(cx.conv2d(x, w), want) else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print("ok")
    """, timeout=60))


def test_exit_with_daemon_threads_inside_calls_is_clean() -> None:
    r = run("""
        import threading, time, numpy as np, convext as cx
        x = np.ones((8, 16, 32, 32), np.float32); w = np.ones((16, 16, 3, 3), np.float32)
        def loop():
            while True: cx.conv2d(x, w)
        for _ in range(4): threading.Thread(target=loop, daemon=True).start()
        time.sleep(0.3)
        print("ok")
    """, timeout=60)
    ok(r)
    assert "terminate" not in r.stderr, r.stderr


def test_nan_weight_input_grad_only_where_the_tap_reaches() -> None:
    for stride in (1, 2):
        w = np.ones((8, 8, 3, 3)); w[0, 0, 0, 0] = np.nan
        gy = np.ones(ref.conv2d(np.ones((1, 8, 6, 6)), w, stride=stride, padding=1).shape)
        got = convext.conv2d_input_grad(gy, w, (1, 8, 6, 6), stride=stride, padding=1)
        want = ref.conv2d_input_grad(gy, w, (1, 8, 6, 6), stride=stride, padding=1)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_huge_dilation_on_tiny_input_answers() -> None:
    x, w = np.ones((2, 2, 3, 5)), np.ones((8, 2, 2, 3))
    kw = dict(dilation=(2**30, 1), padding=(2**29, 1))
    y = convext.conv2d(x, w, **kw)
    assert y.shape == (2, 8, 3, 5) and not y.any()  # no tap row meets the input
    assert not convext.conv2d_input_grad(np.ones(y.shape), w, x.shape, **kw).any()
    assert not convext.conv2d_weight_grad(np.ones(y.shape), x, w.shape, **kw).any()


def test_omp_num_threads_huge_gives_a_settable_count() -> None:
    ok(run("""
        import convext as cx
        n = cx.get_num_threads()
        cx.set_num_threads(n)
        print("ok", n)
    """, env={"OMP_NUM_THREADS": "100000"}))


class _Raises:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __index__(self) -> int:
        raise self.exc

    def __array__(self, dtype=None, copy=None):
        raise self.exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
def test_errors_inside_index_and_array_propagate(exc: type) -> None:
    with pytest.raises(exc):
        convext.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=_Raises(exc()))
    with pytest.raises(exc):
        convext.relu(_Raises(exc()))


def test_nn_layers_reject_wrong_grad_shape_and_ignore_input_mutation() -> None:
    from convext import nn
    lin = nn.Linear(6, 4, rng=0)
    x = np.ones((2, 6), np.float32)
    lin(x)
    with pytest.raises(ValueError):
        lin.backward(np.ones((4, 2), np.float32))
    fl = nn.Flatten()
    fl(np.ones((2, 3, 2), np.float32))
    with pytest.raises(ValueError):
        fl.backward(np.ones((3, 4), np.float32))
    conv = nn.Conv2d(2, 3, 3, padding=1, rng=0)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    gy = np.ones((1, 3, 5, 5), np.float32)
    conv(x.copy()); conv.backward(gy); want = conv.weight.grad.copy()
    conv.weight.grad[...] = 0
    xin = x.copy(); conv(xin); xin[...] = 7; conv.backward(gy)
    np.testing.assert_array_equal(conv.weight.grad, want)
