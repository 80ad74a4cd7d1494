"""Hostile sizes and border-walking shapes.

* Absurd requests (a padding of 2**62, a kernel of 2**40, shapes whose element
  count overflows int64, input_shape tuples with huge or negative entries,
  zero-stride views standing for 2**60-element arrays) must raise
  ValueError/MemoryError (TypeError/OverflowError where a value does not even
  fit in 64 bits) *quickly*: never a crash, a hang or an attempt to allocate
  terabytes.  Each call is timed (< 1 s: a hang guard, not a benchmark) and
  runs under a faulthandler watchdog that turns a real hang into a failure
  with a traceback.  A few absurd-but-valid requests (stride 2**63-1, one
  2**62-wide pooling window) must instead give the right answer.
* The edge shapes where a wrong stride/padding formula reads or writes out
  of bounds (kernel == padded input, stride > kernel, padding == kernel // 2,
  1xN and Nx1 inputs, ceil_mode windows that start in the padding, dilation
  making the effective kernel equal to the padded input) match the reference
  (and, for pooling, PyTorch itself).  Run under the sanitizer build
  (tools/sanitize.sh) these are what catch out-of-bounds accesses.
"""
from __future__ import annotations

import contextlib
import faulthandler
import math
import subprocess
import sys
import textwrap
import time
import zlib
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np
import psutil
import pytest
import scipy.signal

import convext
from convext import reference as ref

torch = pytest.importorskip("torch")
F = torch.nn.functional

F32, F64 = np.float32, np.float64
HANG_GUARD_S = 1.0  # generous: failing fast takes microseconds
WATCHDOG_S = 60.0  # a call still running after this is a hang: dump tracebacks and exit


@contextlib.contextmanager
def watchdog(seconds: float = WATCHDOG_S) -> Iterator[None]:
    """Kill the test process with a traceback if the body hangs."""
    # the real stderr: pytest's capture may have replaced sys.stderr by an object without a fd
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def timed(fn: Callable[[], Any]) -> Tuple[Any, float]:
    t0 = time.perf_counter()
    with watchdog():
        try:
            out = fn()
        except BaseException as exc:  # re-raised with the elapsed time attached
            exc.elapsed = time.perf_counter() - t0  # type: ignore[attr-defined]
            raise
    return out, time.perf_counter() - t0


def ones(*shape: int, dtype: Any = F32) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


def seq(*shape: int, dtype: Any = F32) -> np.ndarray:
    """Distinct values (so argmax and window positions are checkable)."""
    return np.arange(np.prod(shape), dtype=F64).reshape(shape).astype(dtype) / 7 - 1


def huge(*shape: int, dtype: Any = F32) -> np.ndarray:
    """A read-only zero-stride view standing for an array of ``prod(shape)`` elements."""
    return np.broadcast_to(np.ones((), dtype=dtype), shape)


