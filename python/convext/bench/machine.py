"""The machine of a run: thread counts, the GEMM peak proxy, CPU and library versions."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
from typing import Any

import numpy as np

from convext.bench.cases import rng_arrays
from convext.bench.peers import Peers, set_onnx_threads
from convext.bench.timing import Task, Timing

__all__ = [
    "set_threads",
    "blas_limits",
    "measure_gemm_peak",
    "cpu_model",
    "loadavg",
    "machine_info",
    "machine_line",
    "convext_config",
]


def set_threads(threads: int, peers: Peers) -> None:
    """Give convext, PyTorch and ONNX Runtime (sessions made later) ``threads`` threads.

    Parameters
    ----------
    threads : int
    peers : Peers
    """
    peers.convext.set_num_threads(threads)
    if peers.torch is not None:
        peers.torch.set_num_threads(threads)
    set_onnx_threads(threads)


def blas_limits(threads: int, notes: list[str]) -> contextlib.AbstractContextManager[Any]:
    """A context limiting numpy's BLAS to ``threads`` (a null one without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        notes.append("threadpoolctl not installed: numpy's BLAS threads are not limited")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def measure_gemm_peak(n: int, dtype: np.dtype[Any], timing: Timing = Timing(5)) -> dict[str, Any]:
    """Time a large numpy matrix product as the machine's peak proxy.

    Parameters
    ----------
    n : int
        Square size (``n x n @ n x n``, 2 n^3 FLOPs).
    dtype : numpy dtype
        float32 (sgemm) or float64 (dgemm).
    timing : Timing, optional
        How to time it (default: median of 5).

    Returns
    -------
    dict
        ``op``, ``n``, ``median_ms``, ``samples_ms`` and ``gflops``.
    """
    a = rng_arrays({"a": (n, n), "b": (n, n)}, dtype, seed=1)
    samples = timing({"gemm": Task(lambda: a["a"] @ a["b"])})["gemm"]
    median = statistics.median(samples)
    return {
        "op": "sgemm" if np.dtype(dtype) == np.float32 else "dgemm",
        "n": n,
        "median_ms": median * 1e3,
        "samples_ms": [s * 1e3 for s in samples],
        "gflops": 2.0 * n**3 / median / 1e9,
    }


def cpu_model() -> tuple[str, list[str]]:
    """CPU model name and its SIMD extensions that matter here (Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    return model, [f for f in ("sse4_2", "avx", "fma", "avx2", "avx512f") if f in flags]


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_info(peers: Peers) -> dict[str, Any]:
    """Describe the machine and the library versions of this run."""
    cpu, isa = cpu_model()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_isa": isa,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "convext": getattr(peers.convext, "__version__", "unknown"),
        "loadavg_start": loadavg(),
    }
    if peers.torch is not None:
        info["torch"] = peers.torch.__version__
    if peers.scipy_signal is not None:
        import scipy

        info["scipy"] = scipy.__version__
    if peers.onnxruntime is not None:
        info["onnxruntime"] = peers.onnxruntime.__version__
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {
                k: p.get(k)
                for k in (
                    "user_api",
                    "internal_api",
                    "prefix",
                    "version",
                    "num_threads",
                    "filepath",
                )
            }
            for p in threadpool_info()
        ]
    return info


def convext_config(convext: Any) -> str:
    """The text of ``convext.show_config()`` (empty if it is missing or fails)."""
    show = getattr(convext, "show_config", None)
    if show is None:
        return ""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            returned = show()
    except Exception as exc:  # a broken show_config must not stop the benchmark
        return f"show_config() failed: {exc!r}"
    text = buffer.getvalue()
    if returned is not None and not text:
        text = (
            returned if isinstance(returned, str) else json.dumps(returned, indent=1, default=str)
        )
    return text.rstrip()


def machine_line(info: dict[str, Any]) -> str:
    """One line describing the machine (from :func:`machine_info`)."""
    isa = "/".join(info["cpu_isa"])
    line = f"machine: {info['cpu']} ({isa}), {info['cpu_count']} cpus; numpy {info['numpy']}"
    for lib in ("torch", "scipy", "onnxruntime"):
        line += f", {lib} {info[lib]}" if lib in info else ""
    load = info.get("loadavg_start")
    if load is not None:
        line += f"; load average {load:.2f}"
        if load > 0.5:
            line += " (busy machine: times may be noisy)"
    return line
