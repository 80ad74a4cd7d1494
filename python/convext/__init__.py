"""convext: a CPU engine for the core of a convolutional network.

The forward pass is a correlation of the input with a filter, convolution is
correlation with the filter rotated by 180 degrees, and every backward pass is
again a correlation (see the README). The compute lives in a C++ extension
(``convext._core``); this package adds the typed, documented Python API.
"""
from __future__ import annotations

try:
    from convext import _core
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "convext's compiled extension convext._core could not be imported "
        f"({exc}). Build and install the package from its source tree with "
        "`pip install .` (a C++17 compiler, CMake and pybind11 are needed); "
        "importing convext from an unbuilt checkout does not work."
    ) from exc

from convext import functional
from convext.plan import Conv2dPlan
from convext.functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    UnsupportedDTypeError,
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv2d_input_grad,
    conv2d_weight_grad,
    conv_transpose2d,
    conv_transpose2d_output_size,
    convolve2d,
    correlate2d,
    get_num_threads,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
    rot180,
    set_num_threads,
    show_config,
)

__version__ = "0.1.0"

__all__ = [*functional.__all__, "Conv2dPlan", "__version__"]
