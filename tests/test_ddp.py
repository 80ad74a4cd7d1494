"""DistributedDataParallel over convext-backed layers: 2 processes on localhost, gloo backend.

The averaged gradients of the two processes, each holding half of a global
batch, must equal the gradients of one process on the whole batch.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def ddp_train(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # On sys.path (not only loaded from its file) so that the spawned processes,
    # which inherit sys.path, can unpickle the worker function by name.
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("ddp_train")


def test_ddp_averaged_gradients_equal_single_process(ddp_train: ModuleType) -> None:
    model = ddp_train.build_model(seed=1)
    assert any(type(m).__module__ == "convext.torch" for m in model.modules())
    x, y = ddp_train.load_data(synthetic=True, seed=2)
    x, y = x[:24], y[:24]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}

    per_rank = ddp_train.ddp_gradients(state, x, y, world_size=2, timeout_s=180)

    F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    full = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    F.cross_entropy(model(torch.from_numpy(x[:12])), torch.from_numpy(y[:12])).backward()
    half = {name: p.grad.clone() for name, p in model.named_parameters()}

    assert len(per_rank) == 2
    for rank, grads in enumerate(per_rank):
        assert list(grads) == list(full)
        for name, g in grads.items():
            np.testing.assert_allclose(g.numpy(), full[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {name}")
    # Guard against a vacuous pass: one shard alone gives different gradients.
    assert any(not torch.allclose(half[n], full[n], rtol=1e-3, atol=1e-5) for n in full)
