"""convext.optim against torch.optim on the same parameters and gradients."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from convext.nn import Parameter
from convext.optim import SGD, Adam

torch = pytest.importorskip("torch")

SHAPES = [(4, 3, 3, 3), (4,), (5, 7)]


def run_both(make_ours: Callable, make_theirs: Callable, dtype: type, steps: int = 6) -> None:
    """Apply ``steps`` updates with fresh random gradients to both optimizers; parameters must agree."""
    rng = np.random.default_rng(0)
    ours = [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]
    theirs = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in ours]
    opt, opt_t = make_ours(ours), make_theirs(theirs)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
    for _ in range(steps):
        opt.zero_grad()
        opt_t.zero_grad()
        for p, pt in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad += g
            pt.grad = torch.from_numpy(g.copy())
        opt.step()
        opt_t.step()
        for p, pt in zip(ours, theirs):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, pt.detach().numpy(), **tol)


DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
SGD_CONFIGS = [
    pytest.param({}, id="plain"),
    pytest.param({"momentum": 0.9}, id="momentum"),
    pytest.param({"momentum": 0.9, "weight_decay": 1e-2}, id="momentum_weight_decay"),
    pytest.param({"momentum": 0.8, "dampening": 0.3, "weight_decay": 5e-3}, id="dampening"),
    pytest.param({"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}, id="nesterov"),
]
ADAM_CONFIGS = [
    pytest.param({}, id="defaults"),
    pytest.param({"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6}, id="betas_eps"),
    pytest.param({"lr": 5e-3, "weight_decay": 1e-2}, id="weight_decay"),
    pytest.param({"lr": 5e-3, "amsgrad": True}, id="amsgrad"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", SGD_CONFIGS)
def test_sgd_matches_torch(config: dict, dtype: type) -> None:
    run_both(
        lambda ps: SGD(ps, lr=0.05, **config),
        lambda ps: torch.optim.SGD(ps, lr=0.05, foreach=False, **config),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", ADAM_CONFIGS)
def test_adam_matches_torch(config: dict, dtype: type) -> None:
    run_both(lambda ps: Adam(ps, **config), lambda ps: torch.optim.Adam(ps, foreach=False, **config), dtype)


def test_parameters_without_grad_are_skipped() -> None:
    p = Parameter(np.ones(3))
    p.grad = None
    before = p.data.copy()
    for opt in (SGD([p], lr=1.0, momentum=0.9, weight_decay=0.1), Adam([p], weight_decay=0.1)):
        opt.step()
        np.testing.assert_array_equal(p.data, before)


def test_zero_grad_and_lr_change() -> None:
    p = Parameter(np.zeros(2))
    p.grad[...] = 1.0
    opt = SGD([p], lr=0.5)
    opt.step()
    opt.lr = 0.25
    opt.step()
    np.testing.assert_allclose(p.data, -0.75)
    opt.zero_grad()
    assert not p.grad.any()


def test_bad_hyperparameters() -> None:
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match="momentum"):
        SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="Parameter"):
        Adam([np.zeros(2)])
