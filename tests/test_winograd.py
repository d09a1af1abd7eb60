"""The engine's Winograd F(2x2, 3x3) convolution against the layer's im2col code: forward, weight, bias
and input gradients, in float64 (to rounding) and float32 (to a relative error of 1e-5), then whole
trainings on both paths, and the buffers it reuses across steps and threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import scratchnn as snn
from scratchnn import engine
from scratchnn.engine import buffers, kernels, winograd
from scratchnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from scratchnn.optimizers import Adam

C = winograd.MIN_CHANNELS


def _layer(filters, padding, channels, dtype, use_bias=True):
    snn.set_seed(0)
    layer = Conv2D(filters, 3, padding=padding, in_channels=channels, use_bias=use_bias)
    layer.params = {k: (np.random.default_rng(7).standard_normal(v.shape) * 0.3).astype(dtype)
                    for k, v in layer.params.items()}
    layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    return layer


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def _channels_last(a):
    """``a`` (NCHW) stored channels-last, as Conv2D and pooling layers hand it on."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


GEOMETRIES = [  # (N, H, W, padding): even and odd outputs, asymmetric and wide padding, 1x1 output
    (4, 14, 14, "same"), (3, 7, 7, "same"), (2, 9, 6, 0), (2, 5, 8, ((2, 1), (0, 2))), (2, 3, 3, 0),
    (1, 6, 11, 3), (5, 4, 4, "valid"),
]


@pytest.mark.parametrize("n, h, w, padding", GEOMETRIES)
@pytest.mark.parametrize("dtype, limit", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_winograd_equals_im2col(n, h, w, padding, dtype, limit, use_bias, layout, monkeypatch):
    monkeypatch.setattr(winograd, "EVEN_OUTPUTS_ONLY", False)  # the algorithm handles odd outputs too
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, C, h, w)).astype(dtype)
    if layout == "channels_last":
        x = _channels_last(x)
    plain = _layer(5, padding, C, dtype, use_bias)
    fast = _layer(5, padding, C, dtype, use_bias)
    assert winograd.applies(fast, x)
    y = plain.forward(x, training=True)
    yw = kernels.conv_forward(fast, x, True)
    assert isinstance(fast._cache, winograd.Cache)  # the Winograd path ran
    assert yw.shape == y.shape and yw.dtype == y.dtype
    assert _rel(yw, y) < limit
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = plain.backward(dy)
    dxw = kernels.conv_backward(fast, dy, True, None)
    assert dxw.shape == dx.shape and dxw.dtype == dx.dtype
    assert _rel(dxw, dx) < limit
    for k in plain.grads:
        assert _rel(fast.grads[k], plain.grads[k]) < limit, k
    assert fast._cache is None  # backward consumed the cache


def test_the_lowest_layer_skips_the_input_gradient_and_inference_keeps_no_cache():
    x = np.random.default_rng(2).standard_normal((3, C, 6, 6))
    plain, fast = _layer(4, "same", C, np.float64), _layer(4, "same", C, np.float64)
    plain.forward(x, training=True)
    plain.backward(np.ones((3, 4, 6, 6)))
    kernels.conv_forward(fast, x, True)
    assert kernels.conv_backward(fast, np.ones((3, 4, 6, 6)), False, None) is None
    np.testing.assert_allclose(fast.grads["W"], plain.grads["W"], rtol=1e-12)
    y = kernels.conv_forward(fast, x, False)
    assert fast._cache is None
    np.testing.assert_allclose(y, plain.forward(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, x_shape", [
    (lambda: Conv2D(4, 3, stride=2, in_channels=C), (2, C, 9, 9)),  # stride 2
    (lambda: Conv2D(4, 5, padding=2, in_channels=C), (2, C, 9, 9)),  # 5x5
    (lambda: Conv2D(4, 3, in_channels=C - 1), (2, C - 1, 9, 9)),  # too few channels to pay
    (lambda: Conv2D(4, 3, padding="same", in_channels=C), (2, C, 7, 7)),  # odd output: part of its tiles wasted
    (lambda: Conv2D(4, 3, in_channels=C), (2, C, 8, 9)),  # odd output width
])
def test_other_convolutions_take_im2col(make, x_shape):
    layer = make()
    x = np.zeros(x_shape, np.float32)
    assert not winograd.applies(layer, x)
    y = kernels.conv_forward(layer, x, True)
    assert not isinstance(layer._cache, winograd.Cache)
    assert kernels.conv_backward(layer, np.ones(y.shape, np.float32), True, None).shape == x.shape


