import numpy as np
import pytest

from scratchnn import losses
from scratchnn.gradcheck import check_loss
from scratchnn.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy


def test_cross_entropy_value_by_hand():
    z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    y = np.array([0, 1])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    value, grad = SoftmaxCrossEntropy()(z, y)
    assert value == pytest.approx(-np.mean(np.log(p[[0, 1], y])))
    expected = p.copy()
    expected[[0, 1], y] -= 1
    np.testing.assert_allclose(grad, expected / 2)


def test_cross_entropy_one_hot_equals_labels(rng):
    z = rng.standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    a = SoftmaxCrossEntropy()(z, y)
    b = SoftmaxCrossEntropy()(z, np.eye(4)[y])
    assert a[0] == pytest.approx(b[0])
    np.testing.assert_allclose(a[1], b[1])
    assert SoftmaxCrossEntropy().value(z, y) == pytest.approx(a[0])


def test_cross_entropy_extreme_logits_finite():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    value, grad = SoftmaxCrossEntropy()(z, np.array([1, 1]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(1e4, rel=1e-6)
    assert grad.dtype == np.float32



@pytest.mark.parametrize("n, c", [(1, 10), (1, 2), (7, 3), (64, 10)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_cross_entropy_labels_match_reference(rng, n, c, order):
    """The flat-index gradient equals (softmax - onehot) / n for any batch size and memory order;
    the loss object is reused across sizes (it caches the row offsets)."""
    loss = SoftmaxCrossEntropy()
    for m in (n, 1, n + 3):
        z = np.asarray(rng.standard_normal((m, c)), order=order)
        y = rng.integers(0, c, m).astype(np.int32)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        value, grad = loss(z, y)
        assert value == pytest.approx(-np.mean(np.log(p[np.arange(m), y])))
        np.testing.assert_allclose(grad, (p - np.eye(c)[y]) / m, rtol=1e-12, atol=1e-15)
        assert grad.dtype == z.dtype

@pytest.mark.parametrize("target", ["labels", "onehot", "soft"])
def test_cross_entropy_gradcheck(rng, target):
    z = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    t = {"labels": y, "onehot": np.eye(5)[y], "soft": rng.dirichlet(np.ones(5), 6)}[target]
    res = check_loss(SoftmaxCrossEntropy(), z, t)
    assert res.passed, res.report


def test_labels_out_of_range_named():
    with pytest.raises(ValueError, match=r"label 10 at index 2 is outside \[0, 10\)"):
        SoftmaxCrossEntropy()(np.zeros((3, 10)), np.array([1, 2, 10]))
    with pytest.raises(ValueError, match="label -1 at index 0"):
        SoftmaxCrossEntropy()(np.zeros((3, 10)), np.array([-1, 2, 3]))
    with pytest.raises(TypeError, match="integer class labels"):
        SoftmaxCrossEntropy()(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        SoftmaxCrossEntropy()(np.zeros((3, 10)), np.array([1, 2]))


def test_mse(rng):
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    value, grad = MSE()(p, t)
    assert value == pytest.approx(np.mean((p - t) ** 2))
    assert check_loss(MSE(), p, t).passed


def test_bce_matches_formula_and_is_stable(rng):
    z = rng.standard_normal((6, 1))
    t = rng.integers(0, 2, 6).astype(float)
    s = 1 / (1 + np.exp(-z[:, 0]))
    value, _ = BinaryCrossEntropy()(z, t)
    assert value == pytest.approx(-np.mean(t * np.log(s) + (1 - t) * np.log(1 - s)))
    assert check_loss(BinaryCrossEntropy(), z, t).passed
    v, g = BinaryCrossEntropy()(np.array([[1e4], [-1e4]]), np.array([0.0, 1.0]))
    assert v == pytest.approx(1e4) and np.all(np.isfinite(g))


def test_shape_errors():
    with pytest.raises(ValueError, match="does not match"):
        MSE()(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="targets must lie in"):
        BinaryCrossEntropy()(np.zeros((2, 1)), np.array([0, 2]))


def test_get_by_name():
    assert isinstance(losses.get("cross_entropy"), SoftmaxCrossEntropy)
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: .*mse"):
        losses.get("hinge")
