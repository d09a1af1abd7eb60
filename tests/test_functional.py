import numpy as np
import pytest

from scratchnn import functional as F


# -- geometry ---------------------------------------------------------------------
def test_pair():
    assert F.pair(3) == (3, 3)
    assert F.pair((2, 5)) == (2, 5)
    assert F.pair([2, 5]) == (2, 5)
    assert F.pair(np.int64(4)) == (4, 4)
    for bad in (True, (1, 2, 3), "3", 2.0, (1, 2.5), None):
        with pytest.raises(ValueError, match="pair of ints"):
            F.pair(bad)


@pytest.mark.parametrize("size,k,s,pb,pa,expected", [
    (5, 3, 1, 0, 0, 3), (5, 3, 1, 1, 1, 5), (7, 3, 2, 0, 0, 3), (8, 3, 2, 0, 0, 3),
    (6, 2, 2, 0, 0, 3), (5, 5, 1, 0, 0, 1), (4, 3, 3, 1, 0, 1), (28, 3, 1, 1, 1, 28),
])
def test_conv_output_size(size, k, s, pb, pa, expected):
    assert F.conv_output_size(size, k, s, pb, pa) == expected


def test_conv_output_size_rejects_window_larger_than_padded_input():
    with pytest.raises(ValueError, match="window of size 6 does not fit.*size 3.*\\(1, 1\\) = 5"):
        F.conv_output_size(3, 6, 1, 1, 1)


