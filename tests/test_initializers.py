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
