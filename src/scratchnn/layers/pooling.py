"""Spatial pooling over NCHW images: max, average and global average."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..backend import float_dtype, get_array_module
from .base import Layer
from ..errors import InvalidArgumentError


def _tiles(x, ph, pw):
    """View ``(N, C, H, W)`` as ``(N, C, H/ph, ph, W/pw, pw)`` without copying when ``x`` is
    C-ordered NCHW *or* an NCHW view of channels-last memory (what Conv2D returns)."""
    n, c, h, w = x.shape
    xt = x.transpose(0, 2, 3, 1)
    if not x.flags.c_contiguous and xt.flags.c_contiguous:
        return xt.reshape(n, h // ph, ph, w // pw, pw, c).transpose(0, 5, 1, 2, 3, 4)
    return x.reshape(n, c, h // ph, ph, w // pw, pw)


def _alloc(xp, shape, dtype, channels_last, zeros=False):
    """A new NCHW array, stored channels-last when ``channels_last`` (keeps Conv2D's layout)."""
    make = xp.zeros if zeros else xp.empty
    if channels_last:
        n, c, h, w = shape
        return make((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)
    return make(shape, dtype=dtype)


def _is_channels_last(x):
    return not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous


def _in_layout(xp, a, channels_last):
    """``a`` stored channels-last (or C-ordered): one copy when its layout differs, so the
    elementwise passes that follow run over matching memory orders (several times faster)."""
    if channels_last == _is_channels_last(a) or (not channels_last and a.flags.c_contiguous):
        return a
    if channels_last:
        return xp.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(a)


class _Pool2D(Layer):
    """Shared geometry of MaxPool2D and AvgPool2D."""

    pad_value = 0.0

    def __init__(self, pool_size=2, stride=None, padding=0, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        cls = type(self).__name__
        try:
            self.pool_size = F.pair(pool_size)
            self.stride = self.pool_size if stride is None else F.pair(stride)
        except ValueError:
            self.pool_size, self.stride = (0, 0), (0, 0)
        if min(self.pool_size) < 1 or min(self.stride) < 1:
            raise InvalidArgumentError(
                f"{cls}: pool_size and stride must be positive ints or pairs of positive ints, "
                f"received pool_size={pool_size!r}, stride={stride!r}"
            )
        try:
            canonical = F.check_padding(padding)
        except ValueError as e:
            raise InvalidArgumentError(f"{cls}: {e}") from None
        if not isinstance(canonical, str):
            for (before, after), k in zip(canonical, self.pool_size):
                if max(before, after) > k // 2:
                    raise InvalidArgumentError(
                        f"{cls}: padding must be at most half the pool size {self.pool_size}, "
                        f"received padding={padding!r}"
                    )
        self.padding = padding if isinstance(padding, str) else (
            int(padding) if isinstance(padding, (int, np.integer)) else
            [p if isinstance(p, (int, np.integer)) else list(p) for p in padding])
        self._stride_arg = None if stride is None else list(self.stride)

    def _geometry(self, x_shape):
        """``(pads, (Ho, Wo))`` for an input of shape ``(..., H, W)``; clear error when impossible."""
        try:
            return F.window_geometry(self.label, "pool window", x_shape[-2:], self.pool_size, self.stride,
                                     self.padding)
        except ValueError as e:
            shape = tuple(x_shape[1:]) if len(x_shape) == 4 else tuple(x_shape)
            raise InvalidArgumentError(f"{e}; received per-sample shape {shape}") from None

    def _tiled(self, x_shape, pads):
        """True when windows tile the input exactly: reshape instead of strided windows."""
        (ph, pw), h, w = self.pool_size, x_shape[2], x_shape[3]
        return (self.stride == self.pool_size and pads == ((0, 0), (0, 0))
                and h % ph == 0 and w % pw == 0)

    def _check_input(self, x):
        if x.ndim != 4:
            raise InvalidArgumentError(
                f"{self.label} expects 4-D input (batch, channels, height, width), received shape {tuple(x.shape)}"
            )

    def _prepare(self, x):
        self._check_input(x)
        self.ensure_built(x)
        if x.dtype.kind != "f":
            x = x.astype(float_dtype(x))
        pads, out_hw = self._geometry(x.shape)
        return x, pads, out_hw

    def _offsets(self, arr, ho, wo, tiled):
        """``ph * pw`` views of shape ``(N, C, Ho, Wo)`` into ``arr``; view ``k = a * pw + b`` holds
        element ``(a, b)`` of every window (row-major window order).

        Tiling windows come from a reshaped view of ``arr``; overlapping or padded windows from
        strided slices of the (padded) ``arr``. Reducing over these views with ``ph * pw``
        elementwise ops is much faster in NumPy than ``max(axis=(3, 5))`` over tiny strided axes.
        """
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        if tiled:
            a6 = _tiles(arr, ph, pw)  # (N, C, Ho, ph, Wo, pw)
            return [a6[:, :, :, a, :, b] for a in range(ph) for b in range(pw)]
        return [arr[:, :, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw]
                for a in range(ph) for b in range(pw)]

    def _grad_buffer(self, xp, x_shape, pads, dtype, channels_last, tiled):
        """Zeroed (padded, unless tiled) gradient buffer in the input's memory layout."""
        (pt, pb), (pl, pr) = pads
        n, c, h, w = x_shape
        return _alloc(xp, (n, c, h + pt + pb, w + pl + pr), dtype, channels_last, zeros=not tiled)

    @staticmethod
    def _crop(dxpad, pads, x_shape):
        (pt, _), (pl, _) = pads
        return dxpad[:, :, pt:pt + x_shape[2], pl:pl + x_shape[3]]

    def _windows(self, x):
        """``(x, pads, tiled, views)``: the validated input, its padding, whether the windows
        tile it, and the ``ph * pw`` window views (see ``_offsets``)."""
        x, pads, (ho, wo) = self._prepare(x)
        tiled = self._tiled(x.shape, pads)
        return x, pads, tiled, self._window_views(x, pads, ho, wo, tiled)

    def _window_views(self, x, pads, ho, wo, tiled):
        if tiled:
            return self._offsets(x, ho, wo, tiled)
        if _is_channels_last(x):  # pad in the same layout
            xpad = F.pad_spatial(x.transpose(0, 2, 3, 1), pads, self.pad_value, channels_last=True)
            return self._offsets(xpad.transpose(0, 3, 1, 2), ho, wo, tiled)
        return self._offsets(F.pad_spatial(x, pads, self.pad_value), ho, wo, tiled)

    def output_shape(self, input_shape):
        _, (ho, wo) = self._geometry(tuple(input_shape))
        return (input_shape[0], ho, wo)

    def get_config(self):
        return {"pool_size": list(self.pool_size), "stride": self._stride_arg, "padding": self.padding,
                **super().get_config()}


class MaxPool2D(_Pool2D):
    """Maximum over each ``pool_size`` window.

    Args:
        pool_size: int or ``(ph, pw)``.
        stride: int or ``(sh, sw)``; defaults to ``pool_size`` (non-overlapping windows).
        padding: int, ``(ph, pw)``, ``"valid"`` or ``"same"``; padded with ``-inf``, so padding
            never wins. Explicit padding is at most half the window (as in PyTorch).

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, Ho, Wo)``, ``Ho = (H + pads - ph) // sh + 1`` (floor mode).

    The gradient of each window goes to exactly one input: its maximum, and with ties the
    first maximum in row-major window order (PyTorch's rule). When windows tile the input
    exactly the layer works on a reshaped view; otherwise on ``ph * pw`` strided views of the
    padded input, so overlapping windows need no im2col copy.
    """

    pad_value = -np.inf

    def forward(self, x, training=False):
        xp = get_array_module(x)
        x, pads, tiled, views = self._windows(x)
        (ph, pw) = self.pool_size
        itype = np.dtype(np.int8 if ph * pw < 128 else np.int32).type
        # running maximum over the window positions in row-major order. For backward, record
        # where it was last raised: a later position takes over only when strictly greater, so
        # with ties the first maximum keeps the gradient (PyTorch's rule); positions k only
        # increase, so the last take-over is the largest k * took.
        y = views[0].copy(order="K")  # keeps the input's memory layout
        idx = xp.zeros_like(y, dtype=itype) if training else None  # same layout as y
        for k, v in enumerate(views[1:], start=1):
            if training:
                took = v > y
                xp.maximum(idx, took * itype(k), out=idx)
            xp.maximum(y, v, out=y)
        self._cache = (idx, x.shape, pads, tiled, _is_channels_last(x)) if training else None
        return y

    def backward(self, dy):
        idx, x_shape, pads, tiled, channels_last = self._require_cache()
        xp = get_array_module(dy)
        dy = _in_layout(xp, dy, channels_last)  # the layout of idx and dx
        dxpad = self._grad_buffer(xp, x_shape, pads, dy.dtype, channels_last, tiled)
        # dy flows only to the (first) maximum of its window
        for k, view in enumerate(self._offsets(dxpad, *dy.shape[2:], tiled)):
            if tiled:  # every input is in exactly one window: write, don't accumulate
                xp.multiply(dy, idx == k, out=view)
            else:  # overlapping windows add up
                view += dy * (idx == k)
        return self._crop(dxpad, pads, x_shape)


class AvgPool2D(_Pool2D):
    """Mean over each ``pool_size`` window.

    Args:
        pool_size: int or ``(ph, pw)``.
        stride: int or ``(sh, sw)``; defaults to ``pool_size``.
        padding: int, ``(ph, pw)``, ``"valid"`` or ``"same"``; zeros are padded and counted in
            the mean (PyTorch's default ``count_include_pad=True``).

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, Ho, Wo)``, ``Ho = (H + pads - ph) // sh + 1`` (floor mode).
    """

    def forward(self, x, training=False):
        xp = get_array_module(x)
        x, pads, tiled, views = self._windows(x)
        y = views[0].copy(order="K")  # keeps the input's memory layout
        for v in views[1:]:
            xp.add(y, v, out=y)
        (ph, pw) = self.pool_size
        y *= 1.0 / (ph * pw)
        self._cache = (x.shape, pads, tiled, _is_channels_last(x)) if training else None
        return y

    def backward(self, dy):
        x_shape, pads, tiled, channels_last = self._require_cache()
        xp = get_array_module(dy)
        (ph, pw) = self.pool_size
        # each input of a window receives dy / window size
        g = _in_layout(xp, dy, channels_last) * (1.0 / (ph * pw))
        dxpad = self._grad_buffer(xp, x_shape, pads, g.dtype, channels_last, tiled)
        for view in self._offsets(dxpad, *dy.shape[2:], tiled):
            if tiled:
                view[...] = g
            else:
                view += g
        return self._crop(dxpad, pads, x_shape)


class GlobalAvgPool2D(Layer):
    """Mean over all spatial positions of each channel.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C)``.
    """

    def forward(self, x, training=False):
        if x.ndim != 4:
            raise InvalidArgumentError(
                f"{self.label} expects 4-D input (batch, channels, height, width), received shape {tuple(x.shape)}"
            )
        self.ensure_built(x)
        if x.dtype.kind != "f":
            x = x.astype(float_dtype(x))
        self._cache = (x.shape, _is_channels_last(x)) if training else None
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        x_shape, channels_last = self._require_cache()
        xp = get_array_module(dy)
        h, w = x_shape[2:]
        dx = _alloc(xp, x_shape, dy.dtype, channels_last)
        dx[...] = (dy * (1.0 / (h * w)))[:, :, None, None]
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise InvalidArgumentError(
                f"{self.label} expects per-sample shape (channels, height, width), received {tuple(input_shape)}"
            )
        return (input_shape[0],)
