"""Memory: thousands of calls (including ones that raise) leak nothing.

* Resident memory (psutil RSS) after thousands of forward/backward calls on
  small shapes, a third of them raising, is within a few MiB of what it was
  after a warm-up; each call returns tens of KiB, so leaking the outputs (or
  a converted copy of an input) of a single op would show as tens of MiB.
* Python-level: tracemalloc (which also sees numpy's data buffers) shows no
  growth over the same loop, reference counts of the arguments (arrays,
  dtypes, the exception types raised) are unchanged, and every returned array
  is referenced only by its receiver and is freed when dropped (weakref).
"""
from __future__ import annotations

import gc
import sys
import tracemalloc
import weakref
from typing import Any, Callable, List, Tuple

import numpy as np
import psutil
import pytest

import convext

F32, F64 = np.float32, np.float64
MiB = 1 << 20


def data(seed: int, *shape: int, dtype: Any = F32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _calls() -> List[Tuple[str, Callable[[], Any], Any]]:
    """(name, call, expected exception or None); outputs of ~16-64 KiB each."""
    x = data(0, 2, 4, 32, 32)                       # 32 KiB
    xf = np.asfortranarray(data(1, 2, 4, 32, 32))   # converted to C order inside
    xd = data(2, 2, 4, 32, 32, dtype=F64)[:, :, ::-1]
    w, b = data(3, 8, 4, 3, 3), data(4, 8)
    wd = data(5, 8, 4, 3, 3, dtype=F64)
    gy = data(6, 2, 8, 32, 32)
    gyd = data(7, 2, 8, 32, 32, dtype=F64)
    gp = data(8, 2, 4, 16, 16)
    _, idx = convext.max_pool2d(x, 2, return_indices=True)
    img, ker = data(9, 96, 96), data(10, 5, 5)
    ro = data(11, 2, 4, 32, 32)
    ro.setflags(write=False)
    as_list = data(12, 1, 2, 6, 6, dtype=F64).tolist()
    return [
        ("conv2d", lambda: convext.conv2d(x, w, b, padding=1), None),
        ("conv2d_fortran_x", lambda: convext.conv2d(xf, w, padding=1), None),
        ("conv2d_float64_negative_strides", lambda: convext.conv2d(xd, wd, padding=1), None),
        ("conv2d_nested_list", lambda: convext.conv2d(as_list, wd[:2, :2]), None),
        ("conv2d_backward", lambda: convext.conv2d_backward(gy, x, w, padding=1), None),
        ("conv2d_backward_float64", lambda: convext.conv2d_backward(gyd, xd, wd, padding=1), None),
        ("conv2d_input_grad", lambda: convext.conv2d_input_grad(gy, w, x.shape, padding=1), None),
        ("conv2d_weight_grad", lambda: convext.conv2d_weight_grad(gy, xf, w.shape, padding=1), None),
        ("max_pool2d", lambda: convext.max_pool2d(ro, 2, return_indices=True), None),
        ("max_pool2d_backward", lambda: convext.max_pool2d_backward(gp, x, 2, indices=idx), None),
        ("avg_pool2d", lambda: convext.avg_pool2d(xf, 3, stride=2, padding=1, ceil_mode=True), None),
        ("avg_pool2d_backward", lambda: convext.avg_pool2d_backward(gp, x.shape, 2), None),
        ("relu", lambda: convext.relu(xd), None),
        ("relu_backward", lambda: convext.relu_backward(x, ro), None),
        ("correlate2d", lambda: convext.correlate2d(img, ker, mode="full"), None),
        ("convolve2d", lambda: convext.convolve2d(img, ker, mode="same"), None),
        ("rot180", lambda: convext.rot180(xf), None),
        # calls that raise, some after converting a non-contiguous input
        ("conv2d_bad_stride", lambda: convext.conv2d(xf, w, stride=0), ValueError),
        ("conv2d_channel_mismatch", lambda: convext.conv2d(xd, wd[:, :3]), ValueError),
        ("conv2d_mixed_dtypes", lambda: convext.conv2d(x, wd), TypeError),
        ("conv2d_backward_bad_grad_out", lambda: convext.conv2d_backward(gy[:, :, 1:], xf, w, padding=1),
         ValueError),
        ("conv2d_bias_wrong_length", lambda: convext.conv2d(xf, w, b[:5], padding=1), ValueError),
        ("max_pool2d_backward_bad_indices",
         lambda: convext.max_pool2d_backward(gp, xf, 2, indices=idx + 5000), ValueError),
        ("avg_pool2d_padding_gt_half", lambda: convext.avg_pool2d(xf, 2, padding=2), ValueError),
        ("relu_int", lambda: convext.relu(np.ones((64, 64), np.int64)), TypeError),
        ("correlate2d_bad_mode", lambda: convext.correlate2d(img, ker, mode="bogus"), ValueError),
        ("conv2d_huge_padding", lambda: convext.conv2d(x, w, padding=2**62), ValueError),
        ("conv2d_output_too_big", lambda: convext.conv2d(x[:1, :1, :1, :1], w[:1, :1, :1, :1], padding=2**22),
         MemoryError),
    ]


def _run(calls: List[Tuple[str, Callable[[], Any], Any]], times: int) -> None:
    for _ in range(times):
        for name, call, error in calls:
            if error is None:
                call()
            else:
                try:
                    call()
                except error:
                    pass
                else:  # pragma: no cover - a silent result is a bug of its own
                    raise AssertionError(f"{name} did not raise {error.__name__}")


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def test_resident_memory_stays_flat_over_thousands_of_calls() -> None:
    calls = _calls()
    _run(calls, 30)  # warm-up: allocator pools, OpenMP team, lazy imports
    before = _rss()
    _run(calls, 300)  # ~8400 calls, ~250 MiB of outputs allocated and freed
    after = _rss()
    assert after - before < 8 * MiB, (
        f"RSS grew by {(after - before) / MiB:.1f} MiB over {300 * len(calls)} calls")


def test_python_heap_does_not_grow_over_thousands_of_calls() -> None:
    """tracemalloc sees Python objects and numpy's data buffers: a leaked
    output array, exception or message string shows up here."""
    calls = _calls()
    _run(calls, 5)
    gc.collect()
    tracemalloc.start()
    try:
        _run(calls, 5)
        gc.collect()
        start, _ = tracemalloc.get_traced_memory()
        _run(calls, 300)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 64 KiB over 300 rounds: a leak of ~200 bytes per call of one op fails
    assert end - start < 64 * 1024, (
        f"traced Python memory grew by {(end - start) / 1024:.1f} KiB over {300 * len(calls)} calls")


def test_reference_counts_of_arguments_unchanged() -> None:
    calls = _calls()
    _run(calls, 2)
    gc.collect()
    watched = {
        "float32 dtype": np.dtype(F32),
        "float64 dtype": np.dtype(F64),
        "int64 dtype": np.dtype(np.int64),
        "ValueError": ValueError,
        "TypeError": TypeError,
        "MemoryError": MemoryError,
    }
    # the arrays the calls close over
    for name, call, _ in calls:
        for i, cell in enumerate(call.__closure__ or ()):
            if isinstance(cell.cell_contents, np.ndarray):
                watched[f"{name} argument {i}"] = cell.cell_contents
    before = {k: sys.getrefcount(v) for k, v in watched.items()}
    _run(calls, 50)
    gc.collect()
    after = {k: sys.getrefcount(v) for k, v in watched.items()}
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"reference counts changed (before, after): {changed}"


SINGLE = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d_backward", "avg_pool2d",
          "avg_pool2d_backward", "relu", "relu_backward", "correlate2d", "convolve2d", "rot180"]
TUPLES = ["conv2d_backward", "max_pool2d"]


@pytest.mark.parametrize("name", SINGLE + TUPLES)
def test_returned_arrays_are_owned_by_the_caller_only(name: str) -> None:
    call = {n: c for n, c, _ in _calls()}[name]
    out = call()
    arrays = list(out) if isinstance(out, tuple) else [out]
    del out
    refs = []
    for i in range(len(arrays)):
        # referenced by the list only (+1 for getrefcount's own argument); counted
        # outside the assert, whose rewriting would hold temporaries
        count = sys.getrefcount(arrays[i])
        assert count == 2, f"{name}: output referenced {count - 1} times"
        base = arrays[i].base
        if base is not None:  # e.g. a capsule owning C++ memory: only the array holds it
            count = sys.getrefcount(base)  # the array, `base`, the argument
            assert count == 3, f"{name}: output's base referenced {count - 2} more times"
            if type(base).__weakrefoffset__:
                refs.append(weakref.ref(base))
            del base
        refs.append(weakref.ref(arrays[i]))
    arrays.clear()
    for r in refs:
        assert r() is None, f"{name}: a returned array outlived its last reference"
