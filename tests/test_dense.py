import numpy as np
import pytest

from scratchnn.gradcheck import check_layer
from scratchnn.layers import Dense
from scratchnn.regularizers import L2, MaxNorm


def test_forward_matches_hand_computation():
    layer = Dense(2, in_features=3)
    layer.params["W"][...] = [[1, 2], [3, 4], [5, 6]]
    layer.params["b"][...] = [0.5, -1]
    y = layer.forward(np.array([[1.0, 0.0, -1.0]], dtype=np.float32))
    np.testing.assert_allclose(y, [[1 - 5 + 0.5, 2 - 6 - 1]])
    assert y.dtype == np.float32


def test_shapes_and_inferred_input():
    layer = Dense(7)
    y = layer.forward(np.zeros((5, 4), np.float32))
    assert y.shape == (5, 7)
    assert layer.params["W"].shape == (4, 7) and layer.params["b"].shape == (7,)
    assert set(layer.params) == set(layer.grads)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("batch", [1, 6])
def test_gradcheck(rng, use_bias, batch):
    res = check_layer(Dense(4, use_bias=use_bias), rng.standard_normal((batch, 5)))
    assert res.passed, res.report
    assert res.max_rel_error < 1e-6


def test_backward_does_not_touch_dy(rng):
    layer = Dense(3)
    x = rng.standard_normal((4, 2))
    layer.forward(x, training=True)
    dy = rng.standard_normal((4, 3))
    before = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(dy, before)


def test_wrong_width_is_named():
    layer = Dense(3, name="hidden")
    layer.forward(np.zeros((2, 784)))
    with pytest.raises(ValueError, match=r"Dense 'hidden' expected input with 784 features.*\(32, 785\)"):
        layer.forward(np.zeros((32, 785)))


def test_in_features_mismatch_at_build():
    with pytest.raises(ValueError, match="expected input with 10 features"):
        Dense(3, in_features=10).forward(np.zeros((2, 11)))


def test_backward_before_forward():
    layer = Dense(3, in_features=2)
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
        layer.backward(np.zeros((1, 3)))
    layer.forward(np.zeros((1, 2)), training=False)  # inference keeps no cache
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 3)))


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_units(bad):
    with pytest.raises(ValueError, match="units must be a positive integer"):
        Dense(bad)


def test_unknown_initializer_lists_valid_names():
    with pytest.raises(ValueError, match="unknown initializer 'gaussian'.*he_normal"):
        Dense(3, init="gaussian")


def test_non_2d_input_suggests_flatten():
    with pytest.raises(ValueError, match="Flatten"):
        Dense(3).forward(np.zeros((2, 4, 4)))


def test_float64_stays_float64(rng):
    layer = Dense(3)
    y = layer.forward(rng.standard_normal((2, 4)), training=True)
    assert y.dtype == np.float64 and layer.params["W"].dtype == np.float64
    assert layer.backward(np.ones_like(y)).dtype == np.float64


def test_config_round_trip():
    layer = Dense(5, in_features=3, init="he_normal", use_bias=False, regularizer=L2(0.1), constraint=MaxNorm(2))
    clone = Dense(**layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert isinstance(clone.regularizer, L2) and clone.regularizer.l2 == 0.1


@pytest.mark.parametrize("batch", [1, 2, 32])
def test_weight_gradient_matches_matmul(rng, batch):
    """dW is one GEMM for every batch size, including the rank-1 case of a single sample."""
    layer = Dense(7, in_features=5)
    layer.astype(np.float64)
    x = rng.standard_normal((batch, 5))
    dy = rng.standard_normal((batch, 7))
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    np.testing.assert_allclose(layer.grads["W"], x.T @ dy, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(axis=0), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(dx, dy @ layer.params["W"].T, rtol=1e-14, atol=1e-14)


def test_weight_gradient_with_input_of_another_dtype(rng):
    """A float32 layer fed float64 inputs still fills its float32 gradients."""
    layer = Dense(3, in_features=4)
    x = rng.standard_normal((1, 4))
    y = layer.forward(x, training=True)
    layer.backward(np.ones_like(y))
    assert layer.grads["W"].dtype == np.float32
    np.testing.assert_allclose(layer.grads["W"], x.T @ np.ones((1, 3)), rtol=1e-6)
