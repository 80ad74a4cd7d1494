"""Benchmark convext against its peers: ``python -m convext bench``.

Three sections, each timed in one process with the peers interleaved
(:mod:`convext.bench.timing`) and reported by the same table, JSON and chart
code (:mod:`convext.bench.report`, :mod:`convext.bench.plot`):

* the layer suite (default): every row of the suite shipped with the package
  (``convext/bench/suite.json``, :func:`load_suite`), conv2d, max pool, ReLU
  and the 2-D correlate/convolve rows;
* ``--zoo``: every distinct conv layer of the benchmark's models plus
  Inception-v3's 1x7/7x1 and DeepLab's dilated 3x3 (:mod:`convext.bench.zoo`);
* ``--models``: ResNet-18/50, MobileNetV2, VGG-11 and DenseNet-121 in plain
  ``torch.nn`` (:mod:`convext.bench.models`), a training step and inference,
  stock torch NCHW and channels_last against ``convext.torch.convert``.

Peers are used where installed (:mod:`convext.bench.peers`): PyTorch, a numpy
im2col layer, scipy.signal, ONNX Runtime; the run says which are missing.
``--accuracy`` adds the float32-against-float64 error of convext and of torch
to every conv line (:mod:`convext.bench.accuracy`).  Measured figures live in
``docs/performance.md``.  Nothing here is a test: no time is asserted anywhere.
"""

from __future__ import annotations

from convext.bench.accuracy import conv_accuracy, max_rel_error
from convext.bench.cases import build_cases, conv_cases, correlate_cases
from convext.bench.cli import main, parse_args, run
from convext.bench.memory import measure_memory
from convext.bench.peers import Peers, load_peers, numpy_conv2d, numpy_conv2d_backward
from convext.bench.report import format_accuracy, format_table, summarize
from convext.bench.suite import (
    BenchError,
    ConvSpec,
    CorrSpec,
    PoolSpec,
    load_suite,
    pair,
    row_names,
    suite_path,
)
from convext.bench.timing import Case, Task, Timing, cross_check, time_tasks, wait_for_idle_threads
from convext.bench.machine import measure_gemm_peak

__all__ = [
    "BenchError",
    "Case",
    "ConvSpec",
    "CorrSpec",
    "Peers",
    "PoolSpec",
    "Task",
    "Timing",
    "build_cases",
    "conv_accuracy",
    "conv_cases",
    "correlate_cases",
    "cross_check",
    "format_accuracy",
    "format_table",
    "load_peers",
    "load_suite",
    "main",
    "max_rel_error",
    "measure_gemm_peak",
    "measure_memory",
    "numpy_conv2d",
    "numpy_conv2d_backward",
    "pair",
    "parse_args",
    "row_names",
    "run",
    "suite_path",
    "summarize",
    "time_tasks",
    "wait_for_idle_threads",
]
