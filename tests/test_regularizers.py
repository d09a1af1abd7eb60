import numpy as np
import pytest

from scratchnn import regularizers
from scratchnn.gradcheck import numerical_gradient, relative_error
from scratchnn.regularizers import L1, L2, ElasticNet, MaxNorm


@pytest.mark.parametrize("reg", [L1(0.3), L2(0.2), ElasticNet(0.1, 0.4)], ids=repr)
def test_gradient_matches_penalty(rng, reg):
    W = rng.standard_normal((4, 3)) + 0.05 * np.sign(rng.standard_normal((4, 3)))
    g = np.zeros_like(W)
    reg.add_grad(W, g)
    num = numerical_gradient(lambda: reg(W), W)
    assert relative_error(g, num) < 1e-6


def test_values():
    W = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert L2(0.5)(W) == pytest.approx(0.5 * 14)
    assert L1(0.5)(W) == pytest.approx(0.5 * 6)
    assert ElasticNet(1, 1)(W) == pytest.approx(20)


def test_max_norm_rescales_columns():
    W = np.array([[3.0, 0.1], [4.0, 0.1]])
    MaxNorm(1.0)(W)
    np.testing.assert_allclose(W[:, 0], [0.6, 0.8])
    np.testing.assert_allclose(W[:, 1], [0.1, 0.1])  # already inside the ball


def test_get_and_serialize():
    r = regularizers.get(regularizers.serialize(ElasticNet(0.1, 0.2)))
    assert isinstance(r, ElasticNet) and (r.l1, r.l2) == (0.1, 0.2)
    assert isinstance(regularizers.get("l2"), L2)
    with pytest.raises(ValueError, match="unknown regularizer"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="non-negative"):
        L2(-1)
