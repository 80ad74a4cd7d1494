"""The layer suite (package data ``suite.json``) and the geometry of its rows."""

from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convext import _args
from convext._args import IntPair, Pair

__all__ = [
    "BenchError",
    "SUITE_ENV",
    "SECTIONS",
    "RELU_PREFIX",
    "ConvSpec",
    "PoolSpec",
    "CorrSpec",
    "suite_path",
    "load_suite",
    "row_names",
    "pair",
]

SUITE_ENV = "CONVEXT_BENCH_SUITE"
SECTIONS = ("conv2d", "pool", "correlate2d")
RELU_PREFIX = "relu@"



class BenchError(Exception):
    """A problem with the command line or the suite (not with a library)."""


def suite_path(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """Say which suite file a run reads.

    Parameters
    ----------
    explicit : str or path-like, optional
        A file given on the command line (``--suite``); it wins when given.

    Returns
    -------
    str or None
        ``explicit``, else the ``CONVEXT_BENCH_SUITE`` environment variable,
        else None: the suite shipped inside the package (package data, found
        wherever convext is installed; see :func:`load_suite`).

    Raises
    ------
    FileNotFoundError
        If a named file (argument or environment variable) does not exist.
    """
    named = explicit if explicit is not None else os.environ.get(SUITE_ENV)
    if named:
        if not Path(named).is_file():
            source = "--suite" if explicit is not None else SUITE_ENV
            raise FileNotFoundError(f"bench: suite file from {source} does not exist: {named}")
        return str(named)
    return None


def load_suite(path: str | os.PathLike[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Read the benchmark suite.

    Parameters
    ----------
    path : str or path-like, optional
        A suite JSON file of the same format; by default the suite shipped
        with the package (``convext/bench/suite.json``, read through
        :mod:`importlib.resources`, so it works from an installed wheel in any
        directory). ``CONVEXT_BENCH_SUITE`` is honoured by the command line
        (:func:`suite_path`), not here.

    Returns
    -------
    dict
        The ``conv2d``, ``pool`` and ``correlate2d`` row lists (missing
        sections are empty lists), rows exactly as written.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    BenchError
        If the file is not a JSON object.
    """
    if path is None:
        text = importlib.resources.files("convext.bench").joinpath("suite.json").read_text("utf-8")
        where = "convext.bench/suite.json"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    data = json.loads(text)
    if not isinstance(data, dict):
        raise BenchError(f"bench: suite {where} must be a JSON object, got {type(data).__name__}")
    return {key: list(data.get(key, [])) for key in SECTIONS}


def row_names(suite: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every line name of the suite, in order (pool rows add ``relu@<row>``).

    Parameters
    ----------
    suite : dict
        Output of :func:`load_suite`.

    Returns
    -------
    list of str
    """
    names = [row["name"] for row in suite["conv2d"]]
    for row in suite["pool"]:
        names += [row["name"], RELU_PREFIX + row["name"]]
    return names + [row["name"] for row in suite["correlate2d"]]


def pair(value: IntPair) -> Pair:
    """``value`` as an (int, int) pair: :func:`convext._args.pair` for a suite row."""
    return _args.pair(value, "benchmark suite row")


def _out_len(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvSpec:
    """Geometry of one conv2d row (NCHW input, weight (K, C/groups, R, S))."""

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1

    @classmethod
    def from_row(cls, row: dict[str, Any], batch: int | None = None) -> ConvSpec:
        """Build the spec of a suite row, optionally with another batch."""
        return cls(
            name=row["name"],
            N=int(batch if batch is not None else row["N"]),
            **{key: int(row[key]) for key in ("C", "H", "W", "K", "R", "S")},
            stride=pair(row.get("stride", 1)),
            padding=pair(row.get("padding", 0)),
            dilation=pair(row.get("dilation", 1)),
            groups=int(row.get("groups", 1)),
        )

    def as_row(self) -> dict[str, Any]:
        """The spec as a suite row (inverse of :meth:`from_row`)."""
        return {
            "name": self.name,
            "N": self.N,
            "C": self.C,
            "H": self.H,
            "W": self.W,
            "K": self.K,
            "R": self.R,
            "S": self.S,
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
        }

    @property
    def out_hw(self) -> Pair:
        """Output height and width."""
        return (
            _out_len(self.H, self.R, self.stride[0], self.padding[0], self.dilation[0]),
            _out_len(self.W, self.S, self.stride[1], self.padding[1], self.dilation[1]),
        )

    @property
    def flops(self) -> float:
        """Forward FLOPs: 2 * N * K * (C/groups) * R * S * Ho * Wo."""
        ho, wo = self.out_hw
        return 2.0 * self.N * self.K * (self.C // self.groups) * self.R * self.S * ho * wo

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by conv2d and conv2d_backward."""
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of x, weight, bias and the output."""
        return {
            "x": (self.N, self.C, self.H, self.W),
            "weight": (self.K, self.C // self.groups, self.R, self.S),
            "bias": (self.K,),
            "out": (self.N, self.K, *self.out_hw),
        }


@dataclass(frozen=True)
class PoolSpec:
    """Geometry of one max-pool row (square kernel, PyTorch semantics)."""

    name: str
    N: int
    C: int
    H: int
    W: int
    kernel: int
    stride: int
    padding: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any], batch: int | None = None) -> PoolSpec:
        """Build the spec of a suite row, optionally with another batch."""
        return cls(
            name=row["name"],
            N=int(batch if batch is not None else row["N"]),
            C=int(row["C"]),
            H=int(row["H"]),
            W=int(row["W"]),
            kernel=int(row["kernel"]),
            stride=int(row.get("stride", row["kernel"])),
            padding=int(row.get("padding", 0)),
        )

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by max_pool2d and max_pool2d_backward."""
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of x and the output."""
        ho = _out_len(self.H, self.kernel, self.stride, self.padding, 1)
        wo = _out_len(self.W, self.kernel, self.stride, self.padding, 1)
        return {"x": (self.N, self.C, self.H, self.W), "out": (self.N, self.C, ho, wo)}


@dataclass(frozen=True)
class CorrSpec:
    """One 2-D correlate2d/convolve2d row: an H x W image and an R x S kernel.

    ``dtype`` (None: the run's ``--dtype``) and ``boundary`` ("fill", "wrap"
    or "symm", scipy.signal's meaning) let a row ask for what convext may not
    support yet; such a row is reported "unsupported" rather than failing.
    """

    name: str
    H: int
    W: int
    R: int
    S: int
    mode: str = "valid"
    dtype: str | None = None
    boundary: str = "fill"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CorrSpec:
        """Build the spec of a suite row."""
        return cls(
            row["name"],
            int(row["H"]), int(row["W"]), int(row["R"]), int(row["S"]),
            mode=row.get("mode", "valid"),
            dtype=row.get("dtype"),
            boundary=row.get("boundary", "fill"),
        )

    @property
    def out_hw(self) -> Pair:
        """Output height and width for the row's mode (scipy semantics)."""
        if self.mode == "full":
            return (self.H + self.R - 1, self.W + self.S - 1)
        if self.mode == "same":
            return (self.H, self.W)
        return (self.H - self.R + 1, self.W - self.S + 1)

    @property
    def flops(self) -> float:
        """2 * Ho * Wo * R * S (every tap counted, zero fill included)."""
        ho, wo = self.out_hw
        return 2.0 * ho * wo * self.R * self.S

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of correlate2d/convolve2d after the two arrays.

        ``boundary`` is passed only when it is not scipy's default, so rows of
        the default kind run on a convext without the argument.
        """
        return {"mode": self.mode} | ({} if self.boundary == "fill" else {"boundary": self.boundary})

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the image, the kernel and the output."""
        return {"in1": (self.H, self.W), "in2": (self.R, self.S), "out": self.out_hw}
