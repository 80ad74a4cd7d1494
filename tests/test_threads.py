"""Thread count control, 1 thread == 2 threads bitwise, and concurrent calls."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import convext


@pytest.fixture
def restore_threads():
    before = convext.get_num_threads()
    yield before
    convext.set_num_threads(before)
    assert convext.get_num_threads() == before


def test_get_num_threads_round_trip(restore_threads):
    assert isinstance(restore_threads, int) and restore_threads >= 1
    for n in (1, 2, 3, 1):
        convext.set_num_threads(n)
        assert convext.get_num_threads() == n


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_non_positive(bad, restore_threads):
    with pytest.raises(ValueError):
        convext.set_num_threads(bad)
    assert convext.get_num_threads() == restore_threads


def _workloads(rng):
    """Medium shapes, large enough for every op to split work across threads."""
    x = rng.standard_normal((4, 16, 24, 22)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    xd = rng.standard_normal((2, 24, 17, 19))  # float64, depthwise
    wd = rng.standard_normal((24, 1, 3, 3))
    conv_kw = dict(stride=(2, 1), padding=1)
    dw_kw = dict(padding=(1, 2), dilation=(1, 2), groups=24)
    gy = rng.standard_normal((4, 32, 12, 22)).astype(np.float32)  # conv2d(x, w, **conv_kw)
    gyd = rng.standard_normal((2, 24, 17, 19))  # conv2d(xd, wd, **dw_kw)
    pool_kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    xt = rng.integers(0, 4, (4, 16, 24, 22)).astype(np.float32)  # ties
    gyp = rng.standard_normal((4, 16, 13, 12)).astype(np.float32)  # max_pool2d(xt, **pool_kw)
    # few input channels, strided, wide rows, 8 images: the dot-product weight
    # gradient and the shift-add input gradient
    xs = rng.standard_normal((8, 3, 30, 64)).astype(np.float32)
    ws = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    gys = rng.standard_normal((8, 8, 15, 32)).astype(np.float32)
    a = rng.standard_normal((120, 97))
    k = rng.standard_normal((9, 7))
    return {
        "conv2d": lambda: convext.conv2d(x, w, b, **conv_kw),
        "conv2d_backward": lambda: convext.conv2d_backward(gy, x, w, **conv_kw),
        "conv2d_input_grad": lambda: convext.conv2d_input_grad(gy, w, x.shape, **conv_kw),
        "conv2d_weight_grad": lambda: convext.conv2d_weight_grad(gy, x, w.shape, **conv_kw),
        "conv2d_few_channels_backward": lambda: convext.conv2d_backward(gys, xs, ws, stride=2, padding=2),
        "conv2d_depthwise": lambda: convext.conv2d(xd, wd, **dw_kw),
        "conv2d_depthwise_backward": lambda: convext.conv2d_backward(gyd, xd, wd, **dw_kw),
        "max_pool2d": lambda: convext.max_pool2d(xt, return_indices=True, **pool_kw),
        "max_pool2d_backward": lambda: convext.max_pool2d_backward(gyp, xt, **pool_kw),
        "avg_pool2d": lambda: convext.avg_pool2d(x, **pool_kw),
        "avg_pool2d_backward": lambda: convext.avg_pool2d_backward(gyp, x.shape, **pool_kw),
        "relu": lambda: (convext.relu(x), convext.relu_backward(x, x)),
        "correlate2d_valid": lambda: convext.correlate2d(a, k, "valid"),
        "correlate2d_full": lambda: convext.correlate2d(a, k, "full"),
        "convolve2d_same": lambda: convext.convolve2d(a, k, "same"),
    }


OPS = ["conv2d", "conv2d_backward", "conv2d_input_grad", "conv2d_weight_grad",
       "conv2d_few_channels_backward", "conv2d_depthwise",
       "conv2d_depthwise_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
       "avg_pool2d_backward", "relu", "correlate2d_valid", "correlate2d_full", "convolve2d_same"]


def _flatten(result):
    return list(result) if isinstance(result, tuple) else [result]


def _assert_bitwise_equal(got, expected, what):
    for g, e in zip(_flatten(got), _flatten(expected)):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert g.tobytes() == e.tobytes(), f"{what}: results differ bitwise"


@pytest.mark.parametrize("op", OPS)
def test_one_thread_equals_two_threads(op, restore_threads):
    work = _workloads(np.random.default_rng(1))
    assert sorted(work) == sorted(OPS)
    call = work[op]
    convext.set_num_threads(1)
    one = call()
    convext.set_num_threads(2)
    two = call()
    _assert_bitwise_equal(two, one, op)


def test_concurrent_python_threads(restore_threads):
    """Several Python threads calling convext at once get the serial results."""
    convext.set_num_threads(2)
    work = _workloads(np.random.default_rng(2))
    names = ["conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d_backward",
             "correlate2d_full", "conv2d_depthwise_backward"]
    expected = {n: work[n]() for n in names}
    results: dict = {}
    errors: list = []

    def run(idx):
        try:
            for rep in range(3):
                name = names[(idx + rep) % len(names)]
                results[(idx, rep)] = (name, work[name]())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 12
    for name, got in results.values():
        _assert_bitwise_equal(got, expected[name], name)
