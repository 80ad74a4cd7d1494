"""convext.torch's torch.library ops: compile, export, trace, torch.func and double backward against stock PyTorch."""
from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import convext.torch as ct  # noqa: E402


def distinct(*shape: int, seed: int = 0) -> torch.Tensor:
    """float64 values 0.05 apart and away from 0, so finite differences never cross a tie or a kink."""
    n = int(np.prod(shape))
    values = (torch.randperm(n, generator=torch.Generator().manual_seed(n + seed)).double() - n / 2) * 0.05 + 0.025
    return values.reshape(shape).requires_grad_(True)


GRADGRAD_CASES = [
    pytest.param(lambda x, w, b: ct.conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
                 [(2, 4, 7, 6), (4, 2, 3, 3), (4,)], id="conv2d_stride_pad_dilation_groups"),
    pytest.param(lambda x, w: ct.conv2d(x, w, stride=(1, 2), padding=(2, 0)), [(1, 3, 5, 6), (2, 3, 3, 2)], id="conv2d_nobias"),
    pytest.param(lambda x: ct.max_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 2, 7, 6)], id="max_pool2d"),
    pytest.param(lambda x: ct.max_pool2d(x, 2, 1, dilation=2), [(1, 2, 5, 6)], id="max_pool2d_dilated"),
    pytest.param(lambda x: ct.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [(2, 2, 7, 6)], id="avg_pool2d"),
    pytest.param(lambda x: ct.relu(x), [(2, 3, 4, 5)], id="relu"),
    pytest.param(lambda x, w, b: ct.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
                 [(2, 4, 4, 3), (4, 3, 3, 2), (6,)], id="conv_transpose2d"),
    pytest.param(lambda x: ct.adaptive_avg_pool2d(x, (3, 4)), [(2, 2, 7, 6)], id="adaptive_avg_pool2d"),
    pytest.param(lambda x: ct.adaptive_max_pool2d(x, (3, 4)), [(2, 2, 7, 6)], id="adaptive_max_pool2d"),
    pytest.param(lambda x: ct.avg_pool2d(x, 3, 2, 1, divisor_override=5), [(2, 2, 7, 6)], id="avg_pool2d_divisor"),
    pytest.param(lambda x, w: ct.conv2d(x, w, padding="same"), [(1, 2, 5, 6), (3, 2, 2, 4)], id="conv2d_same_even"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize(("fn", "shapes"), GRADGRAD_CASES)
def test_gradgradcheck_float64(fn: Callable, shapes: list[tuple[int, ...]]) -> None:
    inputs = tuple(distinct(*shape, seed=i) for i, shape in enumerate(shapes))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-7)


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 3, stride=2, groups=2), torch.nn.ReLU(), torch.nn.AvgPool2d(2, ceil_mode=True),
    ).double()


def test_gradient_penalty_matches_torch() -> None:
    reference = small_net()
    model = ct.convert(copy.deepcopy(reference))
    x = distinct(2, 2, 10, 10)
    results = []
    for net in (model, reference):
        xi = x.detach().clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(net(xi).square().sum(), xi, create_graph=True)
        penalty = gx.square().sum()
        penalty.backward()
        results.append((penalty.detach(), [p.grad for p in net.parameters()]))
    (p1, g1), (p2, g2) = results
    torch.testing.assert_close(p1, p2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_hessian_vector_product_matches_torch() -> None:
    x, w = distinct(1, 2, 6, 6), distinct(3, 2, 3, 3, seed=1)
    v = torch.ones_like(w)

    def loss(fn: Callable) -> Callable:
        return lambda w_: fn(x.detach(), w_, padding=1).tanh().sum()

    hv = torch.autograd.functional.hvp(loss(ct.conv2d), w.detach(), v)[1]
    hv_ref = torch.autograd.functional.hvp(loss(F.conv2d), w.detach(), v)[1]
    torch.testing.assert_close(hv, hv_ref)


def test_functional_call_gradients_match_torch() -> None:
    reference = small_net()
    model = ct.convert(copy.deepcopy(reference))
    x = distinct(2, 2, 10, 10).detach()
    params = dict(model.named_parameters())

    def grads(net: torch.nn.Module) -> tuple[torch.Tensor, ...]:
        p = {k: v.detach().clone().requires_grad_(True) for k, v in net.named_parameters()}
        out = torch.func.functional_call(net, p, (x.clone(),)).sum()
        return torch.autograd.grad(out, list(p.values()))

    assert list(params) == [k for k, _ in reference.named_parameters()]
    for a, b in zip(grads(model), grads(reference)):
        torch.testing.assert_close(a, b)


def test_compile_fullgraph_has_no_graph_break() -> None:
    torch._dynamo.reset()
    model = ct.convert(small_net().float())
    x = torch.randn(2, 2, 10, 10)
    expected = model(x.clone())
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x.clone()), expected)
    explanation = torch._dynamo.explain(model)(x.clone())
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    targets = {str(n.target) for g in explanation.graphs for n in g.graph.nodes if n.op == "call_function"}
    assert any("convext.conv2d" in t for t in targets), targets


