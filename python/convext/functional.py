"""The functional API: numpy arrays in, new numpy arrays out.

Every function here validates its arguments in C++ (one shape check per op
family, shared by forward and backward) and computes with the GIL released.
Conventions, as in PyTorch:

* layout NCHW; weights ``(K, C // groups, R, S)``;
* ``stride``, ``padding``, ``dilation`` and ``kernel_size`` take an int or a
  pair ``(h, w)``;
* float32 and float64 are computed natively and the result has the input's
  dtype; all arrays of one call must share it;
* any memory layout is accepted; inputs are never written.

Errors: ``ValueError`` for shapes and parameters (the message names the
argument and the values), ``TypeError`` for dtypes and non-integer
parameters, ``MemoryError`` for sizes that cannot be allocated.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convext import _core
from convext._args import FloatArray, IntPair

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_input_grad",
    "conv2d_weight_grad",
    "convolve2d",
    "correlate2d",
    "get_num_threads",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "rot180",
    "set_num_threads",
    "show_config",
]


# --------------------------------------------------------------------------- 2-D


def correlate2d(in1: ArrayLike, in2: ArrayLike, mode: str = "valid") -> FloatArray:
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d``.

    ``out[i, j] = sum_{r, s} in1[i + r - p, j + s - q] * in2[r, s]`` with zero
    fill outside ``in1``; the offsets ``p, q`` follow from ``mode``.

    Parameters
    ----------
    in1, in2 : array_like
        2-D float32 or float64 arrays of one dtype.
    mode : {"valid", "full", "same"}
        ``"valid"``: only positions where ``in2`` lies inside ``in1`` (if
        ``in2`` is the larger in every dimension, the inputs are swapped as
        scipy does); ``"full"``: every overlap; ``"same"``: the size of
        ``in1``, centred as scipy centres it.

    Returns
    -------
    ndarray
        A new array of the inputs' dtype.

    Raises
    ------
    ValueError
        Not 2-D, empty, unknown ``mode``, or in 'valid' mode neither input
        at least as large as the other.
    TypeError
        Non-float or mismatched dtypes.
    """
    return _core.correlate2d(in1, in2, mode)


