import numpy as np
import pytest

from scratchnn.gradcheck import check_layer
from scratchnn.layers import ELU, LeakyReLU, Maxout, ReLU, Sigmoid, Softmax, Tanh

X = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])


def test_relu_forward():
    np.testing.assert_array_equal(ReLU().forward(X), [[0, 0, 0, 0.5, 3.0]])


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
