import numpy as np
import pytest

import scratchnn
from scratchnn.gradcheck import check_layer
from scratchnn.layers import Dropout


def test_identity_at_inference():
    x = np.ones((4, 5), np.float32)
    assert Dropout(0.5).forward(x, training=False) is x


def test_drop_rate_and_inverted_scaling():
    x = np.ones((200, 500), np.float32)
    y = Dropout(0.3, seed=1).forward(x, training=True)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02  # expectation preserved


def test_reproducible_under_seed():
    x = np.ones((10, 10))
    a = Dropout(0.5, seed=7).forward(x, training=True)
    b = Dropout(0.5, seed=7).forward(x, training=True)
    np.testing.assert_array_equal(a, b)
    scratchnn.set_seed(3)
    c = Dropout(0.5).forward(x, training=True)
    scratchnn.set_seed(3)
    d = Dropout(0.5).forward(x, training=True)
    np.testing.assert_array_equal(c, d)


def test_backward_uses_the_same_mask(rng):
    layer = Dropout(0.5, seed=0)
    y = layer.forward(np.ones((3, 8)), training=True)
    np.testing.assert_array_equal(layer.backward(np.ones((3, 8))), y)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 4, 4)])
def test_gradcheck_fixed_mask(rng, shape):
    res = check_layer(Dropout(0.4), rng.standard_normal(shape), seed=5)
    assert res.passed, res.report


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="Dropout: rate must be in \\[0, 1\\)"):
        Dropout(rate)
