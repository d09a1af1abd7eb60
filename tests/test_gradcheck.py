import numpy as np

from scratchnn import Sequential
from scratchnn.gradcheck import check_layer, check_model, numerical_gradient
from scratchnn.layers import BatchNorm, Dense, Dropout, Layer, Tanh
from scratchnn.regularizers import L1, L2


def test_numerical_gradient_of_quadratic():
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(numerical_gradient(lambda: float(np.sum(x**2)), x), 2 * x, rtol=1e-8)


class WrongBackward(Layer):
    """Negative control: y = 2x but backward claims dy * 3."""

    def forward(self, x, training=False):
        self._cache = True
        return 2 * x

    def backward(self, dy):
        return 3 * dy


class WrongParamGrad(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] *= 1.01
        return dx


def test_checker_catches_wrong_input_gradient(rng):
    res = check_layer(WrongBackward(), rng.standard_normal((2, 3)))
    assert not res.passed and res.errors["x"] > 0.1
    assert "FAILED" in res.report and "BAD" in res.report


def test_checker_catches_slightly_wrong_param_gradient(rng):
    res = check_layer(WrongParamGrad(3), rng.standard_normal((4, 2)))
    assert not res.passed
    assert res.errors["W"] > 1e-3 and res.errors["x"] < 1e-6


def test_check_model_with_regularization_dropout_and_batchnorm(rng):
    model = Sequential([Dense(6, regularizer=L2(0.1)), BatchNorm(), Tanh(), Dropout(0.3),
                        Dense(3, regularizer=L1(0.05))])
    model.compile(optimizer="sgd", loss="softmax_cross_entropy")
    X = rng.standard_normal((5, 4))
    y = rng.integers(0, 3, 5)
    res = check_model(model, X, y)
    assert res.passed, res.report
    assert {"x", "dense_1.W", "dense_1.b", "batchnorm_1.gamma", "dense_2.W"} <= set(res.errors)
