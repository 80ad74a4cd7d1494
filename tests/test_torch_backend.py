"""convext.torch: autograd Functions, functional wrappers, modules and convert() against stock PyTorch."""
from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest


torch = pytest.importorskip("torch")
F = torch.nn.functional
import convext.torch as ct

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-9, "atol": 1e-11}}
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, msg: str = "") -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, msg
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), err_msg=msg, **TOL[expected.dtype])


def compare_functional(ours: Callable, theirs: Callable, inputs: list[torch.Tensor]) -> None:
    """Outputs of ``ours(*inputs)`` and ``theirs(*inputs)`` and the gradients of all inputs agree."""
    results = []
    for fn in (ours, theirs):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        out = out[0] if isinstance(out, tuple) else out
        grad_out = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        out.backward(grad_out)
        results.append((out, [t.grad for t in leaves]))
    (out, grads), (out_ref, grads_ref) = results
    assert_close(out, out_ref, "output")
    for i, (g, g_ref) in enumerate(zip(grads, grads_ref)):
        assert_close(g, g_ref, f"gradient of input {i}")


def randn(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------
# functional wrappers
# ---------------------------------------------------------------------------
CONV_CASES = [
    pytest.param((2, 3, 7, 6), (4, 3, 3, 3), {}, id="plain"),
    pytest.param((2, 4, 9, 8), (6, 2, 3, 2), {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1), "groups": 2}, id="stride_pad_dilation_groups"),
    pytest.param((1, 4, 8, 8), (4, 1, 3, 3), {"groups": 4, "stride": 3}, id="depthwise_stride_skips_rows"),
    pytest.param((2, 3, 6, 7), (5, 3, 3, 3), {"padding": "same", "dilation": 2}, id="padding_same"),
    pytest.param((2, 3, 6, 7), (5, 3, 2, 3), {"padding": "valid"}, id="padding_valid"),
    pytest.param((3, 6, 5), (2, 3, 3, 3), {"padding": 1}, id="unbatched"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs"), CONV_CASES)
def test_conv2d_matches_torch(x_shape: tuple, w_shape: tuple, kwargs: dict, bias: bool, dtype: torch.dtype) -> None:
    inputs = [randn(*x_shape, dtype=dtype), randn(*w_shape, dtype=dtype, seed=1)]
    if bias:
        inputs.append(randn(w_shape[0], dtype=dtype, seed=2))
    compare_functional(
        lambda *t: ct.conv2d(*t, **kwargs), lambda x, w, b=None: F.conv2d(x, w, b, **kwargs), inputs
    )


POOL_CASES = [
    pytest.param({"kernel_size": 2}, id="k2"),
    pytest.param({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, id="pad_ceil"),
    pytest.param({"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0)}, id="nonsquare"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [*POOL_CASES, pytest.param({"kernel_size": 3, "dilation": 2}, id="dilated")])
def test_max_pool2d_matches_torch(kwargs: dict, dtype: torch.dtype) -> None:
    x = randn(2, 3, 9, 8, dtype=dtype)
    compare_functional(lambda t: ct.max_pool2d(t, **kwargs), lambda t: F.max_pool2d(t, **kwargs), [x])
    out, idx = ct.max_pool2d(x, return_indices=True, **kwargs)
    out_ref, idx_ref = F.max_pool2d(x, return_indices=True, **kwargs)
    assert idx.dtype == torch.int64
    assert torch.equal(idx, idx_ref) and torch.equal(out, out_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("kwargs", POOL_CASES)
def test_avg_pool2d_matches_torch(kwargs: dict, count_include_pad: bool, dtype: torch.dtype) -> None:
    kwargs = {**kwargs, "count_include_pad": count_include_pad}
    compare_functional(
        lambda t: ct.avg_pool2d(t, **kwargs), lambda t: F.avg_pool2d(t, **kwargs), [randn(2, 3, 9, 8, dtype=dtype)]
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_matches_torch(dtype: torch.dtype) -> None:
    compare_functional(ct.relu, F.relu, [randn(2, 3, 5, 4, dtype=dtype)])


def test_relu_inplace_overwrites_and_backpropagates() -> None:
    x = randn(3, 4).requires_grad_(True)
    y = x * 2
    out = ct.relu(y, inplace=True)
    assert out is y
    out.sum().backward()
    assert torch.equal(x.grad, 2.0 * (x > 0).double())


# ---------------------------------------------------------------------------
# gradcheck in float64
# ---------------------------------------------------------------------------
def distinct(*shape: int) -> torch.Tensor:
    """float64 values at least 0.05 apart and away from 0, so finite differences never cross a tie or a kink."""
    n = int(np.prod(shape))
    values = (torch.randperm(n, generator=torch.Generator().manual_seed(n)).double() - n / 2) * 0.05 + 0.025
    return values.reshape(shape).requires_grad_(True)


GRADCHECK_CASES = [
    pytest.param(
        lambda x, w, b: ct.conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
        [(2, 4, 7, 6), (4, 2, 3, 3), (4,)],
        id="conv2d_stride_pad_dilation_groups",
    ),
    pytest.param(lambda x, w: ct.conv2d(x, w, stride=(1, 2), padding=(2, 0)), [(1, 3, 5, 6), (2, 3, 3, 2)], id="conv2d_nobias"),
    pytest.param(lambda x: ct.max_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 2, 7, 6)], id="max_pool2d"),
    pytest.param(lambda x: ct.max_pool2d(x, 2, 1, dilation=2), [(1, 2, 5, 6)], id="max_pool2d_dilated"),
    pytest.param(lambda x: ct.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [(2, 2, 7, 6)], id="avg_pool2d"),
    pytest.param(lambda x: ct.relu(x), [(2, 3, 4, 5)], id="relu"),
]


@pytest.mark.parametrize(("fn", "shapes"), GRADCHECK_CASES)
def test_gradcheck_float64(fn: Callable, shapes: list[tuple[int, ...]]) -> None:
    inputs = [distinct(*shape) for shape in shapes]
    assert torch.autograd.gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# a small multi-block model: stock PyTorch vs convert()
# ---------------------------------------------------------------------------
class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(3, stride=1, padding=1),
        )
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=4, bias=False),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 12, (3, 1), stride=(2, 1), padding=(1, 0)),
            torch.nn.ReLU(),
            torch.nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
        )
        self.head = torch.nn.Linear(12 * 2 * 5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.block(self.stem(x)), 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_converted_model_matches_torch(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    reference = Net().to(dtype)
    model = ct.convert(copy.deepcopy(reference))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(type(m) is ct.Conv2d for m in convs)
    assert type(model.stem[2]) is ct.MaxPool2d and type(model.block[4]) is ct.AvgPool2d and type(model.stem[1]) is ct.ReLU

    x = randn(2, 3, 15, 19, dtype=dtype)
    labels = torch.tensor([1, 4])
    results = []
    for net in (model, reference):
        xi = x.clone().requires_grad_(True)
        loss = F.cross_entropy(net(xi), labels)
        loss.backward()
        results.append((loss, xi.grad, dict(net.named_parameters())))
    (loss, gx, params), (loss_ref, gx_ref, params_ref) = results
    assert_close(loss, loss_ref, "loss")
    assert_close(gx, gx_ref, "input gradient")
    assert list(params) == list(params_ref)
    for name in params:
        assert_close(params[name].grad, params_ref[name].grad, name)


def test_module_classes_are_drop_in() -> None:
    torch.manual_seed(0)
    conv = ct.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    stock = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert isinstance(conv, torch.nn.Conv2d)
    assert list(conv.state_dict()) == list(stock.state_dict())
    conv.load_state_dict(stock.state_dict())
    x = randn(2, 4, 9, 9, dtype=torch.float32)
    assert_close(conv(x), stock(x))
    pool = ct.MaxPool2d(2, return_indices=True)
    out, idx = pool(x)
    assert torch.equal(idx, torch.nn.MaxPool2d(2, return_indices=True)(x)[1])
    assert_close(ct.AvgPool2d(3, 1, 1)(x), torch.nn.AvgPool2d(3, 1, 1)(x))
    assert_close(ct.ReLU()(x), torch.relu(x))
    with torch.no_grad():
        assert conv(x).requires_grad is False


def test_module_classes_reject_unsupported_configurations() -> None:
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        ct.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode='circular'"):
        ct.Conv1d(2, 2, 3, padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match="float16"):
        ct.ConvTranspose2d(2, 2, 3, dtype=torch.float16)


def test_convert_swaps_nested_modules_and_keeps_parameters() -> None:
    model = Net()
    weights = [p for p in model.parameters()]
    values = [p.detach().clone() for p in weights]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    converted = ct.convert(model)
    assert converted is model
    assert [p for p in converted.parameters()] == weights  # the very same Parameter objects
    for p, v in zip(converted.parameters(), values):
        assert torch.equal(p, v)
    # The optimizer made before conversion still updates the converted model.
    F.cross_entropy(converted(randn(2, 3, 15, 19, dtype=torch.float32)), torch.tensor([0, 1])).backward()
    optimizer.step()
    assert not torch.equal(converted.head.weight, values[-2])

    single = torch.nn.Conv2d(1, 1, 3)
    swapped = ct.convert(single)
    assert type(swapped) is ct.Conv2d and swapped.weight is single.weight and type(single) is torch.nn.Conv2d


def test_convert_not_inplace_leaves_the_original() -> None:
    model = Net()
    converted = ct.convert(model, inplace=False)
    assert converted is not model
    assert type(model.stem[0]) is torch.nn.Conv2d and type(converted.stem[0]) is ct.Conv2d


def test_convert_shared_module_stays_shared() -> None:
    relu = torch.nn.ReLU()
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), relu, torch.nn.Conv2d(2, 2, 1), relu)
    ct.convert(model)
    assert model[1] is model[3] and type(model[1]) is ct.ReLU


def test_convert_warns_once_and_leaves_unsupported_modules() -> None:
    class CustomConv(torch.nn.Conv2d):
        pass

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.Sequential(
            torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"),
            torch.nn.Conv2d(4, 4, 2, padding="same"),
            torch.nn.Conv2d(4, 4, 3, padding=1).half(),
        ),
        torch.nn.AvgPool2d(2, divisor_override=2),
        CustomConv(4, 4, 1),
        torch.nn.ReLU(),
    )
    with pytest.warns(ct.ConversionWarning) as record:
        ct.convert(model)
    assert len(record) == 1
    message = str(record[0].message)
    for expected in ("1.0 (Conv2d: padding_mode='circular')", "1.2 (Conv2d: weight is torch.float16"):
        assert expected in message
    assert "left 2 module(s)" in message, message
    assert type(model[0]) is ct.Conv2d and type(model[4]) is ct.ReLU
    assert [type(m) for m in model[1]] == [torch.nn.Conv2d, ct.Conv2d, torch.nn.Conv2d]  # even "same": converted
    assert type(model[2]) is ct.AvgPool2d  # divisor_override: converted
    assert type(model[3]) is CustomConv  # user subclasses are left alone


def test_convert_maps_same_and_valid_padding() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, (3, 5), padding="same"), torch.nn.Conv2d(3, 3, 3, padding="valid"))
    reference = copy.deepcopy(model)
    ct.convert(model)
    assert all(type(m) is ct.Conv2d for m in model)
    x = randn(1, 2, 7, 8, dtype=torch.float32)
    assert_close(model(x), reference(x))


