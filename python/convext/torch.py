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
The compute runs in ``torch.library`` custom ops (namespace ``convext``) whose
backwards are again convext ops, so torch.compile(fullgraph=True),
torch.export, torch.jit.trace, torch.func.grad and double backward work.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

import convext as _cx
from convext._args import IntPair, Pair
from convext._args import pair as _pair

__all__ = [
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_avg_pool2d",
    "relu",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveMaxPool2d",
    "AdaptiveAvgPool2d",
    "ReLU",
    "convert",
    "ConversionWarning",
]


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
        if t.is_quantized:
            raise TypeError(f"convext.torch.{op}: {name} is a quantized tensor ({t.dtype}); convext needs float32/float64")
        if t.layout != torch.strided:
            raise TypeError(f"convext.torch.{op}: {name} must be a dense (strided) tensor, got layout {t.layout}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"convext.torch.{op}: {name} has dtype {t.dtype}; convext supports torch.float32 and torch.float64")
        if first is None:
            first = (name, t.dtype)
        elif t.dtype != first[1]:
            raise TypeError(f"convext.torch.{op}: {first[0]} has dtype {first[1]} but {name} has dtype {t.dtype}")


def _np(t: torch.Tensor) -> NDArray[Any]:
    """A numpy view of ``t``: zero-copy when ``t`` is contiguous, else of a contiguous copy."""
    if t.requires_grad:
        t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    return t.numpy()


def _tensor(a: NDArray[Any]) -> torch.Tensor:
    """Wrap a result array (owned by convext, never shared) as a tensor without copying."""
    return torch.from_numpy(a)


# ---------------------------------------------------------------------------
# torch.library ops (namespace "convext")
#
# Each op is a ``torch.library.custom_op`` with a fake (shape-only) kernel, so
# torch.compile / torch.export / torch.jit.trace see through it, and an
# autograd formula built from other convext ops, so the backward is itself
# differentiable (double backward, gradient penalties, HVPs):
#
# * y = conv2d(x, w): dx = conv2d_input_grad(dy, w) (the transposed conv),
#   dw = conv2d_weight_grad(dy, x). Both are bilinear, and their adjoints are
#   again the three conv ops: <input_grad(dy, w), v> = <dy, conv2d(v, w)> and
#   <weight_grad(dy, x), v> = <dy, conv2d(x, v)>.
# * pools: the backward is linear in dy; the adjoint of avg spreading is the
#   avg pool itself, the adjoint of max routing is a gather at the indices.
# * relu: dx = dy * [y > 0], linear in dy; its derivative in y is 0 a.e.
# ---------------------------------------------------------------------------
def _out_size(n: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1  # the last window must start inside the input or the left padding (as PyTorch)
    return out


@torch.library.custom_op("convext::conv2d", mutates_args=())
def _conv2d_op(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
    stride: list[int], padding: list[int], dilation: list[int], groups: int,
) -> torch.Tensor:
    out = _cx.conv2d(_np(x), _np(weight), None if bias is None else _np(bias),
                     stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation), groups=groups)
    return _tensor(out)


@_conv2d_op.register_fake
def _(x, weight, bias, stride, padding, dilation, groups):  # type: ignore[no-untyped-def]
    h = _out_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0])
    w = _out_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1])
    return x.new_empty((x.shape[0], weight.shape[0], h, w))


@torch.library.custom_op("convext::conv2d_input_grad", mutates_args=())
def _conv2d_input_grad_op(
    grad_out: torch.Tensor, weight: torch.Tensor, input_shape: list[int],
    stride: list[int], padding: list[int], dilation: list[int], groups: int,
) -> torch.Tensor:
    return _tensor(_cx.conv2d_input_grad(_np(grad_out), _np(weight), tuple(input_shape), stride=tuple(stride),
                                         padding=tuple(padding), dilation=tuple(dilation), groups=groups))


@_conv2d_input_grad_op.register_fake
def _(grad_out, weight, input_shape, stride, padding, dilation, groups):  # type: ignore[no-untyped-def]
    return grad_out.new_empty(input_shape)


@torch.library.custom_op("convext::conv2d_weight_grad", mutates_args=())
def _conv2d_weight_grad_op(
    grad_out: torch.Tensor, x: torch.Tensor, weight_shape: list[int],
    stride: list[int], padding: list[int], dilation: list[int], groups: int,
) -> torch.Tensor:
    return _tensor(_cx.conv2d_weight_grad(_np(grad_out), _np(x), tuple(weight_shape), stride=tuple(stride),
                                          padding=tuple(padding), dilation=tuple(dilation), groups=groups))


@_conv2d_weight_grad_op.register_fake
def _(grad_out, x, weight_shape, stride, padding, dilation, groups):  # type: ignore[no-untyped-def]
    return grad_out.new_empty(weight_shape)


def _call(op: Any, *args: Any) -> Any:
    """Run a convext op; under torch.func transforms through its setup_context Function (see _functorch_function)."""
    if torch._C._are_functorch_transforms_active():
        return _FUNCTORCH[op].apply(*args)
    return op(*args)


def _conv_geometry_ctx(ctx: Any, inputs: tuple[Any, ...]) -> None:
    ctx.geometry = tuple(inputs[3:7])


