"""Per-layer float32 error (convext and torch against float64) for 3x3 layers (issue 15).

Inputs N(0,1), weights scaled 1/sqrt(fan-in); error = max|err| / max|ref|, the
reference being torch's float64 result on the same inputs. Run with
CONVEXT_WINOGRAD=4x4 to see F(4x4, 3x3), =0 for the GEMM path. Needs torch.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

import convext as cx

ROWS = {
    "res3x3_56": (8, 64, 56, 56, 64),
    "res3x3_28": (8, 128, 28, 28, 128),
    "res3x3_14": (8, 256, 14, 14, 256),
    "r18_512_7_b8": (8, 512, 7, 7, 512),
}


def _err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def main(names: list[str]) -> None:
    torch.set_num_threads(2)
    cx.set_num_threads(2)
    for name in names or list(ROWS):
        n, c, h, w, k = ROWS[name]
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(c * 9)).astype(np.float32)
        gy = rng.standard_normal((n, k, h, w)).astype(np.float32)
        res = {}
        for dt in (torch.float64, torch.float32):
            tx = torch.tensor(x, dtype=dt, requires_grad=True)
            tw = torch.tensor(wt, dtype=dt, requires_grad=True)
            y = torch.nn.functional.conv2d(tx, tw, padding=1)
            y.backward(torch.tensor(gy, dtype=dt))
            res[dt] = (y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())
        ref, t32 = res[torch.float64], res[torch.float32]
        c32 = (
            cx.conv2d(x, wt, padding=1),
            cx.conv2d_input_grad(gy, wt, x.shape, padding=1),
            cx.conv2d_weight_grad(gy, x, wt.shape, padding=1),
        )
        cols = []
        for what, i in (("fwd", 0), ("dx", 1), ("dw", 2)):
            ec, et = _err(c32[i], ref[i]), _err(t32[i], ref[i])
            cols.append(f"{what} {ec:.1e}/{et:.1e} ({ec / et:.1f}x)")
        print(f"{name:14s} " + "  ".join(cols), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