def convolve2d(in1: ArrayLike, in2: ArrayLike, mode: str = "valid") -> FloatArray:
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d``.

    Convolution is correlation with the kernel rotated by 180 degrees:
    ``convolve2d(a, b) == correlate2d(a, rot180(b))`` in 'valid' and 'full'
    modes ('same' centres the two differently, as scipy does).

    Parameters
    ----------
    in1, in2 : array_like
        2-D float32 or float64 arrays of one dtype.
    mode : {"valid", "full", "same"}
        As in :func:`correlate2d`.

    Returns
    -------
    ndarray
        A new array of the inputs' dtype.

    Raises
    ------
    ValueError, TypeError
        As :func:`correlate2d`.
    """
    return _core.convolve2d(in1, in2, mode)


def rot180(w: ArrayLike) -> FloatArray:
    """Rotate the last two axes by 180 degrees: ``w[..., ::-1, ::-1]``, copied.

    Parameters
    ----------
    w : array_like
        float32 or float64, at least 2-D.

    Returns
    -------
    ndarray
        A new C-contiguous array.

    Raises
    ------
    ValueError
        Fewer than 2 dimensions.
    TypeError
        Non-float dtype.
    """
    return _core.rot180(w)


# ----------------------------------------------------------------------- conv2d


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """2-D convolution layer (a correlation), as ``torch.nn.functional.conv2d``.

    ``y[n, k, oh, ow] = bias[k] + sum_{c, r, s} weight[k, c, r, s] *
    x[n, g*C/groups + c, oh*sh + r*dh - ph, ow*sw + s*dw - pw]`` with zero
    padding, where ``g`` is the group of output channel ``k``.

    Parameters
    ----------
    x : array_like
        Input, shape ``(N, C, H, W)``.
    weight : array_like
        Filters, shape ``(K, C // groups, R, S)``.
    bias : array_like, optional
        Shape ``(K,)``.
    stride, padding, dilation : int or (int, int)
        ``stride >= 1``, ``padding >= 0``, ``dilation >= 1``.
    groups : int
        Divides both ``C`` and ``K``.

    Returns
    -------
    ndarray
        Shape ``(N, K, Ho, Wo)`` with ``Ho = (H + 2*ph - dh*(R-1) - 1) // sh + 1``.

    Raises
    ------
    ValueError
        Wrong ndim, empty arrays, channel/group mismatch, bias length, a
        dilated kernel larger than the padded input, bad parameter values.
    TypeError
        Non-float or mismatched dtypes, non-integer parameters.
    MemoryError
        The output or scratch memory cannot be allocated.
    """
    return _core.conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv2d_input_grad(
    grad_out: ArrayLike,
    weight: ArrayLike,
    input_shape: Sequence[int],
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """Gradient of :func:`conv2d` with respect to its input.

    The *full* correlation of the stride-dilated ``grad_out`` with the
    180-degree-rotated filters, input and output channels swapped; like
    ``torch.nn.grad.conv2d_input``. Input rows and columns that the forward
    stride skipped get 0.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, K, Ho, Wo)``: the forward output's shape.
    weight : array_like
        Shape ``(K, C // groups, R, S)``.
    input_shape : sequence of 4 ints
        ``(N, C, H, W)`` of the forward input.
    stride, padding, dilation, groups
        As in the forward call.

    Returns
    -------
    ndarray
        Shape ``input_shape``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d`; ``grad_out`` must match the forward output shape.
    """
    return _core.conv2d_input_grad(grad_out, weight, input_shape, stride, padding, dilation, groups)


def conv2d_weight_grad(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight_shape: Sequence[int],
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """Gradient of :func:`conv2d` with respect to the weights.

    The correlation of the input with the (stride-dilated) ``grad_out``,
    summed over the batch; like ``torch.nn.grad.conv2d_weight``.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, K, Ho, Wo)``.
    x : array_like
        The forward input, shape ``(N, C, H, W)``.
    weight_shape : sequence of 4 ints
        ``(K, C // groups, R, S)``.
    stride, padding, dilation, groups
        As in the forward call.

    Returns
    -------
    ndarray
        Shape ``weight_shape``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d`.
    """
    return _core.conv2d_weight_grad(grad_out, x, weight_shape, stride, padding, dilation, groups)


def conv2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """All gradients of :func:`conv2d` at once.

    Parameters
    ----------
    grad_out : array_like
        Shape ``(N, K, Ho, Wo)``.
    x, weight : array_like
        The forward call's input and filters.
    stride, padding, dilation, groups
        As in the forward call.

    Returns
    -------
    grad_x : ndarray
        As :func:`conv2d_input_grad`.
    grad_weight : ndarray
        As :func:`conv2d_weight_grad`.
    grad_bias : ndarray
        ``grad_out`` summed over N, H and W, shape ``(K,)``.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`conv2d`.
    """
    return _core.conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)


# ---------------------------------------------------------------------- pooling


def max_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, NDArray[np.int64]]:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Padding is never selected; of equal maxima the first (row-major) wins; a
    NaN in a window is the maximum (the last NaN, as PyTorch's CPU kernel).

    Parameters
    ----------
    x : array_like
        Shape ``(N, C, H, W)``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        At most half of ``kernel_size``.
    dilation : int or (int, int)
    ceil_mode : bool
        Round the output size up; the last window must still start inside
        the input or the left padding.
    return_indices : bool
        Also return the argmax of each window as ``ih * W + iw`` (int64).

    Returns
    -------
    out : ndarray
        Shape ``(N, C, Ho, Wo)``.
    indices : ndarray of int64, only with ``return_indices``

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    return _core.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(
    grad_out: ArrayLike,
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    indices: ArrayLike | None = None,
) -> FloatArray:
    """Gradient of :func:`max_pool2d`: ``grad_out`` routed to each window's argmax.

    Parameters
    ----------
    grad_out : array_like
        Shape of the forward output.
    x : array_like
        The forward input.
    kernel_size, stride, padding, dilation, ceil_mode
        As in the forward call.
    indices : array_like of int, optional
        The forward call's ``return_indices`` output; recomputed from ``x``
        when omitted.

    Returns
    -------
    ndarray
        Shape of ``x``; overlapping windows add up.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters, dtypes, or indices outside the plane.
    """
    return _core.max_pool2d_backward(
        grad_out, x, kernel_size, stride, padding, dilation, ceil_mode, indices
    )


def avg_pool2d(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> FloatArray:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : array_like
        Shape ``(N, C, H, W)``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        At most half of ``kernel_size``.
    ceil_mode : bool
    count_include_pad : bool
        Divide by the window size including zero padding (clipped to the
        padded input), else by the number of input elements in the window.

    Returns
    -------
    ndarray
        Shape ``(N, C, Ho, Wo)``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    return _core.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d_backward(
    grad_out: ArrayLike,
    input_shape: Sequence[int],
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d`: each window's share spread over it.

    Parameters
    ----------
    grad_out : array_like
        Shape of the forward output.
    input_shape : sequence of 4 ints
        ``(N, C, H, W)`` of the forward input.
    kernel_size, stride, padding, ceil_mode, count_include_pad
        As in the forward call.

    Returns
    -------
    ndarray
        Shape ``input_shape``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, parameters or dtypes.
    """
    return _core.avg_pool2d_backward(
        grad_out, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad
    )


# ------------------------------------------------------------------------- relu


def relu(x: ArrayLike) -> FloatArray:
    """``max(x, 0)`` elementwise, NaN kept (any shape).

    Parameters
    ----------
    x : array_like
        float32 or float64, not empty.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Raises
    ------
    ValueError, TypeError
        Empty input, non-float dtype.
    """
    return _core.relu(x)


def relu_backward(grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
    """Gradient of :func:`relu`: ``grad_out`` where ``x > 0`` (or NaN), else 0.

    Parameters
    ----------
    grad_out : array_like
        Same shape and dtype as ``x``.
    x : array_like
        The forward input.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError, TypeError
        Shape or dtype mismatch, empty input.
    """
    return _core.relu_backward(grad_out, x)


# ---------------------------------------------------------------------- threads


def set_num_threads(n: int) -> None:
    """Set the number of OpenMP threads convext uses (process-wide).

    Parameters
    ----------
    n : int
        ``>= 1``.

    Raises
    ------
    ValueError
        ``n < 1``.

    Notes
    -----
    The default follows ``OMP_NUM_THREADS``, else all cores. Inside
    ``threadpoolctl.threadpool_limits(k)`` (which sets the calling thread's
    OpenMP limit) convext uses ``k`` threads for calls from that thread.
    """
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads a convext call from this thread would use."""
    return int(_core.get_num_threads())


def show_config(print_out: bool = True) -> dict[str, Any]:
    """Describe the build: chosen GEMM kernels, ISA, OpenMP, threads.

    Parameters
    ----------
    print_out : bool
        Print one ``key: value`` line per entry.

    Returns
    -------
    dict
    """
    config = dict(_core._config())
    if print_out:
        for key, value in config.items():
            print(f"{key}: {value}")
    return config
