"""Layers that only change the shape of each sample."""
from __future__ import annotations

import math

import numpy as np

from .base import Layer
from ..errors import InvalidArgumentError


def _fresh(dx, dy):
    """``dx`` as an array the layer may hand upstream: a copy when it is a view of ``dy``."""
    return dx.copy() if np.may_share_memory(dx, dy) else dx


class Flatten(Layer):
    """Flatten each sample to a vector in C order (same order as PyTorch's ``flatten`` of NCHW).

    Shape:
        ``(N, d1, d2, ...)`` -> ``(N, d1 * d2 * ...)``.
    """

    def forward(self, x, training=False):
        if x.ndim < 1:
            raise InvalidArgumentError(f"{self.label} expected a batched array, received a scalar")
        self.ensure_built(x)
        self._cache = x.shape if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        x_shape = self._require_cache()
        return _fresh(dy.reshape(x_shape), dy)

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (C order); one entry may be ``-1`` (inferred).

    Args:
        target_shape: per-sample shape, batch axis excluded, e.g. ``(1, 28, 28)``.

    Shape:
        ``(N, *input_shape)`` -> ``(N, *target_shape)``.
    """

    def __init__(self, target_shape, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        if isinstance(target_shape, (int, np.integer)) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        ok = isinstance(target_shape, (tuple, list)) and all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d >= 1 or d == -1)
            for d in target_shape)
        if not ok or list(target_shape).count(-1) > 1:
            raise InvalidArgumentError(
                "Reshape: target_shape must be a tuple of positive ints with at most one -1, "
                f"received {target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in target_shape)

    def output_shape(self, input_shape):
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            ok = size % known == 0
            shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            ok, shape = size == known, self.target_shape
        if not ok:
            raise InvalidArgumentError(
                f"{self.label} cannot reshape per-sample shape {tuple(input_shape)} ({size} elements) "
                f"into target shape {self.target_shape}"
            )
        return shape

    def build(self, input_shape, dtype):
        self.output_shape(input_shape)  # fail early on a size mismatch
        super().build(input_shape, dtype)

    def forward(self, x, training=False):
        if x.ndim < 1:
            raise InvalidArgumentError(f"{self.label} expected a batched array, received a scalar")
        self.ensure_built(x)
        shape = self.output_shape(x.shape[1:])
        self._cache = x.shape if training else None
        return x.reshape(x.shape[0], *shape)

    def backward(self, dy):
        x_shape = self._require_cache()
        return _fresh(dy.reshape(x_shape), dy)

    def get_config(self):
        return {"target_shape": list(self.target_shape), **super().get_config()}