# ---------------------------------------------------------------------------
# errors and zero-copy
# ---------------------------------------------------------------------------
def test_bad_dtypes_and_devices() -> None:
    x = randn(1, 1, 4, 4, dtype=torch.float32)
    w = randn(1, 1, 3, 3, dtype=torch.float32)
    with pytest.raises(TypeError, match="torch.int64"):
        ct.relu(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.float16"):
        ct.max_pool2d(x.half(), 2)
    with pytest.raises(TypeError, match="torch.bfloat16"):
        ct.conv2d(x.bfloat16(), w.bfloat16())
    with pytest.raises(TypeError, match="x has dtype torch.float32 but weight has dtype torch.float64"):
        ct.conv2d(x, w.double())
    with pytest.raises(TypeError, match="torch.Tensor"):
        ct.relu(np.ones(3))
    with pytest.raises(TypeError, match="dense"):
        ct.relu(torch.eye(3).to_sparse())
    with pytest.raises(ValueError, match="CPU only"):  # a stand-in for CUDA that exists on every build
        ct.conv2d(torch.empty(1, 1, 4, 4, device="meta"), torch.empty(1, 1, 3, 3, device="meta"))
    with pytest.raises(ValueError, match="padding='same'"):
        ct.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="divisor_override"):
        ct.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="3-d .* or 4-d"):
        ct.avg_pool2d(x[0, 0], 2)


def test_contiguous_tensors_are_viewed_without_copy_and_any_layout_works() -> None:
    t = randn(2, 3, 4, 5)
    assert np.shares_memory(ct._np(t), t.numpy())
    x = randn(2, 4, 6, 5).to(memory_format=torch.channels_last)
    w = randn(3, 4, 3, 3).transpose(2, 3)
    assert not x.is_contiguous() and not w.is_contiguous()
    assert_close(ct.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
    assert_close(ct.max_pool2d(x[:, :, ::2], 2), F.max_pool2d(x[:, :, ::2], 2))
