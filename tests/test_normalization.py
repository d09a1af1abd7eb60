import numpy as np
import pytest

from scratchnn.gradcheck import check_layer
from scratchnn.layers import BatchNorm, BatchNorm2D


def test_training_normalizes_batch(rng):
    x = rng.normal(3.0, 2.0, (64, 5)).astype(np.float32)
    y = BatchNorm().forward(x, training=True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-3)


def test_running_statistics_and_inference(rng):
    bn = BatchNorm(momentum=0.9)
    x = rng.normal(3.0, 2.0, (256, 3))
    bn.forward(x, training=True)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(0))
    np.testing.assert_allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.var(0, ddof=1))
    for _ in range(200):
        bn.forward(x, training=True)
    y = bn.forward(x, training=False)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-3)
    assert bn._cache is None


def test_inference_uses_gamma_beta():
    bn = BatchNorm()
    bn.forward(np.zeros((2, 2)))
    bn.params["gamma"][...] = 2
    bn.params["beta"][...] = 1
    bn.buffers["running_mean"][...] = 1
    bn.buffers["running_var"][...] = 4 - 1e-5
    np.testing.assert_allclose(bn.forward(np.array([[3.0, 1.0]])), [[3.0, 1.0]])


@pytest.mark.parametrize("shape", [(6, 4), (2, 3), (7, 1)])
def test_gradcheck_dense(rng, shape):
    res = check_layer(BatchNorm(), rng.standard_normal(shape))
    assert res.passed, res.report


@pytest.mark.parametrize("shape", [(3, 2, 3, 3), (2, 4, 1, 5)])
def test_gradcheck_2d(rng, shape):
    bn = BatchNorm2D()
    bn.ensure_built(rng.standard_normal(shape))
    bn.params["gamma"][...] = rng.uniform(0.5, 2, shape[1])
    bn.params["beta"][...] = rng.standard_normal(shape[1])
    res = check_layer(bn, rng.standard_normal(shape))
    assert res.passed, res.report


def test_per_channel_statistics(rng):
    x = rng.standard_normal((4, 3, 5, 5)) * np.array([1, 5, 10])[None, :, None, None]
    y = BatchNorm2D().forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)


def test_errors():
    with pytest.raises(ValueError, match="BatchNorm2D.*4-D"):
        BatchNorm2D().forward(np.zeros((2, 3)))
    bn = BatchNorm(name="bn")
    bn.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="BatchNorm 'bn' expected 3 features"):
        bn.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(momentum=1.5)


def test_standardize_adapt_forward_and_gradcheck(rng):
    from scratchnn.layers import Standardize

    X = rng.normal(5.0, 3.0, (500, 4))
    layer = Standardize(eps=0.0).adapt(X)
    y = layer.forward(X.astype(np.float32))
    assert y.dtype == np.float32  # statistics are kept in the default training dtype
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-6)
    assert layer.params == {} and set(layer.buffers) == {"mean", "std"}
    assert check_layer(layer, rng.standard_normal((3, 4))).passed
    g = Standardize(axis="global").adapt(np.arange(12.0).reshape(3, 4))
    assert g.buffers["mean"].shape == () and float(g.buffers["mean"]) == 5.5


def test_standardize_saved_with_the_model(rng, tmp_path):
    import scratchnn
    from scratchnn import Sequential
    from scratchnn.layers import Dense, Standardize

    X = rng.normal(100, 20, (50, 3)).astype(np.float32)
    m = Sequential([Standardize().adapt(X), Dense(2)])
    m.compile("sgd", "cross_entropy")
    m.build((3,))
    m.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(scratchnn.load(tmp_path / "m.npz").predict(X), m.predict(X))
    with pytest.raises(ValueError, match="Standardize.*per-sample shape \\(3,\\)"):
        m.layers[0].forward(np.zeros((2, 4), np.float32))
