"""2-D convolution as one matrix product over an im2col view."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import initializers, regularizers
from ..backend import default_dtype, get_array_module, global_rng
from .base import Layer, check_positive_int
from ..errors import InvalidArgumentError


def _padding_config(padding):
    """The padding argument in a JSON-friendly form (tuples become lists)."""
    if isinstance(padding, (str, int, np.integer)):
        return padding if isinstance(padding, str) else int(padding)
    return [_padding_config(p) for p in padding]


def _positive_pair(layer, name, value):
    try:
        p = F.pair(value)
    except ValueError:
        p = (0, 0)
    if min(p) < 1:
        raise InvalidArgumentError(f"{layer}: {name} must be a positive int or a pair of positive ints, received {value!r}")
    return p


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in PyTorch and Keras) over NCHW images.

    Computed as ``im2col(x) @ W_matrix``: every receptive field becomes one row of a
    matrix, so the whole layer is one BLAS call forward and two backward.

    Args:
        filters: number of output channels ``F``.
        kernel_size: int or ``(kh, kw)``.
        stride: int or ``(sh, sw)``.
        padding: int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"valid"`` (no padding)
            or ``"same"`` (output ``ceil(H / sh)`` x ``ceil(W / sw)``; TF/Keras split, the odd
            extra pixel at the bottom/right). Zeros are padded.
        in_channels: input channels ``C``; inferred on the first forward pass when None.
        init: initializer for ``W`` (default ``"he_normal"``, suited to the ReLU family; fan_in
            is ``C * kh * kw``). The bias starts at zero.
        use_bias: add the per-filter bias ``b``.
        regularizer: optional penalty on ``W``.
        constraint: optional constraint on ``W``; for max-norm per filter use
            ``MaxNorm(c, axis=(1, 2, 3))``.

    Shape:
        input ``(N, C, H, W)`` -> output ``(N, F, Ho, Wo)`` with
        ``Ho = (H + pad_top + pad_bottom - kh) // sh + 1`` (likewise ``Wo``);
        ``params["W"]``: ``(F, C, kh, kw)`` exactly as PyTorch's ``Conv2d.weight``;
        ``params["b"]``: ``(F,)``.

    Memory layout: internally the layer works channels-last (NHWC), where a window's
    ``kw * C`` values are contiguous and the product lands directly in NHWC order. The output
    is returned as an NCHW-shaped *view* of that NHWC buffer (PyTorch's "channels_last memory
    format"): indexing, ufuncs and reshapes behave as for any NCHW array, a following
    Conv2D/pooling layer reads it without a transpose copy, and ``np.ascontiguousarray(y)``
    gives a C-ordered copy when one is really needed. ``backward`` returns ``dx`` the same way.

    Example:
        >>> conv = Conv2D(32, 3, padding="same")
        >>> conv.forward(np.zeros((8, 1, 28, 28), np.float32)).shape
        (8, 32, 28, 28)
    """

    weight_keys = ("W",)

    def __init__(self, filters, kernel_size, stride=1, padding=0, in_channels=None, init="he_normal",
                 use_bias=True, regularizer=None, constraint=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.filters = check_positive_int("Conv2D", "filters", filters)
        self.kernel_size = _positive_pair("Conv2D", "kernel_size", kernel_size)
        self.stride = _positive_pair("Conv2D", "stride", stride)
        try:
            F.check_padding(padding)
        except ValueError as e:
            raise InvalidArgumentError(f"Conv2D: {e}") from None
        self.padding = _padding_config(padding)
        self.in_channels = None if in_channels is None else check_positive_int("Conv2D", "in_channels", in_channels)
        self.init = init
        initializers.get(init)  # validate the name now, not at the first forward
        self.use_bias = bool(use_bias)
        self.regularizer = regularizers.get(regularizer)
        self.constraint = regularizers.get(constraint)
        if self.in_channels is not None:  # parameters depend only on C: create them now (as Dense does)
            self._create_params(default_dtype())
            self.built = True

    # -- construction -------------------------------------------------------------
    def build(self, input_shape, dtype):
        self.output_shape(input_shape)  # validates rank, channels and geometry
        self.in_channels = int(input_shape[0])
        self._create_params(dtype)
        super().build(input_shape, dtype)

    def param_shapes(self, input_shape):
        c = int(input_shape[0]) if len(input_shape) else 1
        return {"W": (self.filters, c, *self.kernel_size), **({"b": (self.filters,)} if self.use_bias else {})}

    def _check_per_sample_shape(self, input_shape):
        if len(input_shape) != 3:
            raise InvalidArgumentError(
                f"{self.label} expects 4-D input (batch, channels, height, width), "
                f"received per-sample shape {tuple(input_shape)}"
            )
        if self.in_channels is not None and input_shape[0] != self.in_channels:
            raise InvalidArgumentError(
                f"{self.label} expected input with {self.in_channels} channels "
                f"(shape (batch, {self.in_channels}, H, W)), received per-sample shape {tuple(input_shape)}"
            )

    def _create_params(self, dtype):
        kh, kw = self.kernel_size
        shape = (self.filters, self.in_channels, kh, kw)
        fan_in, fan_out = self.in_channels * kh * kw, self.filters * kh * kw
        W = initializers.get(self.init)(shape, fan_in, fan_out, global_rng(), dtype)
        self.params = {"W": np.ascontiguousarray(W, dtype=dtype)}
        self.grads = {"W": np.zeros_like(self.params["W"])}
        if self.use_bias:
            self.params["b"] = np.zeros(self.filters, dtype=dtype)
            self.grads["b"] = np.zeros(self.filters, dtype=dtype)

    def _geometry(self, input_shape):
        """``(pads, (Ho, Wo))`` for a per-sample input shape ``(C, H, W)``; clear error if impossible."""
        try:
            return F.window_geometry(self.label, "kernel", input_shape[1:], self.kernel_size, self.stride,
                                     self.padding)
        except ValueError as e:
            raise InvalidArgumentError(f"{e}; received per-sample shape {tuple(input_shape)}") from None

    def output_shape(self, input_shape):
        self._check_per_sample_shape(tuple(input_shape))
        _, (ho, wo) = self._geometry(tuple(input_shape))
        return (self.filters, ho, wo)

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InvalidArgumentError(
                f"{self.label} expected input with {self.in_channels} channels "
                f"(shape (batch, {self.in_channels}, H, W)), received shape {tuple(x.shape)}"
            )

    def _weight_matrix(self):
        """``W`` as the ``(kh * kw * C, F)`` matrix matching channels-last im2col columns."""
        W = self.params["W"]
        return W.transpose(2, 3, 1, 0).reshape(-1, self.filters)

    # -- computation --------------------------------------------------------------
    def forward(self, x, training=False):
        if x.ndim != 4:
            raise InvalidArgumentError(
                f"{self.label} expects 4-D input (batch, channels, height, width), received shape {tuple(x.shape)}"
            )
        self.ensure_built(x)
        self._check_input(x)
        xp = get_array_module(x)
        n, c, h, w = x.shape
        pads, (ho, wo) = self._geometry(x.shape[1:])
        (pt, pb), (pl, pr) = pads
        Wm = self._weight_matrix()
        dtype = np.result_type(x.dtype, Wm.dtype) if x.dtype.kind == "f" else Wm.dtype
        # one copy: NCHW -> zero-padded NHWC working buffer
        alloc = xp.zeros if pt or pb or pl or pr else xp.empty
        xpad = alloc((n, h + pt + pb, w + pl + pr, c), dtype=dtype)
        xpad[:, pt:pt + h, pl:pl + w, :] = x.transpose(0, 2, 3, 1)
        cols = F.im2col(xpad, self.kernel_size, self.stride, 0, channels_last=True)  # (N*Ho*Wo, kh*kw*C)
        del xpad
        y = xp.matmul(cols, Wm)  # (N*Ho*Wo, F), rows in NHWC order
        if self.use_bias:
            y += self.params["b"]
        self._cache = (cols, x.shape, pads) if training else None
        return y.reshape(n, ho, wo, self.filters).transpose(0, 3, 1, 2)

    def backward(self, dy):
        cols, x_shape, pads = self._require_cache()
        self._cache = None  # backward consumes the cache: its im2col buffer is reused for dx
        dym = self._dy_rows(dy)
        self._fill_grads(cols, dym, dym.sum(axis=0) if self.use_bias else None)
        return self._input_grad(cols, dym, x_shape, pads)

    def _dy_rows(self, dy):
        """Rows of dY in the same (N, Ho, Wo) order as the im2col rows (free when dy is channels-last)."""
        return dy.transpose(0, 2, 3, 1).reshape(-1, self.filters)

    def _fill_grads(self, cols, dym, db):
        """dL/dW = cols^T dY, reordered from (kh, kw, C, F) to PyTorch's (F, C, kh, kw); dL/db = ``db``,
        the column sums of dY."""
        (kh, kw), f = self.kernel_size, self.filters
        c = cols.shape[1] // (kh * kw)
        dWm = get_array_module(dym).matmul(cols.T, dym)
        self.grads["W"][...] = dWm.reshape(kh, kw, c, f).transpose(3, 2, 0, 1)
        if self.use_bias:
            self.grads["b"][...] = db

    def _input_grad(self, cols, dym, x_shape, pads):
        """dL/dx = col2im(dY W^T). dY W^T is computed per kernel offset, dY @ W[:, :, a, b] (one
        batched product), giving the columns offset-major: (kh * kw, N * Ho * Wo, C). col2im then adds
        contiguous slabs, and the product is written into the im2col buffer, which dW no longer needs
        (same size), so the step never holds two such buffers."""
        xp = get_array_module(dym)
        n, c, h, w = x_shape
        (kh, kw), f = self.kernel_size, self.filters
        Wk = self.params["W"].transpose(2, 3, 0, 1).reshape(kh * kw, f, c)
        dtype = np.result_type(dym.dtype, Wk.dtype)
        reuse = cols.dtype == dtype and cols.flags.c_contiguous and cols.flags.writeable
        out = cols.reshape(kh * kw, -1, c) if reuse else None
        dcols = xp.matmul(dym, Wk, out=out)
        del cols, out
        dx = F.col2im(dcols, (n, h, w, c), self.kernel_size, self.stride, pads, channels_last=True,
                      offsets_first=True)
        return dx.transpose(0, 3, 1, 2)

    def get_config(self):
        return {
            "filters": self.filters, "kernel_size": list(self.kernel_size), "stride": list(self.stride),
            "padding": self.padding, "in_channels": self.in_channels,
            "init": self.init if isinstance(self.init, str) else "he_normal",
            "use_bias": self.use_bias,
            "regularizer": regularizers.serialize(self.regularizer),
            "constraint": regularizers.serialize(self.constraint),
            **super().get_config(),
        }
