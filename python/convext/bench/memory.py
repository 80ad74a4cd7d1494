"""Peak-RSS probes: the extra memory of one conv2d call per peer, each in a fresh subprocess."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from convext.bench.cases import rng_arrays
from convext.bench.peers import numpy_conv2d, numpy_conv2d_backward
from convext.bench.suite import ConvSpec
from convext.bench.timing import CONVEXT

__all__ = ["MEMORY_ROW", "measure_memory", "memory_child_main", "format_memory"]

MEMORY_ROW = "res3x3_56"


def _peak_rss_bytes() -> tuple[int, str]:
    """The process's peak resident set size and where it was read.

    Linux: ``VmHWM`` of ``/proc/self/status``.  ``getrusage().ru_maxrss`` is
    not used there because a child inherits its parent's peak at exec (the
    kernel folds the old mm's high-water mark into ``signal->maxrss``), so
    in a probe started by a large benchmark process it never moves.
    Elsewhere: ``ru_maxrss`` (bytes on macOS, KiB otherwise).
    """
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), "ru_maxrss"


def _reset_peak_rss() -> None:
    """Lower the peak-RSS mark to the current RSS (Linux), so that import-time
    transients do not hide the growth being measured."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")


def _nbytes(result: Any) -> int:
    items = result if isinstance(result, (tuple, list)) else (result,)
    return sum(
        int(item.nbytes) if hasattr(item, "nbytes") else int(item.numel() * item.element_size())
        for item in items
    )


def _memory_child(params: dict[str, Any]) -> dict[str, Any]:
    """Peak-RSS probe of one peer's conv2d; runs in a fresh subprocess.

    Inputs are made first, the peak mark is reset to the current RSS, then
    the forward and the backward run once each; the extra memory is the
    growth of the peak RSS minus the bytes of the returned outputs.
    """
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in params["spec"].items()}
    spec = ConvSpec(**fields)
    dtype, peer, threads = np.dtype(params["dtype"]), params["peer"], int(params["threads"])
    arrays = rng_arrays(spec.shapes(), dtype)
    x, w, b, gy = arrays["x"], arrays["weight"], arrays["bias"], arrays["out"]
    if peer == "torch":
        import torch

        torch.set_num_threads(threads)
        conv = torch.nn.functional.conv2d
        leaves = [torch.from_numpy(a).requires_grad_(True) for a in (x, w, b)]
        gy_t = torch.from_numpy(gy)

        def forward() -> Any:
            return conv(leaves[0], leaves[1], leaves[2], spec.stride, spec.padding, spec.dilation,
                        spec.groups)

        def backward(out: Any) -> Any:
            out.backward(gy_t)
            return tuple(leaf.grad for leaf in leaves)

    else:
        if peer == CONVEXT:
            import convext

            convext.set_num_threads(threads)
            fwd_fn = lambda: convext.conv2d(x, w, b, **spec.kwargs)  # noqa: E731
            bwd_fn = lambda: convext.conv2d_backward(gy, x, w, **spec.kwargs)  # noqa: E731
        else:
            fwd_fn = lambda: numpy_conv2d(x, w, b, spec)  # noqa: E731
            bwd_fn = lambda: numpy_conv2d_backward(gy, x, w, spec)  # noqa: E731

        def forward() -> Any:
            return fwd_fn()

        def backward(out: Any) -> Any:
            return bwd_fn()

    gc.collect()
    _reset_peak_rss()
    base, counter = _peak_rss_bytes()
    out = forward()
    after_fwd, _ = _peak_rss_bytes()
    grads = backward(out)
    after_bwd, _ = _peak_rss_bytes()
    out_bytes, grad_bytes = _nbytes(out), _nbytes(grads)
    return {
        "peer": peer,
        "counter": counter,
        "baseline_peak_rss_bytes": base,
        "input_bytes": sum(int(a.nbytes) for a in arrays.values()),
        "output_bytes": out_bytes,
        "grad_bytes": grad_bytes,
        "forward_extra_bytes": after_fwd - base - out_bytes,
        "fwd_bwd_extra_bytes": after_bwd - base - out_bytes - grad_bytes,
    }


def memory_child_main() -> None:
    """Run :func:`_memory_child` on the JSON in ``sys.argv[1]``; print JSON."""
    print(json.dumps(_memory_child(json.loads(sys.argv[1]))))


def measure_memory(
    spec: ConvSpec, dtype: np.dtype[Any], threads: int, peer_names: Sequence[str]
) -> dict[str, Any]:
    """Extra peak RSS of one conv2d forward and forward+backward, per peer.

    Parameters
    ----------
    spec : ConvSpec
        The row (the README quotes ``res3x3_56``).
    dtype : numpy dtype
        float32 or float64.
    threads : int
        Thread count of the probe.
    peer_names : sequence of str
        ``convext``, ``torch``, ``numpy``: each is measured in its own fresh
        subprocess, so that nothing from the timing run inflates its peak.

    Returns
    -------
    dict
        Per peer, the probe's byte counts (``forward_extra_bytes`` and
        ``fwd_bwd_extra_bytes`` are the peak-RSS growth minus the outputs), or
        an ``error`` string if the probe failed.
    """
    package_root = str(Path(__file__).absolute().parents[2])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    script = "from convext.bench.memory import memory_child_main; memory_child_main()"
    spec_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.__dict__.items()}
    results: dict[str, Any] = {}
    for peer in peer_names:
        params = {
            "spec": spec_dict,
            "dtype": np.dtype(dtype).name,
            "peer": peer,
            "threads": threads,
        }
        proc = subprocess.run(
            [sys.executable, "-c", script, json.dumps(params)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if proc.returncode == 0:
            results[peer] = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            results[peer] = {"peer": peer, "error": proc.stderr.strip()[-2000:]}
    return {"row": spec.name, "dtype": np.dtype(dtype).name, "threads": threads, "peers": results}


def format_memory(memory: dict[str, Any]) -> str:
    """One ``memory`` line per peer from :func:`measure_memory`."""
    lines = []
    for peer, m in memory["peers"].items():
        prefix = f"memory {memory['row']} {memory['dtype']} {memory['threads']} threads, {peer}:"
        if "error" in m:
            lines.append(
                f"{prefix} probe failed: {m['error'].splitlines()[-1] if m['error'] else '?'}"
            )
            continue
        mib = 1 << 20
        lines.append(
            f"{prefix} extra peak RSS forward {m['forward_extra_bytes'] / mib:.1f} MiB, "
            f"forward+backward {m['fwd_bwd_extra_bytes'] / mib:.1f} MiB "
            f"(inputs {m['input_bytes'] / mib:.1f} MiB, outputs {m['output_bytes'] / mib:.1f} MiB, "
            f"grads {m['grad_bytes'] / mib:.1f} MiB not counted)"
        )
    return "\n".join(lines)
