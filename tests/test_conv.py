import json
import tracemalloc

import numpy as np
import pytest

from scratchnn import functional as F
from scratchnn.gradcheck import check_layer
from scratchnn.layers import Conv2D
from scratchnn.regularizers import L2, MaxNorm


def naive_conv(x, W, b, stride, pads):
    """Slow reference: loop over output positions, einsum over each receptive field."""
    (sh, sw) = F.pair(stride)
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    f, _, kh, kw = W.shape
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, W) + (0 if b is None else b)
    return y


CASES = [  # (N, C, H, W, filters, kernel, stride, padding)
    (2, 2, 5, 5, 3, 3, 1, 0),
    (2, 2, 5, 5, 3, 3, 1, 1),
    (2, 2, 5, 7, 2, (2, 3), (2, 1), (1, 0)),
    (1, 3, 7, 6, 2, 3, 2, "same"),
    (2, 1, 5, 5, 2, 3, 1, "same"),
    (2, 2, 6, 5, 2, (3, 2), 2, ((1, 0), (2, 1))),
    (1, 2, 4, 5, 3, 1, 1, "valid"),
    (2, 2, 3, 3, 2, 5, 1, 1),  # kernel larger than the unpadded input
]


def make(x_shape, filters, k, s, p, rng, **kw):
    layer = Conv2D(filters, k, stride=s, padding=p, **kw)
    x = rng.standard_normal(x_shape)
    layer.ensure_built(x)
    layer.astype(np.float64)
    if layer.use_bias:
        layer.params["b"][...] = rng.standard_normal(filters)
    return layer, x


@pytest.mark.parametrize("n,c,h,w,f,k,s,p", CASES)
def test_forward_matches_naive_reference(rng, n, c, h, w, f, k, s, p):
    layer, x = make((n, c, h, w), f, k, s, p, rng)
    y = layer.forward(x)
    pads = F.resolve_padding(p, (h, w), k, s)
    np.testing.assert_allclose(y, naive_conv(x, layer.params["W"], layer.params["b"], s, pads), atol=1e-12)
    assert y.shape == (n, *layer.output_shape((c, h, w)))


def test_forward_hand_computed():
    layer = Conv2D(1, 2, in_channels=1)
    layer.params["W"][...] = [[[[1, 0], [0, -1]]]]  # top-left minus bottom-right
    layer.params["b"][...] = 0.5
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    y = layer.forward(x)
    np.testing.assert_allclose(y, [[[[-4 + 0.5, -4 + 0.5], [-4 + 0.5, -4 + 0.5]]]])
    assert y.dtype == np.float32


def test_same_padding_output_size():
    for s in (1, 2, 3):
        layer = Conv2D(4, 3, stride=s, padding="same")
        y = layer.forward(np.zeros((1, 2, 7, 8), np.float32))
        assert y.shape == (1, 4, -(-7 // s), -(-8 // s))


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("n,c,h,w,f,k,s,p", CASES)
def test_gradcheck(rng, use_bias, n, c, h, w, f, k, s, p):
    layer = Conv2D(f, k, stride=s, padding=p, use_bias=use_bias)
    res = check_layer(layer, rng.standard_normal((n, c, h, w)))
    assert res.passed, res.report
    assert res.max_rel_error < 1e-6
    assert set(layer.grads) == set(layer.params) == ({"W", "b"} if use_bias else {"W"})


def test_gradcheck_on_channels_last_input(rng):
    """Conv2D output (an NCHW view of NHWC memory) fed into another Conv2D."""
    first = Conv2D(3, 1, in_channels=2)
    x = first.forward(rng.standard_normal((2, 2, 5, 5)))
    assert not x.flags.c_contiguous
    res = check_layer(Conv2D(2, 3, stride=2, padding=1), x)
    assert res.passed, res.report


def test_engine_kernel_without_dx_fills_the_same_grads(rng):
    from scratchnn.engine import kernels

    layer, x = make((2, 2, 5, 5), 3, 3, 1, 1, rng)
    dy = rng.standard_normal((2, 3, 5, 5))
    layer.forward(x, training=True)
    layer.backward(dy)
    full = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x, training=True)
    assert kernels.conv_backward(layer, dy, False, None) is None
    for k in full:
        np.testing.assert_allclose(layer.grads[k], full[k])


def test_float32_is_preserved(rng):
    layer = Conv2D(4, 3, stride=2, padding=1)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert layer.params["W"].dtype == np.float32
    assert y.dtype == dx.dtype == layer.grads["W"].dtype == layer.grads["b"].dtype == np.float32
    # float64 layers stay float64
    layer64 = Conv2D(4, 3)
    assert layer64.forward(x.astype(np.float64)).dtype == np.float64


def test_integer_input_is_computed_in_float():
    layer = Conv2D(2, 3, padding=1)
    y = layer.forward(np.ones((1, 1, 4, 4), np.uint8))
    assert y.dtype == np.float32


def test_inference_keeps_no_cache(rng):
    layer = Conv2D(2, 3)
    x = rng.standard_normal((2, 1, 5, 5))
    layer.forward(x, training=True)
    assert layer._cache is not None
    layer.forward(x, training=False)
    assert layer._cache is None
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 2, 3, 3)))


