"""convext as a drop-in compute backend for PyTorch models (CPU, float32/float64).

``torch.autograd.Function`` s run convext's forward and backward operations on
zero-copy numpy views of contiguous CPU tensors. On top of them sit functional
wrappers with ``torch.nn.functional``'s signatures, module classes that
subclass the ``torch.nn`` ones (same constructor, parameters and
``state_dict`` keys), and :func:`convert`, which swaps the supported modules
of an existing model.

Examples
--------
>>> import torch
>>> import convext.torch as ct
>>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
>>> model = ct.convert(model)          # same parameters, convext compute
>>> y = model(torch.randn(4, 1, 12, 12))

Notes
-----
Inside this module ``torch`` is PyTorch itself (absolute imports); the
module is only importable when PyTorch is installed (``pip install "convext[torch]"``).
Backward passes are first-order only (no double backward).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch
from numpy.typing import NDArray
from torch.autograd.function import FunctionCtx, once_differentiable

import convext as _cx
from convext.nn import _pair

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "relu",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "convert",
    "ConversionWarning",
]

IntPair = Union[int, Sequence[int]]
Pair = tuple[int, int]

_FLOAT_DTYPES = (torch.float32, torch.float64)


class ConversionWarning(UserWarning):
    """Emitted by :func:`convert` when it leaves modules unconverted."""


# ---------------------------------------------------------------------------
# tensor <-> numpy
# ---------------------------------------------------------------------------
def _check_tensors(op: str, **tensors: torch.Tensor | None) -> None:
    """Check that the given tensors are strided CPU float32/float64 tensors of one dtype.

    Raises
    ------
    TypeError
        For non-tensors, sparse/quantized layouts, other dtypes, or mixed dtypes.
    ValueError
        For tensors on a device other than the CPU.
    """
    first: tuple[str, torch.dtype] | None = None
    for name, t in tensors.items():
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"convext.torch.{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(
                f"convext.torch.{op}: {name} is on device {t.device}; convext computes on the CPU only "
                f"(move it with .cpu() or use torch.nn.functional.{op})"
            )
        if t.layout != torch.strided or t.is_quantized:
            raise TypeError(f"convext.torch.{op}: {name} must be a dense (strided) tensor, got layout {t.layout}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"convext.torch.{op}: {name} has dtype {t.dtype}; convext supports torch.float32 and torch.float64")
        if first is None:
            first = (name, t.dtype)
        elif t.dtype != first[1]:
            raise TypeError(f"convext.torch.{op}: {first[0]} has dtype {first[1]} but {name} has dtype {t.dtype}")


def _np(t: torch.Tensor) -> NDArray[Any]:
    """A numpy view of ``t``: zero-copy when ``t`` is contiguous, else of a contiguous copy."""
    t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    return t.numpy()


def _tensor(a: NDArray[Any]) -> torch.Tensor:
    """Wrap a result array (owned by convext, never shared) as a tensor without copying."""
    return torch.from_numpy(a)


# ---------------------------------------------------------------------------
# autograd Functions
# ---------------------------------------------------------------------------
class _Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        groups: int,
    ) -> torch.Tensor:
        geometry = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        out = _cx.conv2d(_np(x), _np(weight), None if bias is None else _np(bias), **geometry)
        ctx.save_for_backward(x, weight)
        ctx.geometry = geometry  # type: ignore[attr-defined]
        return _tensor(out)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = _np(grad_out)
        gx = gw = gb = None
        if need_x and need_w:
            gx, gw, gb = (_tensor(a) for a in _cx.conv2d_backward(g, _np(x), _np(weight), **ctx.geometry))
        elif need_x:
            gx = _tensor(_cx.conv2d_input_grad(g, _np(weight), tuple(x.shape), **ctx.geometry))
        elif need_w:
            gw = _tensor(_cx.conv2d_weight_grad(g, _np(x), tuple(weight.shape), **ctx.geometry))
        if need_b and gb is None:
            gb = _tensor(g.sum(axis=(0, 2, 3)))
        return gx, gw, gb if need_b else None, None, None, None, None


class _MaxPool2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        ceil_mode: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        geometry = {
            "kernel_size": kernel_size,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "ceil_mode": ceil_mode,
        }
        out, indices = _cx.max_pool2d(_np(x), return_indices=True, **geometry)
        idx = _tensor(np.asarray(indices, dtype=np.int64))
        ctx.mark_non_differentiable(idx)
        ctx.save_for_backward(x, idx)
        ctx.geometry = geometry  # type: ignore[attr-defined]
        return _tensor(out), idx

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor, _grad_idx: Any) -> tuple[torch.Tensor | None, ...]:
        x, idx = ctx.saved_tensors
        gx = _cx.max_pool2d_backward(_np(grad_out), _np(x), indices=_np(idx), **ctx.geometry)
        return _tensor(gx), None, None, None, None, None


class _AvgPool2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> torch.Tensor:
        geometry = {
            "kernel_size": kernel_size,
            "stride": stride,
            "padding": padding,
            "ceil_mode": ceil_mode,
            "count_include_pad": count_include_pad,
        }
        out = _cx.avg_pool2d(_np(x), **geometry)
        ctx.input_shape = tuple(x.shape)  # type: ignore[attr-defined]
        ctx.geometry = geometry  # type: ignore[attr-defined]
        return _tensor(out)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        gx = _cx.avg_pool2d_backward(_np(grad_out), ctx.input_shape, **ctx.geometry)
        return _tensor(gx), None, None, None, None, None


class _ReLUFunction(torch.autograd.Function):
    # The backward pass keeps the *output*: relu(x) > 0 exactly where x > 0, so
    # relu_backward(g, relu(x)) == relu_backward(g, x). That is what lets the
    # in-place variant overwrite its input.
    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, inplace: bool) -> torch.Tensor:  # type: ignore[override]
        out = _tensor(_cx.relu(_np(x)))
        if inplace:
            x.copy_(out)
            ctx.mark_dirty(x)
            out = x
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (out,) = ctx.saved_tensors
        return _tensor(_cx.relu_backward(_np(grad_out), _np(out))), None


# ---------------------------------------------------------------------------
# functional wrappers
# ---------------------------------------------------------------------------
def _batched(op: str, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Accept (C, H, W) like PyTorch by adding a batch axis; return (x4d, was_unbatched)."""
    if x.dim() == 3:
        return x.unsqueeze(0), True
    if x.dim() != 4:
        raise ValueError(f"convext.torch.{op}: x must be 3-d (C, H, W) or 4-d (N, C, H, W), got shape {tuple(x.shape)}")
    return x, False


