import json

import numpy as np
import pytest

from scratchnn.gradcheck import check_layer
from scratchnn.layers import Conv2D, Flatten, Reshape


def test_flatten_uses_c_order_of_nchw():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    y = Flatten().forward(x)
    assert y.shape == (2, 12) and y.dtype == np.float32
    # PyTorch's x.flatten(1): channel 0's pixels first, row by row
    np.testing.assert_array_equal(y[0], np.arange(12))
    np.testing.assert_array_equal(y[1], np.arange(12, 24))


def test_flatten_of_channels_last_memory_keeps_nchw_order(rng):
    """Conv2D returns an NCHW view of NHWC memory; Flatten must still use NCHW order."""
    conv = Conv2D(3, 1, in_channels=2)
    x = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
    y = conv.forward(x)
    assert not y.flags.c_contiguous
    np.testing.assert_array_equal(Flatten().forward(y), np.ascontiguousarray(y).reshape(2, -1))


def test_flatten_backward_and_shapes(rng):
    layer = Flatten()
    x = rng.standard_normal((3, 2, 4, 5))
    y = layer.forward(x, training=True)
    assert layer.output_shape((2, 4, 5)) == (40,)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx.reshape(3, -1), dy)
    assert not np.may_share_memory(dx, dy)  # a fresh array, never a view of dy
    assert Flatten().forward(np.zeros((4, 7))).shape == (4, 7)


@pytest.mark.parametrize("layer,shape", [
    (Flatten(), (2, 3, 4, 5)),
    (Flatten(), (3, 5)),
    (Reshape((4, -1)), (2, 3, 4)),
    (Reshape((1, 3, 4)), (2, 12)),
])
def test_gradcheck(rng, layer, shape):
    res = check_layer(layer, rng.standard_normal(shape))
    assert res.passed, res.report


def test_reshape_forward_backward(rng):
    layer = Reshape((1, 28, 28))
    x = rng.standard_normal((5, 784)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.shape == (5, 1, 28, 28) and y.dtype == np.float32
    np.testing.assert_array_equal(y.reshape(5, -1), x)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert Reshape((-1, 2)).output_shape((3, 4)) == (6, 2)
    assert Reshape(12).output_shape((3, 4)) == (12,)


@pytest.mark.parametrize("layer", [Flatten(), Reshape((-1,))])
def test_inference_keeps_no_cache(rng, layer):
    x = rng.standard_normal((2, 3, 4))
    layer.forward(x, training=True)
    assert layer._cache is not None
    layer.forward(x)
    assert layer._cache is None
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 12)))


def test_reshape_errors():
    with pytest.raises(ValueError, match=r"Reshape 'r' cannot reshape per-sample shape \(3, 4\) \(12 elements\) "
                                         r"into target shape \(5, -1\)"):
        Reshape((5, -1), name="r").forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"cannot reshape per-sample shape \(12,\) \(12 elements\) into target "
                                         r"shape \(2, 5\)"):
        Reshape((2, 5)).output_shape((12,))
    for bad in ((-1, -1), (0, 3), (2.0, 3), "12", (-2, 6)):
        with pytest.raises(ValueError, match="target_shape must be a tuple of positive ints"):
            Reshape(bad)


def test_get_config_round_trip():
    for layer in (Flatten(name="f"), Reshape((2, -1, 3), name="r")):
        cfg = json.loads(json.dumps(layer.get_config()))
        clone = type(layer)(**cfg)
        assert clone.get_config() == layer.get_config()
    assert Reshape(**Reshape((2, -1)).get_config()).target_shape == (2, -1)
