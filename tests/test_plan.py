"""Conv2dPlan and the algorithm selectors (csrc/conv2d/select.cpp).

* which algorithm each direction of a shape gets (asserted, not guessed);
* the selectors agree with an independent transcription of the rules they
  replaced, over a sweep of shapes;
* every algorithm, forced, agrees with ``convext.reference`` on the shapes
  it accepts, and one that cannot run a shape is refused with a message;
* a plan's results are bitwise those of the functional API.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import convext
import convext.nn
from convext import reference as ref
from convext.plan import CORR_ALGORITHMS, INPUT_GRAD_ALGORITHMS, WEIGHT_GRAD_ALGORITHMS

# Whether the selectors take their default Winograd variant, F(2x2, 3x3).
_DEFAULT_WINOGRAD = os.environ.get("CONVEXT_WINOGRAD", "") in ("", "1", "2x2")

# (id, x_shape, w_shape, kwargs, expected algorithms)
KNOWN = [
    ("res3x3_56", (8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1),
     {"forward": "indirect_gemm", "input_grad": "phases[indirect_gemm]", "weight_grad": "gemm"}),
    ("res3x3_28", (8, 128, 28, 28), (128, 128, 3, 3), dict(padding=1),
     {"forward": "winograd_2x2", "input_grad": "phases[winograd_2x2]", "weight_grad": "winograd_2x2"}),
    ("stem7x7s2", (8, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3),
     {"forward": "indirect_gemm", "input_grad": "strided_shift_add", "weight_grad": "dot"}),
    ("down1x1s2", (8, 64, 56, 56), (128, 64, 1, 1), dict(stride=2),
     {"forward": "indirect_gemm", "input_grad": "phases[indirect_gemm]", "weight_grad": "gemm"}),
    ("dw3x3_56", (8, 32, 56, 56), (32, 1, 3, 3), dict(padding=1, groups=32),
     {"forward": "direct_planes", "input_grad": "phases[direct_planes]", "weight_grad": "depthwise_planes"}),
    ("dw3x3_112", (8, 32, 112, 112), (32, 1, 3, 3), dict(padding=1, groups=32),
     {"forward": "direct", "input_grad": "phases[direct]", "weight_grad": "depthwise"}),
    ("dw3x3s2_14", (8, 576, 14, 14), (576, 1, 3, 3), dict(stride=2, padding=1, groups=576),
     {"forward": "direct_planes", "input_grad": "phases[direct_planes]", "weight_grad": "depthwise_planes"}),
    ("lenet5x5", (64, 1, 28, 28), (20, 1, 5, 5), {},
     {"forward": "indirect_gemm", "input_grad": "phases[shift_add]", "weight_grad": "dot"}),
    ("res3x3_7_small_plane", (1, 512, 7, 7), (512, 512, 3, 3), dict(padding=1),
     {"forward": "indirect_gemm", "input_grad": "phases[indirect_gemm]", "weight_grad": "gemm"}),
    ("res3x3s2", (8, 64, 56, 56), (128, 64, 3, 3), dict(stride=2, padding=1),
     {"forward": "indirect_gemm", "input_grad": "phases[indirect_gemm]", "weight_grad": "gemm"}),
]


@pytest.mark.skipif(not _DEFAULT_WINOGRAD, reason="CONVEXT_WINOGRAD changes the selection")
@pytest.mark.parametrize("xs, ws, kw, want", [k[1:] for k in KNOWN], ids=[k[0] for k in KNOWN])
def test_selected_algorithms(xs, ws, kw, want):
    assert convext.Conv2dPlan(xs, ws, **kw).algorithms == want


def _old_rules(N, C, H, W, K, Cg, R, S, s, d, g, Ho, Wo):
    """The if-chains the selectors replaced, transcribed independently (with
    the Winograd rule of issue 15: F(2x2, 3x3) from 128 channels each way)."""
    Kg = K // g

    def corr(N, C, K, R, S, sh, dh, Ho, Wo, cg, kg):
        if kg < 4:
            if sh == (1, 1) and cg >= 8 and kg * R * S >= 8 and N * g >= 8:
                return "shift_add"
            return "direct_planes" if cg <= max(1, 64 // (R * S)) and Ho <= 64 and Wo <= 64 \
                else "direct"
        if (R, S) == (3, 3) and sh == (1, 1) and dh == (1, 1) and kg >= 128 and cg >= 128 \
                and Ho * Wo >= 144 and Ho >= 4 and Wo >= 4:
            return "winograd_2x2"
        return "indirect_gemm"

    fwd = corr(N, C, K, R, S, s, d, Ho, Wo, Cg, Kg)
    if Kg < 4:
        wg = "depthwise_planes" if Ho <= 64 and Wo <= 64 else "depthwise"
    elif fwd == "winograd_2x2":
        wg = "winograd_2x2"
    else:
        wg = "dot" if Cg <= 4 else "gemm"
    strided = s != (1, 1)
    if Cg < 4 and Kg >= 8 and Cg * R * S >= 8 and N * g >= 8 and strided and max(s) <= 4:
        ig = "strided_shift_add"
    else:
        ig = None
    return fwd, ig, wg


SWEEP = [
    (N, C, K, H, R, st, dl, g)
    for N in (1, 8)
    for (C, K, g) in ((3, 64, 1), (16, 16, 1), (64, 32, 1), (32, 32, 32), (8, 2, 1), (24, 48, 3),
                      (128, 128, 1), (128, 64, 1))
    for H in (7, 16, 28)
    for R in (1, 3, 5)
    for st in (1, 2)
    for dl in (1, 2)
    if (R - 1) * dl < H
]


@pytest.mark.skipif(not _DEFAULT_WINOGRAD, reason="CONVEXT_WINOGRAD changes the selection")
@pytest.mark.parametrize("N, C, K, H, R, s, d, g", SWEEP)
def test_selectors_match_the_rules_they_replaced(N, C, K, H, R, s, d, g):
    pad = (R - 1) * d // 2
    plan = convext.Conv2dPlan((N, C, H, H), (K, C // g, R, R), stride=s, padding=pad, dilation=d, groups=g)
    _, _, Ho, Wo = plan.output_shape
    fwd, ig, wg = _old_rules(N, C, H, H, K, C // g, R, R, (s, s), (d, d), g, Ho, Wo)
    a = plan.algorithms
    assert a["forward"] == fwd
    assert a["weight_grad"] == wg
    if ig is not None:
        assert a["input_grad"] == ig
    else:
        assert a["input_grad"].startswith("phases[")


# Shapes every algorithm is tried on: (id, x_shape, w_shape, kwargs)
FORCED_SHAPES = [
    ("3x3_s1", (2, 16, 10, 9), (8, 16, 3, 3), dict(padding=1)),
    ("3x3_s2", (2, 5, 11, 10), (6, 5, 3, 3), dict(stride=2, padding=1)),
    ("5x5_dilated", (2, 4, 14, 13), (3, 4, 5, 5), dict(padding=3, dilation=2)),
    ("1x1_s2", (3, 8, 9, 8), (16, 8, 1, 1), dict(stride=2)),
    ("grouped", (2, 6, 9, 9), (6, 2, 3, 3), dict(padding=1, groups=3)),
    ("depthwise_s2", (2, 4, 12, 11), (4, 1, 3, 3), dict(stride=2, padding=1, groups=4)),
    ("stem_like", (8, 3, 17, 16), (8, 3, 7, 7), dict(stride=2, padding=3)),
    ("rect_1x7", (2, 8, 9, 12), (4, 8, 1, 7), dict(padding=(0, 3))),
    ("stride3_no_pad", (2, 3, 13, 13), (4, 3, 4, 4), dict(stride=3)),
    ("out_of_reach_rows", (1, 2, 10, 10), (3, 2, 1, 1), dict(stride=3)),
    # input-gradient phases that are 1x1 correlations with an output a row and
    # a column larger than dy (once read in place as a pointwise layer: wrong)
    ("phase_1x1_larger_out", (2, 4, 10, 10), (6, 4, 3, 3), dict(stride=2)),
    ("phase_1x1_s2_p1", (2, 4, 9, 9), (6, 4, 2, 2), dict(stride=2, padding=1)),
    ("phase_1x1_s3_p2", (2, 5, 14, 14), (6, 5, 4, 4), dict(stride=3, padding=2)),
]


def _operands(xs, ws, plan, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    gy = rng.standard_normal(plan.output_shape)
    return x, w, gy


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("algo", CORR_ALGORITHMS)
@pytest.mark.parametrize("xs, ws, kw", [f[1:] for f in FORCED_SHAPES], ids=[f[0] for f in FORCED_SHAPES])
def test_forced_forward_matches_reference(algo, xs, ws, kw):
    try:
        plan = convext.Conv2dPlan(xs, ws, dtype=np.float64, algorithms={"forward": algo}, **kw)
    except ValueError as e:
        assert algo in ("winograd_2x2", "winograd_4x4", "shift_add") and f"'{algo}' cannot run" in str(e)
        return
    assert plan.algorithms["forward"] == algo
    x, w, _ = _operands(xs, ws, plan)
    b = np.linspace(-1, 1, ws[0])
    _close(plan.forward(x, w, b), ref.conv2d(x, w, b, **kw))


@pytest.mark.parametrize("algo", [*INPUT_GRAD_ALGORITHMS, *(f"phases[{c}]" for c in CORR_ALGORITHMS)])
@pytest.mark.parametrize("xs, ws, kw", [f[1:] for f in FORCED_SHAPES], ids=[f[0] for f in FORCED_SHAPES])
def test_forced_input_grad_matches_reference(algo, xs, ws, kw):
    try:
        plan = convext.Conv2dPlan(xs, ws, dtype=np.float64, algorithms={"input_grad": algo}, **kw)
    except ValueError as e:
        assert "winograd" in algo and "cannot run" in str(e)
        return
    assert plan.algorithms["input_grad"].startswith(algo.split("[")[0])
    if "[" in algo:
        assert plan.algorithms["input_grad"] == algo
    x, w, gy = _operands(xs, ws, plan)
    _close(plan.input_grad(gy, w), ref.conv2d_input_grad(gy, w, xs, **kw))


@pytest.mark.parametrize("algo", WEIGHT_GRAD_ALGORITHMS)
@pytest.mark.parametrize("xs, ws, kw", [f[1:] for f in FORCED_SHAPES], ids=[f[0] for f in FORCED_SHAPES])
def test_forced_weight_grad_matches_reference(algo, xs, ws, kw):
    try:
        plan = convext.Conv2dPlan(xs, ws, dtype=np.float64, algorithms={"weight_grad": algo}, **kw)
    except ValueError as e:
        assert algo.startswith("winograd") and "cannot run" in str(e)
        return
    assert plan.algorithms["weight_grad"] == algo
    x, w, gy = _operands(xs, ws, plan)
    gx, gw, gb = plan.backward(gy, x, w)
    _close(gw, ref.conv2d_weight_grad(gy, x, ws, **kw))
    _close(gb, gy.sum(axis=(0, 2, 3)))


def test_winograd_refused_with_the_rule():
    for algo in ("winograd_2x2", "winograd_4x4"):
        with pytest.raises(ValueError, match=rf"Conv2dPlan: the forward algorithm '{algo}' cannot run .*3x3"):
            convext.Conv2dPlan((1, 16, 8, 8), (16, 16, 5, 5), algorithms={"forward": algo})


@pytest.mark.parametrize(
    "algorithms, match",
    [
        ({"forward": "fft"}, r"unknown correlation algorithm 'fft' \(one of: shift_add, direct, direct_planes, winograd_2x2, winograd_4x4, indirect_gemm\)"),
        ({"backward": "gemm"}, r"unknown key 'backward'"),
        ({"input_grad": "phases[fft]"}, r"unknown correlation algorithm 'fft'"),
        ({"weight_grad": "im2col"}, r"unknown weight-gradient algorithm 'im2col'"),
    ],
)
def test_bad_algorithm_requests(algorithms, match):
    with pytest.raises(ValueError, match=match):
        convext.Conv2dPlan((1, 4, 8, 8), (4, 4, 3, 3), algorithms=algorithms)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, kw", [k[1:4] for k in KNOWN[:5]], ids=[k[0] for k in KNOWN[:5]])
def test_plan_bitwise_equals_functional(dtype, xs, ws, kw):
    xs = (2,) + tuple(xs[1:3]) + (min(xs[3], 32),) if xs[2] > 32 else xs
    xs = (xs[0], xs[1], min(xs[2], 32), min(xs[3], 32))
    plan = convext.Conv2dPlan(xs, ws, dtype=dtype, **kw)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y = plan.forward(x, w, b)
    assert np.array_equal(y, convext.conv2d(x, w, b, **kw))
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(plan.backward(gy, x, w), convext.conv2d_backward(gy, x, w, **kw)):
        assert np.array_equal(got, want)
    assert np.array_equal(plan.input_grad(gy, w), convext.conv2d_input_grad(gy, w, xs, **kw))
    assert np.array_equal(plan.weight_grad(gy, x), convext.conv2d_weight_grad(gy, x, ws, **kw))


def test_plan_checks_its_operands():
    plan = convext.Conv2dPlan((2, 4, 8, 8), (6, 4, 3, 3), padding=1)
    x = np.zeros((2, 4, 8, 8), np.float32)
    w = np.zeros((6, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"x must have shape \(2, 4, 8, 8\) \(the plan's\), got \(2, 4, 9, 8\)"):
        plan.forward(np.zeros((2, 4, 9, 8), np.float32), w)
    with pytest.raises(TypeError, match="weight has dtype float64 but the plan was made for float32"):
        plan.forward(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="grad_out"):
        plan.backward(np.zeros((2, 6, 7, 8), np.float32), x, w)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        convext.Conv2dPlan((2, 4, 8, 8), (6, 4, 3, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="stride"):
        convext.Conv2dPlan((2, 4, 8, 8), (6, 4, 3, 3), stride=0)


def test_plan_repr_pickle_and_shapes():
    plan = convext.Conv2dPlan((2, 4, 8, 8), (6, 2, 3, 3), stride=(2, 1), padding=1, groups=2,
                              dtype=np.float64, algorithms={"forward": "direct"})
    assert plan.output_shape == (2, 6, 4, 8)
    text = repr(plan)
    assert "stride=(2, 1)" in text and "groups=2" in text and "forward: direct" in text
    clone = pickle.loads(pickle.dumps(plan))
    assert clone.algorithms == plan.algorithms and clone.output_shape == plan.output_shape


def test_one_tuple_pairs_as_in_torch():
    x = np.random.default_rng(2).standard_normal((1, 2, 7, 7))
    w = np.ones((3, 2, 3, 3))
    assert np.array_equal(convext.conv2d(x, w, padding=(2,), stride=(1,)), convext.conv2d(x, w, padding=2))
    p, _ = convext.max_pool2d(x, (3,), stride=(2,), return_indices=True)
    assert np.array_equal(p, convext.max_pool2d(x, 3, stride=2))


def test_nn_conv2d_reuses_one_plan_per_shape():
    layer = convext.nn.Conv2d(3, 4, 3, padding=1, rng=0)
    x = np.ones((2, 3, 6, 6), np.float32)
    layer(x)
    layer(x)
    layer(np.ones((1, 3, 5, 5), np.float32))
    assert len(layer._plans) == 2



@pytest.mark.parametrize("algo", ["winograd_2x2", "winograd_4x4"])
def test_winograd_takes_the_gemm_for_non_finite_or_huge_operands(algo):
    # issue 13 item 5: Winograd's transforms add before they multiply, so one
    # Inf would become inf - inf = NaN over whole tiles, and values near the
    # top of the float32 range would overflow; such calls take the GEMM path.
    rng = np.random.default_rng(0)
    xs, ws = (1, 16, 16, 16), (16, 16, 3, 3)
    plan = convext.Conv2dPlan(xs, ws, padding=1,
                              algorithms={"forward": algo, "input_grad": f"phases[{algo}]", "weight_grad": algo})
    w = rng.standard_normal(ws).astype(np.float32)
    x = rng.standard_normal(xs).astype(np.float32)
    x[0, 3, 5, 5] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    got = plan.forward(x, w)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    assert np.isinf(got).sum() == 144  # 9 positions reached by the Inf, in 16 output channels

    gy = rng.standard_normal(plan.output_shape).astype(np.float32)
    gy[0, 2, 3, 3] = -np.inf
    x = rng.standard_normal(xs).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        gx, gw, _ = plan.backward(gy, x, w)
        gx_want = ref.conv2d_input_grad(gy.astype(np.float64), w.astype(np.float64), xs, padding=1)
        gw_want = ref.conv2d_weight_grad(gy.astype(np.float64), x.astype(np.float64), ws, padding=1)
    np.testing.assert_array_equal(np.isfinite(gx), np.isfinite(gx_want))
    np.testing.assert_array_equal(np.isfinite(gw), np.isfinite(gw_want))

    big = (rng.standard_normal(xs) * 3e36).astype(np.float32)  # |y| stays below float32's max
    small_w = (w * 0.1).astype(np.float32)
    y = plan.forward(big, small_w)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, ref.conv2d(big.astype(np.float64), small_w.astype(np.float64), padding=1),
                               rtol=1e-4, atol=1e-5 * float(np.abs(y).max()))