def test_backward_does_not_touch_dy(rng):
    layer = Conv2D(3, 3, padding=1)
    x = rng.standard_normal((2, 2, 4, 4))
    layer.forward(x, training=True)
    dy = rng.standard_normal((2, 3, 4, 4))
    before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, before)
    assert not np.may_share_memory(dx, dy)


def test_weights_use_pytorch_layout_and_he_init():
    layer = Conv2D(64, (3, 5), in_channels=16)
    layer.forward(np.zeros((1, 16, 8, 8), np.float32))
    W = layer.params["W"]
    assert W.shape == (64, 16, 3, 5) and layer.params["b"].shape == (64,)
    np.testing.assert_allclose(W.std(), np.sqrt(2 / (16 * 3 * 5)), rtol=0.05)
    assert np.all(layer.params["b"] == 0)
    assert layer.count_params() == 64 * 16 * 15 + 64


def test_regularizer_and_constraint_apply_to_W_only(rng):
    layer = Conv2D(3, 3, regularizer=L2(0.1), constraint=MaxNorm(0.5, axis=(1, 2, 3)))
    layer.forward(rng.standard_normal((1, 2, 5, 5)))
    assert layer.weight_keys == ("W",)
    np.testing.assert_allclose(layer.penalty(), 0.1 * np.sum(layer.params["W"] ** 2), rtol=1e-6)
    layer.params["W"] *= 100
    layer.apply_constraint()
    norms = np.sqrt((layer.params["W"] ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms, 0.5, rtol=1e-5)


def test_chained_convolutions_match_reference(rng):
    """Channels-last output of one layer as input to the next gives the same numbers."""
    a, x = make((2, 3, 6, 6), 4, 3, 1, "same", rng)
    b = Conv2D(2, 3, stride=2, padding=1)
    y = b.forward(a.forward(x))
    b.astype(np.float64)
    ref = naive_conv(naive_conv(x, a.params["W"], a.params["b"], 1, ((1, 1), (1, 1))),
                     b.params["W"], b.params["b"], 2, ((1, 1), (1, 1)))
    np.testing.assert_allclose(b.forward(a.forward(x)), ref, atol=1e-12)
    assert y.shape == ref.shape


@pytest.mark.parametrize("n,c,h,w,f,k,s,p", [c for c in CASES if not isinstance(c[-1], (str, tuple))
                                             or (isinstance(c[-1], tuple) and isinstance(c[-1][0], int))])
def test_matches_torch(rng, n, c, h, w, f, k, s, p):
    torch = pytest.importorskip("torch")
    layer, x = make((n, c, h, w), f, k, s, p, rng)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, Wt, bt, stride=s, padding=p)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], Wt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), atol=1e-12)


def test_training_memory_is_bounded_by_im2col_buffer(rng):
    layer = Conv2D(8, 3, padding=1)
    x = rng.standard_normal((8, 8, 12, 12))
    layer.forward(x)
    cols_bytes = 8 * 12 * 12 * 8 * 9 * 8  # (N*Ho*Wo, C*kh*kw) float64
    dy = rng.standard_normal((8, 8, 12, 12))
    tracemalloc.start()
    try:
        y = layer.forward(x, training=False)
        after_inference = tracemalloc.get_traced_memory()[0]
        assert after_inference < y.nbytes + 0.1 * cols_bytes  # no cache, buffers released
        del y
        tracemalloc.reset_peak()
        layer.forward(x, training=True)
        layer.backward(dy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * cols_bytes, (peak, cols_bytes)


def test_backward_consumes_the_cache(rng):
    """backward reuses the im2col buffer for dY W^T, so a second backward must not run on it."""
    layer, x = make((2, 2, 5, 5), 3, 3, 1, 1, rng)
    y = layer.forward(x, training=True)
    layer.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("layer_dtype,x_dtype,dy_dtype", [
    (np.float32, np.float32, np.float64),  # dx is float64: the float32 im2col buffer is not reused
    (np.float64, np.float32, np.float32),
    (np.float32, np.float64, np.float32),
])
def test_backward_with_mixed_dtypes_matches_float64(rng, layer_dtype, x_dtype, dy_dtype):
    layer, x = make((2, 3, 6, 5), 4, 3, 1, "same", rng)
    dy = rng.standard_normal((2, 4, 6, 5))
    layer.forward(x, training=True)
    dx_ref, dW_ref = layer.backward(dy), layer.grads["W"].copy()
    layer.astype(layer_dtype)
    layer.forward(x.astype(x_dtype), training=True)
    dx = layer.backward(dy.astype(dy_dtype))
    assert dx.dtype == np.result_type(layer_dtype, dy_dtype)  # as dY @ W^T gives
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-4, atol=1e-4)


