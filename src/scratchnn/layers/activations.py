"""Activation layers. Each keeps on ``self`` only what its backward pass needs."""
from __future__ import annotations

import numpy as np

from .. import initializers, regularizers
from ..backend import default_dtype, get_array_module, global_rng
from ..functional import sigmoid, softmax
from .base import Layer, check_positive_int


class ReLU(Layer):
    """``max(x, 0)``. The gradient at exactly 0 is taken as 0 (as PyTorch does)."""

    def forward(self, x, training=False):
        xp = get_array_module(x)
        y = xp.maximum(x, 0)
        self._cache = y if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        y = self._require_cache()
        return dy * (y > 0)


class LeakyReLU(Layer):
    """``x`` for ``x > 0``, ``alpha * x`` otherwise (Maas et al. 2013)."""

    def __init__(self, alpha=0.01, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.alpha = float(alpha)
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"LeakyReLU: alpha must be a non-negative number, received {alpha!r}")

    def forward(self, x, training=False):
        xp = get_array_module(x)
        pos = x > 0
        y = xp.where(pos, x, x * x.dtype.type(self.alpha))
        self._cache = pos if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        pos = self._require_cache()
        return get_array_module(dy).where(pos, dy, dy * dy.dtype.type(self.alpha))

    def get_config(self):
        return {"alpha": self.alpha, **super().get_config()}


class ELU(Layer):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise (Clevert et al. 2015)."""

    def __init__(self, alpha=1.0, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.alpha = float(alpha)
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"ELU: alpha must be a non-negative number, received {alpha!r}")

    def forward(self, x, training=False):
        xp = get_array_module(x)
        pos = x > 0
        a = x.dtype.type(self.alpha)
        y = xp.where(pos, x, a * xp.expm1(xp.minimum(x, 0)))
        self._cache = (pos, y) if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        pos, y = self._require_cache()
        # d/dx alpha (e^x - 1) = alpha e^x = y + alpha
        return get_array_module(dy).where(pos, dy, dy * (y + y.dtype.type(self.alpha)))

    def get_config(self):
        return {"alpha": self.alpha, **super().get_config()}


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""

    def forward(self, x, training=False):
        y = sigmoid(x)
        self._cache = y if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        y = self._require_cache()
        return dy * y * (1 - y)


class Tanh(Layer):
    """Hyperbolic tangent."""

    def forward(self, x, training=False):
        y = get_array_module(x).tanh(x)
        self._cache = y if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        y = self._require_cache()
        return dy * (1 - y * y)


class Softmax(Layer):
    """Softmax over the last axis (max-subtracted, so large inputs do not overflow).

    For classification prefer ending the network with logits and using
    ``SoftmaxCrossEntropy``: it fuses the two and its gradient is exact and cheap.
    """

    def forward(self, x, training=False):
        y = softmax(x, axis=-1)
        self._cache = y if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        y = self._require_cache()
        # Jacobian-vector product: dx_i = y_i (dy_i - sum_j dy_j y_j)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


class Maxout(Layer):
    """Maxout unit layer (Goodfellow et al. 2013): ``y_j = max_k (x @ W[:, j, k] + b[j, k])``.

    Args:
        units: number of outputs.
        pieces: number of linear pieces each output takes the maximum of.
        in_features, init, use_bias, regularizer, constraint: as for ``Dense``.

    Shape:
        input ``(N, in_features)`` -> output ``(N, units)``;
        ``params["W"]``: ``(in_features, units * pieces)`` (piece index fastest),
        ``params["b"]``: ``(units * pieces,)``.
    """

    weight_keys = ("W",)

    def __init__(self, units, pieces=2, in_features=None, init="xavier_uniform", use_bias=True,
                 regularizer=None, constraint=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.units = check_positive_int("Maxout", "units", units)
        self.pieces = check_positive_int("Maxout", "pieces", pieces)
        self.in_features = None if in_features is None else check_positive_int("Maxout", "in_features", in_features)
        initializers.get(init)
        self.init = init
        self.use_bias = bool(use_bias)
        self.regularizer = regularizers.get(regularizer)
        self.constraint = regularizers.get(constraint)
        if self.in_features is not None:
            self.build((self.in_features,), default_dtype())

    def build(self, input_shape, dtype):
        if len(input_shape) != 1 or (self.in_features is not None and input_shape[0] != self.in_features):
            expected = self.in_features if self.in_features is not None else "F"
            raise ValueError(f"{self.label} expected input of shape (batch, {expected}), "
                             f"received per-sample shape {tuple(input_shape)}")
        self.in_features = int(input_shape[0])
        width = self.units * self.pieces
        W = initializers.get(self.init)((self.in_features, width), self.in_features, self.units, global_rng(), dtype)
        self.params = {"W": np.ascontiguousarray(W, dtype=dtype)}
        if self.use_bias:
            self.params["b"] = np.zeros(width, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        super().build(input_shape, dtype)

    def output_shape(self, input_shape):
        return (self.units,)

    def forward(self, x, training=False):
        self.ensure_built(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.label} expected input with {self.in_features} features "
                             f"(shape (batch, {self.in_features})), received shape {tuple(x.shape)}")
        xp = get_array_module(x)
        z = x @ self.params["W"]
        if self.use_bias:
            z += self.params["b"]
        z = z.reshape(len(x), self.units, self.pieces)
        idx = z.argmax(axis=2)  # first maximal piece wins ties
        y = xp.take_along_axis(z, idx[..., None], axis=2)[..., 0]
        self._cache = (x, idx) if training else None
        return y

    def backward(self, dy, need_input_grad=True):
        x, idx = self._require_cache()
        xp = get_array_module(dy)
        # route each output's gradient to the piece that won the max
        dz = xp.zeros((len(dy), self.units, self.pieces), dtype=dy.dtype)
        xp.put_along_axis(dz, idx[..., None], dy[..., None], axis=2)
        dz = dz.reshape(len(dy), -1)
        self.grads["W"][...] = x.T @ dz
        if self.use_bias:
            self.grads["b"][...] = dz.sum(axis=0)
        return dz @ self.params["W"].T if need_input_grad else None

    def get_config(self):
        return {"units": self.units, "pieces": self.pieces, "in_features": self.in_features,
                "init": self.init if isinstance(self.init, str) else "xavier_uniform",
                "use_bias": self.use_bias, "regularizer": regularizers.serialize(self.regularizer),
                "constraint": regularizers.serialize(self.constraint), **super().get_config()}