# ----------------------------------------------------------------------------
# absurd requests: a clear error, quickly
# ----------------------------------------------------------------------------
VE, ME = ValueError, MemoryError
#: (id, call, accepted exceptions)
ABSURD: List[Tuple[str, Callable[[], Any], Tuple[type, ...]]] = [
    # conv2d parameters
    ("conv2d-padding_2e62", lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), padding=2**62),
     (VE,)),
    ("conv2d-padding_2e40_output_overflows_int64",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), padding=2**40), (VE, ME)),
    ("conv2d-padding_2e20_output_16TiB",
     lambda: convext.conv2d(ones(1, 1, 1, 1), ones(1, 1, 1, 1), padding=2**20), (VE, ME)),
    ("conv2d-padding_2e20_output_1PiB",
     lambda: convext.conv2d(ones(1, 1, 1, 1), ones(64, 1, 1, 1), padding=2**20), (VE, ME)),
    ("conv2d-padding_2e64_not_int64",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), padding=2**64),
     (VE, TypeError, OverflowError)),
    ("conv2d-padding_hw_2e62",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), padding=(0, 2**62)), (VE,)),
    ("conv2d-dilation_2e62_kernel_extent_overflows",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), dilation=2**62), (VE,)),
    ("conv2d-dilation_2e40", lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), dilation=2**40),
     (VE,)),
    ("conv2d-stride_2e64_not_int64",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), stride=2**64),
     (VE, TypeError, OverflowError)),
    ("conv2d-stride_minus_2e63",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), stride=-2**63), (VE,)),
    ("conv2d-groups_2e62", lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), groups=2**62),
     (VE,)),
    # conv2d arrays whose sizes are absurd (zero-stride views, so nothing is allocated up front)
    ("conv2d-x_2e60_elements",
     lambda: convext.conv2d(huge(2**15, 2**15, 2**15, 2**15), huge(1, 2**15, 1, 1)), (VE, ME)),
    ("conv2d-output_2e70_elements",
     lambda: convext.conv2d(huge(2**20, 1, 2**20, 2**20), huge(2**10, 1, 1, 1)), (VE, ME)),
    ("conv2d-weight_2e62_elements",
     lambda: convext.conv2d(ones(1, 1, 4, 4), huge(2**31, 1, 2**15, 2**16)), (VE, ME)),
    ("conv2d-bias_2e40_elements",
     lambda: convext.conv2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3), huge(2**40)), (VE, ME)),
    # backward entry points
    ("conv2d_input_grad-input_shape_2e62_entries",
     lambda: convext.conv2d_input_grad(ones(1, 1, 2, 2), ones(1, 1, 3, 3), (2**62,) * 4), (VE, ME)),
    ("conv2d_input_grad-input_shape_negative",
     lambda: convext.conv2d_input_grad(ones(1, 1, 2, 2), ones(1, 1, 3, 3), (1, 1, -4, 4)), (VE,)),
    ("conv2d_input_grad-input_shape_minus_2e63",
     lambda: convext.conv2d_input_grad(ones(1, 1, 2, 2), ones(1, 1, 3, 3), (1, 1, -2**63, 4)), (VE,)),
    ("conv2d_input_grad-input_shape_2e64_not_int64",
     lambda: convext.conv2d_input_grad(ones(1, 1, 2, 2), ones(1, 1, 3, 3), (1, 1, 2**64, 4)),
     (VE, TypeError, OverflowError)),
    ("conv2d_input_grad-grad_x_4TiB",
     lambda: convext.conv2d_input_grad(ones(1, 1, 1, 1), ones(1, 1, 1, 1), (1, 1, 2**20, 2**20),
                                       stride=2**20), (VE, ME)),
    ("conv2d_input_grad-grad_x_2e80_elements",
     lambda: convext.conv2d_input_grad(ones(1, 1, 1, 1), ones(1, 1, 1, 1), (1, 1, 2**40, 2**40),
                                       stride=2**40), (VE, ME)),
    ("conv2d_weight_grad-weight_shape_2e62_entries",
     lambda: convext.conv2d_weight_grad(ones(1, 1, 2, 2), ones(1, 1, 4, 4), (2**62,) * 4), (VE, ME)),
    ("conv2d_weight_grad-weight_shape_negative",
     lambda: convext.conv2d_weight_grad(ones(1, 1, 2, 2), ones(1, 1, 4, 4), (1, 1, 3, -3)), (VE,)),
    ("conv2d_weight_grad-grad_weight_4TiB",
     lambda: convext.conv2d_weight_grad(huge(1, 2**40, 4, 4), ones(1, 1, 4, 4), (2**40, 1, 1, 1)),
     (VE, ME)),
    ("conv2d_backward-grad_out_2e62_elements",
     lambda: convext.conv2d_backward(huge(2**16, 2**16, 2**15, 2**15), huge(2**16, 1, 2**15, 2**15),
                                     huge(2**16, 1, 1, 1)), (VE, ME)),
    ("conv2d_backward-grad_out_shape_2e62_mismatch",
     lambda: convext.conv2d_backward(huge(2**16, 2**16, 2**15, 2**15), ones(1, 1, 4, 4),
                                     ones(1, 1, 3, 3)), (VE,)),
    # pooling
    ("max_pool2d-kernel_2e40", lambda: convext.max_pool2d(ones(1, 1, 4, 4), 2**40), (VE,)),
    ("max_pool2d-kernel_2e40_ceil_mode", lambda: convext.max_pool2d(ones(1, 1, 4, 4), 2**40, ceil_mode=True),
     (VE,)),
    ("max_pool2d-padding_2e62", lambda: convext.max_pool2d(ones(1, 1, 4, 4), 3, padding=2**62), (VE,)),
    ("max_pool2d-dilation_2e62", lambda: convext.max_pool2d(ones(1, 1, 4, 4), 3, dilation=2**62), (VE,)),
    ("max_pool2d-stride_2e64_not_int64", lambda: convext.max_pool2d(ones(1, 1, 4, 4), 2, stride=2**64),
     (VE, TypeError, OverflowError)),
    ("max_pool2d-output_2e60_elements", lambda: convext.max_pool2d(huge(2**15, 2**15, 2**15, 2**15), 1),
     (VE, ME)),
    ("max_pool2d-return_indices_2e60_elements",
     lambda: convext.max_pool2d(huge(2**15, 2**15, 2**15, 2**15), 1, return_indices=True), (VE, ME)),
    ("max_pool2d_backward-indices_2e62",
     lambda: convext.max_pool2d_backward(ones(1, 1, 2, 2), ones(1, 1, 4, 4), 2,
                                         indices=np.full((1, 1, 2, 2), 2**62, dtype=np.int64)), (VE,)),
    ("max_pool2d_backward-indices_minus_2e63",
     lambda: convext.max_pool2d_backward(ones(1, 1, 2, 2), ones(1, 1, 4, 4), 2,
                                         indices=np.full((1, 1, 2, 2), -2**63, dtype=np.int64)), (VE,)),
    ("max_pool2d_backward-indices_uint64_max",
     lambda: convext.max_pool2d_backward(ones(1, 1, 2, 2), ones(1, 1, 4, 4), 2,
                                         indices=np.full((1, 1, 2, 2), 2**64 - 1, dtype=np.uint64)),
     (VE, TypeError)),
    ("max_pool2d_backward-grad_out_2e60_elements",
     lambda: convext.max_pool2d_backward(huge(2**15, 2**15, 2**15, 2**15),
                                         huge(2**15, 2**15, 2**15, 2**15), 1),
     (VE, ME)),
    ("avg_pool2d-kernel_2e40", lambda: convext.avg_pool2d(ones(1, 1, 4, 4), 2**40), (VE,)),
    ("avg_pool2d-padding_2e62", lambda: convext.avg_pool2d(ones(1, 1, 4, 4), 3, padding=2**62), (VE,)),
    ("avg_pool2d_backward-input_shape_2e62_entries",
     lambda: convext.avg_pool2d_backward(ones(1, 1, 1, 1), (2**62,) * 4, 2), (VE, ME)),
    ("avg_pool2d_backward-input_shape_negative",
     lambda: convext.avg_pool2d_backward(ones(1, 1, 2, 2), (1, 1, -4, 4), 2), (VE,)),
    ("avg_pool2d_backward-grad_x_4TiB",
     lambda: convext.avg_pool2d_backward(ones(1, 1, 1, 1), (1, 1, 2**20, 2**20), 2**20), (VE, ME)),
    # elementwise and 2-D
    ("relu-2e62_elements", lambda: convext.relu(huge(2**31, 2**31)), (VE, ME)),
    ("relu_backward-2e62_elements", lambda: convext.relu_backward(huge(2**31, 2**31), huge(2**31, 2**31)),
     (VE, ME)),
    ("rot180-2e62_elements", lambda: convext.rot180(huge(2**31, 2**31)), (VE, ME)),
    ("correlate2d-full_2e62_elements",
     lambda: convext.correlate2d(huge(2**31, 2**31), ones(3, 3), mode="full"), (VE, ME)),
    ("correlate2d-valid_2e62_kernel",
     lambda: convext.correlate2d(ones(4, 4), huge(2**31, 2**31), mode="valid"), (VE, ME)),
    ("convolve2d-full_output_overflows_int64",
     lambda: convext.convolve2d(huge(2**62, 1), huge(1, 2**62), mode="full"), (VE, ME)),
    ("convolve2d-same_2e62_elements",
     lambda: convext.convolve2d(huge(2**31, 2**31, dtype=F64), ones(2, 2, dtype=F64), mode="same"),
     (VE, ME)),
]


