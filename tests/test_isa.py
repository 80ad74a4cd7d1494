"""Every kernel set this CPU can run gives reference results.

The ISA is chosen once per process (``CONVEXT_ISA`` forces one the CPU
supports), so each is exercised in a subprocess: the GEMM (implicit and
Winograd), direct, weight-gradient and pooling paths, float32 and float64.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import convext

ISAS = convext.show_config(print_out=False)["available_isas"].split(",")

SCRIPT = textwrap.dedent(
    """
    import numpy as np, convext
    from convext import reference as ref
    cfg = convext.show_config(print_out=False)
    assert cfg["isa"] == {isa!r}, cfg
    rng = np.random.default_rng(0)
    cases = [  # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
        (2, 16, 14, 13, 24, 3, 3, 1, 1, 1, 1),   # Winograd (output >= 12x12)
        (1, 16, 10, 9, 20, 3, 3, 1, 1, 1, 1),    # 3x3 on a small plane: indirect GEMM
        (2, 5, 13, 9, 7, 3, 2, 2, 1, 1, 1),      # indirect GEMM, strided
        (8, 2, 20, 63, 16, 5, 5, 2, 2, 1, 1),    # few input channels: dot-product weight
                                                 # gradient, shift-add input gradient
        (8, 12, 11, 10, 2, 3, 3, 1, 1, 1, 1),    # few outputs: shift-add forward
        (2, 6, 10, 9, 6, 3, 3, 1, 1, 2, 6),      # depthwise: direct loops
        (1, 8, 9, 17, 4, 5, 5, (2, 1), 2, 1, 2), # grouped
        (2, 40, 12, 14, 12, 1, 1, 2, 0, 1, 1),   # 1x1 strided: GEMM weight gradient
                                                 # (whole and partial B panels)
        (3, 24, 7, 9, 16, 1, 1, 1, 0, 1, 1),     # 1x1: x read in place
    ]
    for dtype, rtol in ((np.float32, 2e-4), (np.float64, 1e-10)):
        for (N, C, H, W, K, R, S, st, pad, dil, g) in cases:
            x = rng.standard_normal((N, C, H, W)).astype(dtype)
            w = rng.standard_normal((K, C // g, R, S)).astype(dtype)
            b = rng.standard_normal(K).astype(dtype)
            y = convext.conv2d(x, w, b, st, pad, dil, g)
            np.testing.assert_allclose(y, ref.conv2d(x, w, b, st, pad, dil, g), rtol=rtol, atol=rtol * 10)
            gy = rng.standard_normal(y.shape).astype(dtype)
            got = convext.conv2d_backward(gy, x, w, st, pad, dil, g)
            want = ref.conv2d_backward(gy, x, w, st, pad, dil, g)
            for a, e in zip(got, want):
                np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * 10 * max(1, N * H * W / 50))
        x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
        np.testing.assert_array_equal(convext.max_pool2d(x, 3, 2, 1), ref.max_pool2d(x, 3, 2, 1))
        a, k = rng.standard_normal((20, 17)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
        np.testing.assert_allclose(convext.correlate2d(a, k, "same"), ref.correlate2d(a, k, "same"), rtol=rtol, atol=rtol)
    print("ok", cfg["sgemm_kernel"])
    """
)


@pytest.mark.parametrize("isa", ISAS)
def test_kernel_set_matches_reference(isa: str) -> None:
    env = dict(os.environ, CONVEXT_ISA=isa)
    run = subprocess.run([sys.executable, "-c", SCRIPT.format(isa=isa)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("ok"), run.stdout


def test_generic_kernels_are_always_available() -> None:
    assert "generic" in ISAS


# --------------------------------------------------------------------------- ISA objects
#: the object files of the kernel instances this checkout's build made (pip's
#: build-dir is build/{wheel_tag}); absent when the package came from elsewhere
BUILD = Path(__file__).resolve().parents[1] / "build"
ISA_OBJECTS = sorted(BUILD.glob("**/csrc/kernels/isa_*.cpp.o"))


@pytest.mark.skipif(not ISA_OBJECTS or shutil.which("nm") is None,
                    reason="no build tree of this checkout (or no nm) to inspect")
@pytest.mark.parametrize("obj", ISA_OBJECTS, ids=lambda p: f"{p.relative_to(BUILD).parts[0]}/{p.name}")
def test_isa_objects_run_nothing_at_load_and_share_no_symbols(obj: Path) -> None:
    """An ISA file is compiled with its -m flags, so none of its code may run
    before dispatch.cpp has checked the CPU, and the linker must never pick one
    of its copies of an inline function for the rest of the engine.

    So the object has no dynamic initializer (the kernel tables are constexpr:
    a load-time initializer with zmm stores once crashed ``import convext`` on
    AVX2-only CPUs), and every symbol it defines is its own: in its namespace
    ``convext::gemm::<isa>``, or one of its two tables.
    """
    isa = obj.name[len("isa_"):-len(".cpp.o")]
    out = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    defined = [line.split()[-2:] for line in out.splitlines() if len(line.split()) >= 2]
    initializers = [name for _, name in defined if "_GLOBAL__sub_I" in name]
    assert not initializers, f"{obj.name} runs code at load: {initializers}"
    own_namespace = f"_ZN7convext4gemm{len(isa)}{isa}"  # convext::gemm::<isa>::...
    foreign = [f"{kind} {name}" for kind, name in defined
               if kind.isupper() and not name.startswith(own_namespace)
               and not (name.startswith("_ZN7convext4gemm") and name.endswith(f"__{isa}E"))]
    assert not foreign, f"{obj.name} defines symbols outside convext::gemm::{isa}: {foreign[:10]}"
