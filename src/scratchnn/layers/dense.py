"""Fully connected layer."""
from __future__ import annotations

import numpy as np

from .. import initializers, regularizers
from ..backend import default_dtype, get_array_module, global_rng
from .base import Layer, check_positive_int
from ..errors import InvalidArgumentError


class Dense(Layer):
    """Affine layer ``y = x @ W + b``.

    Args:
        units: number of outputs.
        in_features: number of inputs; inferred on the first forward pass when None.
        init: initializer name (see ``scratchnn.initializers``) or callable.
        use_bias: add the bias vector ``b``.
        regularizer: optional penalty on ``W`` (``scratchnn.regularizers.L2(1e-4)``...).
        constraint: optional constraint on ``W`` applied after each update (``MaxNorm(3)``).

    Shape:
        input ``(N, in_features)`` -> output ``(N, units)``;
        ``params["W"]``: ``(in_features, units)``, ``params["b"]``: ``(units,)``.

    Example:
        >>> layer = Dense(10, in_features=784)
        >>> layer.forward(np.zeros((32, 784), np.float32)).shape
        (32, 10)
    """

    weight_keys = ("W",)

    def __init__(self, units, in_features=None, init="xavier_uniform", use_bias=True,
                 regularizer=None, constraint=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.units = check_positive_int("Dense", "units", units)
        self.in_features = None if in_features is None else check_positive_int("Dense", "in_features", in_features)
        self.init = init
        initializers.get(init)  # validate the name now, not at the first forward
        self.use_bias = bool(use_bias)
        self.regularizer = regularizers.get(regularizer)
        self.constraint = regularizers.get(constraint)
        if self.in_features is not None:
            self.build((self.in_features,), default_dtype())

    def build(self, input_shape, dtype):
        if len(input_shape) != 1:
            raise InvalidArgumentError(
                f"{self.label} expects 2-D input (batch, features), received per-sample shape "
                f"{tuple(input_shape)}; add a Flatten layer before it"
            )
        if self.in_features is not None and input_shape[0] != self.in_features:
            raise InvalidArgumentError(
                f"{self.label} expected input with {self.in_features} features, "
                f"received per-sample shape {tuple(input_shape)}"
            )
        self.in_features = int(input_shape[0])
        init = initializers.get(self.init)
        W = init((self.in_features, self.units), self.in_features, self.units, global_rng(), dtype)
        self.params = {"W": np.ascontiguousarray(W, dtype=dtype)}
        self.grads = {"W": np.zeros_like(self.params["W"])}
        if self.use_bias:
            self.params["b"] = np.zeros(self.units, dtype=dtype)
            self.grads["b"] = np.zeros(self.units, dtype=dtype)
        super().build(input_shape, dtype)

    def param_shapes(self, input_shape):
        n_in = int(input_shape[-1]) if len(input_shape) else 1
        return {"W": (n_in, self.units), **({"b": (self.units,)} if self.use_bias else {})}

    def output_shape(self, input_shape):
        return (self.units,)

    def forward(self, x, training=False):
        if not self.built:
            self.ensure_built(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise InvalidArgumentError(
                f"{self.label} expected input with {self.in_features} features "
                f"(shape (batch, {self.in_features})), received shape {tuple(x.shape)}"
            )
        xp = get_array_module(x)
        y = xp.matmul(x, self.params["W"])
        if self.use_bias:
            y += self.params["b"]
        self._cache = x if training else None
        return y

    def backward(self, dy):
        x = self._require_cache()
        self.grads["W"][...] = x.T @ dy  # dL/dW = x^T dy
        if self.use_bias:
            self.grads["b"][...] = dy.sum(axis=0)  # dL/db = dy summed over the batch
        return dy @ self.params["W"].T  # dL/dx = dy W^T

    def get_config(self):
        return {
            "units": self.units, "in_features": self.in_features,
            "init": self.init if isinstance(self.init, str) else "xavier_uniform",
            "use_bias": self.use_bias,
            "regularizer": regularizers.serialize(self.regularizer),
            "constraint": regularizers.serialize(self.constraint),
            **super().get_config(),
        }
