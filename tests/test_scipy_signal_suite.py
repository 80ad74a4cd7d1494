"""scipy's own ``TestConvolve2d`` and ``TestCorrelate2d``, run against convext.

The classes come from the installed scipy (``scipy/signal/tests/
test_signaltools.py`` ships in scipy's wheels); they are subclassed here so
pytest collects them in this module, and an autouse fixture swaps the two
functions they call -- the names ``convolve2d`` / ``correlate2d`` imported
into scipy's test module and the attributes ``scipy.signal.convolve2d`` /
``scipy.signal.correlate2d`` -- for counting wrappers around convext's. After
each test the fixture asserts that convext was called, so a test that silently
ran scipy's own functions fails here.

Only the numpy array namespace is used (scipy's other array-API backends
are scipy's business): the ``xp`` fixture below stands in for scipy's
``conftest.py``, which is not loaded because it reconfigures the session
(hypothesis profile, multiprocessing start method).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, Iterator

import numpy as np
import pytest

pytest.importorskip("scipy")
st = pytest.importorskip("scipy.signal.tests.test_signaltools",
                         reason="this scipy build does not ship its tests")
import scipy.signal  # noqa: E402
from scipy._lib._array_api import array_namespace  # noqa: E402

import convext  # noqa: E402

NAMES = ("convolve2d", "correlate2d")
#: scipy's functions, as its test module bound them at import (parametrize
#: lists hold these objects)
SCIPY_FUNCS = {name: getattr(st, name) for name in NAMES}
#: tests of these classes that do not call correlate2d / convolve2d at all
NO_CALL = {"test_consistency_correlate_funcs",  # np.correlate vs signal.correlate only
           "test_suites_are_scipys_complete_classes"}


@pytest.fixture
def xp(request: pytest.FixtureRequest) -> Any:
    """scipy's ``xp`` fixture for the numpy backend, honouring its marks."""
    for kind, act in (("skip", pytest.skip), ("xfail", pytest.xfail)):
        for mark in request.node.iter_markers(f"{kind}_xp_backends"):
            if mark.args[:1] == ("numpy",):
                act(mark.kwargs.get("reason") or "scipy marks this backend")
    return array_namespace(np.empty(0))


@pytest.fixture(autouse=True)
def convext_swapped_in(request: pytest.FixtureRequest,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, int]]:
    if request.node.originalname == "test_large_array" and "asan" in os.environ.get(
            "LD_PRELOAD", ""):
        # 2 GiB int64 arrays (peak ~8 GiB) under ASan's quarantine: the plain run covers it
        pytest.skip("scipy's large-array test runs in the unsanitized run only")
    calls = {name: 0 for name in NAMES}

    def counting(name: str) -> Callable[..., Any]:
        fn = getattr(convext, name)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    for name in NAMES:
        w = counting(name)
        monkeypatch.setattr(st, name, w)
        monkeypatch.setattr(scipy.signal, name, w)
    yield calls
    if request.node.originalname not in NO_CALL:
        assert sum(calls.values()) > 0, "scipy's test did not call convext"


def _inherit_marks(base: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.pytestmark = list(getattr(base, "pytestmark", []))  # type: ignore[attr-defined]
        return fn
    return deco


class TestConvolve2d(st.TestConvolve2d):
    """scipy.signal's TestConvolve2d with convext's functions."""

    # scipy parametrizes `func` with its own function objects, bound when its
    # module was imported: map each to the swapped-in one, same body.
    @_inherit_marks(st.TestConvolve2d.test_same_with_boundary)
    def test_same_with_boundary(self, func: Any, boundary: str, expected: Any, xp: Any) -> None:
        name = next(n for n, f in SCIPY_FUNCS.items() if f is func)
        super().test_same_with_boundary(getattr(st, name), boundary, expected, xp)


class TestCorrelate2d(st.TestCorrelate2d):
    """scipy.signal's TestCorrelate2d with convext's functions."""


def test_suites_are_scipys_complete_classes() -> None:
    """Every test of scipy's two classes is collected here (none hidden or renamed)."""
    for ours, theirs in ((TestConvolve2d, st.TestConvolve2d),
                         (TestCorrelate2d, st.TestCorrelate2d)):
        names = {n for n in dir(theirs) if n.startswith("test")}
        assert names and names == {n for n in dir(ours) if n.startswith("test")}
    assert "test_same_with_boundary" in dir(st.TestConvolve2d)
