"""The PNG chart: peer/convext time ratios, one group of bars per line (matplotlib, optional)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["write_plot"]


def write_plot(
    records: list[dict[str, Any]], path: str | os.PathLike[str], title: str
) -> str | None:
    """Bar chart of the peer/convext ratios, one group of bars per line.

    Parameters
    ----------
    records : list of dict
        Output of :func:`summarize`.
    path : str or path-like
        PNG file to write.
    title : str
        Chart title.

    Returns
    -------
    str or None
        None on success, else why nothing was written (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "no plot written: matplotlib is not installed (pip install matplotlib)"
    rated = [r for r in records if r.get("ratios")]
    others = list(dict.fromkeys(p for r in rated for p in r["ratios"]))
    # wide enough for a label per line, capped (the zoo has hundreds of lines)
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.55 * len(rated) + 2), 60.0), 4.5))
    width = 0.8 / max(len(others), 1)
    for i, peer in enumerate(others):
        xs = [
            j + (i - (len(others) - 1) / 2) * width
            for j, r in enumerate(rated)
            if peer in r["ratios"]
        ]
        ys = [r["ratios"][peer] for r in rated if peer in r["ratios"]]
        ax.bar(xs, ys, width, label=f"{peer} / convext")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ticks = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(ticks)
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(ticks)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xticks(range(len(rated)))
    ax.set_xticklabels(
        [f"{r['row']} {r['op']}" for r in rated], rotation=60, ha="right", fontsize=8
    )
    ax.set_ylabel("time ratio peer / convext (> 1: convext faster)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
