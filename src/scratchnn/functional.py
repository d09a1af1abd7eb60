"""Pure array functions shared by layers and losses.

Nothing here keeps state: convolution geometry (``pair``, ``conv_output_size``,
``resolve_padding``), the im2col/col2im pair that turns a convolution into one
matrix product, and numerically stable ``logsumexp``, ``softmax``,
``log_softmax`` and ``sigmoid``. Every function takes its array module from the
data (``get_array_module``) and keeps the input's float dtype.

Convolution layouts: ``channels_last=False`` means NCHW (PyTorch's public layout),
``channels_last=True`` means NHWC. Columns produced by :func:`im2col` are ordered
to match the weights: ``(C, kh, kw)`` for NCHW, i.e. ``W.reshape(F, -1)`` of a
PyTorch weight ``(F, C, kh, kw)``; ``(kh, kw, C)`` for NHWC. Rows are ``(N, Ho, Wo)``.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import get_array_module
from .errors import InvalidArgumentError

__all__ = [
    "pair", "conv_output_size", "same_padding", "check_padding", "resolve_padding",
    "pad_spatial", "sliding_windows", "im2col", "col2im",
    "logsumexp", "softmax", "log_softmax", "sigmoid",
]


# -- geometry ---------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def pair(v) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5)`` or ``[3, 5]`` -> ``(3, 5)``; anything else raises ValueError."""
    if _is_int(v):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(e) for e in v):
        return (int(v[0]), int(v[1]))
    raise InvalidArgumentError(f"expected an int or a pair of ints, received {v!r}")


def conv_output_size(size: int, k: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0) -> int:
    """Number of window positions along one axis: ``(size + pads - k) // stride + 1``.

    Raises ValueError when the window is larger than the padded input.
    """
    padded = size + pad_before + pad_after
    if k > padded:
        raise InvalidArgumentError(
            f"window of size {k} does not fit in an input of size {size} "
            f"padded by ({pad_before}, {pad_after}) = {padded}"
        )
    return (padded - k) // stride + 1


def same_padding(size: int, k: int, stride: int = 1) -> tuple[int, int]:
    """TF/Keras "same" padding: output size ``ceil(size / stride)``; the odd extra pixel goes at the end.

    Total padding is ``max((ceil(size / stride) - 1) * stride + k - size, 0)``. For stride 1
    this is ``k - 1`` and matches PyTorch's ``padding="same"``.
    """
    total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
    return (total // 2, total - total // 2)


def check_padding(padding):
    """Validate a padding spec and return it in canonical form.

    Accepts ``"same"``, ``"valid"``, an int, a pair ``(ph, pw)`` (symmetric per axis) or
    ``((top, bottom), (left, right))``. Returns ``"same"``, ``"valid"`` or
    ``((top, bottom), (left, right))`` of non-negative ints.
    """
    if isinstance(padding, str):
        p = padding.lower()
        if p in ("same", "valid"):
            return p
    elif _is_int(padding) and padding >= 0:
        return ((int(padding),) * 2,) * 2
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(_is_int(e) and e >= 0 for e in padding):
            return tuple((int(e), int(e)) for e in padding)
        if all(isinstance(e, (tuple, list)) and len(e) == 2 and all(_is_int(v) and v >= 0 for v in e)
               for e in padding):
            return tuple((int(e[0]), int(e[1])) for e in padding)
    raise InvalidArgumentError(
        'padding must be "same", "valid", a non-negative int, a pair (ph, pw) or '
        f"((top, bottom), (left, right)), received {padding!r}"
    )


def resolve_padding(padding, in_size, kernel, stride=1) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding ``((top, bottom), (left, right))`` for a spatial input of size ``in_size = (H, W)``."""
    p = check_padding(padding)
    if p == "valid":
        return ((0, 0), (0, 0))
    if p == "same":
        (kh, kw), (sh, sw) = pair(kernel), pair(stride)
        return (same_padding(in_size[0], kh, sh), same_padding(in_size[1], kw, sw))
    return p


def window_geometry(where, window, in_size, kernel, stride, padding):
    """``(pads, (Ho, Wo))`` of a sliding window over a ``(H, W)`` input, shared by convolution and
    pooling; raises a ValueError naming ``where`` (the layer) when the window cannot fit.

    ``window`` names the window in the message ("kernel", "pool window").
    """
    h, w = in_size
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    pads = resolve_padding(padding, (h, w), (kh, kw), (sh, sw))
    (pt, pb), (pl, pr) = pads
    if kh > h + pt + pb or kw > w + pl + pr:
        raise InvalidArgumentError(
            f"{where}: {window} {kh}x{kw} is larger than the padded input {h + pt + pb}x{w + pl + pr} "
            f"(input {h}x{w}, padding {padding!r})"
        )
    return pads, (conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr))


def pad_spatial(x, pads, value=0.0, channels_last=False):
    """Return ``x`` padded on its two spatial axes with ``value`` (``x`` itself when no padding)."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    xp = get_array_module(x)
    if channels_last:
        n, h, w, c = x.shape
        out = xp.full((n, h + pt + pb, w + pl + pr, c), value, dtype=x.dtype)
        out[:, pt:pt + h, pl:pl + w, :] = x
    else:
        n, c, h, w = x.shape
        out = xp.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
        out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def sliding_windows(x, kernel, stride=1, channels_last=False):
    """Strided view of every window of an (already padded) 4-D array; no copy.

    Returns shape ``(N, Ho, Wo, C, kh, kw)`` for NHWC input and ``(N, C, Ho, Wo, kh, kw)``
    for NCHW input.
    """
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    xp = get_array_module(x)
    axes = (1, 2) if channels_last else (2, 3)
    view = xp.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=axes)
    return view[:, ::sh, ::sw] if channels_last else view[:, :, ::sh, ::sw]


