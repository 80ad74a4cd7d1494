"""Smoke tests of ``python -m convext bench`` (no time is ever asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convext import bench
from convext import reference as ref

QUICK_ROWS = ["lenet5x5", "maxpool3x3s2", "img256_k5"]
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def _expected_lines() -> dict[tuple[str, str], set[str]]:
    """(row, op) -> peers that the quick run must report."""
    torch = {"torch"} if HAS_TORCH else set()
    scipy = {"scipy"} if HAS_SCIPY else set()
    expected = {}
    for op in ("fwd", "bwd"):
        expected[("lenet5x5", op)] = {"convext", "numpy"} | torch
        expected[("maxpool3x3s2", op)] = {"convext"} | torch
        expected[("relu@maxpool3x3s2", op)] = {"convext", "numpy"} | torch
    for op in ("corr", "conv"):
        expected[("img256_k5", op)] = {"convext"} | scipy
    return expected


def _quick_args(*extra: str) -> list[str]:
    return ["--quick", "--threads", "2", "--repeat", "1", "--warmup", "0", *extra]


def test_suite_is_found() -> None:
    # Fails loudly (with every place searched) when shared/bench/suite.json is
    # not beside the checkout; CI provides ../shared/bench/suite.json.
    suite = bench.load_suite(bench.find_suite())
    names = bench.row_names(suite)
    assert set(QUICK_ROWS) <= set(names), names


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    rc = bench.main(_quick_args("--rows", ",".join(QUICK_ROWS), "--json", str(path)))
    assert rc == 0
    return json.loads(path.read_text(encoding="utf-8"))


def test_quick_json_has_every_line_and_peer(quick_run: dict[str, Any]) -> None:
    lines = {(r["row"], r["op"]): set(r["peers"]) for r in quick_run["results"]}
    assert lines == _expected_lines()


def test_quick_json_times_are_positive(quick_run: dict[str, Any]) -> None:
    for r in quick_run["results"]:
        for peer, p in r["peers"].items():
            assert p["median_ms"] > 0, (r["row"], r["op"], peer)
            assert len(p["samples_ms"]) == 1 and all(s > 0 for s in p["samples_ms"])
        assert all(v > 0 for v in r["ratios"].values())


def test_quick_json_records_the_run(quick_run: dict[str, Any]) -> None:
    assert quick_run["threads"] == 2 and quick_run["dtype"] == "float32" and quick_run["quick"]
    assert quick_run["peak"]["gflops"] > 0
    assert Path(quick_run["suite"]).is_file()
    flops = {(r["row"], r["op"]): r["flops"] for r in quick_run["results"]}
    # lenet5x5 at batch 1 (--quick): 2 * K * C * R * S * Ho * Wo, backward twice that
    assert flops[("lenet5x5", "fwd")] == 2 * 20 * 1 * 5 * 5 * 24 * 24
    assert flops[("lenet5x5", "bwd")] == 2 * flops[("lenet5x5", "fwd")]
    assert not quick_run["warnings"], quick_run["warnings"]


def test_quick_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "ratios.png"
    assert bench.main(_quick_args("--rows", "img256_k5", "--plot", str(png))) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_row_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(_quick_args("--rows", "no_such_row")) == 2
    assert "unknown row(s) no_such_row" in capsys.readouterr().err


def test_missing_suite_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(_quick_args("--suite", str(tmp_path / "absent.json"))) == 2
    assert "does not exist" in capsys.readouterr().err


NUMPY_PEER_CASES = [
    # id, x shape, weight shape, stride, padding, dilation, groups
    ("plain", (2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ("padded_strided", (2, 3, 9, 8), (4, 3, 3, 3), 2, 1, 1, 1),
    ("non_square_all_params", (1, 4, 11, 10), (6, 2, 3, 2), (2, 3), (1, 2), (2, 1), 2),
    ("stride_skips_tail", (1, 2, 8, 9), (2, 2, 3, 3), 2, 0, 1, 1),
    ("depthwise", (2, 4, 6, 5), (4, 1, 3, 3), 1, 1, 1, 4),
]


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, dilation, groups",
    [case[1:] for case in NUMPY_PEER_CASES],
    ids=[case[0] for case in NUMPY_PEER_CASES],
)
def test_numpy_peer_matches_reference(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> None:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1]))
    spec = bench.ConvSpec(
        "case",
        *x_shape,
        w_shape[0],
        *w_shape[2:],
        stride=bench._pair(stride),
        padding=bench._pair(padding),
        dilation=bench._pair(dilation),
        groups=groups,
    )
    kw = spec.kwargs
    np.testing.assert_allclose(
        bench.numpy_conv2d(x, w, b, spec), ref.conv2d(x, w, b, **kw), rtol=1e-12, atol=1e-12
    )
    gy = rng.standard_normal(spec.shapes()["out"])
    for got, want in zip(
        bench.numpy_conv2d_backward(gy, x, w, spec), ref.conv2d_backward(gy, x, w, **kw)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_memory_probe_reports_bytes() -> None:
    spec = bench.ConvSpec("small", 1, 4, 16, 16, 4, 3, 3, padding=(1, 1))
    memory = bench.measure_memory(spec, np.dtype(np.float32), 1, ["convext", "numpy"])
    for peer in ("convext", "numpy"):
        probe = memory["peers"][peer]
        assert "error" not in probe, probe.get("error")
        assert probe["output_bytes"] == 4 * 16 * 16 * 4
        assert isinstance(probe["fwd_bwd_extra_bytes"], int)