def test_export_runs_convext_ops() -> None:
    model = ct.convert(small_net().float())
    x = torch.randn(2, 2, 10, 10)
    exported = torch.export.export(model, (x.clone(),))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert {"convext.conv2d.default", "convext.max_pool2d.default", "convext.relu.default"} <= targets, targets
    torch.testing.assert_close(exported.module()(x.clone()), model(x.clone()))


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shapes become constants of the trace
def test_jit_trace_inplace_relu_and_save_load() -> None:
    model = ct.convert(small_net().float())
    x = torch.randn(2, 2, 10, 10)
    traced = torch.jit.trace(model, (x.clone(),))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    y = torch.randn(2, 2, 10, 10)
    torch.testing.assert_close(loaded(y.clone()), model(y.clone()))
    assert "convext::conv2d" in loaded.graph.__str__() or "convext::conv2d" in str(loaded.inlined_graph)


def test_groups_must_be_an_integer() -> None:
    x, w = torch.randn(1, 4, 5, 5), torch.randn(4, 2, 3, 3)
    for bad in (2.7, 2.0, "2", True):
        with pytest.raises(TypeError, match="groups must be an integer"):
            ct.conv2d(x, w, groups=bad)
    torch.testing.assert_close(ct.conv2d(x, w, groups=2), F.conv2d(x, w, groups=2))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_quantized_tensor_message() -> None:
    q = torch.quantize_per_tensor(torch.ones(1, 1, 4, 4), 0.1, 0, torch.quint8)
    with pytest.raises(TypeError, match="quantized tensor"):
        ct.relu(q)


def test_bfloat16_model_falls_back_to_torch_and_warns_once_per_class() -> None:
    ct._WARNED.clear()
    reference = small_net().float()
    model = ct.convert(copy.deepcopy(reference)).to(torch.bfloat16)
    reference = reference.to(torch.bfloat16)
    x = torch.randn(2, 2, 10, 10).bfloat16()
    with pytest.warns(ct.ConversionWarning) as record:
        y = model(x.clone())
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 4, messages  # Conv2d, ReLU, MaxPool2d, AvgPool2d: once per class and reason
    assert all("dtype torch.bfloat16 is not computed by convext" in m for m in messages)
    assert any(m.startswith("convext.torch.Conv2d:") for m in messages)
    assert torch.equal(y, reference(x.clone()))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(x.clone())  # no second warning
    assert type(model[0]) is ct.Conv2d


def test_eager_inference_shortcut_matches_the_op_path() -> None:
    x, w, b = torch.randn(2, 3, 7, 7), torch.randn(4, 3, 3, 3), torch.randn(4)
    with torch.no_grad():
        fast = (ct.conv2d(x, w, b, padding=1), ct.relu(x - 0.1))
    slow = (ct.conv2d(x, w.requires_grad_(True), b, padding=1), ct.relu((x - 0.1).requires_grad_(True)))
    for a, c in zip(fast, slow):
        assert c.requires_grad and not a.requires_grad
        assert torch.equal(a, c.detach())


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x, F_: F_.conv2d(x, torch.ones(2, 3, 3, 3), padding=1), id="conv2d"),
        pytest.param(lambda x, F_: F_.max_pool2d(x, 2), id="max_pool2d"),
        pytest.param(lambda x, F_: F_.avg_pool2d(x, 2), id="avg_pool2d"),
        pytest.param(lambda x, F_: F_.relu(x), id="relu"),
    ],
)
def test_channels_last_in_channels_last_out(fn: Callable) -> None:
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)
    out, ref = fn(x, ct), fn(x, F)
    assert ref.is_contiguous(memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last) and out.stride() == ref.stride()
    torch.testing.assert_close(out, ref)


def test_torch_func_grad_matches_torch() -> None:
    x, w = distinct(1, 2, 7, 7), distinct(3, 2, 3, 3, seed=1)

    def loss(lib: object) -> Callable:
        return lambda w_: lib.avg_pool2d(lib.max_pool2d(lib.relu(lib.conv2d(x.detach(), w_, padding=1)), 2, 1), 2, 1).square().sum()

    torch.testing.assert_close(torch.func.grad(loss(ct))(w.detach()), torch.func.grad(loss(F))(w.detach()))


