import numpy as np
import pytest

import scratchnn


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global generator state."""
    scratchnn.set_seed(1234)
    yield


@pytest.fixture
def no_settle(monkeypatch):
    """The benchmark suite idles before every epoch (benchlab.measure.SETTLE_S) so one
    contender's threads park before the next starts: timings only, so the benchmark tests skip it
    (``pytestmark = pytest.mark.usefixtures("no_settle")`` in their modules)."""
    monkeypatch.setattr("benchlab.measure.SETTLE_S", 0.0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
