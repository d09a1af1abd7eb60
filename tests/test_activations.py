import numpy as np
import pytest

from scratchnn.gradcheck import check_layer
from scratchnn.layers import ELU, LeakyReLU, Maxout, ReLU, Sigmoid, Softmax, Tanh

X = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])


def test_relu_forward():
    np.testing.assert_array_equal(ReLU().forward(X), [[0, 0, 0, 0.5, 3.0]])


def test_relu_zero_buffer_follows_the_input():
    """The cached zeros (inputs of >= 1,024 values) adapt to every batch size, feature shape,
    dtype and memory layout, stay read-only, and never change a result."""
    import copy
    import pickle

    rng = np.random.default_rng(0)
    layer = ReLU()
    for shape, dtype in [((64, 50), np.float32), ((7, 200), np.float32), ((90, 50), np.float32),
                         ((30, 20, 4), np.float32), ((30, 20, 4), np.float64), ((2000,), np.float64)]:
        x = rng.standard_normal(shape).astype(dtype)
        y = layer.forward(x, training=True)
        assert y.dtype == dtype and y.shape == shape
        np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert not layer._zeros.flags.writeable and layer._zeros.shape == (2000,)
    np.testing.assert_array_equal(layer.backward(np.ones(2000)), (x > 0).astype(float))
    special = np.tile([[np.nan, -np.inf, np.inf, -1.0]], (300, 1))
    y = layer.forward(special)
    assert np.isnan(y[:, 0]).all() and (y[:, 1] == 0).all() and np.isinf(y[:, 2]).all() and (y[:, 3] == 0).all()
    # the zeros follow the input's memory layout: a channels-last view (Conv2D's output) stays
    # channels-last; a strided view takes the scalar
    nhwc = rng.standard_normal((8, 10, 12, 3)).astype(np.float32)
    for x, channels_last in [(nhwc.transpose(0, 3, 1, 2), True), (nhwc.transpose(0, 3, 1, 2)[:5], True),
                             (nhwc[:, ::2], False)]:
        y = layer.forward(x, training=True)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        if channels_last:
            assert y.strides == x.strides and layer._zeros.strides == x.strides
    # a size-1 axis may carry any stride: the buffer copies it, so the next call reuses it
    one = rng.standard_normal((8, 16, 10, 1)).astype(np.float32).transpose(0, 3, 1, 2)  # strides (640, 4, 40, 4)
    layer.forward(one)
    cached = layer._zeros
    np.testing.assert_array_equal(layer.forward(one[:7]), np.maximum(one[:7], 0))
    assert layer._zeros is cached
    # a 0-d array after a cached 1-D buffer, integer and bool inputs: the scalar, as np.maximum(x, 0)
    layer.forward(np.ones(2000))
    assert layer.forward(np.array(-3.0)) == 0 and layer.forward(np.float64(-3.0)) == 0
    for x in (np.arange(-1000, 1000).reshape(2, -1), rng.random((2, 1000)) > 0.5):
        assert layer.forward(x).dtype == np.maximum(x, 0).dtype
        np.testing.assert_array_equal(layer.forward(x), np.maximum(x, 0))
    # pickling and copying leave the (zero-page) buffer behind
    layer.forward(np.zeros((1000, 64), np.float32))
    assert len(pickle.dumps(layer)) < 10_000 and copy.deepcopy(layer)._zeros is None
    np.testing.assert_array_equal(copy.copy(layer).forward(-np.ones((20, 64))), 0)


def test_leaky_relu_forward():
    np.testing.assert_allclose(LeakyReLU(0.1).forward(X), [[-0.2, -0.05, 0, 0.5, 3.0]])


def test_elu_forward():
    np.testing.assert_allclose(ELU(1.0).forward(X), [[np.expm1(-2), np.expm1(-0.5), 0, 0.5, 3.0]])


def test_sigmoid_tanh_forward():
    np.testing.assert_allclose(Sigmoid().forward(X), 1 / (1 + np.exp(-X)))
    np.testing.assert_allclose(Tanh().forward(X), np.tanh(X))


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise", invalid="raise"):
        y = Sigmoid().forward(np.array([[-1000.0, 1000.0]], dtype=np.float32))
    np.testing.assert_array_equal(y, [[0.0, 1.0]])


def test_softmax_rows_sum_to_one_for_huge_logits():
    y = Softmax().forward(np.array([[1e4, -1e4, 0.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    assert np.all(np.isfinite(y))


def test_maxout_forward_picks_max_piece():
    layer = Maxout(units=2, pieces=3, in_features=1, use_bias=False)
    layer.params["W"][...] = [[1, -1, 2, -3, 0.5, 0.25]]
    np.testing.assert_allclose(layer.forward(np.array([[2.0], [-1.0]])), [[4, 1], [1, 3]])


def _away_from_kinks(rng, shape):
    x = rng.standard_normal(shape)
    return x + np.sign(x) * 0.1  # central differences are wrong within eps of a kink


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.2), ELU(0.7), Sigmoid(), Tanh(), Softmax()],
                         ids=lambda l: type(l).__name__)
@pytest.mark.parametrize("shape", [(1, 4), (5, 3), (2, 3, 4, 4)])
def test_gradcheck(rng, layer, shape):
    res = check_layer(layer, _away_from_kinks(rng, shape))
    assert res.passed, res.report


def test_maxout_gradcheck(rng):
    res = check_layer(Maxout(3, pieces=4), rng.standard_normal((5, 6)))
    assert res.passed, res.report


@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh, Softmax, LeakyReLU, ELU])
def test_float32_preserved(cls, rng):
    layer = cls()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_inference_keeps_no_cache(rng):
    layer = ReLU()
    layer.forward(rng.standard_normal((2, 2)), training=True)
    layer.forward(rng.standard_normal((2, 2)), training=False)
    with pytest.raises(RuntimeError, match="ReLU: backward\\(\\) called before forward"):
        layer.backward(np.ones((2, 2)))


def test_bad_alpha():
    with pytest.raises(ValueError, match="LeakyReLU: alpha"):
        LeakyReLU(-1)
