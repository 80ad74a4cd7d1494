"""The conv-family modules convert swaps beyond Conv2d / pools / ReLU (issue 12's coverage):
ConvTranspose2d, Conv1d, adaptive pools, divisor_override, padding="same" with even kernels,
empty batches, autocast -- each against stock PyTorch, forward and gradients, and the numpy
API's conv_transpose2d / adaptive pools against the independent reference."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import convext
from convext import nn as cnn
from convext import reference as ref

torch = pytest.importorskip("torch")
import convext.torch as ct  # noqa: E402

# stock torch's own note when it pads an even "same" kernel (the reference side of these tests)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

MODULES = [
    pytest.param(lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 6), id="convT_s2_op1"),
    pytest.param(lambda: torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), groups=2, dilation=(1, 2)),
                 (2, 4, 5, 6), id="convT_groups_dilation"),
    pytest.param(lambda: torch.nn.ConvTranspose2d(3, 2, 4, bias=False), (3, 4, 4), id="convT_unbatched_nobias"),
    pytest.param(lambda: torch.nn.Conv1d(4, 5, 3, stride=2, padding=1), (2, 4, 17), id="conv1d"),
    pytest.param(lambda: torch.nn.Conv1d(4, 6, 4, padding="same", dilation=2, groups=2), (4, 17), id="conv1d_same_even_unbatched"),
    pytest.param(lambda: torch.nn.Conv2d(4, 5, (2, 4), padding="same"), (2, 4, 7, 8), id="conv2d_same_even"),
    pytest.param(lambda: torch.nn.AdaptiveAvgPool2d((4, 5)), (2, 3, 9, 11), id="adaptive_avg"),
    pytest.param(lambda: torch.nn.AdaptiveAvgPool2d(1), (2, 3, 7, 7), id="adaptive_avg_global"),
    pytest.param(lambda: torch.nn.AdaptiveMaxPool2d((None, 3)), (2, 3, 9, 11), id="adaptive_max_none"),
    pytest.param(lambda: torch.nn.AdaptiveMaxPool2d((5, 13)), (3, 9, 11), id="adaptive_max_upsample_unbatched"),
    pytest.param(lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=4), (2, 3, 9, 10), id="avg_divisor_override"),
]


@pytest.mark.parametrize(("make", "shape"), MODULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_converted_module_matches_torch(make: Any, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    module = make().to(dtype)
    converted = ct.convert(module, inplace=False)
    assert type(converted).__module__ == "convext.torch", type(converted)
    x = torch.randn(shape, dtype=dtype)
    xr, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    want, got = module(xr), converted(xc)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(got, want, **tol)
    g = torch.randn_like(want)
    want.backward(g)
    got.backward(g)
    torch.testing.assert_close(xc.grad, xr.grad, **tol)
    for (name, p), q in zip(module.named_parameters(), converted.parameters()):
        torch.testing.assert_close(q.grad, p.grad, **tol, msg=name)


def test_conv_transpose2d_output_size_argument() -> None:
    torch.manual_seed(0)
    module = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1).double()
    converted = ct.convert(module, inplace=False)
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(converted(x, output_size=[10, 10]), module(x, output_size=[10, 10]))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                                "adaptive_max_pool2d"])
def test_empty_batch_gives_torchs_empty_result(op: str) -> None:
    x = torch.zeros(0, 4, 8, 8, requires_grad=True)
    w = torch.randn(4, 4, 3, 3, requires_grad=True)
    calls = {"conv2d": lambda f: f.conv2d(x, w, padding=1), "conv_transpose2d": lambda f: f.conv_transpose2d(x, w, stride=2),
             "max_pool2d": lambda f: f.max_pool2d(x, 2), "avg_pool2d": lambda f: f.avg_pool2d(x, 2),
             "adaptive_avg_pool2d": lambda f: f.adaptive_avg_pool2d(x, 3),
             "adaptive_max_pool2d": lambda f: f.adaptive_max_pool2d(x, 3)}
    got, want = calls[op](ct), calls[op](torch.nn.functional)
    assert got.shape == want.shape and got.numel() == 0
    got.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_autocast_runs_stock_torch_with_one_warning() -> None:
    model = ct.convert(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    x = torch.randn(1, 3, 8, 8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
            model(x)
    assert y.dtype == torch.bfloat16  # what stock torch gives under autocast
    messages = [str(r.message) for r in record if issubclass(r.category, ct.ConversionWarning)]
    assert sum("Conv2d: autocast" in m for m in messages) == 1, messages
    assert model(x).dtype == torch.float32  # back on convext outside autocast


def test_export_of_the_new_modules_runs_convext_ops() -> None:
    model = ct.convert(torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.ConvTranspose2d(4, 3, 2, stride=2), torch.nn.AdaptiveMaxPool2d(5),
        torch.nn.AdaptiveAvgPool2d(2)))
    x = torch.randn(2, 2, 10, 10)
    exported = torch.export.export(model, (x,))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert {"convext.conv2d_input_grad.default", "convext.adaptive_max_pool2d.default",
            "convext.adaptive_avg_pool2d.default"} <= targets, targets
    torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.parametrize(("stride", "padding", "output_padding", "dilation"),
                         [(1, 0, 1, 2), (1, 2, 2, 3), ((2, 1), (0, 1), (1, 2), (1, 3))])
def test_output_padding_up_to_the_dilation_matches_torch(stride: Any, padding: Any, output_padding: Any,
                                                         dilation: Any) -> None:
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    args = (stride, padding, output_padding, 1, dilation)
    got = ct.conv_transpose2d(x, w, None, *args)
    want = torch.nn.functional.conv_transpose2d(x, w, None, *args)
    torch.testing.assert_close(got, want)
    g = torch.randn_like(want)
    torch.testing.assert_close(torch.autograd.grad(got, (x, w), g), torch.autograd.grad(want, (x, w), g))
    y = convext.conv_transpose2d(x.detach().numpy(), w.detach().numpy(), None, *args)
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_groups_must_be_an_integer() -> None:
    x, w = torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3)
    with pytest.raises(TypeError, match="groups"):
        ct.conv_transpose2d(x, w, groups=1.0)  # type: ignore[arg-type]


# ------------------------------------------------------------------ numpy API vs the reference
def _ref_conv_transpose2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int],
                          output_padding: tuple[int, int], groups: int, dilation: tuple[int, int]) -> np.ndarray:
    """From the definition: y[n, g*Cog + o, h*s + r*d - p, ...] += x[n, g*Cig + i, h, w] * W[g*Cig + i, o, r, s]."""
    N, Ci, H, Wd = x.shape
    _, Cog, R, S = w.shape
    Ho = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (R - 1) + output_padding[0] + 1
    Wo = (Wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (S - 1) + output_padding[1] + 1
    big = np.zeros((N, Cog * groups, Ho + 2 * padding[0] + stride[0] * H, Wo + 2 * padding[1] + stride[1] * Wd))
    Cig = Ci // groups
    for g in range(groups):
        xg = x[:, g * Cig:(g + 1) * Cig].astype(np.float64)
        for r in range(R):
            for s in range(S):
                contrib = np.einsum("nihw,io->nohw", xg, w[g * Cig:(g + 1) * Cig, :, r, s].astype(np.float64))
                h0, w0 = r * dilation[0], s * dilation[1]
                big[:, g * Cog:(g + 1) * Cog, h0:h0 + stride[0] * H:stride[0], w0:w0 + stride[1] * Wd:stride[1]] += contrib
    return big[:, :, padding[0]:padding[0] + Ho, padding[1]:padding[1] + Wo]


@pytest.mark.parametrize("case", [
    ((2, 4, 5, 6), (4, 3, 3, 3), (2, 2), (1, 1), (1, 1), 1, (1, 1)),
    ((1, 4, 4, 5), (4, 2, 2, 3), (3, 1), (0, 1), (2, 0), 2, (1, 2)),
    ((2, 3, 6, 4), (3, 5, 1, 1), (2, 2), (0, 0), (0, 1), 1, (1, 1)),
    ((1, 6, 3, 3), (6, 1, 3, 3), (1, 1), (2, 2), (0, 0), 6, (2, 2)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_conv_transpose2d_matches_definition_and_is_conv2ds_adjoint(case: Any, dtype: Any) -> None:
    xs, ws, st, pad, opad, groups, dil = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * groups).astype(dtype)
    y = convext.conv_transpose2d(x, w, b, st, pad, opad, groups, dil)
    want = _ref_conv_transpose2d(x, w, st, pad, opad, groups, dil) + b[:, None, None]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * 10)
    assert y.dtype == dtype and y.shape == convext.conv_transpose2d_output_size(xs, ws, st, pad, opad, groups, dil)
    # <conv_transpose2d(x), v> == <x, conv2d(v)> (no bias): the seed's identity
    v = rng.standard_normal(y.shape)
    lhs = np.vdot(convext.conv_transpose2d(x.astype(np.float64), w.astype(np.float64), None, st, pad, opad, groups, dil), v)
    rhs = np.vdot(x.astype(np.float64), ref.conv2d(v, w.astype(np.float64), None, st, pad, dil, groups))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(rhs))


def test_numpy_conv_transpose2d_errors_name_the_argument() -> None:
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="output_padding"):
        convext.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="weight"):
        convext.conv_transpose2d(x, np.zeros((3, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="bias"):
        convext.conv_transpose2d(x, w, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="bias"):
        convext.conv_transpose2d(x, w, np.zeros(2, np.float64))
    xc = x.copy()
    convext.conv_transpose2d(xc, w)
    np.testing.assert_array_equal(xc, x)


def _adaptive_windows(n_in: int, n_out: int) -> list[tuple[int, int]]:
    return [((o * n_in) // n_out, -((-(o + 1) * n_in) // n_out)) for o in range(n_out)]


@pytest.mark.parametrize("out", [(1, 1), (3, 5), (4, 7), (9, 11), (12, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_adaptive_pools_match_their_windows(out: tuple[int, int], dtype: Any) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype)
    x[0, 0, 2, 3] = np.nan
    hw, ww = _adaptive_windows(9, out[0]), _adaptive_windows(11, out[1])
    mean = np.array([[x[:, :, a:b, c:d].astype(np.float64).mean(axis=(2, 3)) for c, d in ww] for a, b in hw])
    mean = mean.transpose(2, 3, 0, 1)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(convext.adaptive_avg_pool2d(x, out), mean, rtol=tol, atol=tol)
    y, idx = convext.adaptive_max_pool2d(x, out, return_indices=True)
    for i, (a, b) in enumerate(hw):
        for j, (c, d) in enumerate(ww):
            win = x[:, :, a:b, c:d]
            want = np.where(np.isnan(win).any(axis=(2, 3)), np.nan, np.max(np.nan_to_num(win, nan=-np.inf), axis=(2, 3)))
            np.testing.assert_array_equal(y[:, :, i, j], want)
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), 2).reshape(y.shape), y)
    # the backwards are the adjoints of the forwards
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = convext.adaptive_avg_pool2d_backward(g, x.shape)
    z = rng.standard_normal(x.shape).astype(dtype)
    assert np.isclose(np.vdot(dx.astype(np.float64), z), np.vdot(g.astype(np.float64), convext.adaptive_avg_pool2d(z, out)),
                      rtol=1e-5)
    np.testing.assert_array_equal(convext.adaptive_max_pool2d_backward(g, x, idx), convext.adaptive_max_pool2d_backward(g, x))


def test_numpy_avg_pool_divisor_override_matches_reference_sums() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 9))
    got = convext.avg_pool2d(x, 3, 2, 1, divisor_override=7)
    sums = ref.avg_pool2d(x, 3, 2, 1, count_include_pad=True) * 9  # windows inside the padded input: 9 taps
    np.testing.assert_allclose(got, sums / 7, rtol=1e-12)
    g = rng.standard_normal(got.shape)
    np.testing.assert_allclose(convext.avg_pool2d_backward(g, x.shape, 3, 2, 1, divisor_override=7),
                               ref.avg_pool2d_backward(g * 9 / 7, x.shape, 3, 2, 1), rtol=1e-12)


@pytest.mark.parametrize(("call", "match"), [
    (lambda x: convext.adaptive_avg_pool2d(x, 0), "output_size"),
    (lambda x: convext.adaptive_max_pool2d(x, (2, 3, 4)), "output_size"),
    (lambda x: convext.adaptive_avg_pool2d(x[0], 2), "4-D"),
    (lambda x: convext.avg_pool2d(x, 2, divisor_override=0), "divisor_override must not be zero"),
    (lambda x: convext.adaptive_max_pool2d_backward(np.zeros((1, 2, 3, 3)), x, np.full((1, 2, 3, 3), 99)), "indices"),
])
def test_numpy_pool_errors_name_the_argument(call: Any, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call(np.zeros((1, 2, 6, 6)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nn_conv_transpose2d_layer_matches_torch(dtype: Any) -> None:
    layer = cnn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2),
                                       dtype=dtype, rng=0)
    assert layer.weight.data.shape == (4, 3, 3, 3) and layer.bias is not None and layer.bias.data.shape == (6,)
    peer = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2))
    peer = peer.to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        peer.weight.copy_(torch.from_numpy(layer.weight.data))
        peer.bias.copy_(torch.from_numpy(layer.bias.data))
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 6)).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    want = peer(xt)
    y = layer(x)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    want.backward(torch.from_numpy(g))
    layer.zero_grad()
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(layer.weight.grad, peer.weight.grad.numpy(), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(layer.bias.grad, peer.bias.grad.numpy(), rtol=tol, atol=tol * 10)
    with pytest.raises(ValueError, match="output_padding"):
        cnn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
