import json

import numpy as np
import pytest

from scratchnn import functional as F
from scratchnn.gradcheck import check_layer
from scratchnn.layers import AvgPool2D, GlobalAvgPool2D, MaxPool2D


def naive_pool(x, pool, stride, pads, kind):
    """Slow reference: loop over windows. Max pads with -inf; avg pads with counted zeros.
    Returns the output and the gradient of sum(y * dy) for dy = 1 (first maximum wins ties)."""
    (ph, pw), (sh, sw) = F.pair(pool), F.pair(stride)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), constant_values=fill)
    n, c, hp, wp = xp.shape
    ho, wo = (hp - ph) // sh + 1, (wp - pw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    g = np.zeros_like(xp)
    for i in range(n):
        for ch in range(c):
            for r in range(ho):
                for q in range(wo):
                    win = xp[i, ch, r * sh:r * sh + ph, q * sw:q * sw + pw]
                    if kind == "max":
                        y[i, ch, r, q] = win.max()
                        a, b = np.unravel_index(np.argmax(win), win.shape)  # first max, row-major
                        g[i, ch, r * sh + a, q * sw + b] += 1
                    else:
                        y[i, ch, r, q] = win.mean()
                        g[i, ch, r * sh:r * sh + ph, q * sw:q * sw + pw] += 1 / (ph * pw)
    (pt, _), (pl, _) = pads
    return y, g[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]


CASES = [  # (N, C, H, W, pool_size, stride, padding)
    (2, 2, 4, 6, 2, None, 0),            # tiles exactly: reshape path
    (2, 2, 6, 6, (2, 3), None, 0),       # rectangular tiles
    (2, 2, 5, 5, 2, None, 0),            # floor mode: last row/column unused
    (2, 2, 5, 5, 3, 2, 1),               # overlapping, padded
    (1, 2, 5, 6, 3, 1, 0),               # overlapping, stride 1
    (2, 1, 6, 5, (2, 3), (1, 2), (1, 1)),
    (1, 2, 5, 7, 2, 2, "same"),
    (1, 2, 6, 6, 3, 2, "valid"),
]


@pytest.mark.parametrize("cls,kind", [(MaxPool2D, "max"), (AvgPool2D, "avg")])
@pytest.mark.parametrize("n,c,h,w,k,s,p", CASES)
def test_forward_and_backward_match_naive(rng, cls, kind, n, c, h, w, k, s, p):
    x = rng.standard_normal((n, c, h, w))
    layer = cls(k, s, p)
    y = layer.forward(x, training=True)
    stride = k if s is None else s
    pads = F.resolve_padding(p, (h, w), k, stride)
    y_ref, g_ref = naive_pool(x, k, stride, pads, kind)
    np.testing.assert_allclose(y, y_ref, atol=1e-12)
    assert y.shape == (n, *layer.output_shape((c, h, w)))
    np.testing.assert_allclose(layer.backward(np.ones_like(y)), g_ref, atol=1e-12)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("n,c,h,w,k,s,p", CASES)
def test_gradcheck(rng, cls, n, c, h, w, k, s, p):
    res = check_layer(cls(k, s, p), rng.standard_normal((n, c, h, w)))
    assert res.passed, res.report
    assert res.max_rel_error < 1e-6


def channels_last(x):
    """The same NCHW values stored NHWC (what Conv2D returns)."""
    out = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not out.flags.c_contiguous
    return out


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1)])
def test_channels_last_input_gives_same_results(rng, cls, k, s, p):
    x = rng.standard_normal((2, 3, 6, 6))
    a, b = cls(k, s, p), cls(k, s, p)
    ya, yb = a.forward(x, training=True), b.forward(channels_last(x), training=True)
    np.testing.assert_array_equal(ya, yb)
    dy = rng.standard_normal(ya.shape)
    np.testing.assert_array_equal(a.backward(dy), b.backward(dy))
    assert check_layer(cls(k, s, p), channels_last(x)).passed


def _is_channels_last(a):
    return a.strides[1] == a.itemsize and a.strides[1] < a.strides[3]


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), (3, 1, 0)])
def test_channels_last_input_stays_channels_last(rng, cls, k, s, p):
    """The fast path: output, cache and dx keep the channels-last layout of Conv2D's output,
    whatever the layout of the incoming gradient (a C-ordered dy is converted once)."""
    x = rng.standard_normal((2, 3, 6, 6))
    ref = cls(k, s, p)
    y_ref = ref.forward(x, training=True)
    dy = rng.standard_normal(y_ref.shape)
    dx_ref = ref.backward(dy)
    for dy_layout in (np.ascontiguousarray, channels_last):
        layer = cls(k, s, p)
        y = layer.forward(channels_last(x), training=True)
        assert _is_channels_last(y)
        dx = layer.backward(dy_layout(dy))
        assert _is_channels_last(dx)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(dx, dx_ref)


def test_max_pool_large_window_ties_use_wide_indices(rng):
    """Windows of 128 or more positions store int32 indices; ties still pick the first maximum."""
    x = np.zeros((1, 2, 12, 11))
    x[0, 1, 5, 7] = x[0, 1, 9, 2] = 1.0  # a tie between two later positions
    layer = MaxPool2D((12, 11))
    y = layer.forward(x, training=True)
    dx = layer.backward(np.full(y.shape, 2.0))
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0] = 2.0  # all-zero window: the first position
    expected[0, 1, 5, 7] = 2.0  # (5, 7) comes before (9, 2) in row-major order
    np.testing.assert_array_equal(dx, expected)
    assert layer._cache[0].dtype == np.int32


