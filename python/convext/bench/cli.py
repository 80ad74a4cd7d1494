"""``python -m convext bench``: the command line, and the run it describes."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from convext.bench.cases import build_cases, conv_cases
from convext.bench.machine import (
    blas_limits,
    convext_config,
    loadavg,
    machine_info,
    machine_line,
    measure_gemm_peak,
    set_threads,
)
from convext.bench.memory import MEMORY_ROW, format_memory, measure_memory
from convext.bench.peers import Peers, load_peers
from convext.bench.plot import write_plot
from convext.bench.report import format_accuracy, format_table, json_safe, report_errors, summarize
from convext.bench.suite import SUITE_ENV, BenchError, ConvSpec, load_suite, row_names, suite_path
from convext.bench.timing import Case, Timing, cross_check

__all__ = ["parse_args", "run", "main"]

ALL = "all"
SECTION_TITLES = {
    "suite": "layer suite",
    "zoo": "model-zoo conv layers (--zoo)",
    "models": "whole models (--models)",
}


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the arguments after ``python -m convext bench``.

    Parameters
    ----------
    argv : sequence of str

    Returns
    -------
    argparse.Namespace
        With defaults filled in (``repeat``, ``warmup``, ``peak_size``) and
        the lists (``models``, ``zoo``, ``modes``, ``zoo_batch``) parsed.

    Raises
    ------
    SystemExit
        On a bad argument (argparse prints why).
    """
    parser = argparse.ArgumentParser(
        prog="python -m convext bench",
        description="Time convext against PyTorch CPU, a numpy im2col layer, scipy.signal and "
        "ONNX Runtime (whichever are installed): the layer suite by default; whole CNNs with "
        "--models; every conv layer of those CNNs with --zoo.",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every library (default: convext's)"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write every number (and all samples) as JSON"
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="write a PNG bar chart of the ratios (needs matplotlib); with several sections, "
        "one file per section (PATH's stem + -suite/-zoo/-models)",
    )
    parser.add_argument(
        "--rows",
        metavar="NAME,...",
        help="suite rows to run (default: all; with --models/--zoo the suite runs only if given)",
    )
    parser.add_argument(
        "--models",
        nargs="?",
        const=ALL,
        metavar="NAME,...",
        help="time whole models (default all: resnet18, resnet50, mobilenet_v2, vgg11, "
        "densenet121): stock torch NCHW, stock torch channels_last, convext.torch.convert",
    )
    parser.add_argument(
        "--modes",
        default="infer_b1,infer_b8,train_b8",
        metavar="MODE,...",
        help="--models modes: infer_b<N> (eval, no_grad), train_b<N> (forward, loss, backward, "
        "SGD step); default infer_b1,infer_b8,train_b8",
    )
    parser.add_argument(
        "--zoo",
        nargs="?",
        const=ALL,
        metavar="NAME,...",
        help="time every distinct conv layer of these models (default all, plus inception_v3's "
        "1x7/7x1 and deeplab's dilated 3x3), forward and backward",
    )
    parser.add_argument(
        "--zoo-batch", default="8,1", metavar="N,...", help="batch sizes of --zoo (default 8,1)"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="input height and width of --models and of the --zoo layer shapes (default 224)",
    )
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="add the accuracy column to conv rows (suite and zoo): float32 error of convext "
        "and of torch against float64 (slower)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per peer (default 7, --quick 3; models 5, --quick 2)",
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed rounds first (default 1, --quick 0)"
    )
    parser.add_argument(
        "--warm-ms",
        type=float,
        default=20.0,
        help="untimed calls of the same op for this long before each timed call (default 20; "
        "not for whole models)",
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="start each timed call at once: no wait for the previous peer's threads to idle "
        "and no warm calls (noisier on machines with few cores)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: suite at batch 1, --zoo at batch 1 only, small GEMM peak, few runs",
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
        help=f"suite file (default: ${SUITE_ENV}, else the suite shipped with convext)",
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
        "--skip",
        metavar="PEER,...",
        default="",
        help="peers to leave out (torch, scipy, onnxruntime)",
    )
    args = parser.parse_args(list(argv))
    for name in ("threads", "repeat", "peak_size", "image_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.warm_ms < 0:
        parser.error(f"--warm-ms must be >= 0, got {args.warm_ms}")
    args.model_repeat = args.repeat or (2 if args.quick else 5)
    args.repeat = args.repeat or (3 if args.quick else 7)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    args.peak_size = args.peak_size or (512 if args.quick else 2048)
    if args.f64_ratio and args.dtype == "float64":
        args.f64_ratio = False
    args.modes = _csv(args.modes)
    try:
        batches = [int(b) for b in _csv(args.zoo_batch)]
    except ValueError:
        parser.error(f"--zoo-batch must be comma-separated integers, got {args.zoo_batch!r}")
    if not batches or min(batches) < 1:
        parser.error(f"--zoo-batch must list batch sizes >= 1, got {args.zoo_batch!r}")
    args.zoo_batch = [1] if args.quick else batches
    args.run_suite = (args.models is None and args.zoo is None) or args.rows is not None
    return args


def _selected(spec: str | None, known: Sequence[str], what: str) -> list[str] | None:
    """The names of a comma list, checked against ``known`` (None: all)."""
    if spec is None or spec == ALL:
        return None
    names = _csv(spec)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BenchError(f"bench: unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _time_case(case: Case, timing: Timing, peak_gflops: float) -> dict[str, Any]:
    peers = ", ".join([*case.tasks, *(f"{p} unsupported" for p in case.unsupported)])
    _progress(f"  timing {case.row} {case.op} ({peers})")
    errors = cross_check(case)
    samples = timing(case.tasks)
    return summarize(case, samples, errors, peak_gflops)


def _time_all(groups: Iterable[list[Case]], timing: Timing, peak: float) -> list[dict[str, Any]]:
    """Time lines group by group, building each group only when it is reached (memory)."""
    records = []
    for group in groups:
        records += [_time_case(case, timing, peak) for case in group]
        del group
        gc.collect()
    return records


def _zoo_groups(args: argparse.Namespace, peers: Peers, dtype: np.dtype[Any]) -> Iterator[list[Case]]:
    from convext.bench.zoo import zoo_layers, zoo_sources, zoo_specs

    sources = _selected(args.zoo, zoo_sources(), "model or layer family") or list(zoo_sources())
    layers = zoo_layers(sources, args.image_size)
    for spec, layer in zoo_specs(layers, args.zoo_batch):
        bias = bool(layer["bias"])
        cases = conv_cases(
            spec, dtype, peers, args.f64_ratio, numpy_peer=False, kind="zoo", with_bias=bias,
            accuracy=args.accuracy,
        )
        for case in cases:
            case.shape.update(models=layer["models"], count=layer["count"], bias=bias)
        yield cases


def _model_groups(args: argparse.Namespace, peers: Peers) -> Iterator[list[Case]]:
    import convext.torch as convext_torch
    from convext.bench.models import MODELS, model_cases, parse_mode

    names = _selected(args.models, list(MODELS), "model") or list(MODELS)
    for mode in args.modes:
        try:
            parse_mode(mode)
        except ValueError as exc:
            raise BenchError(str(exc)) from None
    for name in names:
        _progress(f"  building {name}")
        yield model_cases(name, args.modes, convext_torch, args.image_size)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by parsed command-line arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`parse_args`.

    Returns
    -------
    dict
        Everything the JSON file holds.

    Raises
    ------
    FileNotFoundError
        If a named suite file does not exist.
    BenchError
        If ``--rows``, ``--models`` or ``--zoo`` names something unknown, or
        ``--models``/``--zoo`` is asked for without PyTorch.
    """
    named = suite_path(args.suite)
    suite = load_suite(named)
    where = named or "convext/bench/suite.json (shipped with the package)"
    selected = _selected(args.rows, row_names(suite), "row(s)")
    peers = load_peers(_csv(args.skip))
    if (args.models is not None or args.zoo is not None) and peers.torch is None:
        raise BenchError(
            "bench: --models and --zoo need PyTorch (the models are torch.nn modules): "
            "pip install torch"
        )
    threads = args.threads or int(peers.convext.get_num_threads())
    dtype = np.dtype(args.dtype)
    set_threads(threads, peers)
    timing = Timing(args.repeat, args.warmup, not args.no_settle, args.warm_ms / 1e3)
    model_timing = Timing(args.model_repeat, args.warmup, not args.no_settle, 0.0, warm_calls=False)
    notes = list(peers.notes)
    config = convext_config(peers.convext)
    sections = [s for s, on in (("suite", args.run_suite), ("zoo", args.zoo is not None),
                                ("models", args.models is not None)) if on]
    print(
        f"convext bench: {', '.join(sections)}; suite {where}, {args.dtype}, {threads} threads, "
        f"median of {args.repeat} ({args.model_repeat} for models) after {args.warmup} warm-up "
        "round(s)"
        + ("" if args.no_settle else f", {args.warm_ms:g} ms of warm calls before each")
    )
    present = [n for n, m in (("torch", peers.torch), ("scipy", peers.scipy_signal),
                              ("onnxruntime", peers.onnxruntime)) if m is not None]
    print(f"peers: convext, numpy{''.join(', ' + p for p in present)}"
          + (f"; missing: {', '.join(peers.missing)} (pip install convext[bench] torch)"
             if peers.missing else ""))
    if config:
        print(config)
    records: dict[str, list[dict[str, Any]]] = {}
    with blas_limits(threads, notes):
        info = machine_info(peers)
        print(machine_line(info))
        peak = measure_gemm_peak(args.peak_size, dtype, Timing(5, 1, timing.settle, timing.warm_s))
        print(
            f"peak proxy: numpy {peak['op']} {args.peak_size}^3, {peak['median_ms']:.1f} ms"
            f" = {peak['gflops']:.1f} GFLOP/s"
        )
        if args.run_suite:
            cases = build_cases(
                suite, None if selected is None else set(selected), dtype, peers,
                1 if args.quick else None, args.f64_ratio, args.accuracy,
            )
            records["suite"] = _time_all([cases], timing, peak["gflops"])
        if args.zoo is not None:
            records["zoo"] = _time_all(_zoo_groups(args, peers, dtype), timing, peak["gflops"])
        if args.models is not None:
            records["models"] = _time_all(_model_groups(args, peers), model_timing, peak["gflops"])
    info["loadavg_end"] = loadavg()
    for note in notes:
        print(f"note: {note}")
    for section, lines in records.items():
        if len(records) > 1:
            print(f"\n== {SECTION_TITLES[section]} ==")
        print(format_table(lines))
        accuracy = format_accuracy(lines)
        if accuracy:
            print("\n" + accuracy)
    everything = [r for lines in records.values() for r in lines]
    warnings = report_errors(everything, args.dtype)
    for warning in warnings:
        print(f"WARNING: {warning}")
    result: dict[str, Any] = {
        "suite": where,
        "sections": sections,
        "dtype": args.dtype,
        "threads": threads,
        "repeat": args.repeat,
        "model_repeat": args.model_repeat,
        "warmup": args.warmup,
        "settle": timing.settle,
        "warm_ms": args.warm_ms,
        "quick": args.quick,
        "image_size": args.image_size,
        "zoo_batch": args.zoo_batch,
        "modes": args.modes,
        "machine": info,
        "convext_config": config,
        "peak": peak,
        "peers_missing": peers.missing,
        "notes": notes,
        "warnings": warnings,
        "results": everything,
    }
    memory_rows = [row for row in suite["conv2d"] if row["name"] == MEMORY_ROW]
    if (args.run_suite and memory_rows and not args.no_memory
            and (selected is None or MEMORY_ROW in selected)):
        _progress(f"  memory probe {MEMORY_ROW}")
        names = (
            ["convext"]
            if args.quick
            else ["convext"] + (["torch"] if peers.torch is not None else []) + ["numpy"]
        )
        result["memory"] = measure_memory(ConvSpec.from_row(memory_rows[0]), dtype, threads, names)
        print(format_memory(result["memory"]))
    return result


def _plot_paths(path: str, sections: Sequence[str]) -> dict[str, str]:
    if len(sections) == 1:
        return {sections[0]: path}
    p = Path(path)
    return {s: str(p.with_name(f"{p.stem}-{s}{p.suffix or '.png'}")) for s in sections}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m convext bench``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``bench`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 if a suite file is missing, a name is unknown or a
        needed peer (PyTorch for --models/--zoo) is not installed.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except (FileNotFoundError, BenchError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(json_safe(result), fh, indent=1, allow_nan=False)
        print(f"wrote {args.json}")
    if args.plot:
        machine = result["machine"]["cpu"]
        kinds: dict[str, Callable[[dict[str, Any]], bool]] = {
            "suite": lambda r: r["kind"] not in ("zoo", "model"),
            "zoo": lambda r: r["kind"] == "zoo",
            "models": lambda r: r["kind"] == "model",
        }
        for section, path in _plot_paths(args.plot, result["sections"]).items():
            lines = [r for r in result["results"] if kinds[section](r)]
            title = (f"convext vs peers, {SECTION_TITLES[section]}, {args.dtype}, "
                     f"{result['threads']} threads ({machine})")
            problem = write_plot(lines, path, title)
            print(problem if problem else f"wrote {path}")
    return 0
