"""Weight penalties (added to the loss and its gradient) and weight constraints.

Penalties follow Keras' conventions: ``L2(l2)`` adds ``l2 * sum(W**2)``,
``L1(l1)`` adds ``l1 * sum(|W|)``, ``ElasticNet(l1, l2)`` adds both. They apply
to a layer's weights (``W``), never to biases. ``MaxNorm(c)`` is a constraint:
after each update, every unit's incoming weight vector is rescaled to norm <= c.

Example:
    >>> Dense(100, regularizer=L2(1e-4), constraint=MaxNorm(3.0))
"""
from __future__ import annotations

import numpy as np
from .errors import InvalidArgumentError


class Regularizer:
    """Base class: ``reg(W)`` is the penalty, ``reg.add_grad(W, dW)`` adds its gradient in place."""

    def __call__(self, W) -> float:
        raise NotImplementedError

    def add_grad(self, W, dW) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def _non_negative(cls, name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{cls}: {name} must be a non-negative number, received {value!r}")
    return value


class L2(Regularizer):
    """``l2 * sum(W**2)``; gradient ``2 * l2 * W`` (weight decay)."""

    def __init__(self, l2=1e-4):
        self.l2 = _non_negative("L2", "l2", l2)

    def __call__(self, W):
        return self.l2 * float(np.sum(W * W))

    def add_grad(self, W, dW):
        dW += (2.0 * self.l2) * W


class L1(Regularizer):
    """``l1 * sum(|W|)``; (sub)gradient ``l1 * sign(W)``, which pushes weights to exactly zero."""

    def __init__(self, l1=1e-4):
        self.l1 = _non_negative("L1", "l1", l1)

    def __call__(self, W):
        return self.l1 * float(np.sum(np.abs(W)))

    def add_grad(self, W, dW):
        dW += self.l1 * np.sign(W)


class ElasticNet(Regularizer):
    """``l1 * sum(|W|) + l2 * sum(W**2)``."""

    def __init__(self, l1=1e-4, l2=1e-4):
        self.l1 = _non_negative("ElasticNet", "l1", l1)
        self.l2 = _non_negative("ElasticNet", "l2", l2)

    def __call__(self, W):
        return self.l1 * float(np.sum(np.abs(W))) + self.l2 * float(np.sum(W * W))

    def add_grad(self, W, dW):
        dW += self.l1 * np.sign(W) + (2.0 * self.l2) * W


class MaxNorm:
    """Constraint: rescale each unit's incoming weights to L2 norm at most ``max_value``.

    For a Dense ``W`` of shape ``(in, units)`` the norm runs over ``axis=0``; for a
    convolution ``W`` of shape ``(filters, C, kh, kw)`` pass ``axis=(1, 2, 3)``.
    Applied in place after each optimizer update.
    """

    def __init__(self, max_value=3.0, axis=0):
        self.max_value = _non_negative("MaxNorm", "max_value", max_value)
        self.axis = axis if isinstance(axis, int) else tuple(axis)

    def __call__(self, W) -> None:
        norms = np.sqrt(np.sum(W * W, axis=self.axis, keepdims=True))
        scale = np.minimum(1.0, self.max_value / np.maximum(norms, 1e-12))
        W *= scale.astype(W.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis if isinstance(self.axis, int) else list(self.axis)}

    def __repr__(self):
        return f"MaxNorm(max_value={self.max_value}, axis={self.axis})"


_CLASSES = {c.__name__: c for c in (L1, L2, ElasticNet, MaxNorm)}
_CLASSES.update({"l1": L1, "l2": L2, "elastic_net": ElasticNet, "max_norm": MaxNorm})


def serialize(obj):
    """``{"class": ..., "config": {...}}`` for save files (None stays None)."""
    if obj is None:
        return None
    return {"class": type(obj).__name__, "config": obj.get_config()}


def get(obj):
    """Accept None, an instance, a saved dict, or a name (``"l2"``) and return an instance."""
    if obj is None or isinstance(obj, (Regularizer, MaxNorm)):
        return obj
    if isinstance(obj, dict):
        cls = _CLASSES.get(obj.get("class"))
        if cls is None:
            raise InvalidArgumentError(f"unknown regularizer {obj.get('class')!r}; valid: L1, L2, ElasticNet, MaxNorm")
        return cls(**obj.get("config", {}))
    if isinstance(obj, str) and obj in _CLASSES:
        return _CLASSES[obj]()
    raise InvalidArgumentError(f"unknown regularizer {obj!r}; valid: {', '.join(sorted(_CLASSES))}")
