"""Conv2dPlan: one convolution layer's shapes, checked and planned once.

A plan holds a layer's checked geometry and the algorithm each direction
runs (forward, input gradient, weight gradient), chosen once by the engine's
selectors (``csrc/conv2d/select.cpp``). Running a plan skips the argument
parsing and the choice, and gives the same bits as :func:`convext.conv2d` and
:func:`convext.conv2d_backward`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from convext import _core
from convext._args import FloatArray, IntPair, float_dtype

__all__ = ["Conv2dPlan", "CORR_ALGORITHMS", "INPUT_GRAD_ALGORITHMS", "WEIGHT_GRAD_ALGORITHMS"]

#: Forward algorithms (also the correlation cores of the input gradient's phases).
CORR_ALGORITHMS = ("shift_add", "direct", "direct_planes", "winograd_2x2", "winograd_4x4", "indirect_gemm")
#: Input-gradient algorithms; ``"phases[core]"`` also forces the phases' core.
INPUT_GRAD_ALGORITHMS = ("phases", "strided_shift_add")
#: Weight-gradient algorithms.
WEIGHT_GRAD_ALGORITHMS = ("depthwise", "depthwise_planes", "winograd_2x2", "winograd_4x4", "dot", "gemm")


class Conv2dPlan:
    """A planned conv2d layer: x ``x_shape`` (N, C, H, W) and weight ``w_shape`` (K, C/groups, R, S).

    Parameters
    ----------
    x_shape, w_shape : sequence of int
        The input's and the weight's shapes.
    stride, padding, dilation : int or pair of int
        As in :func:`convext.conv2d`.
    groups : int
        As in :func:`convext.conv2d`.
    dtype : dtype_like
        float32 or float64: the dtype of every array the plan runs on.
    algorithms : mapping, optional
        Algorithms to run instead of the selectors' choice, by direction:
        ``{"forward": "indirect_gemm", "input_grad": "phases[direct]",
        "weight_grad": "gemm"}`` (names in :data:`CORR_ALGORITHMS`,
        :data:`INPUT_GRAD_ALGORITHMS`, :data:`WEIGHT_GRAD_ALGORITHMS`). For
        tests and benchmarks.

    Attributes
    ----------
    algorithms : dict
        ``{"forward": ..., "input_grad": ..., "weight_grad": ...}``: what runs.
    output_shape : tuple of int
        (N, K, H_out, W_out).

    Raises
    ------
    ValueError
        Invalid shapes or parameters (as :func:`convext.conv2d`), an unknown
        algorithm, or a forced algorithm that cannot run this shape.
    TypeError
        Non-integer parameters or a dtype other than float32/float64.

    Examples
    --------
    >>> plan = Conv2dPlan((8, 128, 28, 28), (128, 128, 3, 3), padding=1)
    >>> plan.algorithms["forward"]
    'winograd_2x2'
    """

    def __init__(
        self,
        x_shape: tuple[int, ...] | list[int],
        w_shape: tuple[int, ...] | list[int],
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        dtype: DTypeLike = np.float32,
        algorithms: Mapping[str, str] | None = None,
    ) -> None:
        dt = float_dtype(dtype, "Conv2dPlan")
        forced = None if algorithms is None else dict(algorithms)
        self._plan = _core.Conv2dPlan(x_shape, w_shape, stride, padding, dilation, groups, dt.name, forced)
        self._forced = forced
        self.dtype = dt

    def __reduce__(self) -> tuple[object, ...]:
        # pickling and copying re-plan from the arguments (the engine's plan is not picklable)
        g = self.geometry()
        return (Conv2dPlan, (self.x_shape, self.w_shape, g["stride"], g["padding"], g["dilation"],
                             g["groups"], self.dtype, self._forced))

    @property
    def algorithms(self) -> dict[str, str]:
        """The algorithm of each direction (``input_grad`` lists its phases' cores)."""
        return dict(self._plan.algorithms)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """The forward output's shape (N, K, H_out, W_out)."""
        return tuple(self._plan.output_shape)  # type: ignore[return-value]

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        """The input's shape."""
        return tuple(self._plan.x_shape)  # type: ignore[return-value]

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        """The weight's shape."""
        return tuple(self._plan.w_shape)  # type: ignore[return-value]

    def geometry(self) -> dict[str, object]:
        """The keyword arguments of :func:`convext.conv2d` this plan stands for."""
        p = self._plan
        return {"stride": p.stride, "padding": p.padding, "dilation": p.dilation, "groups": p.groups}

    def forward(self, x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> FloatArray:
        """The layer's output, as :func:`convext.conv2d` (same bits).

        Parameters
        ----------
        x, weight : array_like
            Of the plan's shapes and dtype.
        bias : array_like, optional
            (K,), the plan's dtype.

        Returns
        -------
        ndarray
            ``output_shape``.

        Raises
        ------
        ValueError
            An array of another shape than the plan's.
        TypeError
            An array of another dtype than the plan's.
        """
        return self._plan.forward(x, weight, bias)

    def backward(
        self, grad_out: ArrayLike, x: ArrayLike, weight: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(grad_x, grad_weight, grad_bias)``, as :func:`convext.conv2d_backward` (same bits).

        Parameters
        ----------
        grad_out : array_like
            ``output_shape``.
        x, weight : array_like
            The forward pass's operands.

        Returns
        -------
        tuple of ndarray

        Raises
        ------
        ValueError, TypeError
            As :meth:`forward`.
        """
        return self._plan.backward(grad_out, x, weight)  # type: ignore[no-any-return]

    def input_grad(self, grad_out: ArrayLike, weight: ArrayLike) -> FloatArray:
        """dL/dx, as :func:`convext.conv2d_input_grad`.

        Parameters
        ----------
        grad_out, weight : array_like

        Returns
        -------
        ndarray
            ``x_shape``.

        Raises
        ------
        ValueError, TypeError
            As :meth:`forward`.
        """
        return self._plan.input_grad(grad_out, weight)

    def weight_grad(self, grad_out: ArrayLike, x: ArrayLike) -> FloatArray:
        """dL/dweight, as :func:`convext.conv2d_weight_grad`.

        Parameters
        ----------
        grad_out, x : array_like

        Returns
        -------
        ndarray
            ``w_shape``.

        Raises
        ------
        ValueError, TypeError
            As :meth:`forward`.
        """
        return self._plan.weight_grad(grad_out, x)

    def __repr__(self) -> str:
        g = self.geometry()
        a = self.algorithms
        return (
            f"Conv2dPlan(x_shape={self.x_shape}, w_shape={self.w_shape}, stride={g['stride']}, "
            f"padding={g['padding']}, dilation={g['dilation']}, groups={g['groups']}, "
            f"dtype={self.dtype.name}, output_shape={self.output_shape}, "
            f"algorithms={{forward: {a['forward']}, input_grad: {a['input_grad']}, "
            f"weight_grad: {a['weight_grad']}}})"
        )
