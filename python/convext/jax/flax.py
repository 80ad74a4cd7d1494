"""``flax.linen`` drop-ins computed by convext: ``Conv``, ``max_pool``, ``avg_pool``.

One-line swap: ``from convext.jax.flax import Conv`` in place of
``from flax.linen import Conv``. :class:`Conv` subclasses ``flax.linen.Conv``:
same fields, same parameters (``kernel`` HWIO, ``bias``), NHWC inputs, so a
checkpoint of one loads into the other. Calls convext cannot compute (not
2-D, ``input_dilation``, ``mask``, 'CIRCULAR'/'CAUSAL' padding, a non-float
dtype) go to ``flax.linen.Conv`` itself, with one warning per reason.

Needs Flax (``pip install flax``).
"""
from __future__ import annotations

import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import convext.jax as _cj

__all__ = ["Conv", "max_pool", "avg_pool", "FallbackWarning"]

_WARNED: set[str] = set()


class FallbackWarning(UserWarning):
    """A layer handed a call convext cannot compute to stock Flax."""


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    if v is None:
        return (1,) * n
    if isinstance(v, int):
        return (v,) * n
    return tuple(int(e) for e in v)


def _unsupported(m: nn.Conv, x: jax.Array) -> str | None:
    if len(tuple(m.kernel_size)) != 2:
        return "only 2-D convolutions"
    if _tuple(m.input_dilation, 2) != (1, 1):
        return "input_dilation"
    if m.mask is not None:
        return "mask"
    if isinstance(m.padding, str) and m.padding.upper() not in ("SAME", "VALID"):
        return f"padding {m.padding!r}"
    dtype = m.dtype or jnp.result_type(x, m.param_dtype)
    if jnp.dtype(dtype) not in (jnp.float32, jnp.float64):
        return f"dtype {dtype}"
    return None


class Conv(nn.Conv):
    """``flax.linen.Conv`` with convext computing the convolution (NHWC, HWIO kernel).

    Same fields and parameters as ``flax.linen.Conv``; see its documentation.
    """

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:  # type: ignore[override]
        """Apply the convolution.

        Parameters
        ----------
        inputs : jax.Array
            ``(*batch, H, W, C)``; no batch axis or several are allowed.

        Returns
        -------
        jax.Array
            ``(*batch, Ho, Wo, features)``.
        """
        reason = _unsupported(self, inputs)
        if reason is not None:
            if reason not in _WARNED:
                _WARNED.add(reason)
                warnings.warn(f"convext.jax.flax.Conv: {reason} is not supported; using flax.linen.Conv", FallbackWarning, stacklevel=2)
            return super().__call__(inputs)
        in_features = inputs.shape[-1]
        kernel_shape = tuple(self.kernel_size) + (in_features // self.feature_group_count, self.features)
        kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        batch = inputs.shape[:-3]
        x = inputs.reshape((-1,) + inputs.shape[-3:])
        padding = self.padding
        if isinstance(padding, int) or isinstance(padding, str):
            pass
        else:
            padding = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        y = _cj.conv2d(
            x,
            kernel,
            stride=_tuple(self.strides, 2),
            padding=padding,
            dilation=_tuple(self.kernel_dilation, 2),
            groups=self.feature_group_count,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        if bias is not None:
            y = y + bias
        return y.reshape(batch + y.shape[1:])


def max_pool(inputs: jax.Array, window_shape: tuple[int, int], strides: tuple[int, int] | None = None, padding: Any = "VALID") -> jax.Array:
    """``flax.linen.max_pool`` for NHWC inputs ``(N, H, W, C)``, computed by convext.

    Parameters
    ----------
    inputs : jax.Array
    window_shape, strides : (int, int)
    padding : "SAME", "VALID" or ((lo, hi), (lo, hi))

    Returns
    -------
    jax.Array
    """
    return _cj.max_pool2d(inputs, tuple(window_shape), strides, padding, layout="NHWC")


def avg_pool(
    inputs: jax.Array,
    window_shape: tuple[int, int],
    strides: tuple[int, int] | None = None,
    padding: Any = "VALID",
    count_include_pad: bool = True,
) -> jax.Array:
    """``flax.linen.avg_pool`` for NHWC inputs ``(N, H, W, C)``, computed by convext.

    Parameters
    ----------
    inputs : jax.Array
    window_shape, strides : (int, int)
    padding : "SAME", "VALID" or ((lo, hi), (lo, hi))
    count_include_pad : bool

    Returns
    -------
    jax.Array
    """
    return _cj.avg_pool2d(inputs, tuple(window_shape), strides, padding, count_include_pad, layout="NHWC")