def test_channels_last_and_c_ordered_dy_give_the_same_gradients(rng):
    layer, x = make((2, 3, 6, 6), 4, 3, 2, 1, rng)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx_c = layer.backward(np.ascontiguousarray(dy))
    grads_c = {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x, training=True)
    dx_cl = layer.backward(np.ascontiguousarray(dy.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(dx_cl, dx_c, atol=1e-12)
    for k in grads_c:
        np.testing.assert_allclose(layer.grads[k], grads_c[k], atol=1e-12)
    assert dx_cl.strides[1] == dx_cl.itemsize  # dx comes back channels-last (a view into NHWC memory)


def test_cnn_training_step_peak_memory_within_3x_largest_im2col():
    """The CNN issue's memory target, on the issue's network with a small batch.

    tracemalloc sees NumPy buffers; the peak of one training step (after a warm-up step that
    creates the optimizer state) must stay within 3x the largest im2col buffer (the second
    convolution's, N * 14 * 14 rows of 3 * 3 * 32 float32 values), and an inference pass
    leaves no caches behind.
    """
    import scratchnn as snn
    from scratchnn.layers import Dense, Flatten, MaxPool2D, ReLU

    n = 8
    model = snn.Sequential([Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2), Conv2D(64, 3, padding="same"),
                            ReLU(), MaxPool2D(2), Flatten(), Dense(128), ReLU(), Dense(10)])
    model.compile(snn.optimizers.Adam(1e-3), "softmax_cross_entropy")
    rng = np.random.default_rng(0)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    model.train_step(x, y)
    largest_cols = n * 14 * 14 * 3 * 3 * 32 * 4
    tracemalloc.start()
    try:
        model.train_step(x, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 3 * largest_cols, f"peak {peak / largest_cols:.2f}x the largest im2col buffer"
    model.forward(x, training=False)
    assert all(layer._cache is None for layer in model.layers)


def test_errors_name_the_layer_and_shapes():
    layer = Conv2D(4, 3, in_channels=3, name="c1")
    with pytest.raises(ValueError, match=r"Conv2D 'c1'.*3 channels.*received shape \(2, 1, 5, 5\)"):
        layer.forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2D 'c1' expects 4-D input.*received shape \(2, 75\)"):
        layer.forward(np.zeros((2, 75)))
    layer.forward(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"3 channels.*received shape \(2, 4, 5, 5\)"):
        layer.forward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2D 'big': kernel 5x4 is larger than the padded input 3x3 "
                                         r"\(input 3x3, padding 0\)"):
        Conv2D(2, (5, 4), name="big").forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="kernel 3x3 is larger than the padded input 2x2"):
        Conv2D(2, 3).output_shape((1, 2, 2))


@pytest.mark.parametrize("kwargs,match", [
    ({"filters": 0, "kernel_size": 3}, "filters must be a positive integer, received 0"),
    ({"filters": 2, "kernel_size": (0, 3)}, r"kernel_size must be .*received \(0, 3\)"),
    ({"filters": 2, "kernel_size": 3, "stride": -1}, "stride must be .*received -1"),
    ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding must be .*received 'full'"),
    ({"filters": 2, "kernel_size": 3, "init": "nope"}, "unknown initializer 'nope'"),
    ({"filters": 2, "kernel_size": 3, "in_channels": 0}, "in_channels must be a positive integer"),
])
def test_constructor_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(**kwargs)


@pytest.mark.parametrize("padding", [0, 2, (1, 0), ((1, 0), (0, 2)), "same", "valid"])
def test_get_config_round_trip(rng, padding):
    layer = Conv2D(3, (3, 2), stride=(2, 1), padding=padding, init="xavier_uniform", use_bias=False,
                   regularizer=L2(1e-3), constraint=MaxNorm(2.0, axis=(1, 2, 3)), name="conv")
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    y = layer.forward(x)
    cfg = json.loads(json.dumps(layer.get_config()))
    clone = type(layer)(**cfg)
    assert clone.get_config() == layer.get_config()
    assert clone.regularizer.l2 == 1e-3 and clone.constraint.axis == (1, 2, 3)
    clone.forward(x)
    clone.params["W"][...] = layer.params["W"]
    np.testing.assert_allclose(clone.forward(x), y)
