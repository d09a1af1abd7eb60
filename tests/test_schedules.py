import math

import pytest

from scratchnn import schedules
from scratchnn.schedules import CosineDecay, ExponentialDecay, InverseTimeDecay, StepDecay


def test_values():
    assert [StepDecay(1.0, 0.1, 3)(e) for e in (0, 2, 3, 6)] == pytest.approx([1, 1, 0.1, 0.01])
    assert ExponentialDecay(2.0, 0.5)(3) == pytest.approx(0.25)
    assert InverseTimeDecay(1.0, 0.5)(4) == pytest.approx(1 / 3)
    c = CosineDecay(1.0, epochs=10, min_lr=0.1)
    assert c(0) == pytest.approx(1.0) and c(10) == pytest.approx(0.1) and c(20) == pytest.approx(0.1)
    assert c(5) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))


def test_get_and_errors():
    assert isinstance(schedules.get("cosine", 0.1, epochs=5), CosineDecay)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        schedules.get("linear", 0.1)
    with pytest.raises(ValueError, match="StepDecay"):
        StepDecay(0.1, drop=2)
    with pytest.raises(ValueError, match="lr must be a positive"):
        ExponentialDecay(0)