def test_convert_names_every_module_it_leaves() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.Sequential(torch.nn.ReLU6(), torch.nn.LeakyReLU()),
        torch.nn.ConvTranspose2d(4, 4, 2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.LPPool2d(2, 2), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding_mode="reflect"), torch.nn.ConvTranspose2d(4, 4, 3, 1, dilation=2, output_padding=1),
    )
    with pytest.warns(ct.ConversionWarning) as record:
        ct.convert(model)
    assert len(record) == 1
    message = str(record[0].message)
    assert "left 4 module(s)" in message
    for expected in ("1.0 (ReLU6: no convext kernel)", "1.1 (LeakyReLU", "4 (LPPool2d", "6 (Conv2d: padding_mode='reflect')"):
        assert expected in message, message
    assert [type(model[i]) for i in (0, 2, 3, 5, 7)] == [ct.Conv2d, ct.ConvTranspose2d, ct.AdaptiveAvgPool2d, ct.ReLU,
                                                         ct.ConvTranspose2d]


def test_eager_inference_shortcut_pools_match_the_op_path() -> None:
    x = torch.randn(2, 3, 7, 7)
    with torch.no_grad():
        fast = (*ct.max_pool2d(x, 3, 2, 1, return_indices=True), ct.avg_pool2d(x, 3, 2, 1, ceil_mode=True))
    xg = x.clone().requires_grad_(True)
    slow = (*ct.max_pool2d(xg, 3, 2, 1, return_indices=True), ct.avg_pool2d(xg, 3, 2, 1, ceil_mode=True))
    assert slow[0].requires_grad and not fast[0].requires_grad
    for a, c in zip(fast, slow):
        assert torch.equal(a, c.detach())


F64 = torch.float64
VMAP_CASES = [  # (convext fn, torch fn, in_dims, argument shapes)
    pytest.param(lambda x: ct.conv2d(x, VW, padding=1), lambda x: F.conv2d(x, VW, padding=1), 0, [(3, 2, 4, 7, 6)],
                 id="conv2d_images_folded"),
    pytest.param(lambda w: ct.conv2d(VX, w, stride=2), lambda w: F.conv2d(VX, w, stride=2), 0, [(3, 5, 4, 3, 3)],
                 id="conv2d_weights_looped"),
    pytest.param(lambda x, w: ct.conv2d(x, w, groups=2), lambda x, w: F.conv2d(x, w, groups=2), (1, 0),
                 [(2, 3, 4, 7, 6), (3, 6, 2, 3, 3)], id="conv2d_both_mapped_dim1"),
    pytest.param(lambda x: ct.conv_transpose2d(x, VW.transpose(0, 1), stride=2, output_padding=1),
                 lambda x: F.conv_transpose2d(x, VW.transpose(0, 1), stride=2, output_padding=1), 0, [(3, 2, 4, 5, 5)],
                 id="conv_transpose2d"),
    pytest.param(lambda x: ct.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1), 2, [(2, 4, 3, 7, 6)], id="max_pool2d"),
    pytest.param(lambda x: ct.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2), 0, [(3, 2, 4, 7, 6)], id="avg_pool2d"),
    pytest.param(lambda x: ct.adaptive_max_pool2d(x, 3), lambda x: F.adaptive_max_pool2d(x, 3), 0, [(3, 2, 4, 7, 6)],
                 id="adaptive_max_pool2d"),
    pytest.param(lambda x: ct.adaptive_avg_pool2d(x, (2, 4)), lambda x: F.adaptive_avg_pool2d(x, (2, 4)), 0,
                 [(3, 2, 4, 7, 6)], id="adaptive_avg_pool2d"),
    pytest.param(lambda x: ct.relu(x), lambda x: F.relu(x), 1, [(2, 3, 5)], id="relu"),
]
VW = torch.randn(5, 4, 3, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
VX = torch.randn(2, 4, 7, 6, dtype=F64, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(("fn", "peer", "in_dims", "shapes"), VMAP_CASES)
def test_vmap_and_vmap_of_grad_match_torch(fn: Callable, peer: Callable, in_dims: Any, shapes: list[tuple[int, ...]]) -> None:
    args = [torch.randn(s, dtype=F64, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes)]
    torch.testing.assert_close(torch.vmap(fn, in_dims=in_dims)(*args), torch.vmap(peer, in_dims=in_dims)(*args))

    def grad_of(f: Callable) -> Callable:
        return torch.func.grad(lambda *a: f(*a).pow(2).sum(), argnums=tuple(range(len(args))))
    torch.testing.assert_close(torch.vmap(grad_of(fn), in_dims=in_dims)(*args),
                               torch.vmap(grad_of(peer), in_dims=in_dims)(*args))


def test_per_sample_weight_gradients_match_torch() -> None:
    """The Opacus pattern: vmap over the batch of grad with respect to the weight."""
    x = torch.randn(6, 4, 7, 6, dtype=F64)

    def per_sample(conv: Callable) -> torch.Tensor:
        loss = lambda w, xi: conv(xi.unsqueeze(0), w).relu().sum()  # noqa: E731
        return torch.vmap(torch.func.grad(loss), in_dims=(None, 0))(VW, x)
    torch.testing.assert_close(per_sample(lambda a, w: ct.conv2d(a, w, padding=1)),
                               per_sample(lambda a, w: F.conv2d(a, w, padding=1)))
