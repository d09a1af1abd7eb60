import numpy as np
import pytest

from scratchnn.gradcheck import check_layer
from scratchnn.layers import RandomShift


def test_identity_at_inference(rng):
    x = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    assert RandomShift(2).forward(x, training=False) is x


def test_each_image_is_a_shifted_copy(rng):
    x = np.zeros((200, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the centre
    y = RandomShift(2, seed=0).forward(x, training=True)
    assert y.shape == x.shape and y.dtype == np.float32
    pos = np.argwhere(y[:, 0] == 1.0)
    assert len(pos) == 200  # the pixel survives every shift of at most 2
    shifts = pos[:, 1:] - 4
    assert shifts.min() == -2 and shifts.max() == 2  # all shifts in range are used
    assert len({tuple(s) for s in shifts}) > 15


def test_content_moves_together(rng):
    x = rng.standard_normal((3, 2, 6, 7))
    y = RandomShift(1, seed=4).forward(x, training=True)
    for i in range(3):
        found = False
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ref = np.zeros_like(x[i])
                src = x[i][:, max(0, -dy):6 - max(0, dy), max(0, -dx):7 - max(0, dx)]
                ref[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
                found |= np.array_equal(ref, y[i])
        assert found, "each output must be its input shifted by at most one pixel, zero-filled"


def test_gradcheck_fixed_shifts(rng):
    res = check_layer(RandomShift(2), rng.standard_normal((3, 2, 5, 6)), seed=7)
    assert res.passed, res.report


def test_errors_and_config():
    with pytest.raises(ValueError, match="max_shift must be a positive integer"):
        RandomShift(0)
    with pytest.raises(ValueError, match="RandomShift expects images"):
        RandomShift(1).forward(np.zeros((2, 784)), training=True)
    layer = RandomShift(3, seed=5)
    assert RandomShift(**layer.get_config()).get_config() == layer.get_config()


def test_random_flip_mirrors_some_images_in_training_only(rng):
    from scratchnn.layers import RandomFlip

    x = rng.standard_normal((64, 2, 4, 5)).astype(np.float32)
    layer = RandomFlip(0.5, seed=1)
    assert layer.forward(x) is x
    y = layer.forward(x, training=True)
    mirrored = np.array([np.array_equal(y[i], x[i, :, :, ::-1]) for i in range(64)])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(64)])
    assert (mirrored | kept).all() and 15 < mirrored.sum() < 49 and y.dtype == x.dtype
    assert np.array_equal(RandomFlip(1.0, seed=0).forward(x, training=True), x[..., ::-1])
    assert np.array_equal(RandomFlip(0.0, seed=0).forward(x, training=True), x)
    res = check_layer(RandomFlip(0.5), rng.standard_normal((6, 1, 3, 4)), seed=3)
    assert res.passed, res.report
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        RandomFlip(1.5)
    assert RandomFlip(**RandomFlip(0.3, seed=2).get_config()).p == 0.3
