"""PyTorch's own OpInfo samples of the conv-family ops, run through convext.torch.

Every sample torch's test suite has for conv1d, conv2d, conv_transpose2d,
max_pool2d, avg_pool2d, the adaptive pools and relu is computed by convext's
functional version and compared with stock torch (values, and gradients of a
random projection in float64). None is skipped.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

torch = pytest.importorskip("torch")
oi = pytest.importorskip("torch.testing._internal.common_methods_invocations",
                         reason="torch's OpInfo database needs expecttest (in the test extra)")

import convext.torch as ct  # noqa: E402

# stock torch's own note when it pads an even "same" kernel (the reference side here)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

OPS: dict[str, Callable[..., Any]] = {
    "nn.functional.conv1d": ct.conv1d,
    "nn.functional.conv2d": ct.conv2d,
    "nn.functional.conv_transpose2d": ct.conv_transpose2d,
    "nn.functional.max_pool2d": ct.max_pool2d,
    "nn.functional.avg_pool2d": ct.avg_pool2d,
    "nn.functional.adaptive_max_pool2d": ct.adaptive_max_pool2d,
    "nn.functional.adaptive_avg_pool2d": ct.adaptive_avg_pool2d,
    "nn.functional.relu": ct.relu,
}
OPINFOS = {o.name: o for o in oi.op_db if o.name in OPS and o.variant_test_name == ""}


def _tensors(out: Any) -> list[Any]:
    return [t for t in (out if isinstance(out, tuple) else (out,)) if t.is_floating_point()]


def test_every_op_has_its_opinfo() -> None:
    assert set(OPINFOS) == set(OPS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_opinfo_samples_match_torch(name: str, dtype: torch.dtype) -> None:
    info, fn = OPINFOS[name], OPS[name]
    grads = dtype == torch.float64
    checked = 0
    for sample in info.sample_inputs("cpu", dtype, requires_grad=grads):
        args = (sample.input, *sample.args)
        want = info.op(*args, **sample.kwargs)
        got = fn(*args, **sample.kwargs)
        tol = {} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
        for g, w in zip(_tensors(got), _tensors(want)):
            torch.testing.assert_close(g, w, **tol, msg=lambda m: f"{name} {sample}: {m}")
        if isinstance(got, tuple):  # return_indices
            torch.testing.assert_close(got[1], want[1])
        if grads:
            leaves = [t for t in args if isinstance(t, torch.Tensor) and t.requires_grad]
            if sample.kwargs.get("bias") is not None:
                leaves.append(sample.kwargs["bias"])
            proj = [torch.randn_like(w) for w in _tensors(want)]
            gw = torch.autograd.grad(sum((w * p).sum() for w, p in zip(_tensors(want), proj)), leaves, allow_unused=True)
            gg = torch.autograd.grad(sum((g * p).sum() for g, p in zip(_tensors(got), proj)), leaves, allow_unused=True)
            for a, b in zip(gg, gw):
                if b is not None:
                    torch.testing.assert_close(a, b, **tol, msg=lambda m: f"{name} gradient {sample}: {m}")
        checked += 1
    assert checked > 0