def im2col(x, kernel_size, stride=1, padding=0, channels_last=False):
    """Unfold every convolution window of ``x`` into a row: ``(N * Ho * Wo, C * kh * kw)``.

    Columns are ``(C, kh, kw)`` for NCHW and ``(kh, kw, C)`` for NHWC (see module doc), so a
    convolution is ``im2col(x, ...) @ W_matrix``. Built from a strided view: one copy, no loops.
    """
    kh, kw = pair(kernel_size)
    h, w = (x.shape[1:3] if channels_last else x.shape[2:4])
    pads = resolve_padding(padding, (h, w), (kh, kw), stride)
    x = pad_spatial(x, pads, 0.0, channels_last)
    if channels_last and x.shape[3] == 1:
        return _im2col_single_channel(x, (kh, kw), pair(stride))
    win = sliding_windows(x, (kh, kw), stride, channels_last)
    if channels_last:
        win = win.transpose(0, 1, 2, 4, 5, 3)  # N, Ho, Wo, kh, kw, C
    else:
        win = win.transpose(0, 2, 3, 1, 4, 5)  # N, Ho, Wo, C, kh, kw
    n, ho, wo = win.shape[:3]
    return win.reshape(n * ho * wo, -1)


def _im2col_single_channel(x, kernel, stride):
    """im2col of an NHWC array with one channel (grey images): one strided copy per kernel
    offset. Copying the 6-D window view directly moves only ``kw`` values per inner loop,
    which is ~4x slower here; for C >= 3 the direct copy wins."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw) = kernel, stride
    n, hp, wp, _ = x.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = xp.empty((n, ho, wo, kh, kw), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            cols[:, :, :, a, b] = x[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw, 0]
    return cols.reshape(n * ho * wo, kh * kw)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, channels_last=False, offsets_first=False):
    """Adjoint of :func:`im2col`: sum every row back onto the input positions it came from.

    ``x_shape`` is the unpadded input shape (NCHW, or NHWC when ``channels_last``). Overlapping
    windows add up. One vectorised strided add per kernel offset (``kh * kw`` of them), no
    ``np.add.at``. May return a view into a padded buffer.

    ``offsets_first`` (NHWC only): ``cols`` is laid out ``(kh * kw, N * Ho * Wo, C)`` instead,
    one contiguous slab per kernel offset. The same numbers, but each strided add then reads
    contiguous memory, which makes this ~3x faster (Conv2D's backward produces this layout).
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw) = pair(kernel_size), pair(stride)
    if channels_last:
        n, h, w, c = x_shape
    else:
        n, c, h, w = x_shape
    (pt, pb), (pl, pr) = resolve_padding(padding, (h, w), (kh, kw), (sh, sw))
    hp, wp = h + pt + pb, w + pl + pr
    ho, wo = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    he, we = sh * (ho - 1) + 1, sw * (wo - 1) + 1  # extent of one offset's strided slice
    if channels_last:
        if offsets_first:
            c6 = cols.reshape(kh, kw, n, ho, wo, c).transpose(2, 3, 4, 0, 1, 5)
        else:
            c6 = cols.reshape(n, ho, wo, kh, kw, c)
        out = xp.zeros((n, hp, wp, c), dtype=cols.dtype)
        for a in range(kh):
            for b in range(kw):
                out[:, a:a + he:sh, b:b + we:sw, :] += c6[:, :, :, a, b, :]
        return out[:, pt:pt + h, pl:pl + w, :]
    if offsets_first:
        raise InvalidArgumentError("col2im: offsets_first needs channels_last=True")
    c6 = cols.reshape(n, ho, wo, c, kh, kw)
    out = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            out[:, :, a:a + he:sh, b:b + we:sw] += c6[:, :, :, :, a, b].transpose(0, 3, 1, 2)
    return out[:, :, pt:pt + h, pl:pl + w]


# -- stable primitives -------------------------------------------------------------
def _float(x):
    xp = get_array_module(x)
    x = xp.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def logsumexp(x, axis=-1, keepdims=False):
    """``log(sum(exp(x), axis))`` without overflow: the maximum is subtracted first.

    Rows that are all ``-inf`` give ``-inf`` (not NaN).
    """
    xp = get_array_module(x)
    x = _float(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):  # log(0) = -inf for all -inf rows is the right answer
        out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, computed as ``exp(x - max)`` so it never overflows."""
    xp = get_array_module(x)
    x = _float(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis`` (accurate even where softmax underflows to 0)."""
    x = _float(x)
    return x - logsumexp(x, axis=axis, keepdims=True)


def sigmoid(x):
    """``1 / (1 + exp(-x))`` that never overflows: only ``exp(-|x|)`` is evaluated."""
    xp = get_array_module(x)
    x = _float(x)
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
