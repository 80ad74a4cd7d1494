"""A thin numpy layer API with explicit backward passes.

Layers hold hyperparameters, parameters and whatever their backward pass needs
from the last forward pass; the maths lives in convext's functional operations
(:func:`convext.conv2d`, :func:`convext.conv2d_backward`, ...). Every layer
follows PyTorch's conventions (NCHW layout, weight shapes, default
initialisation, ``state_dict`` keys), so a model built here with the same
weights as the equivalent ``torch.nn`` model computes the same outputs, loss
and gradients.

Examples
--------
>>> import numpy as np
>>> from convext import nn
>>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(),
...                       nn.Flatten(), nn.Linear(4 * 8 * 8, 10, rng=1))
>>> x = np.zeros((2, 1, 8, 8), dtype=np.float32)
>>> loss_fn = nn.CrossEntropyLoss()
>>> loss = loss_fn(model(x), np.array([3, 5]))
>>> _ = model.backward(loss_fn.backward())   # gradients land in p.grad
"""
from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from os import PathLike
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

import convext as _cx
from convext._args import IntPair
from convext._args import float_dtype as _float_dtype
from convext._args import pair as _pair
from convext._args import positive_int as _positive_int
from convext.plan import Conv2dPlan

__all__ = [
    "Parameter",
    "Module",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "Flatten",
    "Linear",
    "Sequential",
    "CrossEntropyLoss",
]

RngLike = Union[np.random.Generator, int, None]