def _same_padding(kernel_size: Pair, stride: Pair, dilation: Pair) -> Pair | None:
    """The symmetric integer padding equivalent to ``padding="same"``, or None if there is none."""
    if stride != (1, 1):
        return None
    total = tuple(d * (k - 1) for k, d in zip(kernel_size, dilation))
    if any(t % 2 for t in total):
        return None  # PyTorch would pad one side more than the other
    return (total[0] // 2, total[1] // 2)


def _conv_padding(padding: str | IntPair, kernel_size: Pair, stride: Pair, dilation: Pair) -> Pair | None:
    """Map a Conv2d ``padding`` (int, pair, "valid", "same") to a pair, or None if convext cannot."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            return _same_padding(kernel_size, stride, dilation)
        return None
    return _pair(padding, "padding")


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: str | IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution computed by convext, like ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, H, W) or (C, H, W); CPU, float32 or float64.
    weight : torch.Tensor
        Filters (K, C / groups, kH, kW), same dtype.
    bias : torch.Tensor or None
        Shape (K,), same dtype.
    stride, dilation : int or (int, int)
        As in PyTorch.
    padding : int, (int, int), "valid" or "same"
        Zero padding; "same" only where it is symmetric (stride 1 and an odd
        dilated kernel).
    groups : int
        Number of channel groups.

    Returns
    -------
    torch.Tensor
        The output, differentiable with respect to ``x``, ``weight`` and ``bias``.

    Raises
    ------
    TypeError
        For non-tensors, dtypes other than float32/float64, or mixed dtypes.
    ValueError
        For non-CPU tensors, bad shapes or parameters (also from the engine),
        or a ``padding`` string convext cannot map.
    """
    _check_tensors("conv2d", x=x, weight=weight, bias=bias)
    x4, unbatched = _batched("conv2d", x)
    stride_p, dilation_p = _pair(stride, "stride"), _pair(dilation, "dilation")
    kernel = (int(weight.shape[-2]), int(weight.shape[-1])) if weight.dim() == 4 else (1, 1)
    padding_p = _conv_padding(padding, kernel, stride_p, dilation_p)
    if padding_p is None:
        raise ValueError(
            f"convext.torch.conv2d: padding={padding!r} cannot be expressed as symmetric zero padding "
            f"for kernel {kernel}, stride {stride_p}, dilation {dilation_p}"
        )
    out = _Conv2dFunction.apply(x4, weight, bias, stride_p, padding_p, dilation_p, int(groups))
    return out.squeeze(0) if unbatched else out


def _pool_stride(stride: IntPair | None, kernel: Pair) -> Pair:
    # PyTorch's functional pooling treats None and an empty list as "stride = kernel_size".
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return kernel
    return _pair(stride, "stride")


def max_pool2d(
    x: torch.Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """2-D max pooling computed by convext, like ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, H, W) or (C, H, W); CPU, float32 or float64.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int) or None
        Window step; defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit negative-infinity padding, at most half the kernel.
    dilation : int or (int, int)
        Spacing of the window taps.
    ceil_mode : bool
        Round the output size up.
    return_indices : bool
        Also return PyTorch-style flat indices (int64) of the maxima.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        The pooled tensor, and the indices if ``return_indices``.

    Raises
    ------
    TypeError
        For non-tensors or dtypes other than float32/float64.
    ValueError
        For non-CPU tensors or bad shapes/parameters.
    """
    _check_tensors("max_pool2d", x=x)
    x4, unbatched = _batched("max_pool2d", x)
    kernel = _pair(kernel_size, "kernel_size")
    out, idx = _MaxPool2dFunction.apply(
        x4, kernel, _pool_stride(stride, kernel), _pair(padding, "padding"), _pair(dilation, "dilation"), bool(ceil_mode)
    )
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


def avg_pool2d(
    x: torch.Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> torch.Tensor:
    """2-D average pooling computed by convext, like ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, H, W) or (C, H, W); CPU, float32 or float64.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int) or None
        Window step; defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit zero padding, at most half the kernel.
    ceil_mode : bool
        Round the output size up.
    count_include_pad : bool
        Whether padded zeros count in the divisor.
    divisor_override : None
        Not supported by convext; must be None.

    Returns
    -------
    torch.Tensor
        The pooled tensor.

    Raises
    ------
    TypeError
        For non-tensors or dtypes other than float32/float64.
    ValueError
        For non-CPU tensors, bad shapes/parameters, or a ``divisor_override``.
    """
    if divisor_override is not None:
        raise ValueError(
            f"convext.torch.avg_pool2d: divisor_override={divisor_override!r} is not supported; "
            "use torch.nn.functional.avg_pool2d"
        )
    _check_tensors("avg_pool2d", x=x)
    x4, unbatched = _batched("avg_pool2d", x)
    kernel = _pair(kernel_size, "kernel_size")
    out = _AvgPool2dFunction.apply(
        x4, kernel, _pool_stride(stride, kernel), _pair(padding, "padding"), bool(ceil_mode), bool(count_include_pad)
    )
    return out.squeeze(0) if unbatched else out


def relu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``max(x, 0)`` computed by convext, like ``torch.nn.functional.relu``.

    Parameters
    ----------
    x : torch.Tensor
        Any shape; CPU, float32 or float64.
    inplace : bool
        Overwrite ``x`` with the result (same rules as PyTorch's in-place ops).

    Returns
    -------
    torch.Tensor
        The result (``x`` itself if ``inplace``).

    Raises
    ------
    TypeError
        For non-tensors or dtypes other than float32/float64.
    ValueError
        For non-CPU tensors.
    """
    _check_tensors("relu", x=x)
    return _ReLUFunction.apply(x, bool(inplace))


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------
def _unsupported_reason(module: torch.nn.Module) -> str | None:
    """Why convext cannot compute ``module`` (a torch.nn Conv2d/MaxPool2d/AvgPool2d/ReLU), or None."""
    if isinstance(module, torch.nn.Conv2d):
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r}"
        if _conv_padding(module.padding, module.kernel_size, module.stride, module.dilation) is None:
            return (
                f"padding={module.padding!r} with kernel_size={module.kernel_size}, "
                f"stride={module.stride}, dilation={module.dilation}"
            )
        for name, p in module.named_parameters(recurse=False):
            if p.device.type != "cpu" or p.dtype not in _FLOAT_DTYPES:
                return f"{name} is {p.dtype} on {p.device}"
    if isinstance(module, torch.nn.AvgPool2d) and module.divisor_override is not None:
        return f"divisor_override={module.divisor_override!r}"
    return None


def _require_supported(module: torch.nn.Module) -> None:
    reason = _unsupported_reason(module)
    if reason is not None:
        raise ValueError(
            f"convext.torch.{type(module).__name__}: {reason} is not supported by convext; "
            f"use the torch.nn module of the same name"
        )


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by convext.

    Same constructor, parameters and ``state_dict`` keys as ``torch.nn.Conv2d``.

    Raises
    ------
    ValueError
        At construction, for ``padding_mode`` other than "zeros", a ``padding``
        string without a symmetric equivalent, or parameters that are not
        float32/float64 on the CPU.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _require_supported(self)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Convolve ``input`` with convext (see :func:`conv2d`).

        Parameters
        ----------
        input : torch.Tensor
            (N, C, H, W) or (C, H, W).

        Returns
        -------
        torch.Tensor
            The output.
        """
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` computed by convext (same constructor)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Max-pool ``input`` with convext (see :func:`max_pool2d`).

        Parameters
        ----------
        input : torch.Tensor
            (N, C, H, W) or (C, H, W).

        Returns
        -------
        torch.Tensor or (torch.Tensor, torch.Tensor)
            The pooled tensor, and the indices if ``return_indices``.
        """
        return max_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class AvgPool2d(torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` computed by convext (same constructor).

    Raises
    ------
    ValueError
        At construction, if ``divisor_override`` is given.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _require_supported(self)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Average-pool ``input`` with convext (see :func:`avg_pool2d`).

        Parameters
        ----------
        input : torch.Tensor
            (N, C, H, W) or (C, H, W).

        Returns
        -------
        torch.Tensor
            The pooled tensor.
        """
        return avg_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad, self.divisor_override
        )


class ReLU(torch.nn.ReLU):
    """``torch.nn.ReLU`` computed by convext (same constructor, ``inplace`` honoured)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Apply ``max(input, 0)`` with convext (see :func:`relu`).

        Parameters
        ----------
        input : torch.Tensor
            Any shape.

        Returns
        -------
        torch.Tensor
            The result.
        """
        return relu(input, self.inplace)


# Exact torch.nn types that convert() swaps (subclasses may override forward,
# so they are left alone).
_REPLACEMENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.Conv2d: Conv2d,
    torch.nn.MaxPool2d: MaxPool2d,
    torch.nn.AvgPool2d: AvgPool2d,
    torch.nn.ReLU: ReLU,
}


def _swap_class(module: torch.nn.Module, cls: type[torch.nn.Module]) -> torch.nn.Module:
    """A new module of class ``cls`` with ``module``'s attributes, sharing its Parameters and buffers.

    The original module stays intact and usable; hooks, training flag and
    hyperparameters are carried over.
    """
    new = cls.__new__(cls)
    state = module.__dict__.copy()
    for key, value in state.items():
        if isinstance(value, (dict, set)):
            state[key] = value.copy()  # own registries (_parameters, hooks, ...); same objects inside
    new.__dict__.update(state)
    return new


def convert(model: torch.nn.Module, inplace: bool = True) -> torch.nn.Module:
    """Swap every supported layer of ``model`` for its convext version.

    Modules whose exact type is ``torch.nn.Conv2d``, ``MaxPool2d``,
    ``AvgPool2d`` or ``ReLU`` are replaced, at any depth, by the classes of
    this module. The replacements share the original ``Parameter`` objects, so
    weights are kept and existing optimizers keep working. Configurations
    convext cannot compute (``padding_mode`` other than "zeros", a ``padding``
    string without a symmetric integer equivalent, ``divisor_override``,
    parameters off the CPU or not float32/float64) are left as they are and
    listed in one :class:`ConversionWarning`.

    Parameters
    ----------
    model : torch.nn.Module
        The model (or a single layer).
    inplace : bool
        If True (default) the model's children are replaced in place;
        otherwise a deep copy is converted and ``model`` is left untouched.

    Returns
    -------
    torch.nn.Module
        The converted model: ``model`` itself unless ``model`` is itself a
        supported layer (then its replacement) or ``inplace`` is False.

    Warns
    -----
    ConversionWarning
        If some supported layer types were left unconverted.
    """
    if not inplace:
        model = copy.deepcopy(model)
    skipped: list[str] = []
    memo: dict[int, torch.nn.Module] = {}  # shared modules stay shared

    def visit(module: torch.nn.Module, name: str) -> torch.nn.Module:
        if id(module) in memo:
            return memo[id(module)]
        result = module
        cls = _REPLACEMENTS.get(type(module))
        if cls is not None:
            reason = _unsupported_reason(module)
            if reason is None:
                result = _swap_class(module, cls)
            else:
                skipped.append(f"{name or '<model>'} ({type(module).__name__}: {reason})")
        else:
            for child_name, child in list(module._modules.items()):
                if child is not None:
                    module._modules[child_name] = visit(child, f"{name}.{child_name}" if name else child_name)
        memo[id(module)] = result
        return result

    converted = visit(model, "")
    if skipped:
        warnings.warn(
            f"convext.torch.convert: left {len(skipped)} module(s) on PyTorch: " + "; ".join(skipped),
            ConversionWarning,
            stacklevel=2,
        )
    return converted

