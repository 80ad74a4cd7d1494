"""The argument layer shared by every Python module of convext.

One set of type aliases and one parser per kind of argument, so that
``convext.nn``, ``convext.torch`` and the plans accept exactly the same
spellings (PyTorch's: an int, a pair, or a 1-sequence meaning ``(v, v)``).
The functional API hands its arguments to the C++ engine, which applies the
same rules.
"""
from __future__ import annotations

import operator
from typing import Any, Sequence, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["IntPair", "Pair", "FloatArray", "pair", "positive_int", "float_dtype"]

#: An int ``v`` (meaning ``(v, v)``), or a sequence of one or two ints.
IntPair = Union[int, Tuple[int, int], Sequence[int]]
#: A normalised ``(h, w)`` pair, as :func:`pair` returns it.
Pair = Tuple[int, int]
#: A float32 or float64 numpy array.
FloatArray = NDArray[np.floating[Any]]


def pair(value: IntPair, name: str) -> Pair:
    """Normalise an int or a 1-/2-sequence of ints to a 2-tuple (PyTorch's meaning).

    Parameters
    ----------
    value : int or sequence of int
        ``v``, ``(v,)`` or ``(h, w)``.
    name : str
        How the caller's argument is called, for the message.

    Returns
    -------
    tuple of int
        ``(h, w)``.

    Raises
    ------
    TypeError
        If ``value`` is not an int or a sequence of one or two ints (bools
        and floats are refused).
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        v = operator.index(value)  # type: ignore[arg-type]
        return (v, v)
    except TypeError:
        pass
    try:
        items = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) == 1:
        items = items * 2
    if len(items) != 2 or any(isinstance(i, (bool, np.bool_)) for i in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        return (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def positive_int(value: Any, what: str) -> int:
    """Return ``value`` as an int >= 1.

    Parameters
    ----------
    value : int
        Anything with ``__index__`` (not a bool, not a float, not a str).
    what : str
        How the argument is called, for the message.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is < 1.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{what} must be >= 1, got {v}")
    return v


def float_dtype(dtype: DTypeLike, name: str) -> np.dtype[Any]:
    """Return ``numpy.dtype(dtype)`` if it is float32 or float64.

    Parameters
    ----------
    dtype : dtype_like
    name : str
        The caller, for the message.

    Returns
    -------
    numpy.dtype

    Raises
    ------
    TypeError
        For any other dtype.
    """
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dt}")
    return dt