@pytest.mark.parametrize("size,k,s,expected", [
    (5, 3, 1, (1, 1)), (5, 4, 1, (1, 2)), (6, 1, 1, (0, 0)), (5, 2, 1, (0, 1)),
    (5, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (6, 1, 2, (0, 0)), (7, 5, 3, (2, 2)),
])
def test_same_padding_follows_tf(size, k, s, expected):
    pads = F.same_padding(size, k, s)
    assert pads == expected
    # "same" means the output has ceil(size / stride) positions
    assert F.conv_output_size(size, k, s, *pads) == -(-size // s)


def test_check_and_resolve_padding():
    assert F.check_padding(2) == ((2, 2), (2, 2))
    assert F.check_padding((1, 0)) == ((1, 1), (0, 0))
    assert F.check_padding([[1, 0], [2, 3]]) == ((1, 0), (2, 3))
    assert F.check_padding("SAME") == "same"
    assert F.resolve_padding("valid", (5, 5), 3) == ((0, 0), (0, 0))
    assert F.resolve_padding("same", (6, 5), (3, 2), (2, 1)) == ((0, 1), (0, 1))
    for bad in (-1, "full", (1, -1), (1, 2, 3), 1.5, ((1, 2), (3,))):
        with pytest.raises(ValueError, match="padding must be"):
            F.check_padding(bad)


# -- im2col / col2im ----------------------------------------------------------------
def naive_im2col_nchw(x, k, s, pads):
    (kh, kw), (sh, sw) = F.pair(k), F.pair(s)
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    n, c, hp, wp = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    rows = []
    for i in range(n):
        for r in range(ho):
            for q in range(wo):
                rows.append(xp[i, :, r * sh:r * sh + kh, q * sw:q * sw + kw].reshape(-1))
    return np.array(rows)


GEOMETRIES = [  # (N, C, H, W, kernel, stride, padding)
    (2, 3, 5, 5, 3, 1, 0),
    (2, 2, 5, 6, (2, 3), (2, 1), 1),
    (1, 3, 7, 7, 3, 2, "same"),
    (2, 1, 6, 5, (3, 2), 2, ((1, 0), (2, 1))),
    (1, 2, 4, 4, 1, 1, "valid"),
    (2, 4, 5, 5, 5, 1, 0),
]


@pytest.mark.parametrize("n,c,h,w,k,s,p", GEOMETRIES)
def test_im2col_matches_naive_in_both_layouts(rng, n, c, h, w, k, s, p):
    x = rng.standard_normal((n, c, h, w))
    pads = F.resolve_padding(p, (h, w), k, s)
    expected = naive_im2col_nchw(x, k, s, pads)  # columns (C, kh, kw)
    np.testing.assert_array_equal(F.im2col(x, k, s, p), expected)
    # channels-last columns are (kh, kw, C)
    kh, kw = F.pair(k)
    cols_cl = F.im2col(x.transpose(0, 2, 3, 1), k, s, p, channels_last=True)
    reordered = cols_cl.reshape(-1, kh, kw, c).transpose(0, 3, 1, 2).reshape(len(cols_cl), -1)
    np.testing.assert_array_equal(reordered, expected)


def test_im2col_gives_the_convolution_with_pytorch_weight_layout(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    W = rng.standard_normal((4, 3, 3, 2))  # (F, C, kh, kw)
    cols = F.im2col(x, (3, 2), 1, 0)
    y = (cols @ W.reshape(4, -1).T).reshape(2, 4, 4, 4)  # rows (N, Ho, Wo) -> NHWC
    i, j = 1, 2  # one output position computed by hand
    expected = np.einsum("nchw,fchw->nf", x[:, :, i:i + 3, j:j + 2], W)
    np.testing.assert_allclose(y[:, i, j, :], expected)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("n,c,h,w,k,s,p", GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(rng, channels_last, n, c, h, w, k, s, p):
    shape = (n, h, w, c) if channels_last else (n, c, h, w)
    x = rng.standard_normal(shape)
    cols = F.im2col(x, k, s, p, channels_last=channels_last)
    g = rng.standard_normal(cols.shape)
    back = F.col2im(g, shape, k, s, p, channels_last=channels_last)
    assert back.shape == shape
    # <im2col(x), g> == <x, col2im(g)>
    np.testing.assert_allclose(np.sum(cols * g), np.sum(x * back), rtol=1e-12)


@pytest.mark.parametrize("n,c,h,w,k,s,p", GEOMETRIES)
def test_col2im_offsets_first_matches_row_major_columns(rng, n, c, h, w, k, s, p):
    """The (kh*kw, N*Ho*Wo, C) layout Conv2D's backward produces holds the same numbers."""
    shape = (n, h, w, c)
    cols = rng.standard_normal(F.im2col(np.zeros(shape), k, s, p, channels_last=True).shape)
    kh, kw = F.pair(k)
    offsets_first = np.ascontiguousarray(cols.reshape(-1, kh * kw, c).transpose(1, 0, 2))
    np.testing.assert_allclose(F.col2im(offsets_first, shape, k, s, p, channels_last=True, offsets_first=True),
                               F.col2im(cols, shape, k, s, p, channels_last=True), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="offsets_first needs channels_last"):
        F.col2im(offsets_first, (n, c, h, w), k, s, p, offsets_first=True)


def test_col2im_counts_window_coverage():
    # a 3x3 window sliding with stride 1 over 4x4 covers the centre 4 times, corners once
    ones = np.ones((4, 9))
    cover = F.col2im(ones, (1, 1, 4, 4), 3, 1, 0)[0, 0]
    np.testing.assert_array_equal(cover, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_im2col_single_channel_fast_path_matches_general(rng):
    x = rng.standard_normal((3, 9, 8, 1)).astype(np.float32)
    for k, s, p in ((3, 1, 1), ((2, 3), (2, 1), 0), (3, 2, "same")):
        fast = F.im2col(x, k, s, p, channels_last=True)
        general = F.im2col(x.transpose(0, 3, 1, 2), k, s, p)  # with C=1 the column orders coincide
        np.testing.assert_array_equal(fast, general)
        assert fast.dtype == np.float32


def test_im2col_and_col2im_preserve_float32(rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    cols = F.im2col(x, 3, 1, 1)
    assert cols.dtype == np.float32
    assert F.col2im(cols, x.shape, 3, 1, 1).dtype == np.float32


# -- stable primitives --------------------------------------------------------------
def test_logsumexp_is_stable_and_correct(rng):
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(F.logsumexp(x, axis=1), np.log(np.exp(x).sum(axis=1)))
    np.testing.assert_allclose(F.logsumexp(x, axis=0), np.log(np.exp(x).sum(axis=0)))
    assert F.logsumexp(x, axis=-1, keepdims=True).shape == (4, 1)
    big = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]])
    np.testing.assert_allclose(F.logsumexp(big), [1000 + np.log(2), -1000 + np.log(2)])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert F.logsumexp(np.array([[-np.inf, -np.inf]]))[0] == -np.inf
    assert F.logsumexp(x.astype(np.float32)).dtype == np.float32


def test_softmax_and_log_softmax(rng):
    x = rng.standard_normal((3, 6))
    p = F.softmax(x)
    np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(F.softmax(x, axis=0).sum(axis=0), 1.0)
    np.testing.assert_allclose(F.log_softmax(x), np.log(p))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        huge = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
        np.testing.assert_allclose(F.softmax(huge), [[1.0, 0.0, 0.0]])
        ls = F.log_softmax(huge)
        np.testing.assert_allclose(ls, [[0.0, -1e4, -2e4]])
    assert F.softmax(huge).dtype == np.float32 and ls.dtype == np.float32


def test_sigmoid_never_overflows():
    x = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(x)
        s32 = F.sigmoid(x.astype(np.float32))
    np.testing.assert_allclose(s[1:-1], 1 / (1 + np.exp(-x[1:-1])))
    np.testing.assert_allclose(s[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(s + s[::-1], 1.0)  # sigmoid(-x) = 1 - sigmoid(x)
    assert s32.dtype == np.float32
    assert F.sigmoid(np.float64(0.0)) == 0.5