def _kaiming_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype: np.dtype
) -> NDArray[np.floating]:
    """Draw from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    This is PyTorch's default for Conv2d/Linear weights, kaiming_uniform_ with
    a = sqrt(5): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3) and
    bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in). PyTorch draws the bias
    from the same bound, so one helper serves both.
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Parameter:
    """A trainable array and its gradient.

    Parameters
    ----------
    data : array_like
        Initial value; copied into a new writable array.

    Attributes
    ----------
    data : numpy.ndarray
        The value, updated in place by the optimizers of :mod:`convext.optim`.
    grad : numpy.ndarray or None
        The gradient, same shape and dtype as ``data``. Starts at zero;
        ``Module.backward`` adds into it, ``zero_grad`` resets it. Optimizers
        skip parameters whose ``grad`` is None.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: ArrayLike) -> None:
        self.data: NDArray[np.floating] = np.array(data)
        self.grad: NDArray[np.floating] | None = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``data``."""
        return self.data.dtype

    def accumulate(self, grad: NDArray[np.floating]) -> None:
        """Add ``grad`` into ``self.grad`` (creating it if it is None).

        Parameters
        ----------
        grad : numpy.ndarray
            Gradient of the same shape as ``data``.

        Raises
        ------
        ValueError
            If the shapes differ.
        """
        if grad.shape != self.data.shape:
            raise ValueError(f"gradient shape {grad.shape} does not match parameter shape {self.data.shape}")
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype)
        else:
            self.grad += grad

    def zero_grad(self) -> None:
        """Set the gradient to zero (in place, if it exists)."""
        if self.grad is None:
            self.grad = np.zeros_like(self.data)
        else:
            self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of all layers.

    Subclasses call ``super().__init__()`` first, then assign their
    :class:`Parameter` and sub-:class:`Module` attributes; assignment order is
    the order of :meth:`parameters` and of the ``state_dict`` keys, as in
    PyTorch. They implement :meth:`forward` and :meth:`backward`.

    Attributes
    ----------
    training : bool
        True after :meth:`train` (the default), False after :meth:`eval`.
    """

    _parameters: OrderedDict[str, Parameter]
    _modules: OrderedDict[str, Module]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning attributes")
        modules = self.__dict__["_modules"]
        # Re-assigning keeps the name's place in its registry (as in PyTorch).
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # -- computation -------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Compute the layer's output and keep what :meth:`backward` needs.

        Parameters
        ----------
        x : numpy.ndarray
            Input batch.

        Returns
        -------
        numpy.ndarray
            Output batch.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Back-propagate through the last :meth:`forward` call.

        Adds the parameter gradients into each ``Parameter.grad``.

        Parameters
        ----------
        grad_out : numpy.ndarray
            Gradient of the loss with respect to the last output.

        Returns
        -------
        numpy.ndarray
            Gradient of the loss with respect to the last input.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _saved(self, attr: str) -> Any:
        """Return what forward saved under ``attr``; RuntimeError if forward never ran."""
        value = self.__dict__.get(attr)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return value

    # -- traversal ---------------------------------------------------------
    def children(self) -> Iterator[Module]:
        """Iterate over the direct sub-modules, in definition order.

        Returns
        -------
        iterator of Module
        """
        return iter(self._modules.values())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Iterate over ``(name, module)`` for this module and all descendants.

        Parameters
        ----------
        prefix : str
            Name given to this module (``""`` by default).

        Returns
        -------
        iterator of (str, Module)
        """
        seen: set[int] = set()

        def walk(mod: Module, pre: str) -> Iterator[tuple[str, Module]]:
            if id(mod) in seen:
                return
            seen.add(id(mod))
            yield pre, mod
            for name, child in mod._modules.items():
                yield from walk(child, f"{pre}.{name}" if pre else name)

        return walk(self, prefix)

    def modules(self) -> Iterator[Module]:
        """Iterate over this module and all descendants.

        Returns
        -------
        iterator of Module
        """
        return (m for _, m in self.named_modules())

    def _all_named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        # Every (qualified name, parameter) pair, shared parameters repeated: the
        # state_dict lists each name, parameters() lists each object once.
        for name, p in self._parameters.items():
            yield (f"{prefix}{name}", p)
        for name, child in self._modules.items():
            yield from child._all_named_parameters(f"{prefix}{name}.")

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Iterate over ``(name, parameter)``: own parameters first, then each child's.

        Names are PyTorch's ``state_dict`` keys (``"0.weight"`` inside a
        Sequential). A parameter shared between layers is listed once.

        Returns
        -------
        iterator of (str, Parameter)
        """
        seen: set[int] = set()
        for name, p in self._all_named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def parameters(self) -> list[Parameter]:
        """All parameters in definition order (weight before bias), as in PyTorch.

        Returns
        -------
        list of Parameter
        """
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to zero."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants.

        Parameters
        ----------
        mode : bool
            True for training, False for evaluation.

        Returns
        -------
        Module
            ``self``.
        """
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``).

        Returns
        -------
        Module
            ``self``.
        """
        return self.train(False)

    # -- persistence -------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, NDArray[np.floating]]:
        """Copies of all parameter values, keyed like PyTorch's ``state_dict``.

        Returns
        -------
        collections.OrderedDict of str to numpy.ndarray
        """
        return OrderedDict((name, p.data.copy()) for name, p in self._all_named_parameters())

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike], strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy values into the parameters (in place, keeping their dtype).

        Parameters
        ----------
        state_dict : mapping of str to array_like
            For example the result of :meth:`state_dict`, of ``torch``'s
            ``state_dict`` converted with ``.numpy()``, or a loaded ``.npz``.
        strict : bool
            If True, missing or unexpected keys are an error.

        Returns
        -------
        (list of str, list of str)
            The missing and the unexpected keys.

        Raises
        ------
        KeyError
            If ``strict`` and keys are missing or unexpected.
        ValueError
            If a value's shape differs from its parameter's.
        """
        own = OrderedDict(self._all_named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if value.shape != p.data.shape:
                raise ValueError(f"load_state_dict: {name!r} has shape {value.shape}, the parameter has {p.data.shape}")
            np.copyto(p.data, value, casting="same_kind")
        return missing, unexpected

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`state_dict` to an ``.npz`` file.

        Parameters
        ----------
        path : str or path-like
            Destination; numpy appends ``.npz`` if the name lacks it.
        """
        np.savez(path, **self.state_dict())  # type: ignore[arg-type]

    def load(self, path: str | PathLike[str], strict: bool = True) -> Module:
        """Load parameters saved by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            An ``.npz`` file.
        strict : bool
            Passed to :meth:`load_state_dict`.

        Returns
        -------
        Module
            ``self``.

        Raises
        ------
        KeyError, ValueError
            As :meth:`load_state_dict`.
        """
        with np.load(path, allow_pickle=False) as data:
            self.load_state_dict({k: data[k] for k in data.files}, strict=strict)
        return self

    # -- display -----------------------------------------------------------
    def extra_repr(self) -> str:
        """The hyperparameters shown inside ``repr(module)``.

        Returns
        -------
        str
        """
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Conv2d(Module):
    """2-D convolution (cross-correlation) layer, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels C of the input and K of the output; both divisible by ``groups``.
    kernel_size, stride, padding, dilation : int or (int, int)
        As in PyTorch; padding is zero padding.
    groups : int
        Number of channel groups.
    bias : bool
        Whether to add a learned bias.
    dtype : numpy dtype
        float32 (default) or float64.
    rng : numpy.random.Generator, int or None
        Source (or seed) of the Kaiming-uniform initialisation.

    Attributes
    ----------
    weight : Parameter
        Shape (out_channels, in_channels // groups, kH, kW).
    bias : Parameter or None
        Shape (out_channels,).

    Raises
    ------
    TypeError
        For non-integer sizes or a dtype other than float32/float64.
    ValueError
        For sizes < 1, negative padding, or channels not divisible by groups.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
        rng: RngLike = None,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int(in_channels, "Conv2d: in_channels")
        self.out_channels = _positive_int(out_channels, "Conv2d: out_channels")
        self.groups = _positive_int(groups, "Conv2d: groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups ({groups})"
            )
        self.kernel_size = _pair(kernel_size, "Conv2d: kernel_size")
        self.stride = _pair(stride, "Conv2d: stride")
        self.padding = _pair(padding, "Conv2d: padding")
        self.dilation = _pair(dilation, "Conv2d: dilation")
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"Conv2d: {name} must be >= 1, got {getattr(self, name)}")
        if min(self.padding) < 0:
            raise ValueError(f"Conv2d: padding must be >= 0, got {self.padding}")
        dt = _float_dtype(dtype, "Conv2d")
        gen = np.random.default_rng(rng)
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        self.weight = Parameter(_kaiming_uniform(gen, (out_channels, in_channels // groups, kh, kw), fan_in, dt))
        self.bias = Parameter(_kaiming_uniform(gen, (out_channels,), fan_in, dt)) if bias else None
        self._x: NDArray[np.floating] | None = None
        self._plans: OrderedDict[tuple[Any, ...], Conv2dPlan] = OrderedDict()

    def _geometry(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    _MAX_PLANS = 8  # input shapes remembered (a training loop sees one or two)

    def _plan(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Conv2dPlan:
        """The plan for inputs of this shape and dtype (built once, then reused)."""
        key = (shape, dtype.str, self.weight.data.shape)
        plan = self._plans.get(key)
        if plan is None:
            plan = Conv2dPlan(shape, self.weight.data.shape, dtype=dtype, **self._geometry())
            self._plans[key] = plan
            if len(self._plans) > self._MAX_PLANS:
                self._plans.popitem(last=False)
        return plan

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Convolve ``x`` (N, C, H, W); see :func:`convext.conv2d`.

        Parameters
        ----------
        x : numpy.ndarray
            Input of the parameters' dtype.

        Returns
        -------
        numpy.ndarray
            Shape (N, out_channels, H_out, W_out).
        """
        bias = None if self.bias is None else self.bias.data
        xa = np.asarray(x)
        if xa.dtype != self.weight.data.dtype or xa.ndim != 4:  # the functional op's message
            return _cx.conv2d(xa, self.weight.data, bias, **self._geometry())
        y = self._plan(xa.shape, xa.dtype).forward(xa, self.weight.data, bias)
        self._x = np.array(xa, copy=True)  # a copy: mutating x before backward must not change dW
        return y

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Add dL/dW (and dL/db) into the parameters' ``.grad`` and return dL/dx.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output), the shape of the last output.

        Returns
        -------
        numpy.ndarray
            dL/dx, the shape of the last input.

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        x = self._saved("_x")
        grad_x, grad_w, grad_b = self._plan(x.shape, x.dtype).backward(grad_out, x, self.weight.data)
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        return grad_x

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class ConvTranspose2d(Conv2d):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``.

    The adjoint of a :class:`Conv2d` from ``out_channels`` to ``in_channels``
    with the same geometry, so one :class:`convext.Conv2dPlan` of that
    convolution serves all three directions: the forward is its input
    gradient (the seed's full convolution), dL/dx its forward correlation,
    dL/dW its weight gradient with the roles of x and dL/dy swapped.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output; both divisible by ``groups``.
    kernel_size, stride, padding, dilation : int or (int, int)
        As in PyTorch.
    output_padding : int or (int, int)
        Rows / columns added at the bottom / right; smaller than ``stride``.
    groups : int
        Number of channel groups.
    bias : bool
        Whether to add a learned bias.
    dtype : numpy dtype
        float32 (default) or float64.
    rng : numpy.random.Generator, int or None
        Source (or seed) of the Kaiming-uniform initialisation (PyTorch's fan-in).

    Attributes
    ----------
    weight : Parameter
        Shape (in_channels, out_channels // groups, kH, kW), PyTorch's layout.
    bias : Parameter or None
        Shape (out_channels,).

    Raises
    ------
    TypeError, ValueError
        As :class:`Conv2d`; ValueError for an ``output_padding`` not smaller
        than ``stride``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        output_padding: IntPair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntPair = 1,
        dtype: DTypeLike = np.float32,
        rng: RngLike = None,
    ) -> None:
        # the convolution this layer is the adjoint of: out_channels -> in_channels, whose
        # weight (in_channels, out_channels // groups, kH, kW) is this layer's, fan-in included
        super().__init__(out_channels, in_channels, kernel_size, stride, padding, dilation, groups, False, dtype, rng)
        self.in_channels, self.out_channels = self.out_channels, self.in_channels
        self.output_padding = _pair(output_padding, "ConvTranspose2d: output_padding")
        if min(self.output_padding) < 0 or any(o >= s for o, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding must be >= 0 and smaller than stride {self.stride}, "
                             f"got {self.output_padding}")
        if bias:
            kh, kw = self.kernel_size
            fan_in = out_channels // groups * kh * kw
            # a stream of its own (a seed would otherwise repeat the weight's first draws)
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(
                None if rng is None else [rng, 1])
            self.bias = Parameter(_kaiming_uniform(gen, (out_channels,), fan_in, self.weight.data.dtype))

    def _conv_plan(self, x: NDArray[np.floating]) -> Conv2dPlan:
        """The plan of the adjoint convolution, whose output has ``x``'s shape."""
        shape = _cx.conv_transpose2d_output_size(x.shape, self.weight.data.shape, self.stride, self.padding,
                                                 self.output_padding, self.groups, self.dilation)
        return self._plan(shape, x.dtype)

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Transposed-convolve ``x`` (N, C_in, H, W); see :func:`convext.conv_transpose2d`.

        Parameters
        ----------
        x : numpy.ndarray
            Input of the parameters' dtype.

        Returns
        -------
        numpy.ndarray
            Shape (N, out_channels, H_out, W_out).
        """
        bias = None if self.bias is None else self.bias.data
        xa = np.asarray(x)
        if xa.dtype != self.weight.data.dtype or xa.ndim != 4:  # the functional op's message
            return _cx.conv_transpose2d(xa, self.weight.data, bias, self.stride, self.padding,
                                        self.output_padding, self.groups, self.dilation)
        y = self._conv_plan(xa).input_grad(xa, self.weight.data)
        if bias is not None:
            y += bias[:, None, None]
        self._x = np.array(xa, copy=True)
        return y

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Add dL/dW (and dL/db) into the parameters' ``.grad`` and return dL/dx.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output), the shape of the last output.

        Returns
        -------
        numpy.ndarray
            dL/dx, the shape of the last input.

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        x = self._saved("_x")
        plan = self._conv_plan(x)
        gy = np.asarray(grad_out)
        self.weight.accumulate(plan.weight_grad(x, gy))
        if self.bias is not None:
            self.bias.accumulate(gy.sum(axis=(0, 2, 3), dtype=gy.dtype))
        return plan.forward(gy, self.weight.data)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        return s


class _Pool2d(Module):
    """Shared hyperparameter handling of the pooling layers."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None, padding: IntPair, ceil_mode: bool) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, f"{name}: kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, f"{name}: stride")
        self.padding = _pair(padding, f"{name}: padding")
        self.ceil_mode = bool(ceil_mode)
        self._x: NDArray[np.floating] | None = None

    def _geometry(self) -> dict[str, Any]:
        """Keyword arguments of the functional op (subclasses add theirs)."""
        return {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
        }

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """2-D max pooling, as ``torch.nn.MaxPool2d``.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int) or None
        Window step; defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit negative-infinity padding, at most half the kernel.
    dilation : int or (int, int)
        Spacing of the window taps.
    ceil_mode : bool
        Round the output size up instead of down.

    Raises
    ------
    TypeError
        For non-integer sizes.
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = _pair(dilation, "MaxPool2d: dilation")
        self._indices: NDArray[np.integer] | None = None

    def _geometry(self) -> dict[str, Any]:
        return {**super()._geometry(), "dilation": self.dilation}

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Max-pool ``x`` (N, C, H, W); see :func:`convext.max_pool2d`.

        Parameters
        ----------
        x : numpy.ndarray
            Input batch.

        Returns
        -------
        numpy.ndarray
            Pooled batch.
        """
        out, self._indices = _cx.max_pool2d(x, return_indices=True, **self._geometry())
        self._x = x
        return out

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Route ``grad_out`` to the arg-max of each window.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output).

        Returns
        -------
        numpy.ndarray
            dL/dx.

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        x = self._saved("_x")
        return _cx.max_pool2d_backward(grad_out, x, indices=self._indices, **self._geometry())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_Pool2d):
    """2-D average pooling, as ``torch.nn.AvgPool2d``.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int) or None
        Window step; defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit zero padding, at most half the kernel.
    ceil_mode : bool
        Round the output size up instead of down.
    count_include_pad : bool
        Whether padded zeros count in the divisor.

    Raises
    ------
    TypeError
        For non-integer sizes.
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self._shape: tuple[int, ...] | None = None

    def _geometry(self) -> dict[str, Any]:
        return {**super()._geometry(), "count_include_pad": self.count_include_pad}

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Average-pool ``x`` (N, C, H, W); see :func:`convext.avg_pool2d`.

        Parameters
        ----------
        x : numpy.ndarray
            Input batch.

        Returns
        -------
        numpy.ndarray
            Pooled batch.
        """
        out = _cx.avg_pool2d(x, **self._geometry())
        self._shape = tuple(np.shape(x))
        return out

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Spread ``grad_out`` evenly over each window.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output).

        Returns
        -------
        numpy.ndarray
            dL/dx.

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        shape = self._saved("_shape")
        return _cx.avg_pool2d_backward(grad_out, shape, **self._geometry())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}"


