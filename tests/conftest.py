"""Shared pytest configuration for convext's tests.

* Hypothesis profiles: ``ci`` (default: bounded and deterministic) and
  ``long`` (thorough sweeps), chosen with ``CONVEXT_HYPOTHESIS_PROFILE=long``
  (or hypothesis' own ``--hypothesis-profile`` option).
* Tolerances per dtype, scaled by the length of the reduction behind each
  output element (see :func:`tolerance`).
* Helpers handed out as session-scoped fixtures (so they are usable inside
  ``@given`` tests): ``tolerance``, ``assert_close``, ``as_layout``,
  ``snapshot``, ``assert_new_array``.  Tests are collected with
  ``--import-mode=importlib``, so they cannot ``import conftest``; fixtures
  are the way to share code.
* Parametrized fixtures ``dtype`` (float32/float64) and ``layout`` (memory
  layouts every op must accept).
"""
from __future__ import annotations

import os
import zlib
from typing import Any, Callable, Dict

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# ----------------------------------------------------------------------------
# hypothesis profiles
# ----------------------------------------------------------------------------
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,  # CI failures reproduce on every run
    print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("CONVEXT_HYPOTHESIS_PROFILE", "ci"))

# ----------------------------------------------------------------------------
# marks of scipy's own test classes (tests/test_scipy_signal_suite.py runs two)
# ----------------------------------------------------------------------------
def pytest_configure(config):
    for line in (
        "skip_xp_backends(backend=None, reason=None, np_only=False, cpu_only=False, "
        "eager_only=False, exceptions=None): scipy's array-API skip marks",
        "xfail_xp_backends(backend=None, reason=None, np_only=False, cpu_only=False, "
        "eager_only=False, exceptions=None): scipy's array-API xfail marks",
        "xfail_on_32bit(reason): scipy: fails on 32-bit platforms",
        "array_api_backends: scipy: test iterates over array API backends",
        "fail_slow(duration): scipy: pytest-fail-slow limit",
        "thread_unsafe: scipy: pytest-run-parallel runs it on one thread",
    ):
        config.addinivalue_line("markers", line)


# ----------------------------------------------------------------------------
# tolerances
# ----------------------------------------------------------------------------
#: relative tolerance per dtype
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def tolerance(dtype: Any, reduction: int = 1, scale: float = 1.0) -> Dict[str, float]:
    """``rtol``/``atol`` for comparing a result of ``dtype`` with the reference.

    ``reduction`` is the number of terms summed into one output element
    (e.g. ``C/groups * R * S`` for conv2d); ``scale`` the magnitude of one
    term.  The absolute part allows a rounding error of a few ulps per term,
    which protects outputs that cancel to about 0; it is 16 ulps, not 4,
    because the Winograd F(4x4, 3x3) path of 3x3 stride-1 layers amplifies
    rounding by up to ~10x in its transforms (tests/test_numerics.py checks
    the documented error bound against float64 separately).
    """
    dt = np.dtype(dtype)
    eps = float(np.finfo(dt).eps)
    atol = 16.0 * eps * max(1, int(reduction)) * float(scale)
    return {"rtol": RTOL[dt], "atol": max(atol, 10.0 * eps * float(scale))}


def assert_close(actual: Any, expected: Any, reduction: int = 1, scale: float = 1.0,
                 err_msg: str = "") -> None:
    """Shape, dtype and values (NaN == NaN) of ``actual`` match ``expected``."""
    assert isinstance(actual, np.ndarray), f"expected an ndarray, got {type(actual).__name__}"
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype} {err_msg}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape} {err_msg}"
    np.testing.assert_allclose(actual, expected, equal_nan=True, err_msg=err_msg,
                               **tolerance(expected.dtype, reduction, scale))


# ----------------------------------------------------------------------------
# memory layouts
# ----------------------------------------------------------------------------
LAYOUTS = ["c_order", "fortran_order", "negative_strides", "non_contiguous", "read_only",
           "nested_list"]


def as_layout(a: np.ndarray, layout: str) -> Any:
    """``a``'s values in another memory layout (or as nested lists).

    ``nested_list`` loses the dtype (lists become float64), so use it with
    float64 data only.
    """
    a = np.asarray(a)
    if layout == "c_order":
        return np.ascontiguousarray(a).copy()
    if layout == "fortran_order":
        return np.asfortranarray(a).copy(order="F")
    if layout == "negative_strides":
        flip = (slice(None, None, -1),) * a.ndim
        out = a[flip].copy()[flip]
        assert all(s < 0 for s in out.strides if s != 0) or a.size <= 1
        return out
    if layout == "non_contiguous":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
        big[..., 1::2] = a
        # garbage in the gaps, which must never be read
        big[..., 0::2] = np.nan if a.dtype.kind == "f" else -(2**31)
        return big[..., 1::2]
    if layout == "read_only":
        out = a.copy()
        out.setflags(write=False)
        return out
    if layout == "nested_list":
        return a.tolist()
    raise ValueError(f"unknown layout {layout!r}")


# ----------------------------------------------------------------------------
# inputs unchanged / outputs new
# ----------------------------------------------------------------------------
def snapshot(*args: Any) -> Callable[[], None]:
    """Copy the arguments now; the returned function asserts they are unchanged
    (bitwise for arrays, by value for nested lists)."""
    saved = [(a, np.array(a, copy=True)) for a in args]

    def check() -> None:
        for i, (orig, copy) in enumerate(saved):
            now = np.asarray(orig)
            assert now.shape == copy.shape and now.dtype == copy.dtype, f"argument {i} changed"
            assert now.tobytes() == copy.tobytes(), f"argument {i} was modified in place"

    return check


def assert_new_array(out: Any, *inputs: Any) -> None:
    """``out`` is an ndarray that shares no memory with any input array."""
    assert isinstance(out, np.ndarray), f"expected an ndarray, got {type(out).__name__}"
    for i, a in enumerate(inputs):
        if isinstance(a, np.ndarray):
            assert not np.shares_memory(out, a), f"output shares memory with input {i}"


# ----------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------
@pytest.fixture(scope="session", name="tolerance")
def _tolerance_fixture():
    return tolerance


@pytest.fixture(scope="session", name="assert_close")
def _assert_close_fixture():
    return assert_close


@pytest.fixture(scope="session", name="as_layout")
def _as_layout_fixture():
    return as_layout


@pytest.fixture(scope="session", name="snapshot")
def _snapshot_fixture():
    return snapshot


@pytest.fixture(scope="session", name="assert_new_array")
def _assert_new_array_fixture():
    return assert_new_array


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """Each floating dtype convext computes natively."""
    return np.dtype(request.param)


@pytest.fixture(params=LAYOUTS, ids=LAYOUTS)
def layout(request):
    """Name of a memory layout (see :func:`as_layout`)."""
    return request.param


@pytest.fixture
def rng(request):
    """A numpy Generator seeded from the test id (reproducible per test)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