@pytest.mark.parametrize("call, accepted", [(c, a) for _, c, a in ABSURD],
                         ids=[name for name, _, _ in ABSURD])
def test_absurd_request_fails_fast(call: Callable[[], Any], accepted: Tuple[type, ...]) -> None:
    with pytest.raises(accepted) as info:
        timed(call)
    elapsed = info.value.elapsed  # type: ignore[attr-defined]
    assert elapsed < HANG_GUARD_S, f"took {elapsed:.3f} s to fail: {info.value}"
    assert str(info.value), "the error has no message"


def test_memory_error_names_the_size() -> None:
    """An allocation refused inside convext says how much it wanted."""
    with pytest.raises(MemoryError) as info:
        timed(lambda: convext.conv2d(ones(1, 1, 1, 1), ones(64, 1, 1, 1), padding=2**20))
    assert any(ch.isdigit() for ch in str(info.value)), str(info.value)


@pytest.mark.parametrize("op", ["conv2d", "conv2d_input_grad", "avg_pool2d_backward"])
def test_output_beyond_physical_memory_is_refused_by_convext(op: str) -> None:
    """An output 4x larger than the machine's memory (but inside the address
    space) gives a MemoryError from convext that names the op and the size,
    quickly. (Ideally convext refuses it before asking for the memory at all:
    on a host with vm.overcommit_memory=1 the OS would grant it.)"""
    ram = psutil.virtual_memory().total
    side = math.isqrt(ram) + 1  # side * side float32 elements = 4 * ram bytes
    calls = {
        "conv2d": lambda: convext.conv2d(ones(1, 1, 1, 1), ones(1, 1, 1, 1), padding=side // 2),
        "conv2d_input_grad": lambda: convext.conv2d_input_grad(ones(1, 1, 1, 1), ones(1, 1, 1, 1),
                                                               (1, 1, side, side), stride=side),
        "avg_pool2d_backward": lambda: convext.avg_pool2d_backward(ones(1, 1, 1, 1), (1, 1, side, side),
                                                                   side),
    }
    with pytest.raises(MemoryError) as info:
        timed(calls[op])
    message = str(info.value)
    assert info.value.elapsed < HANG_GUARD_S  # type: ignore[attr-defined]
    assert op in message or "convext" in message, f"the allocation was left to numpy: {message}"
    assert any(ch.isdigit() for ch in message), message


# ----------------------------------------------------------------------------
# absurd but valid requests: the right answer, quickly
# ----------------------------------------------------------------------------
def test_conv2d_stride_2e63_minus_1_reads_only_the_first_window() -> None:
    """Output 1x1 (the top-left window), or a clear error; never zeros."""
    x, w = seq(2, 3, 5, 6), seq(4, 3, 2, 3)
    try:
        y, elapsed = timed(lambda: convext.conv2d(x, w, stride=2**63 - 1))
    except ValueError as exc:
        assert exc.elapsed < HANG_GUARD_S  # type: ignore[attr-defined]
        return
    assert elapsed < HANG_GUARD_S
    assert y.shape == (2, 4, 1, 1)
    np.testing.assert_allclose(y, ref.conv2d(x, w, stride=2**63 - 1), rtol=1e-5, atol=1e-5)


def test_conv2d_dilation_and_padding_2e61_reads_only_the_centre_tap() -> None:
    """Taps 2**61 apart on an input padded by 2**61: every output reads the
    centre tap only (the outer taps lie in the padding); the padded input must
    never be materialised."""
    x, w = seq(2, 3, 4, 5), seq(2, 3, 3, 3)
    y, elapsed = timed(lambda: convext.conv2d(x, w, dilation=2**61, padding=2**61))
    assert elapsed < HANG_GUARD_S
    want = np.einsum("nchw,kc->nkhw", x.astype(F64), w[:, :, 1, 1].astype(F64))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv2d_input_grad_stride_2e62_scatters_only_the_first_window() -> None:
    gy, w = seq(1, 2, 1, 1), seq(2, 3, 2, 2)
    gx, elapsed = timed(lambda: convext.conv2d_input_grad(gy, w, (1, 3, 5, 5), stride=2**62))
    assert elapsed < HANG_GUARD_S
    np.testing.assert_allclose(gx, ref.conv2d_input_grad(gy, w, (1, 3, 5, 5), stride=2**62),
                               rtol=1e-5, atol=1e-5)
    assert not gx[:, :, 2:, :].any() and not gx[:, :, :, 2:].any()


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_ceil_mode_stride_2e63_minus_1_keeps_one_window(op: str) -> None:
    """ceil((H - k) / s) + 1 is 1 for a stride near 2**63: one window (as
    PyTorch and the reference), or a clear error; never an empty result."""
    x = seq(1, 2, 5, 7)
    s = 2**63 - 1
    try:
        y, elapsed = timed(lambda: getattr(convext, op)(x, 2, stride=s, ceil_mode=True))
    except ValueError as exc:
        assert exc.elapsed < HANG_GUARD_S  # type: ignore[attr-defined]
        return
    assert elapsed < HANG_GUARD_S
    want = getattr(ref, op)(x, 2, stride=s, ceil_mode=True)
    assert y.shape == want.shape == (1, 2, 1, 1)
    np.testing.assert_allclose(y, want, rtol=1e-6)


def test_max_pool2d_window_2e62_wide_covers_the_whole_input() -> None:
    """kernel 2**62 padded by 2**61 is one window holding the whole plane: the
    result is the plane's max (or a clear error), without walking 2**124 taps."""
    x = seq(2, 3, 4, 5)
    k, p = 2**62, 2**61
    try:
        (y, idx), elapsed = timed(lambda: convext.max_pool2d(x, k, padding=p, return_indices=True))
    except (ValueError, MemoryError) as exc:
        assert exc.elapsed < HANG_GUARD_S  # type: ignore[attr-defined]
        return
    assert elapsed < HANG_GUARD_S
    np.testing.assert_array_equal(y, x.max(axis=(2, 3), keepdims=True))
    np.testing.assert_array_equal(idx, x.reshape(2, 3, -1).argmax(-1).reshape(2, 3, 1, 1))
    gy = seq(2, 3, 1, 1) + 5
    gx, elapsed = timed(lambda: convext.max_pool2d_backward(gy, x, k, padding=p, indices=idx))
    assert elapsed < HANG_GUARD_S
    want = np.zeros_like(x).reshape(2, 3, -1)
    np.put_along_axis(want, idx.reshape(2, 3, 1), gy.reshape(2, 3, 1), axis=-1)
    np.testing.assert_array_equal(gx, want.reshape(x.shape))


@pytest.mark.parametrize("count_include_pad", [False, True], ids=["exclude_pad", "include_pad"])
def test_avg_pool2d_window_2e62_wide(count_include_pad: bool) -> None:
    """The divisor of one 2**62 x 2**62 window is 2**124 with count_include_pad
    (an int64 product would overflow) or the 20 real elements without."""
    x = seq(1, 2, 4, 5, dtype=F64) + 3
    k, p = 2**62, 2**61
    try:
        y, elapsed = timed(lambda: convext.avg_pool2d(x, k, padding=p,
                                                      count_include_pad=count_include_pad))
    except (ValueError, MemoryError) as exc:
        assert exc.elapsed < HANG_GUARD_S  # type: ignore[attr-defined]
        return
    assert elapsed < HANG_GUARD_S
    divisor = 2.0**124 if count_include_pad else 20.0
    np.testing.assert_allclose(y, x.sum(axis=(2, 3), keepdims=True) / divisor, rtol=1e-12)


def test_set_num_threads_absurd_does_not_crash() -> None:
    """set_num_threads(2**20) is refused or clamped; a threaded call afterwards
    must still work (a libgomp abort on thread creation would kill Python)."""
    code = textwrap.dedent(
        """
        import numpy as np, convext
        try:
            convext.set_num_threads(2**20)
        except (ValueError, OverflowError, TypeError) as exc:
            print("refused", exc)
        n = convext.get_num_threads()
        # many independent work items, so a pool of n threads would really be started
        y = convext.conv2d(np.ones((2**15, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32))
        assert float(y[0, 0, 0, 0]) == 9.0, y[0, 0, 0, 0]
        print("ok", n)
        """
    )
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure mode under test
        pytest.fail("set_num_threads(2**20) followed by conv2d hung")
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    assert "ok" in run.stdout


# ----------------------------------------------------------------------------
# edge shapes that walk on the borders
# ----------------------------------------------------------------------------
def _bound(got: np.ndarray, want: np.ndarray, scale: np.ndarray, terms: int, what: str) -> None:
    """|got - want| <= (terms + 2) * eps * (reference on |inputs|): the
    worst-case rounding bound of a ``terms``-long sum in any order."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    tol = (terms + 2) * np.finfo(got.dtype).eps * scale.astype(F64)
    err = np.abs(got.astype(F64) - want.astype(F64))
    assert np.all(err <= tol), f"{what}: max error {err.max():.3g} (bound {tol.max():.3g})"


#: id -> x shape, weight shape, conv params
CONV_EDGES: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...], Dict[str, Any]]] = {
    "one_by_one": ((1, 1, 1, 1), (1, 1, 1, 1), {}),
    "kernel_eq_input": ((2, 3, 5, 4), (2, 3, 5, 4), {}),
    "kernel_eq_padded_input": ((1, 2, 3, 4), (3, 2, 5, 6), {"padding": 1}),
    "kernel_eq_padded_input_asymmetric_padding": ((1, 2, 3, 4), (3, 2, 3, 8), {"padding": (0, 2)}),
    "stride_gt_kernel": ((1, 2, 9, 9), (2, 2, 2, 2), {"stride": 3}),
    "stride_gt_input": ((1, 1, 4, 5), (1, 1, 2, 2), {"stride": 7}),
    "stride_skips_tail_rows": ((2, 1, 8, 8), (1, 1, 3, 3), {"stride": 3}),
    "padding_eq_half_kernel": ((1, 2, 6, 5), (3, 2, 5, 3), {"padding": (2, 1)}),
    "padding_eq_kernel_minus_one_full": ((1, 1, 3, 3), (1, 1, 3, 3), {"padding": 2}),
    "padding_gt_kernel": ((1, 1, 2, 2), (1, 1, 2, 2), {"padding": 3}),
    "row_1xN": ((2, 2, 1, 7), (3, 2, 1, 3), {}),
    "column_Nx1": ((2, 2, 7, 1), (3, 2, 3, 1), {}),
    "row_1xN_padded": ((1, 2, 1, 7), (3, 2, 3, 3), {"padding": 1}),
    "column_Nx1_strided": ((1, 2, 9, 1), (3, 2, 2, 1), {"stride": (4, 1)}),
    "dilation_eq_padded_input": ((1, 2, 5, 5), (2, 2, 4, 3), {"dilation": (2, 3), "padding": 1}),
    "dilation_eq_input": ((1, 1, 7, 7), (1, 1, 3, 3), {"dilation": 3}),
    "dilation_stride_padding_mixed": ((2, 3, 7, 10), (2, 3, 2, 4),
                                      {"stride": (1, 3), "padding": (0, 2), "dilation": (2, 1)}),
    "depthwise_multiplier_2": ((2, 4, 6, 6), (8, 1, 3, 3), {"groups": 4, "padding": 1}),
    "depthwise_stride_2": ((1, 3, 7, 7), (3, 1, 3, 3), {"groups": 3, "stride": 2, "padding": 1}),
    "groups_3": ((1, 6, 5, 5), (9, 2, 2, 2), {"groups": 3}),
    "many_channels_1x1_image": ((1, 64, 1, 1), (33, 64, 1, 1), {}),
    "gemm_tails_odd_sizes": ((3, 5, 13, 11), (7, 5, 3, 3), {"padding": 1}),
    "wide_kernel_big_input": ((1, 2, 20, 21), (3, 2, 9, 9), {"padding": 4}),
    "huge_stride": ((1, 2, 5, 5), (2, 2, 3, 3), {"stride": 2**62}),
}


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(CONV_EDGES))
def test_conv_edge_shapes_match_reference(name: str, dtype: Any) -> None:
    xs, ws, p = CONV_EDGES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    x64, w64, b64 = x.astype(F64), w.astype(F64), b.astype(F64)
    y = convext.conv2d(x, w, b, **p)
    _bound(y, ref.conv2d(x64, w64, b64, **p).astype(dtype),
           ref.conv2d(abs(x64), abs(w64), abs(b64), **p), ws[1] * ws[2] * ws[3] + 1, "conv2d")
    gy = rng.standard_normal(y.shape).astype(dtype)
    gy64 = gy.astype(F64)
    gx, gw, gb = convext.conv2d_backward(gy, x, w, **p)
    kg = ws[0] // p.get("groups", 1)
    _bound(gx, ref.conv2d_input_grad(gy64, w64, xs, **p).astype(dtype),
           ref.conv2d_input_grad(abs(gy64), abs(w64), xs, **p), kg * ws[2] * ws[3], "grad_x")
    terms = y.shape[0] * y.shape[2] * y.shape[3]
    _bound(gw, ref.conv2d_weight_grad(gy64, x64, ws, **p).astype(dtype),
           ref.conv2d_weight_grad(abs(gy64), abs(x64), ws, **p), terms, "grad_weight")
    _bound(gb, gy64.sum((0, 2, 3)).astype(dtype), abs(gy64).sum((0, 2, 3)), terms, "grad_bias")
    np.testing.assert_array_equal(convext.conv2d_input_grad(gy, w, xs, **p), gx)
    np.testing.assert_array_equal(convext.conv2d_weight_grad(gy, x, ws, **p), gw)


#: id -> x shape, pooling params (max and avg; "dilation" only for max)
POOL_EDGES: Dict[str, Tuple[Tuple[int, ...], Dict[str, Any]]] = {
    "one_by_one": ((1, 1, 1, 1), {"kernel_size": 1}),
    "kernel_eq_input": ((1, 2, 4, 5), {"kernel_size": (4, 5)}),
    "kernel_eq_padded_input": ((2, 2, 1, 3), {"kernel_size": (3, 5), "padding": (1, 1)}),
    "kernel_eq_padded_1x1_input": ((1, 1, 1, 1), {"kernel_size": 3, "padding": 1}),
    "stride_gt_kernel": ((1, 2, 9, 10), {"kernel_size": 2, "stride": 3}),
    "stride_gt_input": ((1, 1, 3, 4), {"kernel_size": 2, "stride": 5}),
    "padding_eq_half_kernel_odd": ((1, 2, 5, 6), {"kernel_size": 3, "stride": 1, "padding": 1}),
    "padding_eq_half_kernel_even": ((1, 2, 5, 6), {"kernel_size": 4, "stride": 1, "padding": 2}),
    "row_1xN": ((2, 2, 1, 9), {"kernel_size": (1, 3), "stride": (1, 2)}),
    "column_Nx1": ((2, 2, 9, 1), {"kernel_size": (3, 1), "stride": (2, 1)}),
    "row_1xN_padded": ((1, 1, 1, 5), {"kernel_size": 3, "stride": 1, "padding": 1}),
    "ceil_mode_first_window_in_padding": ((1, 2, 5, 5), {"kernel_size": 2, "stride": 2, "padding": 1,
                                                         "ceil_mode": True}),
    "ceil_mode_last_window_half_outside": ((1, 2, 6, 6), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                          "ceil_mode": True}),
    "ceil_mode_last_window_past_input": ((1, 2, 4, 6), {"kernel_size": 3, "stride": 2,
                                                          "ceil_mode": True}),
    "ceil_mode_window_dropped_in_right_padding": ((1, 1, 5, 5), {"kernel_size": 2, "stride": 2,
                                                                 "padding": 1, "ceil_mode": True}),
    "ceil_mode_stride_gt_input": ((1, 1, 3, 3), {"kernel_size": 2, "stride": 4, "ceil_mode": True}),
    "ceil_mode_kernel_gt_input": ((1, 2, 1, 3), {"kernel_size": (2, 5), "stride": (2, 5),
                                                 "ceil_mode": True}),
    "ceil_mode_1xN": ((1, 1, 1, 8), {"kernel_size": (1, 3), "stride": (1, 3), "ceil_mode": True}),
    "dilation_eq_padded_input": ((1, 2, 5, 5), {"kernel_size": 3, "dilation": 3, "padding": 1}),
    "dilation_with_ceil_mode": ((1, 2, 8, 9), {"kernel_size": 2, "stride": 3, "dilation": 2,
                                               "padding": 1, "ceil_mode": True}),
    "dilation_taps_mostly_in_padding": ((1, 1, 4, 3), {"kernel_size": 3, "dilation": 2, "stride": 1,
                                                       "padding": 1}),
    # every tap of a window in the padding: PyTorch's value -inf, its index the
    # first tap clamped into the row (h * W + 1 here, the next row's element)
    "dilation_window_wholly_in_padding": ((1, 2, 2, 1), {"kernel_size": (1, 2), "dilation": (1, 2),
                                                         "padding": (0, 1)}),
    "dilation_window_wholly_in_padding_wide": ((1, 1, 3, 2), {"kernel_size": (1, 2), "dilation": (1, 3),
                                                              "padding": (0, 1), "stride": 1}),
}


def _torch_pool(op: str, x: np.ndarray, p: Dict[str, Any], grad: np.ndarray):
    """PyTorch's output and input gradient (None when torch cannot give one)."""
    t = torch.from_numpy(x.astype(F64)).requires_grad_(True)
    if op == "max_pool2d":
        y, idx = F.max_pool2d(t, return_indices=True, **p)
        if ((idx < 0) | (idx >= x.shape[2] * x.shape[3])).any():
            # torch's CPU backward writes out of bounds for such indices
            return y.detach().numpy(), None
    else:
        y = getattr(F, op)(t, **p)
    y.backward(torch.from_numpy(grad.astype(F64)))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(POOL_EDGES))