def test_the_input_is_not_modified_and_results_are_fresh_arrays():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, C, 6, 6)).astype(np.float32)
    keep = x.copy()
    layer = _layer(4, "same", C, np.float32)
    y1 = kernels.conv_forward(layer, x, False)
    first = y1.copy()
    y2 = kernels.conv_forward(layer, 2 * x, False)  # reuses the buffers: y1 must not change
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(y1, first)
    assert not np.shares_memory(y1, y2)


def test_threads_have_their_own_buffers():
    """Inference splits a batch across threads through the same layer object."""
    layer = _layer(6, "same", C, np.float64)
    xs = [np.random.default_rng(s).standard_normal((3, C, 8, 8)) for s in range(4)]
    want = [layer.forward(x) for x in xs]
    got = [None] * len(xs)
    barrier = threading.Barrier(len(xs))

    def run(i):
        barrier.wait()
        for _ in range(20):
            got[i] = kernels.conv_forward(layer, xs[i], False)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    buffers.release()
    assert not vars(buffers._ARENA)


def test_buffers_of_ended_threads_are_freed_and_fit_releases_its_own():
    import gc
    import weakref

    layer = _layer(6, "same", C, np.float32)
    seen = []

    def run():
        kernels.conv_forward(layer, np.ones((2, C, 8, 8), np.float32), False)
        seen.append(weakref.ref(buffers._ARENA.bufs[("products", np.dtype(np.float32))]))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    gc.collect()
    assert seen and seen[0]() is None  # the thread's buffers went with it
    rng = np.random.default_rng(0)
    model = _cnn()
    model.compile(Adam(1e-3), "softmax_cross_entropy")
    model.fit(rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 16), epochs=1, batch_size=8,
              verbose=0)
    assert winograd.applies(model.layers[2], np.zeros((1, C, 8, 8), np.float32))
    assert model.layers[2] not in buffers._KEPT


def _cnn():
    return snn.Sequential([Conv2D(C, 3, padding="same"), ReLU(), Conv2D(8, 3, padding="same"), ReLU(), MaxPool2D(2),
                           Flatten(), Dense(3)])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_cnn_trains_to_the_same_weights_on_both_paths(threads, monkeypatch):
    """The second convolution has C input channels: the default path runs it by Winograd."""
    from scratchnn.engine import threads as engine_threads

    monkeypatch.setattr(engine_threads, "MIN_SHARD_MACS", 1)  # split every batch on two threads
    monkeypatch.setattr(engine_threads, "MIN_MOVED_PER_MAC", 0)
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((48, 1, 8, 8)), rng.integers(0, 3, 48)
    models = []
    snn.set_num_threads(threads)
    old = snn.backend.default_dtype()
    snn.set_default_dtype("float64")
    try:
        for path in ("fast", "reference"):
            snn.set_seed(0)
            m = _cnn()
            m.compile(Adam(1e-2), "softmax_cross_entropy")
            m.fit(X, y, epochs=2, batch_size=16, verbose=0, seed=3, engine=path)
            models.append(m)
    finally:
        snn.set_default_dtype(old)
        snn.set_num_threads(None)
    fast, ref = models
    assert winograd.applies(fast.layers[2], X[:1].repeat(C, axis=1))
    for la, lb in zip(fast.layers, ref.layers):
        for k in la.params:
            np.testing.assert_allclose(la.params[k], lb.params[k], rtol=1e-9, atol=1e-9, err_msg=f"{la.name}.{k}")
    np.testing.assert_allclose(engine.infer(fast, X), ref.forward(X), rtol=1e-9, atol=1e-12)
