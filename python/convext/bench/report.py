"""Results: one record per line, the text tables, the warnings and strict JSON.

The suite rows, the model-zoo layers (``--zoo``) and the whole models
(``--models``) all report through these functions.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from convext.bench.timing import CONVEXT, CONVEXT_F64, Case

__all__ = [
    "TOLERANCE",
    "summarize",
    "format_table",
    "format_accuracy",
    "report_errors",
    "json_safe",
]

# Relative error above which a peer's result is reported as disagreeing.
# Loose on purpose: this flags wrong results, the test suite checks accuracy.
TOLERANCE = {"float32": 1e-3, "float64": 1e-9}
UNSUPPORTED = "unsupported"


def summarize(
    case: Case, samples: dict[str, list[float]], errors: dict[str, float], peak_gflops: float
) -> dict[str, Any]:
    """Turn one line's samples into its result record.

    Parameters
    ----------
    case : Case
        The line.
    samples : dict of str to list of float
        Seconds per peer, from :func:`convext.bench.timing.time_tasks`.
    errors : dict of str to float
        Cross-check errors from :func:`convext.bench.timing.cross_check`.
    peak_gflops : float
        The GEMM peak of this run.

    Returns
    -------
    dict
        ``row``, ``kind``, ``op``, ``shape``, ``flops``, per-peer
        ``median_ms``/``samples_ms``/``gflops``/``max_rel_err`` (or
        ``unsupported``: the reason, for a peer that rejects the line),
        ``ratios`` (peer median / convext median), ``peak_fraction`` of
        convext, with a ``convext_f64`` peer ``f64_fraction`` (float64
        throughput over float32 throughput), ``accuracy`` where measured and
        ``tolerance`` where the line has its own cross-check limit.
    """
    peers: dict[str, Any] = {}
    for name, secs in samples.items():
        median = statistics.median(secs)
        peers[name] = {
            "median_ms": median * 1e3,
            "samples_ms": [s * 1e3 for s in secs],
            "gflops": case.flops / median / 1e9 if case.flops else None,
            "max_rel_err": errors.get(name),
        }
    for name, reason in case.unsupported.items():
        peers[name] = {UNSUPPORTED: reason}
    record: dict[str, Any] = {
        "row": case.row,
        "kind": case.kind,
        "op": case.op,
        "shape": case.shape,
        "flops": case.flops,
        "peers": peers,
    }
    if case.tolerance is not None:
        record["tolerance"] = case.tolerance
    cx = peers.get(CONVEXT)
    if cx is not None and "median_ms" in cx:
        record["ratios"] = {
            name: p["median_ms"] / cx["median_ms"]
            for name, p in peers.items()
            if name not in (CONVEXT, CONVEXT_F64) and "median_ms" in p
        }
        record["peak_fraction"] = (
            cx["gflops"] / peak_gflops if cx["gflops"] and peak_gflops else None
        )
        if CONVEXT_F64 in peers:
            record["f64_fraction"] = cx["median_ms"] / peers[CONVEXT_F64]["median_ms"]
    if case.accuracy is not None:
        record["accuracy"] = case.accuracy
    return record


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _accuracy_cell(record: dict[str, Any]) -> str:
    """convext/torch error ratio(s) of a line: forward, or dx/dw/db for a backward."""
    acc = record.get("accuracy")
    if not acc or "ratio" not in acc:
        return "-"
    return "/".join(format(acc["ratio"][k], ".2g") for k in acc["ratio"])


def format_table(records: list[dict[str, Any]]) -> str:
    """Render the results as an aligned text table.

    Parameters
    ----------
    records : list of dict
        Output of :func:`summarize`.

    Returns
    -------
    str
        Columns: row, op, ms per peer ("unsupp." where the peer rejects the
        line), convext GFLOP/s, its fraction of the GEMM peak, peer/convext
        ratios (> 1: convext faster), if measured the float64 throughput as a
        fraction of float32 and the float32 error of convext over torch's
        (``err cx/torch``), then a legend.
    """
    peers = list(dict.fromkeys(name for r in records for name in r["peers"]))
    others = [p for p in peers if p not in (CONVEXT, CONVEXT_F64)]
    with_f64 = any("f64_fraction" in r for r in records)
    with_acc = any("accuracy" in r for r in records)
    header = [
        "row",
        "op",
        *(f"{p} ms" for p in peers),
        "cx GFLOP/s",
        "cx %peak",
        *(f"{p}/cx" for p in others),
    ]
    header += ["f64/f32"] if with_f64 else []
    header += ["err cx/torch"] if with_acc else []
    lines = [header]
    for r in records:
        cx = r["peers"].get(CONVEXT, {})
        peak = r.get("peak_fraction")
        line = [r["row"], r["op"]]
        for p in peers:
            entry = r["peers"].get(p, {})
            line.append("unsupp." if UNSUPPORTED in entry else _fmt(entry.get("median_ms"), ".3f"))
        line += [_fmt(cx.get("gflops"), ".1f"), _fmt(None if peak is None else 100 * peak, ".0f")]
        line += [_fmt(r.get("ratios", {}).get(p), ".2f") for p in others]
        line += [_fmt(r.get("f64_fraction"), ".2f")] if with_f64 else []
        line += [_accuracy_cell(r)] if with_acc else []
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(
        "ms: median per call; peer/cx: peer ms / convext ms (> 1: convext faster); GFLOP/s: "
        "2*N*K*(C/groups)*R*S*Ho*Wo forward, twice that backward, 2*Ho*Wo*R*S for 2-D rows"
    )
    if any(r["kind"] == "model" for r in records):
        text.append(
            "models: convext = convext.torch.convert(model) on NCHW input, torch = stock NCHW, "
            "torch_cl = stock channels_last (model and input); GFLOP/s from the conv and linear "
            "layers (a training step counted as 3x the forward)"
        )
    reasons = {
        (peer, p[UNSUPPORTED]): r["row"]
        for r in records
        for peer, p in r["peers"].items()
        if UNSUPPORTED in p
    }
    if reasons:
        text.append("unsupp.: the peer rejects the line's arguments:")
        text += [f"  {row} ({peer}): {why[:160]}" for (peer, why), row in reasons.items()]
    if any((r.get("peak_fraction") or 0) > 1 for r in records):
        text.append(
            "%peak above 100: those FLOPs are of the direct algorithm; a fast one "
            "(e.g. Winograd) does fewer multiplications than it is credited with"
        )
    if with_f64:
        text.append("f64/f32: float64 throughput of convext as a fraction of float32")
    if with_acc:
        text.append(
            "err cx/torch: float32 error of convext over torch's, each max|err|/max|ref| against "
            "float64 (fwd: output; bwd: input grad/weight grad/bias grad; < 1: convext more exact)"
        )
    return "\n".join(text)


def format_accuracy(records: list[dict[str, Any]]) -> str:
    """The accuracy table: per conv row, convext's and torch's float32 errors.

    Parameters
    ----------
    records : list of dict
        Output of :func:`summarize`; lines with an ``accuracy`` entry are used
        (a row's ``fwd`` and ``bwd`` lines give one table line).

    Returns
    -------
    str
        Empty if no line was measured; else one line per row: for the
        forward output and the input, weight and bias gradients,
        ``convext err / torch err (ratio x)``.
    """
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        acc = r.get("accuracy")
        if not acc:
            continue
        entry = rows.setdefault(r["row"], {})
        for key, value in acc.get(CONVEXT, {}).items():
            entry[key] = (value, acc.get("torch", {}).get(key), acc.get("ratio", {}).get(key))
    if not rows:
        return ""
    keys = ("forward", "input_grad", "weight_grad", "bias_grad")
    header = ["row", *(f"{k} cx / torch" for k in keys)]
    lines = [header]
    for name, entry in rows.items():
        line = [name]
        for k in keys:
            if k not in entry:
                line.append("-")
                continue
            cx, th, ratio = entry[k]
            cell = f"{cx:.1e} / " + ("-" if th is None else f"{th:.1e}")
            line.append(cell + ("" if ratio is None else f" ({ratio:.2g}x)"))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                      enumerate(zip(line, widths))) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(
        "accuracy: float32 max|err|/max|ref| against a float64 numpy im2col computation of the "
        "same layer on the same (float32-rounded) values; x ~ N(0,1), weights and bias "
        "N(0,1)/sqrt(fan-in), grad_out ~ N(0,1); (ratio) = convext / torch"
    )
    return "\n".join(text)


def report_errors(records: list[dict[str, Any]], dtype: str) -> list[str]:
    """Warnings for every peer whose result disagrees with convext's.

    Parameters
    ----------
    records : list of dict
        Output of :func:`summarize`.
    dtype : str
        The run's dtype (its :data:`TOLERANCE` applies unless a line has its
        own ``tolerance``).

    Returns
    -------
    list of str
    """
    warnings = []
    for r in records:
        for peer, p in r["peers"].items():
            err = p.get("max_rel_err")
            limit = TOLERANCE["float32"] if peer == CONVEXT_F64 else TOLERANCE[dtype]
            limit = r.get("tolerance", limit)
            if err is not None and not err <= limit:
                warnings.append(
                    f"{r['row']} {r['op']}: {peer} differs from convext, "
                    f"max rel err {err:.3g} > {limit:g}"
                )
    return warnings


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings, so the file is strict JSON.

    Parameters
    ----------
    value : Any
        Nested dicts, lists and scalars.

    Returns
    -------
    Any
    """
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
