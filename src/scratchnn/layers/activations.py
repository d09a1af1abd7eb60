"""Activation layers. Each keeps on ``self`` only what its backward pass needs."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..functional import sigmoid, softmax
from .base import Layer, check_positive_int
from .dense import Dense
from ..errors import InvalidArgumentError


class ReLU(Layer):
    """``max(x, 0)``. The gradient at exactly 0 is taken as 0 (as PyTorch does)."""

    def forward(self, x, training=False):
        y = get_array_module(x).maximum(x, 0)
        self._cache = y if training else None
        return y

    def backward(self, dy):
        y = self._require_cache()
        return dy * (y > 0)  # dL/dx = dL/dy where the unit was active, else 0


class _AlphaActivation(Layer):
    """Shared constructor and config of the activations with a non-negative ``alpha``."""

    def __init__(self, alpha, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.alpha = float(alpha)
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise InvalidArgumentError(f"{type(self).__name__}: alpha must be a non-negative number, received {alpha!r}")

    def get_config(self):
        return {"alpha": self.alpha, **super().get_config()}


class LeakyReLU(_AlphaActivation):
    """``x`` for ``x > 0``, ``alpha * x`` otherwise (Maas et al. 2013)."""

    def __init__(self, alpha=0.01, name=None, trainable=True):
        super().__init__(alpha, name=name, trainable=trainable)

    def forward(self, x, training=False):
        xp = get_array_module(x)
        pos = x > 0
        y = xp.where(pos, x, x * x.dtype.type(self.alpha))
        self._cache = pos if training else None
        return y

    def backward(self, dy):
        pos = self._require_cache()
        return get_array_module(dy).where(pos, dy, dy * dy.dtype.type(self.alpha))


class ELU(_AlphaActivation):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise (Clevert et al. 2015)."""

    def __init__(self, alpha=1.0, name=None, trainable=True):
        super().__init__(alpha, name=name, trainable=trainable)

    def forward(self, x, training=False):
        xp = get_array_module(x)
        pos = x > 0
        a = x.dtype.type(self.alpha)
        y = xp.where(pos, x, a * xp.expm1(xp.minimum(x, 0)))
        self._cache = (pos, y) if training else None
        return y

    def backward(self, dy):
        pos, y = self._require_cache()
        # d/dx alpha (e^x - 1) = alpha e^x = y + alpha
        return get_array_module(dy).where(pos, dy, dy * (y + y.dtype.type(self.alpha)))


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""

    def forward(self, x, training=False):
        y = sigmoid(x)
        self._cache = y if training else None
        return y

    def backward(self, dy):
        y = self._require_cache()
        return dy * y * (1 - y)


class Tanh(Layer):
    """Hyperbolic tangent."""

    def forward(self, x, training=False):
        y = get_array_module(x).tanh(x)
        self._cache = y if training else None
        return y

    def backward(self, dy):
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

    def backward(self, dy):
        y = self._require_cache()
        # Jacobian-vector product: dx_i = y_i (dy_i - sum_j dy_j y_j)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


class Maxout(Dense):
    """Maxout unit layer (Goodfellow et al. 2013): ``y_j = max_k (x @ W[:, j, k] + b[j, k])``.

    A ``Dense`` layer with ``units * pieces`` outputs followed by a maximum over each
    unit's ``pieces`` consecutive outputs; the gradient goes to the winning piece. (As a
    ``Dense``, its ``units`` attribute is the affine width ``units * pieces``;
    ``maxout_units`` is the number of outputs.)

    Args:
        units: number of outputs.
        pieces: number of linear pieces each output takes the maximum of.
        in_features, init, use_bias, regularizer, constraint: as for ``Dense``.

    Shape:
        input ``(N, in_features)`` -> output ``(N, units)``;
        ``params["W"]``: ``(in_features, units * pieces)`` (piece index fastest),
        ``params["b"]``: ``(units * pieces,)``.
    """

    def __init__(self, units, pieces=2, in_features=None, init="xavier_uniform", use_bias=True,
                 regularizer=None, constraint=None, name=None, trainable=True):
        self.pieces = check_positive_int("Maxout", "pieces", pieces)
        self.maxout_units = check_positive_int("Maxout", "units", units)
        super().__init__(self.maxout_units * self.pieces, in_features=in_features, init=init, use_bias=use_bias,
                         regularizer=regularizer, constraint=constraint, name=name, trainable=trainable)

    def output_shape(self, input_shape):
        return (self.maxout_units,)

    def forward(self, x, training=False):
        z = super().forward(x, training=training).reshape(len(x), self.maxout_units, self.pieces)
        idx = z.argmax(axis=2)  # the first maximal piece wins ties
        self._winners = idx if training else None
        return get_array_module(z).take_along_axis(z, idx[..., None], axis=2)[..., 0]

    def backward(self, dy):
        return super().backward(self._route(dy))

    def _route(self, dy):
        """Each output's gradient goes to the piece that won the max (the others get 0)."""
        self._require_cache()
        xp = get_array_module(dy)
        dz = xp.zeros((len(dy), self.maxout_units, self.pieces), dtype=dy.dtype)
        xp.put_along_axis(dz, self._winners[..., None], dy[..., None], axis=2)
        return dz.reshape(len(dy), -1)

    def get_config(self):
        cfg = super().get_config()
        cfg["units"] = self.maxout_units
        return {**cfg, "pieces": self.pieces}
