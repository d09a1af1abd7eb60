import numpy as np
import pytest

import scratchnn


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global generator state."""
    scratchnn.set_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
