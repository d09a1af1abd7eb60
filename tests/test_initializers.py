import numpy as np
import pytest

from scratchnn import initializers

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("name,std", [
    ("small_normal", lambda i, o: 0.01),
    ("xavier_normal", lambda i, o: np.sqrt(2 / (i + o))),
    ("xavier_uniform", lambda i, o: np.sqrt(2 / (i + o))),
    ("he_normal", lambda i, o: np.sqrt(2 / i)),
    ("he_uniform", lambda i, o: np.sqrt(2 / i)),
    ("lecun_normal", lambda i, o: np.sqrt(1 / i)),
])
def test_standard_deviation(name, std):
    fi, fo = 400, 300
    w = initializers.get(name)((fi, fo), fi, fo, np.random.default_rng(0), np.float32)
    assert w.dtype == np.float32 and w.shape == (fi, fo)
    assert w.std() == pytest.approx(std(fi, fo), rel=0.02)
    assert abs(w.mean()) < 0.01 * std(fi, fo) * 10


def test_uniform_bounds():
    w = initializers.get("he_uniform")((100, 50), 100, 50, RNG, np.float64)
    assert np.abs(w).max() <= np.sqrt(6 / 100)


def test_zeros():
    assert not initializers.get("zeros")((3, 3), 3, 3, RNG, np.float32).any()


def test_unknown():
    with pytest.raises(ValueError, match="unknown initializer 'xavier'; valid names: .*xavier_normal"):
        initializers.get("xavier")


def test_zeros_init_fails_to_break_symmetry():
    """Why zeros is a teaching example: every hidden unit receives the same gradient forever."""
    from scratchnn import Sequential
    from scratchnn.datasets import load_spiral
    from scratchnn.layers import Dense, Tanh
    from scratchnn.optimizers import SGD

    X, y = load_spiral(50, 3, seed=0)
    model = Sequential([Dense(20, init="zeros"), Tanh(), Dense(3, init="zeros")])
    model.compile(SGD(0.5), "cross_entropy")
    hist = model.fit(X, y, epochs=30, batch_size=30, verbose=0)
    W1 = model.layers[0].params["W"]
    assert np.allclose(W1, W1[:, :1])  # all 20 hidden units are still the same unit
    good = Sequential([Dense(20, init="xavier_normal"), Tanh(), Dense(3)])
    good.compile(SGD(0.5), "cross_entropy")
    assert good.fit(X, y, epochs=30, batch_size=30, verbose=0)["accuracy"][-1] > hist["accuracy"][-1] + 0.1
