"""Tests of ``python -m convext bench`` (tiny shapes; no time is ever asserted)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.resources
import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convext import bench
from convext import reference as ref
from convext.__main__ import main as convext_main
from convext.bench import accuracy as bench_accuracy
from convext.bench.peers import load_peers

QUICK_ROWS = ["lenet5x5", "maxpool3x3s2", "img256_k5"]
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SCIPY = importlib.util.find_spec("scipy") is not None
HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))

# The rows the suite started from (the team-wide layer suite this project copied), by name: the
# package's copy must keep every one of them.
ORIGINAL_ROWS = {
    "conv2d": ["lenet5x5", "res3x3_56", "res3x3_28", "res3x3_14", "stem7x7s2", "down1x1s2", "dw3x3_56"],
    "pool": ["maxpool3x3s2"],
    "correlate2d": ["img256_k5", "img256_k5_full", "img1024_k3"],
}
ISSUE16_ROWS = ["img256_k5_int64", "img256_k5_complex128", "img256_k5_symm"]


def _expected_lines() -> dict[tuple[str, str], set[str]]:
    """(row, op) -> peers that the quick run must report."""
    torch = {"torch"} if HAS_TORCH else set()
    scipy = {"scipy"} if HAS_SCIPY else set()
    onnx = {"onnxruntime"} if HAS_ONNX else set()
    expected = {}
    for op in ("fwd", "bwd"):
        expected[("lenet5x5", op)] = {"convext", "numpy"} | torch | (onnx if op == "fwd" else set())
        expected[("maxpool3x3s2", op)] = {"convext"} | torch
        expected[("relu@maxpool3x3s2", op)] = {"convext", "numpy"} | torch
    for op in ("corr", "conv"):
        expected[("img256_k5", op)] = {"convext"} | scipy
    return expected


def _quick_args(*extra: str) -> list[str]:
    return ["--quick", "--threads", "2", "--repeat", "1", "--warmup", "0", "--warm-ms", "0", *extra]


# ----------------------------------------------------------------------------
# the suite, shipped as package data
# ----------------------------------------------------------------------------
def test_suite_is_package_data_with_the_original_rows() -> None:
    resource = importlib.resources.files("convext.bench").joinpath("suite.json")
    assert resource.is_file()
    suite = bench.load_suite()
    for section, names in ORIGINAL_ROWS.items():
        got = [row["name"] for row in suite[section]]
        assert got[: len(names)] == names, section
    assert [r["name"] for r in suite["correlate2d"]][3:] == ISSUE16_ROWS
    names = bench.row_names(suite)
    assert len(names) == len(set(names)), "row names must be unique"
    assert "relu@maxpool3x3s2" in names
    res = {r["name"]: r for r in suite["conv2d"]}["res3x3_56"]
    assert (res["N"], res["C"], res["H"], res["K"], res["R"]) == (8, 64, 56, 64, 3)


def test_suite_from_a_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"conv2d": [{"name": "one", "N": 1, "C": 1, "H": 4, "W": 4, "K": 1, "R": 3, "S": 3}]}))
    assert bench.load_suite(path) == {"conv2d": json.loads(path.read_text())["conv2d"], "pool": [], "correlate2d": []}
    assert bench.suite_path() is None  # the package's
    monkeypatch.setenv("CONVEXT_BENCH_SUITE", str(path))
    assert bench.suite_path() == str(path)
    monkeypatch.setenv("CONVEXT_BENCH_SUITE", str(tmp_path / "absent.json"))
    with pytest.raises(FileNotFoundError, match="CONVEXT_BENCH_SUITE"):
        bench.suite_path()
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(bench.BenchError, match="JSON object"):
        bench.load_suite(tmp_path / "list.json")


# ----------------------------------------------------------------------------
# a quick suite run through main(): JSON fields, cross-checks
# ----------------------------------------------------------------------------
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
    assert quick_run["sections"] == ["suite"]
    assert quick_run["peak"]["gflops"] > 0
    assert "shipped with the package" in quick_run["suite"]
    assert isinstance(quick_run["peers_missing"], list)
    flops = {(r["row"], r["op"]): r["flops"] for r in quick_run["results"]}
    # lenet5x5 at batch 1 (--quick): 2 * K * C * R * S * Ho * Wo, backward twice that
    assert flops[("lenet5x5", "fwd")] == 2 * 20 * 1 * 5 * 5 * 24 * 24
    assert flops[("lenet5x5", "bwd")] == 2 * flops[("lenet5x5", "fwd")]
    for r in quick_run["results"]:
        for peer, p in r["peers"].items():
            if peer != "convext":  # every peer's result agreed with convext's
                assert p["max_rel_err"] is not None and p["max_rel_err"] < 1e-3, (r["row"], peer)
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


def test_models_without_torch_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(_quick_args("--models", "resnet18", "--skip", "torch")) == 2
    assert "need PyTorch" in capsys.readouterr().err


def test_missing_peers_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, *args: Any) -> Any:
        if name in ("onnxruntime", "scipy.signal"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    peers = load_peers()
    assert {"onnxruntime", "scipy"} <= set(peers.missing)
    assert peers.scipy_signal is None and peers.onnxruntime is None and peers.onnx is None
    assert any(n.startswith("scipy not installed") for n in peers.notes)


def test_runs_from_an_installed_package_in_any_directory(tmp_path: Path) -> None:
    # The suite is package data: found with no checkout (or the team-wide suite) near the cwd.
    proc = subprocess.run(
        [sys.executable, "-m", "convext", "bench", *_quick_args("--rows", "img256_k5", "--skip", "torch")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "img256_k5" in proc.stdout and "peers: convext, numpy" in proc.stdout


def test_convext_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert convext_main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "bench", "config"):
        lines = [line for line in out.splitlines() if line.strip().startswith(command + " ")]
        assert len(lines) == 1, (command, out)
    assert convext_main([]) == 2


# ----------------------------------------------------------------------------
# the correlate rows of issue 16: unsupported until convext accepts them
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, boundary, mode",
    [("int64", "fill", "valid"), ("complex128", "fill", "valid"), (None, "symm", "same")],
    ids=["int64", "complex128", "boundary_symm"],
)
def test_new_correlate_rows_are_unsupported_or_agree_with_scipy(
    dtype: str | None, boundary: str, mode: str
) -> None:
    pytest.importorskip("scipy")
    spec = bench.CorrSpec("tiny", 12, 10, 3, 2, mode=mode, dtype=dtype, boundary=boundary)
    cases = bench.correlate_cases(spec, np.dtype(np.float64), load_peers())
    assert [c.op for c in cases] == ["corr", "conv"]
    for case in cases:
        assert case.shape["dtype"] == (dtype or "float64")
        if "convext" in case.unsupported:
            assert "convext" not in case.tasks
            assert case.unsupported["convext"].startswith(("TypeError", "ValueError"))
            record = bench.summarize(case, bench.Timing(1, 0, False)(case.tasks), bench.cross_check(case), 1.0)
            assert record["peers"]["convext"] == {"unsupported": case.unsupported["convext"]}
            assert "ratios" not in record and record["peers"]["scipy"]["max_rel_err"] is None
            assert "unsupp." in bench.format_table([record])
        else:
            assert bench.cross_check(case)["scipy"] < 1e-12


def test_rng_arrays_of_every_dtype() -> None:
    from convext.bench.cases import rng_arrays

    a = rng_arrays({"i": (50,), "c": (50,), "f": (50,)}, np.dtype(np.int64))
    assert a["i"].dtype == np.int64 and -100 <= a["i"].min() and a["i"].max() < 100
    c = rng_arrays({"c": (50,)}, np.dtype(np.complex128))["c"]
    assert c.dtype == np.complex128 and np.abs(c.imag).max() > 0


# ----------------------------------------------------------------------------
# the accuracy column
# ----------------------------------------------------------------------------
TINY = bench.ConvSpec("tiny", 2, 3, 9, 8, 4, 3, 3, stride=(2, 1), padding=(1, 1))


def test_max_rel_error() -> None:
    want = np.array([1.0, -4.0, 2.0])
    assert bench.max_rel_error(want.astype(np.float32), want) == 0.0
    assert bench.max_rel_error(want + [0.0, 0.0, 0.04], want) == pytest.approx(0.01)
    assert bench.max_rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert bench.max_rel_error(np.ones(2), np.zeros(2)) == float("inf")


def test_reference64_is_the_layer_and_chunking_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    s = TINY.shapes()
    x, w, b, gy = (rng.standard_normal(s[k]) for k in ("x", "weight", "bias", "out"))
    whole = bench_accuracy.reference_conv64(TINY, x, w, b, gy)
    np.testing.assert_allclose(whole["forward"], ref.conv2d(x, w, b, **TINY.kwargs), rtol=1e-12, atol=1e-12)
    for got, want in zip((whole["input_grad"], whole["weight_grad"], whole["bias_grad"]),
                         ref.conv2d_backward(gy, x, w, **TINY.kwargs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(bench_accuracy, "_CHUNK_BYTES", 1)  # one sample per chunk
    chunked = bench_accuracy.reference_conv64(TINY, x, w, b, gy)
    for key in whole:
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-13, atol=1e-13)


def test_conv_accuracy_measures_float32_error() -> None:
    peers = load_peers()
    acc = bench.conv_accuracy(TINY, peers)
    for key in bench_accuracy.ACCURACY_KEYS:
        assert 0 <= acc["convext"][key] < 1e-5, key  # float32 rounding, not a wrong result
    assert max(acc["convext"].values()) > 0  # float32 results are not float64-exact
    if HAS_TORCH:
        assert set(acc["ratio"]) == set(bench_accuracy.ACCURACY_KEYS)
        for key, ratio in acc["ratio"].items():
            th = acc["torch"][key]
            assert ratio == (acc["convext"][key] / th if th else 1.0 if not acc["convext"][key] else float("inf"))
    fwd = bench_accuracy.split_by_op(acc, "fwd")
    assert set(fwd["convext"]) == {"forward"}
    assert set(bench_accuracy.split_by_op(acc, "bwd")["convext"]) == {"input_grad", "weight_grad", "bias_grad"}


def test_accuracy_column_in_the_table(tmp_path: Path) -> None:
    path = tmp_path / "acc.json"
    assert bench.main(_quick_args("--rows", "lenet5x5", "--accuracy", "--json", str(path))) == 0
    result = json.loads(path.read_text())
    by_op = {r["op"]: r for r in result["results"]}
    assert set(by_op["fwd"]["accuracy"]["convext"]) == {"forward"}
    assert set(by_op["bwd"]["accuracy"]["convext"]) == {"input_grad", "weight_grad", "bias_grad"}
    table = bench.format_table(result["results"])
    assert "err cx/torch" in table.splitlines()[0]
    assert "weight_grad cx / torch" in bench.format_accuracy(result["results"])


# ----------------------------------------------------------------------------
# the numpy and ONNX Runtime peers
# ----------------------------------------------------------------------------
NUMPY_PEER_CASES = [
    # id, x shape, weight shape, stride, padding, dilation, groups
    ("plain", (2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ("padded_strided", (2, 3, 9, 8), (4, 3, 3, 3), 2, 1, 1, 1),
    ("non_square_all_params", (1, 4, 11, 10), (6, 2, 3, 2), (2, 3), (1, 2), (2, 1), 2),
    ("stride_skips_tail", (1, 2, 8, 9), (2, 2, 3, 3), 2, 0, 1, 1),
    ("depthwise", (2, 4, 6, 5), (4, 1, 3, 3), 1, 1, 1, 4),
]


def _spec(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any,
          dilation: Any, groups: int) -> bench.ConvSpec:
    return bench.ConvSpec("case", *x_shape, w_shape[0], *w_shape[2:], stride=bench.pair(stride),
                          padding=bench.pair(padding), dilation=bench.pair(dilation), groups=groups)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, dilation, groups",
    [case[1:] for case in NUMPY_PEER_CASES],
    ids=[case[0] for case in NUMPY_PEER_CASES],
)
def test_numpy_peer_matches_reference(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any, groups: int
) -> None:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1]))
    spec = _spec(x_shape, w_shape, stride, padding, dilation, groups)
    kw = spec.kwargs
    np.testing.assert_allclose(
        bench.numpy_conv2d(x, w, b, spec), ref.conv2d(x, w, b, **kw), rtol=1e-12, atol=1e-12
    )
    gy = rng.standard_normal(spec.shapes()["out"])
    for got, want in zip(
        bench.numpy_conv2d_backward(gy, x, w, spec), ref.conv2d_backward(gy, x, w, **kw)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, dilation, groups",
    [case[1:] for case in NUMPY_PEER_CASES],
    ids=[case[0] for case in NUMPY_PEER_CASES],
)
def test_onnxruntime_peer_matches_reference(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any, groups: int
) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from convext.bench.peers import onnx_conv_task

    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape, w_shape[:1]))
    spec = _spec(x_shape, w_shape, stride, padding, dilation, groups)
    got = onnx_conv_task(load_peers(), spec, x, w, b)()
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **spec.kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_memory_probe_reports_bytes() -> None:
    spec = bench.ConvSpec("small", 1, 4, 16, 16, 4, 3, 3, padding=(1, 1))
    memory = bench.measure_memory(spec, np.dtype(np.float32), 1, ["convext", "numpy"])
    for peer in ("convext", "numpy"):
        probe = memory["peers"][peer]
        assert "error" not in probe, probe.get("error")
        assert probe["output_bytes"] == 4 * 16 * 16 * 4
        assert isinstance(probe["fwd_bwd_extra_bytes"], int)


# ----------------------------------------------------------------------------
# the models (plain torch.nn) and the zoo
# ----------------------------------------------------------------------------
# torchvision's parameter counts of the same architectures
PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "vgg11": 132_863_336,
    "densenet121": 7_978_856,
}


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_model_has_the_papers_parameter_count(name: str) -> None:
    pytest.importorskip("torch")
    from convext.bench.models import build_model, count_parameters

    assert count_parameters(build_model(name, device="meta")) == PARAMETERS[name]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "densenet121", "resnet50"])
def test_converted_model_matches_torch_on_a_tiny_input(name: str) -> None:
    torch = pytest.importorskip("torch")
    import convext.torch as ct
    from convext.bench.models import build_model

    model = build_model(name).eval()
    with warnings.catch_warnings():  # modules left on torch (the head's adaptive pool) are fine here
        warnings.simplefilter("ignore", ct.ConversionWarning)
        converted = ct.convert(build_model(name)).eval()
    assert any(type(m).__module__ == "convext.torch" for m in converted.modules())
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = model(x), converted(x)
    assert got.shape == (1, 1000)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


def test_model_lines_through_main(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = tmp_path / "models.json"
    rc = bench.main(_quick_args("--models", "resnet18,mobilenet_v2", "--image-size", "32",
                                "--modes", "infer_b1,train_b2", "--json", str(path)))
    assert rc == 0
    result = json.loads(path.read_text())
    assert result["sections"] == ["models"]
    lines = {(r["row"], r["op"]): r for r in result["results"]}
    assert set(lines) == {(m, o) for m in ("resnet18", "mobilenet_v2") for o in ("infer_b1", "train_b2")}
    for r in lines.values():
        assert r["kind"] == "model" and set(r["peers"]) == {"torch", "torch_cl", "convext"}
        assert set(r["ratios"]) == {"torch", "torch_cl"} and all(v > 0 for v in r["ratios"].values())
        assert r["peers"]["torch"]["max_rel_err"] < 1e-2  # logits / first-step loss agree
    assert lines[("resnet18", "train_b2")]["flops"] == 3 * 2 * lines[("resnet18", "infer_b1")]["flops"]
    assert lines[("resnet18", "infer_b1")]["shape"]["parameters"] == PARAMETERS["resnet18"]
    assert not result["warnings"], result["warnings"]


def test_bad_mode_and_model_are_errors(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert bench.main(_quick_args("--models", "resnet18", "--modes", "train")) == 2
    assert "train_b<N>" in capsys.readouterr().err
    assert bench.main(_quick_args("--models", "alexnet")) == 2
    assert "unknown model alexnet" in capsys.readouterr().err


def test_zoo_layers_of_resnet18() -> None:
    pytest.importorskip("torch")
    from convext.bench.zoo import zoo_layers

    layers = zoo_layers(["resnet18"])
    names = [layer["name"] for layer in layers]
    assert len(names) == len(set(names)) == 11
    assert sum(layer["count"] for layer in layers) == 20  # conv layers in ResNet-18
    assert names[0] == "7x7s2_c3_k64_224"
    assert {"3x3_c64_k64_56", "3x3s2_c64_k128_56", "1x1s2_c64_k128_56", "3x3_c512_k512_7"} <= set(names)
    shared = {layer["name"]: layer for layer in zoo_layers(["resnet18", "resnet50"])}
    assert shared["7x7s2_c3_k64_224"]["models"] == ["resnet18", "resnet50"]


def test_zoo_extra_families() -> None:
    from convext.bench.zoo import extra_layers, layer_name

    inception = [layer_name(layer) for layer in extra_layers("inception_v3")]
    assert "1x7_c128_k128_17" in inception and "7x1_c192_k192_17" in inception
    assert all(n.startswith(("1x7", "7x1")) for n in inception)
    deeplab = extra_layers("deeplab")
    assert all(layer["dilation"] == [2, 2] and layer["padding"] == [2, 2] for layer in deeplab)
    assert layer_name(deeplab[0]) == "3x3d2_c256_k256_28"
    for layer in extra_layers("inception_v3") + deeplab:  # 'same' convolutions
        spec = bench.ConvSpec.from_row({**layer, "name": "x", "N": 1})
        assert spec.out_hw == (layer["H"], layer["W"])


def test_zoo_lines_through_main(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = tmp_path / "zoo.json"
    rc = bench.main(_quick_args("--zoo", "deeplab", "--accuracy", "--json", str(path)))
    assert rc == 0
    result = json.loads(path.read_text())
    assert result["sections"] == ["zoo"] and result["zoo_batch"] == [1]
    assert {(r["row"], r["op"]) for r in result["results"]} == {
        (f"3x3d2_c{c}_k{c}_{h}_b1", op) for c, h in ((256, 28), (512, 14)) for op in ("fwd", "bwd")
    }
    for r in result["results"]:
        assert r["kind"] == "zoo" and r["shape"]["models"] == ["deeplab"] and "numpy" not in r["peers"]
        assert r["peers"]["torch"]["max_rel_err"] < 1e-3
        assert "ratio" in r["accuracy"]
    assert not result["warnings"], result["warnings"]


def test_model_accuracy_keys_of_a_zoo_spec() -> None:
    # a zoo row's spec is an ordinary ConvSpec: accuracy works on it as on the suite's
    spec = dataclasses.replace(TINY, name="zoo_b1", N=1, dilation=(2, 2), padding=(2, 2))
    acc = bench.conv_accuracy(spec, load_peers())
    assert max(acc["convext"].values()) < 1e-5