@pytest.mark.parametrize("layout", [np.ascontiguousarray, channels_last])
def test_max_pool_ties_send_gradient_to_first_position_only(rng, layout):
    x = layout(np.zeros((2, 3, 4, 6)))
    layer = MaxPool2D(2)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    win = np.asarray(dx).reshape(2, 3, 2, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 2, 3, 4)
    np.testing.assert_allclose(win.sum(-1), dy)                  # the window's gradient equals dy
    assert np.all(np.count_nonzero(win, axis=-1) == 1)           # ... and lands on one input
    np.testing.assert_array_equal(win[..., 0], dy)               # ... the first in row-major order


def test_max_pool_ties_in_overlapping_windows_follow_pytorch():
    layer = MaxPool2D(3, 1, 1)
    layer.forward(np.zeros((1, 1, 4, 4)), training=True)
    dx = layer.backward(np.ones((1, 1, 4, 4)))[0, 0]
    # every window's first element (padding is -inf, so the first real input) gets its gradient
    np.testing.assert_array_equal(dx, [[4, 2, 2, 0], [2, 1, 1, 0], [2, 1, 1, 0], [0, 0, 0, 0]])


def test_max_pool_partial_ties_pick_the_first_maximum():
    x = np.array([[[[1.0, 5.0], [5.0, 2.0]]]])
    layer = MaxPool2D(2)
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[[[3.0]]]]))[0, 0], [[0, 3], [0, 0]])


def test_max_pool_padding_is_minus_infinity():
    x = -np.ones((1, 1, 2, 2)) * np.array([[1.0, 2.0], [3.0, 4.0]])
    y = MaxPool2D(2, 1, 1).forward(x)
    # a zero padding would give 0 on the border; -inf padding keeps the real (negative) values
    np.testing.assert_array_equal(y[0, 0], [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])


def test_avg_pool_counts_padding_like_pytorch():
    y = AvgPool2D(2, 2, 1).forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_allclose(y[0, 0], [[0.25, 0.25], [0.25, 0.25]])


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1)])
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, GlobalAvgPool2D])
def test_float32_preserved_and_no_cache_at_inference(rng, cls, k, s, p):
    layer = cls() if cls is GlobalAvgPool2D else cls(k, s, p)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    layer.forward(x, training=False)
    assert layer._cache is None
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, GlobalAvgPool2D])
def test_backward_leaves_dy_alone(rng, cls):
    layer = cls()
    x = rng.standard_normal((2, 2, 4, 4))
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, before)
    assert not np.may_share_memory(dx, dy)


def test_global_avg_pool(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = GlobalAvgPool2D()
    y = layer.forward(x, training=True)
    assert y.shape == (2, 3) and layer.output_shape((3, 4, 5)) == (3,)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)))
    dx = layer.backward(np.ones((2, 3)))
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 20))
    assert check_layer(GlobalAvgPool2D(), x).max_rel_error < 1e-6
    assert check_layer(GlobalAvgPool2D(), channels_last(x)).max_rel_error < 1e-6
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D expects 4-D input.*received shape \(2, 3\)"):
        layer.forward(np.zeros((2, 3)))


def test_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r"MaxPool2D 'p' expects 4-D input.*received shape \(2, 16\)"):
        MaxPool2D(name="p").forward(np.zeros((2, 16)))
    with pytest.raises(ValueError, match=r"AvgPool2D 'p': pool window 3x3 is larger than the padded input 2x2"):
        AvgPool2D(3, name="p").forward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="pool window 4x4 is larger"):
        MaxPool2D(4).output_shape((1, 3, 3))


@pytest.mark.parametrize("kwargs,match", [
    ({"pool_size": 0}, "pool_size and stride must be positive"),
    ({"pool_size": (2, 2, 2)}, "pool_size and stride must be positive"),
    ({"pool_size": 2, "stride": 0}, "pool_size and stride must be positive"),
    ({"pool_size": 2, "padding": 2}, r"padding must be at most half the pool size \(2, 2\), received padding=2"),
    ({"pool_size": 2, "padding": "full"}, "padding must be"),
])
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_constructor_validates_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {match}"):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kwargs", [{}, {"pool_size": (3, 2), "stride": 1, "padding": (1, 0)},
                                    {"pool_size": 2, "padding": "same"}])
def test_get_config_round_trip(rng, cls, kwargs):
    layer = cls(name="pool", **kwargs)
    cfg = json.loads(json.dumps(layer.get_config()))
    clone = type(layer)(**cfg)
    assert clone.get_config() == cfg
    x = rng.standard_normal((1, 2, 5, 5))
    np.testing.assert_array_equal(clone.forward(x), layer.forward(x))
    g = GlobalAvgPool2D(name="g")
    assert type(g)(**json.loads(json.dumps(g.get_config()))).get_config() == g.get_config()


@pytest.mark.parametrize("n,c,h,w,k,s,p", [c for c in CASES if not isinstance(c[-1], str)])
def test_matches_torch(rng, n, c, h, w, k, s, p):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal((n, c, h, w))
    for layer, fn in ((MaxPool2D(k, s, p), tf.max_pool2d), (AvgPool2D(k, s, p), tf.avg_pool2d)):
        y = layer.forward(x, training=True)
        dy = rng.standard_normal(y.shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = fn(xt, k, s, p)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), atol=1e-12)
    # ties: PyTorch also sends each window's gradient to its first maximum
    xt = torch.zeros((n, c, h, w), dtype=torch.float64, requires_grad=True)
    layer = MaxPool2D(k, s, p)
    y = layer.forward(np.zeros((n, c, h, w)), training=True)
    dy = rng.standard_normal(y.shape)
    tf.max_pool2d(xt, k, s, p).backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), atol=1e-12)
