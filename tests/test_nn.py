"""convext.nn layers against torch.nn with identical weights."""
from __future__ import annotations

import numpy as np
import pytest

from convext import nn

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 2e-4, "atol": 2e-5}, np.float64: {"rtol": 1e-9, "atol": 1e-11}}
DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


def to_torch(layer: nn.Module, twin: torch.nn.Module) -> torch.nn.Module:
    """Give ``twin`` the weights of ``layer`` (the state_dict keys agree) in the layer's dtype."""
    state = layer.state_dict()
    if state:
        twin = twin.to(torch.from_numpy(next(iter(state.values()))).dtype)
        twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return twin


def check_layer(layer: nn.Module, twin: torch.nn.Module, x: np.ndarray, seed: int = 0) -> None:
    """Forward, input gradient and every parameter gradient of ``layer`` equal those of ``twin``."""
    tol = TOL[x.dtype.type]
    twin = to_torch(layer, twin)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = twin(xt)
    y = layer(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    assert y.dtype == x.dtype
    grad_out = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    yt.backward(torch.from_numpy(grad_out))
    gx = layer.backward(grad_out)
    assert gx.shape == x.shape and gx.dtype == x.dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
    torch_grads = dict(twin.named_parameters())
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, torch_grads[name].grad.numpy(), err_msg=name, **tol)