def test_max_pool_edge_shapes_match_reference_and_torch(name: str, dtype: Any) -> None:
    xs, p = POOL_EDGES[name]
    x = np.random.default_rng(len(name)).permutation(np.prod(xs)).reshape(xs).astype(dtype)
    y, idx = convext.max_pool2d(x, return_indices=True, **p)
    want, want_idx = ref.max_pool2d(x, return_indices=True, **p)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(idx, want_idx)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx = convext.max_pool2d_backward(gy, x, indices=idx, **p)
    np.testing.assert_array_equal(convext.max_pool2d_backward(gy, x, **p), gx)
    _bound(gx, ref.max_pool2d_backward(gy, x, **p), ref.max_pool2d_backward(abs(gy), x, **p),
           y.shape[2] * y.shape[3], "max_pool2d_backward")
    ty, tgx = _torch_pool("max_pool2d", x, p, gy)
    np.testing.assert_array_equal(y, ty.astype(dtype))
    if tgx is None:
        return
    _bound(gx, tgx.astype(dtype), ref.max_pool2d_backward(abs(gy), x, **p), y.shape[2] * y.shape[3],
           "max_pool2d_backward vs torch")


AVG_EDGES = {k: v for k, v in POOL_EDGES.items() if "dilation" not in v[1]}


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(AVG_EDGES))
def test_avg_pool_edge_shapes_match_reference_and_torch(name: str, dtype: Any,
                                                        count_include_pad: bool) -> None:
    xs, p = AVG_EDGES[name]
    p = dict(p, count_include_pad=count_include_pad)
    x = np.random.default_rng(len(name)).standard_normal(xs).astype(dtype)
    y = convext.avg_pool2d(x, **p)
    kh, kw = p["kernel_size"] if isinstance(p["kernel_size"], tuple) else (p["kernel_size"],) * 2
    _bound(y, ref.avg_pool2d(x, **p), ref.avg_pool2d(abs(x).astype(F64), **p), kh * kw + 1,
           "avg_pool2d")
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx = convext.avg_pool2d_backward(gy, xs, **p)
    scale = ref.avg_pool2d_backward(abs(gy).astype(F64), xs, **p)
    _bound(gx, ref.avg_pool2d_backward(gy, xs, **p), scale, y.shape[2] * y.shape[3] + 1,
           "avg_pool2d_backward")
    ty, tgx = _torch_pool("avg_pool2d", x, p, gy)
    _bound(y, ty.astype(dtype), ref.avg_pool2d(abs(x).astype(F64), **p), kh * kw + 1,
           "avg_pool2d vs torch")
    _bound(gx, tgx.astype(dtype), scale, y.shape[2] * y.shape[3] + 1, "avg_pool2d_backward vs torch")