def _conv2d_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    x, weight, bias = inputs[:3]
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    _conv_geometry_ctx(ctx, inputs)


def _conv2d_bwd(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
    x, weight = ctx.saved_tensors
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    g = grad_out.contiguous()
    gx = _call(_conv2d_input_grad_op, g, weight, list(x.shape), *ctx.geometry) if need_x else None
    gw = _call(_conv2d_weight_grad_op, g, x, list(weight.shape), *ctx.geometry) if need_w else None
    gb = g.sum((0, 2, 3)) if (need_b and ctx.has_bias) else None
    return gx, gw, gb, None, None, None, None


def _input_grad_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[0], inputs[1])
    _conv_geometry_ctx(ctx, inputs)


def _input_grad_bwd(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:
    grad_out, weight = ctx.saved_tensors
    gg = gg.contiguous()
    d_gy = _call(_conv2d_op, gg, weight, None, *ctx.geometry) if ctx.needs_input_grad[0] else None
    d_w = _call(_conv2d_weight_grad_op, grad_out, gg, list(weight.shape), *ctx.geometry) if ctx.needs_input_grad[1] else None
    return d_gy, d_w, None, None, None, None, None


def _weight_grad_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[0], inputs[1])
    _conv_geometry_ctx(ctx, inputs)


def _weight_grad_bwd(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:
    grad_out, x = ctx.saved_tensors
    gg = gg.contiguous()
    d_gy = _call(_conv2d_op, x, gg, None, *ctx.geometry) if ctx.needs_input_grad[0] else None
    d_x = _call(_conv2d_input_grad_op, grad_out, gg, list(x.shape), *ctx.geometry) if ctx.needs_input_grad[1] else None
    return d_gy, d_x, None, None, None, None, None


_conv2d_op.register_autograd(_conv2d_bwd, setup_context=_conv2d_setup)
_conv2d_input_grad_op.register_autograd(_input_grad_bwd, setup_context=_input_grad_setup)
_conv2d_weight_grad_op.register_autograd(_weight_grad_bwd, setup_context=_weight_grad_setup)


@torch.library.custom_op("convext::max_pool2d", mutates_args=())
def _max_pool2d_op(
    x: torch.Tensor, kernel_size: list[int], stride: list[int], padding: list[int], dilation: list[int], ceil_mode: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    out, idx = _cx.max_pool2d(_np(x), tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation), ceil_mode,
                              return_indices=True)
    return _tensor(out), _tensor(np.asarray(idx, dtype=np.int64))


@_max_pool2d_op.register_fake
def _(x, kernel_size, stride, padding, dilation, ceil_mode):  # type: ignore[no-untyped-def]
    h = _out_size(x.shape[2], kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    w = _out_size(x.shape[3], kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    shape = (x.shape[0], x.shape[1], h, w)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


@torch.library.custom_op("convext::max_pool2d_backward", mutates_args=())
def _max_pool2d_backward_op(grad_out: torch.Tensor, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    # Routing by the saved indices needs no geometry: dx.flat[idx] += dy.
    n, c = x.shape[:2]
    gx = torch.zeros((n, c, x.shape[2] * x.shape[3]), dtype=grad_out.dtype)
    gx.scatter_add_(2, indices.reshape(n, c, -1), grad_out.reshape(n, c, -1))
    return gx.reshape(x.shape)


@_max_pool2d_backward_op.register_fake
def _(grad_out, x, indices):  # type: ignore[no-untyped-def]
    return x.new_empty(x.shape)


def _max_pool2d_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[0], output[1])


def _max_pool2d_bwd(ctx: Any, grad_out: torch.Tensor, _grad_idx: Any) -> tuple[Any, ...]:
    x, idx = ctx.saved_tensors
    return _call(_max_pool2d_backward_op, grad_out.contiguous(), x, idx), None, None, None, None, None


def _max_pool2d_backward_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[2])


def _max_pool2d_backward_bwd(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:
    (idx,) = ctx.saved_tensors
    n, c = idx.shape[:2]
    d_gy = gg.reshape(n, c, -1).gather(2, idx.reshape(n, c, -1)).reshape(idx.shape)
    return d_gy, None, None  # linear in grad_out; piecewise constant in x (derivative 0 a.e.)


_max_pool2d_op.register_autograd(_max_pool2d_bwd, setup_context=_max_pool2d_setup)
_max_pool2d_backward_op.register_autograd(_max_pool2d_backward_bwd, setup_context=_max_pool2d_backward_setup)


@torch.library.custom_op("convext::avg_pool2d", mutates_args=())
def _avg_pool2d_op(
    x: torch.Tensor, kernel_size: list[int], stride: list[int], padding: list[int], ceil_mode: bool,
    count_include_pad: bool, divisor_override: int | None,
) -> torch.Tensor:
    return _tensor(_cx.avg_pool2d(_np(x), tuple(kernel_size), tuple(stride), tuple(padding), ceil_mode, count_include_pad,
                                  divisor_override))


@_avg_pool2d_op.register_fake
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):  # type: ignore[no-untyped-def]
    h = _out_size(x.shape[2], kernel_size[0], stride[0], padding[0], 1, ceil_mode)
    w = _out_size(x.shape[3], kernel_size[1], stride[1], padding[1], 1, ceil_mode)
    return x.new_empty((x.shape[0], x.shape[1], h, w))


@torch.library.custom_op("convext::avg_pool2d_backward", mutates_args=())
def _avg_pool2d_backward_op(
    grad_out: torch.Tensor, input_shape: list[int], kernel_size: list[int], stride: list[int], padding: list[int],
    ceil_mode: bool, count_include_pad: bool, divisor_override: int | None,
) -> torch.Tensor:
    return _tensor(_cx.avg_pool2d_backward(_np(grad_out), tuple(input_shape), tuple(kernel_size), tuple(stride),
                                           tuple(padding), ceil_mode, count_include_pad, divisor_override))


@_avg_pool2d_backward_op.register_fake
def _(grad_out, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):  # type: ignore[no-untyped-def]
    return grad_out.new_empty(input_shape)


@torch.library.custom_op("convext::adaptive_avg_pool2d", mutates_args=())
def _adaptive_avg_pool2d_op(x: torch.Tensor, output_size: list[int]) -> torch.Tensor:
    return _tensor(_cx.adaptive_avg_pool2d(_np(x), tuple(output_size)))


@_adaptive_avg_pool2d_op.register_fake
def _(x, output_size):  # type: ignore[no-untyped-def]
    return x.new_empty((x.shape[0], x.shape[1], *output_size))


@torch.library.custom_op("convext::adaptive_avg_pool2d_backward", mutates_args=())
def _adaptive_avg_pool2d_backward_op(grad_out: torch.Tensor, input_shape: list[int], output_size: list[int]) -> torch.Tensor:
    # output_size is grad_out's own (the engine reads it there); kept for the pair's common signature
    return _tensor(_cx.adaptive_avg_pool2d_backward(_np(grad_out), tuple(input_shape)))


@_adaptive_avg_pool2d_backward_op.register_fake
def _(grad_out, input_shape, output_size):  # type: ignore[no-untyped-def]
    return grad_out.new_empty(input_shape)


@torch.library.custom_op("convext::adaptive_max_pool2d", mutates_args=())
def _adaptive_max_pool2d_op(x: torch.Tensor, output_size: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    out, idx = _cx.adaptive_max_pool2d(_np(x), tuple(output_size), return_indices=True)
    return _tensor(out), _tensor(np.asarray(idx, dtype=np.int64))


@_adaptive_max_pool2d_op.register_fake
def _(x, output_size):  # type: ignore[no-untyped-def]
    shape = (x.shape[0], x.shape[1], *output_size)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


def _register_linear_pool(fwd: Any, bwd: Any) -> tuple[Any, ...]:
    """Autograd of an average pool ``fwd(x, *geometry)`` and its backward ``bwd(grad_out, input_shape, *geometry)``.

    Both are linear, and bwd is fwd's adjoint (the same divisors), so each one's
    gradient is the other: double backward closes on the pair.
    """
    def fwd_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.input_shape = list(inputs[0].shape)
        ctx.geometry = tuple(inputs[1:])

    def fwd_grad(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        return (_call(bwd, grad_out.contiguous(), ctx.input_shape, *ctx.geometry),) + (None,) * len(ctx.geometry)

    def bwd_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.geometry = tuple(inputs[2:])

    def bwd_grad(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:
        return (_call(fwd, gg.contiguous(), *ctx.geometry),) + (None,) * (len(ctx.geometry) + 1)

    fwd.register_autograd(fwd_grad, setup_context=fwd_setup)
    bwd.register_autograd(bwd_grad, setup_context=bwd_setup)
    return (fwd, fwd_setup, fwd_grad), (bwd, bwd_setup, bwd_grad)


_LINEAR_POOLS = (_register_linear_pool(_avg_pool2d_op, _avg_pool2d_backward_op)
                 + _register_linear_pool(_adaptive_avg_pool2d_op, _adaptive_avg_pool2d_backward_op))


def _adaptive_max_pool2d_bwd(ctx: Any, grad_out: torch.Tensor, _grad_idx: Any) -> tuple[Any, ...]:
    x, idx = ctx.saved_tensors  # routing by the indices, as the fixed-window max pool
    return _call(_max_pool2d_backward_op, grad_out.contiguous(), x, idx), None


_adaptive_max_pool2d_op.register_autograd(_adaptive_max_pool2d_bwd, setup_context=_max_pool2d_setup)


@torch.library.custom_op("convext::relu", mutates_args=())
def _relu_op(x: torch.Tensor) -> torch.Tensor:
    return _tensor(_cx.relu(_np(x)))


@_relu_op.register_fake
def _(x):  # type: ignore[no-untyped-def]
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("convext::relu_backward", mutates_args=())
def _relu_backward_op(grad_out: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # relu(x) > 0 exactly where x > 0, so the output serves as the mask.
    return _tensor(_cx.relu_backward(_np(grad_out), _np(out)))


@_relu_backward_op.register_fake
def _(grad_out, out):  # type: ignore[no-untyped-def]
    return torch.empty_like(out, memory_format=torch.contiguous_format)


def _relu_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(output)


def _relu_bwd(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
    (out,) = ctx.saved_tensors
    return (_call(_relu_backward_op, grad_out, out),)


def _relu_backward_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[1])


def _relu_backward_bwd(ctx: Any, gg: torch.Tensor) -> tuple[Any, ...]:
    (out,) = ctx.saved_tensors
    return _call(_relu_backward_op, gg, out), None  # the mask is piecewise constant in out


_relu_op.register_autograd(_relu_bwd, setup_context=_relu_setup)
_relu_backward_op.register_autograd(_relu_backward_bwd, setup_context=_relu_backward_setup)


class _VmapFold:
    """How torch.vmap batches an op: the mapped axis folded into the batch axis, or a loop.

    ``batch``: the argument indices whose axis 0 is the batch (images); when
    only they are mapped, the mapped axis is folded into it (one call on
    B * N images), the others broadcast. ``shape``: the index of a shape
    argument whose batch entry grows with it. ``elementwise``: any-shape ops,
    called on the mapped tensors as they are. Anything else (a mapped weight,
    the weight gradient's sum over the batch) runs one call per mapped entry.
    """

    def __init__(self, batch: tuple[int, ...] = (), shape: int | None = None, elementwise: bool = False) -> None:
        self.batch, self.shape, self.elementwise = batch, shape, elementwise

    def __call__(self, fn: Any, batch_size: int, in_dims: tuple[Any, ...], args: tuple[Any, ...]) -> tuple[Any, Any]:
        # in_dims mirrors the arguments (a list argument gets a list of Nones): an int marks a mapped tensor
        mapped = {i for i, d in enumerate(in_dims) if isinstance(d, int)}
        folds = self.elementwise or bool(self.batch) and mapped <= set(self.batch)
        if not folds:
            outs = [fn.apply(*[a.select(d, b) if isinstance(d, int) else a for a, d in zip(args, in_dims)])
                    for b in range(batch_size)]
            if isinstance(outs[0], tuple):
                return tuple(torch.stack(o) for o in zip(*outs)), (0,) * len(outs[0])
            return torch.stack(outs), 0
        new = list(args)
        for i in (mapped if self.elementwise else self.batch):
            t = args[i].movedim(in_dims[i], 0) if i in mapped else args[i].expand(batch_size, *args[i].shape)
            new[i] = t if self.elementwise else t.reshape(-1, *t.shape[2:]).contiguous()
        if self.elementwise:  # every operand on the mapped axis
            new = [a if i in mapped else a.expand(batch_size, *a.shape) for i, a in enumerate(new)]
            return fn.apply(*new), 0
        if self.shape is not None:
            new[self.shape] = [batch_size * args[self.shape][0], *args[self.shape][1:]]
        out = fn.apply(*new)

        def unfold(o: torch.Tensor) -> torch.Tensor:
            return o.reshape(batch_size, -1, *o.shape[1:])
        if isinstance(out, tuple):
            return tuple(unfold(o) for o in out), (0,) * len(out)
        return unfold(out), 0


def _functorch_function(op: Any, setup: Any, bwd: Any, fold: _VmapFold) -> Any:
    """An autograd.Function (with setup_context and a vmap rule) running ``op``, for torch.func transforms.

    torch 2.13 builds the custom op's own autograd wrapper without setup_context,
    which torch.func rejects; this one has the same setup and backward, and
    batches under vmap as ``fold`` says.
    """

    class _Fn(torch.autograd.Function):
        @staticmethod
        def forward(*args: Any) -> Any:  # type: ignore[override]
            return op._init_fn(*args)  # the plain kernel: the op itself would re-enter its own autograd wrapper

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            setup(ctx, inputs, output)

        @staticmethod
        def backward(ctx: Any, *grads: Any) -> Any:  # type: ignore[override]
            return bwd(ctx, *grads)

        @staticmethod
        def vmap(info: Any, in_dims: tuple[Any, ...], *args: Any) -> tuple[Any, Any]:
            return fold(_Fn, info.batch_size, in_dims, args)

    return _Fn


_IMAGES, _ELEMENTWISE = _VmapFold(batch=(0,)), _VmapFold(elementwise=True)
_FUNCTORCH: dict[Any, Any] = {
    op: _functorch_function(op, setup, bwd, fold)
    for (op, setup, bwd), fold in (
        ((_conv2d_op, _conv2d_setup, _conv2d_bwd), _IMAGES),
        ((_conv2d_input_grad_op, _input_grad_setup, _input_grad_bwd), _VmapFold(batch=(0,), shape=2)),
        ((_conv2d_weight_grad_op, _weight_grad_setup, _weight_grad_bwd), _VmapFold()),  # sums over the images
        ((_max_pool2d_op, _max_pool2d_setup, _max_pool2d_bwd), _IMAGES),
        ((_max_pool2d_backward_op, _max_pool2d_backward_setup, _max_pool2d_backward_bwd), _VmapFold(batch=(0, 1, 2))),
        (_LINEAR_POOLS[0], _IMAGES),
        (_LINEAR_POOLS[1], _VmapFold(batch=(0,), shape=1)),
        (_LINEAR_POOLS[2], _IMAGES),
        (_LINEAR_POOLS[3], _VmapFold(batch=(0,), shape=1)),
        ((_adaptive_max_pool2d_op, _max_pool2d_setup, _adaptive_max_pool2d_bwd), _IMAGES),
        ((_relu_op, _relu_setup, _relu_bwd), _ELEMENTWISE),
        ((_relu_backward_op, _relu_backward_setup, _relu_backward_bwd), _ELEMENTWISE),
    )
}


def _like_input(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Give a 4-d result the channels_last layout when the input has it, as stock torch does (a copy for now)."""
    if torch._C._are_functorch_transforms_active():
        return out  # vmap cannot be asked for memory formats; under torch.func the result stays NCHW
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


#: tensor types with no behaviour of their own (a module's weights are Parameters)
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def _direct(*tensors: torch.Tensor | None) -> bool:
    """True when a call may skip the dispatcher and run the engine directly.

    That is plain eager inference: no tensor needs a gradient, and nothing
    (torch.compile/export, jit.trace, torch.func, fake or subclass tensors)
    has to see the op. Then the custom op's dispatch (several microseconds) is saved.
    """
    if torch.compiler.is_compiling() or torch._C._get_tracing_state() is not None:
        return False
    if torch._C._are_functorch_transforms_active():
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is not None and (type(t) not in _PLAIN_TENSORS or (grad and t.requires_grad)):
            return False
    return True


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


def _conv_padding(
    padding: str | IntPair, kernel_size: IntPair, stride: IntPair, dilation: IntPair
) -> Pair | None:
    """Map a Conv2d ``padding`` (int, pair, "valid", "same") to a pair, or None if convext cannot."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            return _same_padding(_pair(kernel_size, "kernel_size"), _pair(stride, "stride"),
                                 _pair(dilation, "dilation"))
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
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"convext.torch.conv2d: groups must be an integer, got {groups!r}")
    padding_p = _conv_padding(padding, kernel, stride_p, dilation_p)
    if padding_p is None and padding == "same" and stride_p == (1, 1):
        # An even dilated kernel: PyTorch pads the extra row / column at the
        # bottom / right; so does this (then no implicit padding is left).
        total = [d * (k - 1) for k, d in zip(kernel, dilation_p)]
        x4 = torch.nn.functional.pad(x4, (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2))
        padding_p = (0, 0)
    if padding_p is None:
        raise ValueError(
            f"convext.torch.conv2d: padding={padding!r} is not zero padding convext computes "
            f"for kernel {kernel}, stride {stride_p}, dilation {dilation_p}"
        )
    if x4.shape[0] == 0:  # an empty batch: stock torch's empty result (and gradients)
        out = torch.nn.functional.conv2d(x4, weight, bias, stride_p, padding_p, dilation_p, groups)
        return out.squeeze(0) if unbatched else out
    if _direct(x4, weight, bias):
        out = _tensor(_cx.conv2d(_np(x4), _np(weight), None if bias is None else _np(bias), stride=stride_p,
                                 padding=padding_p, dilation=dilation_p, groups=groups))
    else:
        out = _call(_conv2d_op, x4, weight, bias, list(stride_p), list(padding_p), list(dilation_p), groups)
    return out.squeeze(0) if unbatched else _like_input(x, out)


def _int1(value: Any, name: str) -> int:
    """A 1-d conv parameter: an int or a 1-sequence, as torch.nn.functional.conv1d takes it."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"convext.torch.conv1d: {name} must be an int or a 1-sequence, got {value!r}")
        value = value[0]
    return _pair(value, name)[0]


def conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: str | int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """1-D convolution computed by convext as a 1 x kW 2-D correlation, like ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, L) or (C, L); CPU, float32 or float64.
    weight : torch.Tensor
        Filters (K, C / groups, kW), same dtype.
    bias : torch.Tensor or None
        Shape (K,).
    stride, dilation : int or (int,)
        As in PyTorch.
    padding : int, (int,), "valid" or "same"
        Zero padding.
    groups : int
        Number of channel groups.

    Returns
    -------
    torch.Tensor
        The output (N, K, L_out) or (K, L_out), differentiable in ``x``, ``weight`` and ``bias``.

    Raises
    ------
    TypeError, ValueError
        As :func:`conv2d`; ValueError for inputs that are not 2-d or 3-d.
    """
    _check_tensors("conv1d", x=x, weight=weight, bias=bias)
    if x.dim() not in (2, 3) or weight.dim() != 3:
        raise ValueError(f"convext.torch.conv1d: x must be 2-d (C, L) or 3-d (N, C, L) and weight 3-d, got shapes "
                         f"{tuple(x.shape)} and {tuple(weight.shape)}")
    pad = padding if isinstance(padding, str) else (0, _int1(padding, "padding"))
    out = conv2d(x.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, _int1(stride, "stride")), pad,
                 (1, _int1(dilation, "dilation")), groups)
    return out.squeeze(-2)


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """2-D transposed convolution computed by convext, like ``torch.nn.functional.conv_transpose2d``.

    The forward is the engine's input-gradient op (the seed's full
    convolution); its gradients are the forward correlation (for ``x``) and
    the weight-gradient correlation (for ``weight``), so it differentiates to
    any order.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C_in, H, W) or (C_in, H, W); CPU, float32 or float64.
    weight : torch.Tensor
        Filters (C_in, C_out / groups, kH, kW), same dtype.
    bias : torch.Tensor or None
        Shape (C_out,).
    stride, padding, dilation : int or (int, int)
        As in PyTorch.
    output_padding : int or (int, int)
        Smaller than the stride or the dilation.
    groups : int
        Number of channel groups.

    Returns
    -------
    torch.Tensor
        The output, differentiable with respect to ``x``, ``weight`` and ``bias``.

    Raises
    ------
    TypeError
        For non-tensors, dtypes other than float32/float64, mixed dtypes, or a non-integer ``groups``.
    ValueError
        For non-CPU tensors or bad shapes or parameters.
    """
    _check_tensors("conv_transpose2d", x=x, weight=weight, bias=bias)
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"convext.torch.conv_transpose2d: groups must be an integer, got {groups!r}")
    x4, unbatched = _batched("conv_transpose2d", x)
    geometry = [list(_pair(v, name)) for v, name in ((stride, "stride"), (padding, "padding"))]
    dilation_p = list(_pair(dilation, "dilation"))
    shape = _cx.conv_transpose2d_output_size(tuple(x4.shape), tuple(weight.shape), stride, padding, output_padding,
                                             groups, dilation)
    if x4.shape[0] == 0:
        out = torch.nn.functional.conv_transpose2d(x4, weight, bias, stride, padding, output_padding, groups, dilation)
    else:
        x4 = x4.contiguous()
        if all(o < s for o, s in zip(_pair(output_padding, "output_padding"), geometry[0])):
            out = _call(_conv2d_input_grad_op, x4, weight, list(shape), *geometry, dilation_p, groups)
        else:  # a window of the unpadded transposed convolution (see convext.transpose_window)
            full, ((h0, hz), (w0, wz)) = _cx.functional.transpose_window(
                tuple(x4.shape), tuple(weight.shape), stride, padding, output_padding, dilation)
            out = _call(_conv2d_input_grad_op, x4, weight, [shape[0], shape[1], *full], geometry[0], [0, 0],
                        dilation_p, groups)
            out = torch.nn.functional.pad(out[:, :, h0:, w0:], (0, wz, 0, hz))[:, :, :shape[2], :shape[3]]
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else _like_input(x, out)


def _pool(op: Any, stock: Any, x4: torch.Tensor, *geometry: Any, return_indices: bool = False) -> Any:
    """Run a pooling op: stock torch for an empty batch (its empty result), the plain kernel in
    eager inference (no dispatcher), else the custom op (autograd, compile, torch.func)."""
    if x4.shape[0] == 0:
        return stock(x4, *geometry, return_indices=True) if return_indices else stock(x4, *geometry)
    if _direct(x4):
        return op._init_fn(x4, *geometry)
    return _call(op, x4, *geometry)


def _adaptive_size(output_size: Any, x: torch.Tensor) -> list[int]:
    """``output_size`` as two ints, None standing for the input's size (as PyTorch)."""
    if isinstance(output_size, (list, tuple)) and len(output_size) == 2:
        return [int(x.shape[-2 + i]) if v is None else v for i, v in enumerate(output_size)]
    return list(_pair(output_size, "output_size"))


def adaptive_avg_pool2d(x: torch.Tensor, output_size: Any) -> torch.Tensor:
    """2-D adaptive average pooling computed by convext, like ``torch.nn.functional.adaptive_avg_pool2d``.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, H, W) or (C, H, W); CPU, float32 or float64.
    output_size : int or (int or None, int or None)
        ``(Ho, Wo)``; None keeps that input dimension.

    Returns
    -------
    torch.Tensor
        The pooled tensor.

    Raises
    ------
    TypeError
        For non-tensors or dtypes other than float32/float64.
    ValueError
        For non-CPU tensors or bad shapes/sizes.
    """
    _check_tensors("adaptive_avg_pool2d", x=x)
    x4, unbatched = _batched("adaptive_avg_pool2d", x)
    size = _adaptive_size(output_size, x4)
    out = _pool(_adaptive_avg_pool2d_op, torch.nn.functional.adaptive_avg_pool2d, x4, size)
    return out.squeeze(0) if unbatched else _like_input(x, out)


def adaptive_max_pool2d(
    x: torch.Tensor, output_size: Any, return_indices: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """2-D adaptive max pooling computed by convext, like ``torch.nn.functional.adaptive_max_pool2d``.

    Parameters
    ----------
    x : torch.Tensor
        Input (N, C, H, W) or (C, H, W); CPU, float32 or float64.
    output_size : int or (int or None, int or None)
        ``(Ho, Wo)``; None keeps that input dimension.
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
        For non-CPU tensors or bad shapes/sizes.
    """
    _check_tensors("adaptive_max_pool2d", x=x)
    x4, unbatched = _batched("adaptive_max_pool2d", x)
    size = _adaptive_size(output_size, x4)
    out, idx = _pool(_adaptive_max_pool2d_op, torch.nn.functional.adaptive_max_pool2d, x4, size, return_indices=True)
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    out, idx = _like_input(x, out), _like_input(x, idx)
    return (out, idx) if return_indices else out


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
    geometry = (list(kernel), list(_pool_stride(stride, kernel)), list(_pair(padding, "padding")),
                list(_pair(dilation, "dilation")), bool(ceil_mode))
    out, idx = _pool(_max_pool2d_op, torch.nn.functional.max_pool2d, x4, *geometry, return_indices=True)
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    out, idx = _like_input(x, out), _like_input(x, idx)
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
    divisor_override : int or None
        Divide every window's sum by this instead.

    Returns
    -------
    torch.Tensor
        The pooled tensor.

    Raises
    ------
    TypeError
        For non-tensors or dtypes other than float32/float64.
    ValueError
        For non-CPU tensors or bad shapes/parameters.
    """
    _check_tensors("avg_pool2d", x=x)
    x4, unbatched = _batched("avg_pool2d", x)
    kernel = _pair(kernel_size, "kernel_size")
    geometry = (list(kernel), list(_pool_stride(stride, kernel)), list(_pair(padding, "padding")), bool(ceil_mode),
                bool(count_include_pad), divisor_override)
    out = _pool(_avg_pool2d_op, torch.nn.functional.avg_pool2d, x4, *geometry)
    return out.squeeze(0) if unbatched else _like_input(x, out)


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
    if _direct(x):
        out = _tensor(_cx.relu(_np(x)))
    else:
        out = _call(_relu_op, x)
    if not inplace:
        out = _like_input(x, out)
    if inplace:
        return x.copy_(out)  # writes into x (any layout); autograd records the in-place copy (torch's version counter checks apply)
    return out


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------
def _unsupported_reason(module: torch.nn.Module) -> str | None:
    """Why convext cannot compute ``module`` (one of the torch.nn types convert swaps), or None."""
    if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r}"
        stride = tuple(module.stride) * (2 // len(module.stride))
        if isinstance(module.padding, str) and not (module.padding == "valid" or stride == (1, 1)):
            return f"padding={module.padding!r} with stride={module.stride}"
        for name, p in module.named_parameters(recurse=False):
            if p.device.type != "cpu" or p.dtype not in _FLOAT_DTYPES:
                return f"{name} is {p.dtype} on {p.device}"
    return None


def _require_supported(module: torch.nn.Module) -> None:
    reason = _unsupported_reason(module)
    if reason is not None:
        raise ValueError(
            f"convext.torch.{type(module).__name__}: {reason} is not supported by convext; "
            f"use the torch.nn module of the same name"
        )


_WARNED: set[tuple[str, str]] = set()


def _fallback_reason(*tensors: torch.Tensor | None) -> str | None:
    """Why convext cannot compute a call on these tensors (then stock torch does), or None."""
    if torch.is_autocast_enabled("cpu"):
        return "autocast (torch.autocast's dtype rules apply to stock torch ops only)"
    for t in tensors:
        if t is None:
            continue
        if t.device.type != "cpu":
            return f"device {t.device}"
        if t.dtype not in _FLOAT_DTYPES:
            return f"dtype {t.dtype}"
        if t.layout != torch.strided or t.is_quantized:
            return f"layout {t.layout}"
    return None


def _warn_fallback(module: torch.nn.Module, reason: str) -> None:
    """Warn once per module class and reason that a call ran on stock PyTorch."""
    key = (type(module).__name__, reason)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(
            f"convext.torch.{key[0]}: {reason} is not computed by convext; this and later such calls run on stock PyTorch",
            ConversionWarning,
            stacklevel=3,
        )


class _Converted:
    """What every module class below shares: ``forward`` runs convext (``_compute``) or, for a
    call convext does not compute (``_fallback`` names why: dtype, device, autocast, ...), the
    torch.nn base class's own forward, with one warning per class and reason."""

    def _fallback(self, input: torch.Tensor) -> str | None:
        return _fallback_reason(input)

    def _compute(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def forward(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Compute the layer with convext (stock torch where convext cannot, warned once).

        Parameters
        ----------
        input : torch.Tensor
            As the torch.nn module takes it.
        *args, **kwargs
            The torch.nn module's further forward arguments (ConvTranspose2d's ``output_size``).

        Returns
        -------
        Any
            What the torch.nn module returns.
        """
        reason = self._fallback(input)
        if reason is not None:
            _warn_fallback(self, reason)  # type: ignore[arg-type]
            return super().forward(input, *args, **kwargs)  # type: ignore[misc]
        return self._compute(input, *args, **kwargs)


class _ConvertedConv(_Converted):
    """Conv modules: checked at construction; a call falls back for its parameters too."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _require_supported(self)  # type: ignore[arg-type]

    def _fallback(self, input: torch.Tensor) -> str | None:
        reason = _fallback_reason(input, self.weight, self.bias)
        if reason is None and input.dtype != self.weight.dtype:
            reason = f"input dtype {input.dtype} with weight dtype {self.weight.dtype}"
        return reason


class Conv2d(_ConvertedConv, torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by convext (see :func:`conv2d`).

    Same constructor, parameters and ``state_dict`` keys as ``torch.nn.Conv2d``.

    Raises
    ------
    ValueError
        At construction, for ``padding_mode`` other than "zeros", a ``padding``
        string with a stride, or parameters that are not float32/float64 on the CPU.
    """

    def _compute(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if (not isinstance(self.padding, str) and input.dim() == 4 and input.shape[0] > 0
                and _direct(input, self.weight, self.bias)):
            # eager inference: the module's attributes are already int pairs, straight to the engine
            bias = None if self.bias is None else _np(self.bias)
            out = _tensor(_cx._core.conv2d(_np(input), _np(self.weight), bias, self.stride, self.padding,
                                           self.dilation, self.groups))
            return _like_input(input, out)
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvertedConv, torch.nn.Conv1d):
    """``torch.nn.Conv1d`` computed by convext as a 1 x kW 2-D correlation (see :func:`conv1d`).

    Raises
    ------
    ValueError
        At construction, for ``padding_mode`` other than "zeros" or parameters
        that are not float32/float64 on the CPU.
    """

    def _fallback(self, input: torch.Tensor) -> str | None:
        reason = super()._fallback(input)
        return reason if reason is not None or input.dim() in (2, 3) else f"a {input.dim()}-d input"

    def _compute(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvertedConv, torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` computed by convext (see :func:`conv_transpose2d`).

    ``forward(input, output_size=None)``: ``output_size`` picks ``output_padding``, as in PyTorch.

    Raises
    ------
    ValueError
        At construction, for parameters that are not float32/float64 on the CPU.
    """

    def _compute(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:  # type: ignore[override]
        padding = tuple(self.padding)  # ConvTranspose2d's padding is never a string
        output_padding = self._output_padding(input, output_size, list(self.stride), list(padding),  # type: ignore[arg-type]
                                              list(self.kernel_size), 2, list(self.dilation))
        return conv_transpose2d(input, self.weight, self.bias, self.stride, padding, tuple(output_padding),  # type: ignore[arg-type]
                                self.groups, self.dilation)


class MaxPool2d(_Converted, torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` computed by convext (same constructor; see :func:`max_pool2d`)."""

    def _compute(self, input: torch.Tensor) -> Any:  # type: ignore[override]
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)


class AvgPool2d(_Converted, torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` computed by convext (same constructor, ``divisor_override`` included)."""

    def _compute(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                          self.divisor_override)


class AdaptiveMaxPool2d(_Converted, torch.nn.AdaptiveMaxPool2d):
    """``torch.nn.AdaptiveMaxPool2d`` computed by convext (same constructor; see :func:`adaptive_max_pool2d`)."""

    def _compute(self, input: torch.Tensor) -> Any:  # type: ignore[override]
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)


class AdaptiveAvgPool2d(_Converted, torch.nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` computed by convext (same constructor; see :func:`adaptive_avg_pool2d`)."""

    def _compute(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return adaptive_avg_pool2d(input, self.output_size)


class ReLU(_Converted, torch.nn.ReLU):
    """``torch.nn.ReLU`` computed by convext (same constructor, ``inplace`` honoured; see :func:`relu`)."""

    def _compute(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not self.inplace and input.numel() > 0 and _direct(input):  # eager inference: straight to the engine
            return _like_input(input, _tensor(_cx._core.relu(_np(input))))
        return relu(input, self.inplace)


# Exact torch.nn types that convert() swaps (subclasses may override forward,
# so they are left alone).
_REPLACEMENTS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.Conv2d: Conv2d,
    torch.nn.MaxPool2d: MaxPool2d,
    torch.nn.AvgPool2d: AvgPool2d,
    torch.nn.ReLU: ReLU,
    torch.nn.Conv1d: Conv1d,
    torch.nn.ConvTranspose2d: ConvTranspose2d,
    torch.nn.AdaptiveAvgPool2d: AdaptiveAvgPool2d,
    torch.nn.AdaptiveMaxPool2d: AdaptiveMaxPool2d,
}


# conv, pooling and activation modules convext has no kernel for: convert() names each it meets.
_NOT_CONVERTED: tuple[type[torch.nn.Module], ...] = (
    torch.nn.Conv3d, torch.nn.ConvTranspose1d, torch.nn.ConvTranspose3d,
    torch.nn.MaxPool1d, torch.nn.MaxPool3d, torch.nn.AvgPool1d, torch.nn.AvgPool3d, torch.nn.LPPool1d, torch.nn.LPPool2d,
    torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool3d, torch.nn.AdaptiveMaxPool1d, torch.nn.AdaptiveMaxPool3d,
    torch.nn.FractionalMaxPool2d, torch.nn.MaxUnpool2d,
    torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.PReLU, torch.nn.RReLU, torch.nn.ELU, torch.nn.SELU, torch.nn.CELU,
    torch.nn.GELU, torch.nn.SiLU, torch.nn.Mish, torch.nn.Hardswish, torch.nn.Hardsigmoid, torch.nn.Hardtanh,
    torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.Softplus,
)


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

    Modules whose exact type is ``torch.nn.Conv1d``, ``Conv2d``,
    ``ConvTranspose2d``, ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveMaxPool2d``,
    ``AdaptiveAvgPool2d`` or ``ReLU`` are replaced, at any depth, by the
    classes of this module. The replacements share the original ``Parameter``
    objects, so weights are kept and existing optimizers keep working.
    Configurations convext cannot compute (``padding_mode`` other than
    "zeros", a ``padding`` string with a stride, parameters off the CPU or
    not float32/float64) are left as they are; they and every other conv,
    pooling or activation module left on torch are named in one
    :class:`ConversionWarning`. At run time, calls convext does not compute
    (other dtypes or devices, autocast) run on stock torch, with one warning
    per module class and reason.

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
            if type(module) in _NOT_CONVERTED:
                skipped.append(f"{name or '<model>'} ({type(module).__name__}: no convext kernel)")
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