def rand(shape: tuple[int, ...], dtype: type = np.float64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


CONV_CASES = [
    pytest.param({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (2, 3, 7, 6), id="plain"),
    pytest.param({"in_channels": 2, "out_channels": 5, "kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 2)}, (2, 2, 9, 8), id="stride_pad_nonsquare"),
    pytest.param({"in_channels": 4, "out_channels": 6, "kernel_size": 3, "dilation": 2, "groups": 2, "padding": 2}, (1, 4, 8, 9), id="dilation_groups"),
    pytest.param({"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 4, "bias": False, "stride": 3}, (3, 4, 10, 10), id="depthwise_nobias_stride_skips_rows"),
    pytest.param({"in_channels": 1, "out_channels": 2, "kernel_size": 5}, (2, 1, 5, 5), id="kernel_eq_input"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kwargs", "shape"), CONV_CASES)
def test_conv2d_matches_torch(kwargs: dict, shape: tuple[int, ...], dtype: type) -> None:
    layer = nn.Conv2d(**kwargs, dtype=dtype, rng=0)
    check_layer(layer, torch.nn.Conv2d(**kwargs), rand(shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_matches_torch(bias: bool, dtype: type) -> None:
    layer = nn.Linear(7, 5, bias=bias, dtype=dtype, rng=0)
    check_layer(layer, torch.nn.Linear(7, 5, bias=bias), rand((4, 7), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("layer", "twin", "shape"),
    [
        pytest.param(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), (2, 3, 6, 7), id="maxpool_2"),
        pytest.param(nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 7, 8), id="maxpool_pad_ceil"),
        pytest.param(nn.MaxPool2d((2, 3), (1, 2), dilation=2), torch.nn.MaxPool2d((2, 3), (1, 2), dilation=2), (1, 2, 7, 9), id="maxpool_dilated"),
        pytest.param(nn.AvgPool2d(2), torch.nn.AvgPool2d(2), (2, 3, 6, 7), id="avgpool_2"),
        pytest.param(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 2, 7, 8), id="avgpool_pad_ceil_exclude"),
        pytest.param(nn.ReLU(), torch.nn.ReLU(), (2, 3, 5, 4), id="relu"),
        pytest.param(nn.Flatten(), torch.nn.Flatten(), (2, 3, 5, 4), id="flatten"),
        pytest.param(nn.Flatten(2, 3), torch.nn.Flatten(2, 3), (2, 3, 5, 4), id="flatten_2_3"),
    ],
)
def test_parameter_free_layers_match_torch(layer: nn.Module, twin: torch.nn.Module, shape: tuple[int, ...], dtype: type) -> None:
    check_layer(layer, twin, rand(shape, dtype))


def make_models(dtype: type = np.float64) -> tuple[nn.Sequential, torch.nn.Sequential]:
    """A small CNN in convext.nn and the same network in torch.nn, with equal weights."""
    rng = np.random.default_rng(3)
    ours = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.AvgPool2d(2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 5, dtype=dtype, rng=rng),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2, ceil_mode=True),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 2 * 2, 5),
    )
    return ours, to_torch(ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_model_outputs_loss_and_gradients_match_torch(dtype: type) -> None:
    ours, theirs = make_models(dtype)
    x = rand((4, 2, 13, 11), dtype)
    labels = np.array([0, 4, 2, 4])
    tol = TOL[dtype]

    loss_fn = nn.CrossEntropyLoss()
    logits = ours(x)
    loss = loss_fn(logits, labels)
    grad_x = ours.backward(loss_fn.backward())

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    logits_t = theirs(xt)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.from_numpy(labels))
    loss_t.backward()

    np.testing.assert_allclose(logits, logits_t.detach().numpy(), **tol)
    np.testing.assert_allclose(loss, loss_t.item(), **tol)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), **tol)
    torch_params = list(theirs.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in torch_params]
    for (name, p), (_, pt) in zip(ours.named_parameters(), torch_params):
        np.testing.assert_allclose(p.grad, pt.grad.numpy(), err_msg=name, **tol)


def test_parameters_in_definition_order_weight_before_bias() -> None:
    ours, theirs = make_models()
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict())[:2] == ["0.weight", "0.bias"]
    assert ours.parameters()[0] is ours[0].weight and ours.parameters()[1] is ours[0].bias


def test_shared_parameter_listed_once() -> None:
    a = nn.Linear(3, 3, rng=0)
    b = nn.Linear(3, 3, rng=1)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert len(model.parameters()) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_default_init_is_kaiming_uniform_like_torch() -> None:
    conv = nn.Conv2d(8, 16, (3, 5), groups=2, rng=0)
    bound = 1 / np.sqrt(8 // 2 * 3 * 5)
    for p in (conv.weight, conv.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.95 * bound  # 960 draws fill the whole interval
    lin = nn.Linear(50, 400, rng=np.random.default_rng(1))
    assert np.abs(lin.weight.data).max() <= 1 / np.sqrt(50)
    assert abs(lin.weight.data.std() - 1 / np.sqrt(50) / np.sqrt(3)) < 0.01  # std of U(-b, b) is b / sqrt(3)
    # Same torch bound, same seed -> same weights; a Generator is accepted too.
    np.testing.assert_array_equal(nn.Conv2d(8, 16, 3, rng=5).weight.data, nn.Conv2d(8, 16, 3, rng=np.random.default_rng(5)).weight.data)
    t = torch.nn.Conv2d(8, 16, (3, 5), groups=2)
    assert t.weight.detach().abs().max().item() <= bound and t.bias.detach().abs().max().item() <= bound


def test_state_dict_round_trip_and_torch_weights() -> None:
    ours, theirs = make_models()
    fresh, _ = make_models()
    for p in fresh.parameters():
        p.data[...] = 0
    fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rand((2, 2, 13, 11))
    np.testing.assert_array_equal(fresh(x), ours(x))
    state = ours.state_dict()
    state["0.weight"][...] = 7  # a copy: the model is unchanged
    assert not np.any(ours[0].weight.data == 7)


def test_load_state_dict_errors() -> None:
    model, _ = make_models()
    state = model.state_dict()
    with pytest.raises(KeyError, match="missing keys"):
        model.load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(KeyError, match="unexpected keys"):
        model.load_state_dict({**state, "9.weight": np.zeros(3)})
    with pytest.raises(ValueError, match="0.weight"):
        model.load_state_dict({**state, "0.weight": np.zeros((1, 2, 3, 3))})
    missing, unexpected = model.load_state_dict({"0.weight": state["0.weight"], "x": np.zeros(1)}, strict=False)
    assert "0.bias" in missing and unexpected == ["x"]


def test_save_and_load_npz(tmp_path) -> None:
    ours, _ = make_models(np.float32)
    path = tmp_path / "model.npz"
    ours.save(path)
    assert path.stat().st_size > 0
    other, _ = make_models(np.float32)
    for p in other.parameters():
        p.data[...] = 0
    assert other.load(path) is other
    for (name, a), (_, b) in zip(ours.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert b.dtype == np.float32


def test_train_eval_propagate() -> None:
    model, _ = make_models()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_backward_accumulates_and_zero_grad_resets() -> None:
    model, _ = make_models()
    x = rand((2, 2, 13, 11))
    grad_out = np.ones((2, 5))
    model(x)
    model.backward(grad_out)
    first = [p.grad.copy() for p in model.parameters()]
    model(x)
    model.backward(grad_out)
    for g1, p in zip(first, model.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g1)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_matches_torch_and_is_stable(dtype: type) -> None:
    logits = rand((5, 7), dtype) * 1e4  # exp() of these overflows without the max shift
    labels = np.array([0, 6, 3, 3, 1])
    fn = nn.CrossEntropyLoss()
    loss = fn(logits, labels)
    grad = fn.backward()
    lt = torch.from_numpy(logits.copy()).requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(lt, torch.from_numpy(labels))
    ref.backward()
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, ref.item(), **TOL[dtype])
    np.testing.assert_allclose(grad, lt.grad.numpy(), **TOL[dtype])
    assert grad.dtype == dtype


def test_cross_entropy_bad_input() -> None:
    fn = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="labels must lie"):
        fn(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="labels must be integers"):
        fn(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="expected logits"):
        fn(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.CrossEntropyLoss().backward()


def test_layer_errors() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Conv2d(1, 1, 1).backward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match="dtype"):
        nn.Conv2d(1, 1, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(1, 1, 2.5)
    with pytest.raises(ValueError, match="stride"):
        nn.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(3, 2)(np.zeros((1, 3)))  # float64 input, float32 weights
    with pytest.raises(TypeError, match="Module"):
        nn.Sequential(nn.ReLU(), "relu")


def test_repr_shows_structure() -> None:
    model, _ = make_models()
    text = repr(model)
    assert "(0): Conv2d(2, 6, kernel_size=(3, 3)" in text and "(7): Linear(in_features=32" in text