#: id -> in1 shape, in2 shape, mode
CORRELATE_EDGES = {
    "valid_equal_shapes": ((4, 5), (4, 5), "valid"),
    "valid_in2_larger_swapped": ((2, 3), (5, 6), "valid"),
    "valid_1xN": ((1, 9), (1, 4), "valid"),
    "valid_Nx1": ((9, 1), (4, 1), "valid"),
    "full_1x1_kernel": ((3, 4), (1, 1), "full"),
    "full_kernel_larger_than_input": ((2, 3), (5, 4), "full"),
    "same_even_kernel": ((5, 6), (2, 4), "same"),
    "same_kernel_larger_than_input": ((3, 2), (6, 5), "same"),
    "same_1xN_input": ((1, 7), (3, 3), "same"),
    "full_1x1_both": ((1, 1), (1, 1), "full"),
}


@pytest.mark.parametrize("op", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(CORRELATE_EDGES))
def test_correlate_edge_shapes_match_scipy(name: str, dtype: Any, op: str) -> None:
    s1, s2, mode = CORRELATE_EDGES[name]
    rng = np.random.default_rng(len(name))
    a, b = rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)
    got = getattr(convext, op)(a, b, mode=mode)
    want = getattr(scipy.signal, op)(a.astype(F64), b.astype(F64), mode=mode)
    scale = getattr(scipy.signal, op)(abs(a).astype(F64), abs(b).astype(F64), mode=mode)
    _bound(got, want.astype(dtype), scale, min(a.size, b.size), f"{op} {mode}")
    np.testing.assert_array_equal(got, getattr(convext, op)(a, b, mode))
