"""Optimizers for :class:`convext.nn.Parameter` lists, with PyTorch's update rules.

Each optimizer updates ``p.data`` in place from ``p.grad`` and skips parameters
whose ``grad`` is None, exactly as ``torch.optim.SGD`` / ``torch.optim.Adam``
do with their default (non-foreach, non-fused) settings.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convext.nn import Parameter

__all__ = ["Optimizer", "SGD", "Adam"]


def _non_negative(value: float, name: str) -> float:
    v = float(value)
    if not v >= 0.0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


class Optimizer:
    """Base class: holds the parameters and the per-parameter state.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update, e.g. ``model.parameters()``.
    lr : float
        Learning rate (may be changed later through the ``lr`` attribute).

    Raises
    ------
    TypeError
        If an element of ``params`` is not a :class:`~convext.nn.Parameter`.
    ValueError
        If ``params`` is empty or ``lr`` is negative.
    """

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params: list[Parameter] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: expected convext.nn.Parameter, got {type(p).__name__}")
        self.lr = _non_negative(lr, "lr")
        # One state dict per parameter, in the order of self.params.
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p.data, p.grad, state)

    def _update(self, param: NDArray[np.floating], grad: NDArray[np.floating], state: dict[str, Any]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    With ``g = grad + weight_decay * p``: if ``momentum`` is non-zero,
    ``buf = g`` on the first step and ``buf = momentum * buf + (1 - dampening) * g``
    afterwards, then ``g = buf`` (or ``g + momentum * buf`` with Nesterov);
    finally ``p -= lr * g``.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update.
    lr : float
        Learning rate.
    momentum : float
        Momentum factor (0 disables momentum).
    weight_decay : float
        L2 penalty added to the gradient.
    dampening : float
        Dampening of the momentum.
    nesterov : bool
        Use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).

    Raises
    ------
    ValueError
        For negative hyperparameters or an invalid Nesterov configuration.
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _non_negative(momentum, "momentum")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def _update(self, param: NDArray[np.floating], grad: NDArray[np.floating], state: dict[str, Any]) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, copy=True)
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient).

    With ``g = grad + weight_decay * p`` and step count ``t``:
    ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * g**2``,
    ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.
    With ``amsgrad`` the running maximum of ``v`` replaces ``v`` in the denominator.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update.
    lr : float
        Learning rate.
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float
        Added to the denominator for numerical stability.
    weight_decay : float
        L2 penalty added to the gradient.
    amsgrad : bool
        Use the AMSGrad variant.

    Raises
    ------
    ValueError
        For hyperparameters out of range.
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr)
        beta1, beta2 = (float(b) for b in betas)
        for i, b in enumerate((beta1, beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Adam: betas[{i}] must lie in [0, 1), got {b}")
        self.betas = (beta1, beta2)
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.amsgrad = bool(amsgrad)

    def _update(self, param: NDArray[np.floating], grad: NDArray[np.floating], state: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # PyTorch: exp_avg.lerp_(grad, 1 - beta1), i.e. exp_avg += (grad - exp_avg) * (1 - beta1).
        exp_avg += (grad - exp_avg) * (1.0 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * grad * grad
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        else:
            second = exp_avg_sq
        bias_correction1 = 1.0 - beta1**step
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
        denom = np.sqrt(second) / bias_correction2_sqrt + self.eps
        param -= (self.lr / bias_correction1) * exp_avg / denom