class ReLU(Module):
    """Rectified linear unit, ``max(x, 0)``, as ``torch.nn.ReLU``."""

    def __init__(self) -> None:
        super().__init__()
        self._x: NDArray[np.floating] | None = None

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Apply ``max(x, 0)``.

        Parameters
        ----------
        x : numpy.ndarray
            Input of any shape.

        Returns
        -------
        numpy.ndarray
            Same shape and dtype.
        """
        y = _cx.relu(x)
        self._x = np.array(x, copy=True)  # a copy: mutating x before backward must not change dx
        return y

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Pass ``grad_out`` where the input was positive, 0 elsewhere.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output).

        Returns
        -------
        numpy.ndarray
            dL/dx.

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        return _cx.relu_backward(grad_out, self._saved("_x"))


class Flatten(Module):
    """Flatten dimensions ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``.

    Parameters
    ----------
    start_dim, end_dim : int
        First and last dimension to flatten (negative counts from the end).
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = operator.index(start_dim)
        self.end_dim = operator.index(end_dim)
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Reshape ``x`` with the selected dimensions merged.

        Parameters
        ----------
        x : numpy.ndarray
            Input.

        Returns
        -------
        numpy.ndarray
            A view of ``x`` where possible.

        Raises
        ------
        ValueError
            If the dimensions are out of range for ``x``.
        """
        x = np.asarray(x)
        nd = max(x.ndim, 1)
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < nd:
            raise ValueError(f"Flatten: dims {self.start_dim}..{self.end_dim} are out of range for a {x.ndim}-d input")
        self._shape = x.shape
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Reshape ``grad_out`` back to the last input's shape.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output).

        Returns
        -------
        numpy.ndarray
            dL/dx.

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        shape = self._saved("_shape")
        grad = np.asarray(grad_out)
        nd = max(len(shape), 1)
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        want = tuple(shape[:start]) + (int(np.prod(shape[start : end + 1], dtype=np.int64)),) + tuple(shape[end + 1 :])
        if grad.shape != want:
            raise ValueError(f"Flatten: grad_out must have the last output's shape {want}, got {grad.shape}")
        return np.reshape(grad, shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Linear(Module):
    """Fully connected layer ``y = x W^T + b``, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last input and output dimension.
    bias : bool
        Whether to add a learned bias.
    dtype : numpy dtype
        float32 (default) or float64.
    rng : numpy.random.Generator, int or None
        Source (or seed) of the Kaiming-uniform initialisation.

    Attributes
    ----------
    weight : Parameter
        Shape (out_features, in_features).
    bias : Parameter or None
        Shape (out_features,).

    Raises
    ------
    TypeError
        For non-integer sizes or a dtype other than float32/float64.
    ValueError
        For sizes < 1.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
        rng: RngLike = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "Linear: in_features")
        self.out_features = _positive_int(out_features, "Linear: out_features")
        dt = _float_dtype(dtype, "Linear")
        gen = np.random.default_rng(rng)
        self.weight = Parameter(_kaiming_uniform(gen, (out_features, in_features), in_features, dt))
        self.bias = Parameter(_kaiming_uniform(gen, (out_features,), in_features, dt)) if bias else None
        self._x: NDArray[np.floating] | None = None

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Compute ``x @ W.T + b`` over the last dimension.

        Parameters
        ----------
        x : numpy.ndarray
            Shape (..., in_features), the parameters' dtype.

        Returns
        -------
        numpy.ndarray
            Shape (..., out_features).

        Raises
        ------
        TypeError
            If ``x`` has another dtype than the parameters.
        ValueError
            If the last dimension is not ``in_features``.
        """
        x = np.asarray(x)
        if x.dtype != self.weight.dtype:
            raise TypeError(f"Linear: x has dtype {x.dtype} but weight has dtype {self.weight.dtype}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: x has shape {x.shape}, expected last dimension {self.in_features}")
        self._x = np.array(x, copy=True)  # a copy: mutating x before backward must not change dW
        out = x @ self.weight.data.T
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Add dL/dW (and dL/db) into the parameters' ``.grad`` and return dL/dx.

        Parameters
        ----------
        grad_out : numpy.ndarray
            Shape (..., out_features).

        Returns
        -------
        numpy.ndarray
            Shape (..., in_features).

        Raises
        ------
        RuntimeError
            If called before :meth:`forward`.
        """
        x = self._saved("_x")
        want = x.shape[:-1] + (self.out_features,)
        if np.shape(grad_out) != want:
            raise ValueError(f"Linear: grad_out must have the last output's shape {want}, got {np.shape(grad_out)}")
        g2 = np.asarray(grad_out, dtype=self.weight.dtype).reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        self.weight.accumulate(g2.T @ x2)
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        return (g2 @ self.weight.data).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """A chain of modules; ``backward`` runs the chain in reverse.

    Parameters
    ----------
    *layers : Module
        The layers, registered under the names ``"0"``, ``"1"``, ...

    Raises
    ------
    TypeError
        If a layer is not a :class:`Module`.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer: Module) -> Sequential:
        """Add ``layer`` at the end.

        Parameters
        ----------
        layer : Module
            The layer.

        Returns
        -------
        Sequential
            ``self``.

        Raises
        ------
        TypeError
            If ``layer`` is not a :class:`Module`.
        """
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: expected a Module, got {type(layer).__name__}")
        setattr(self, str(len(self._modules)), layer)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def forward(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """Apply each layer in turn.

        Parameters
        ----------
        x : numpy.ndarray
            Input of the first layer.

        Returns
        -------
        numpy.ndarray
            Output of the last layer.
        """
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, grad_out: NDArray[np.floating]) -> NDArray[np.floating]:
        """Back-propagate through each layer, last to first.

        Parameters
        ----------
        grad_out : numpy.ndarray
            dL/d(output of the last layer).

        Returns
        -------
        numpy.ndarray
            dL/d(input of the first layer).
        """
        for layer in reversed(self._modules.values()):
            grad_out = layer.backward(grad_out)
        return grad_out


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits and integer class labels, as ``torch.nn.CrossEntropyLoss``.

    ``loss = fn(logits, labels)`` computes ``-mean(log_softmax(logits)[i, labels[i]])``
    with a numerically stable log-softmax; ``fn.backward()`` returns
    d loss / d logits = ``(softmax(logits) - onehot(labels)) / N``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._probs: NDArray[np.floating] | None = None
        self._labels: NDArray[np.intp] | None = None

    def forward(self, logits: NDArray[np.floating], labels: ArrayLike) -> float:  # type: ignore[override]
        """Compute the mean loss and keep the softmax for :meth:`backward`.

        Parameters
        ----------
        logits : numpy.ndarray
            Shape (N, num_classes), float32 or float64.
        labels : array_like of int
            Shape (N,), values in ``[0, num_classes)``.

        Returns
        -------
        float
            The mean loss.

        Raises
        ------
        TypeError
            If ``logits`` is not float32/float64 or ``labels`` is not integer.
        ValueError
            For wrong shapes or labels out of range.
        """
        logits = np.asarray(logits)
        labels = np.asarray(labels)
        _float_dtype(logits.dtype, "CrossEntropyLoss: logits")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss: labels must be integers, got dtype {labels.dtype}")
        if logits.ndim != 2 or logits.shape[0] == 0 or labels.shape != logits.shape[:1]:
            raise ValueError(
                f"CrossEntropyLoss: expected logits (N, C) with N >= 1 and labels (N,), "
                f"got {logits.shape} and {labels.shape}"
            )
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise ValueError(f"CrossEntropyLoss: labels must lie in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(labels))
        self._probs = np.exp(log_probs)
        self._labels = labels.astype(np.intp)
        return float(-log_probs[rows, labels].mean())

    def backward(self, grad_out: float = 1.0) -> NDArray[np.floating]:  # type: ignore[override]
        """Return d loss / d logits of the last call, scaled by ``grad_out``.

        Parameters
        ----------
        grad_out : float
            d(final objective)/d loss, 1 by default.

        Returns
        -------
        numpy.ndarray
            Shape (N, num_classes), the logits' dtype.

        Raises
        ------
        RuntimeError
            If called before the loss was computed.
        """
        probs = self._saved("_probs")
        labels = self._saved("_labels")
        grad = probs.copy()
        grad[np.arange(len(labels)), labels] -= 1
        grad *= grad.dtype.type(grad_out / len(labels))
        return grad
