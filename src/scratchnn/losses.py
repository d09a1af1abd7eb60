"""Losses. ``value, grad = loss(pred, target)``: the mean loss over the batch and its
gradient w.r.t. ``pred`` (same shape and dtype as ``pred``)."""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .functional import logsumexp, sigmoid, softmax
from .errors import InvalidArgumentError, InvalidTypeError


class Loss:
    """Base class. Subclasses implement ``__call__(pred, target) -> (value, grad)``."""

    name = "loss"

    def value(self, pred, target) -> float:
        """The loss alone (evaluation); subclasses may skip the gradient."""
        return self(pred, target)[0]

    def get_config(self):
        return {}


def correct_count(out, y) -> int:
    """How many rows of network outputs ``out`` have their largest value at the true class (labels or one-hot ``y``)."""
    truth = y if y.ndim == 1 else y.argmax(axis=1)
    return int(np.count_nonzero(out.argmax(axis=1) == truth))


def check_labels(y, n_classes: int, where: str = "SoftmaxCrossEntropy"):
    """Return integer labels as an int array, or raise naming the offending label."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise InvalidTypeError(f"{where}: integer class labels expected, received dtype {y.dtype}")
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            pos = int(np.flatnonzero(y == bad)[0])
            raise InvalidArgumentError(f"{where}: label {bad} at index {pos} is outside [0, {n_classes}) "
                             f"for a network with {n_classes} outputs")
    return y


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, computed from logits with log-sum-exp.

    ``target`` is either integer labels of shape ``(N,)`` or a one-hot / probability
    matrix of shape ``(N, C)``. The loss is the mean over the batch; its gradient is the
    fused ``(softmax(z) - onehot(y)) / N``, finite even for logits of +-1e4.

    Example:
        >>> loss, grad = SoftmaxCrossEntropy()(np.array([[2.0, 0.5]]), np.array([0]))
    """

    name = "softmax_cross_entropy"

    def __init__(self, check=True):
        self.check = check

    def __call__(self, pred, target):
        z = pred
        if z.ndim != 2:
            raise InvalidArgumentError(f"SoftmaxCrossEntropy expects logits of shape (batch, classes), "
                                       f"received {tuple(z.shape)}")
        n, c = z.shape
        xp = get_array_module(z)
        target = xp.asarray(target)
        p = softmax(z, axis=1)  # exp(z - max) / sum: never overflows
        if target.ndim == 1:
            if len(target) != n:
                raise InvalidArgumentError(f"SoftmaxCrossEntropy: {n} predictions but {len(target)} labels")
            y = check_labels(target, c) if self.check else target
            rows = xp.arange(n)
            value = float(xp.mean(logsumexp(z, axis=1) - z[rows, y]))  # mean of -log p[i, y_i]
            grad = p
            grad[rows, y] -= 1  # p - onehot(y); divided by N below
        else:
            if target.shape != z.shape:
                raise InvalidArgumentError(f"SoftmaxCrossEntropy: one-hot targets must have shape {tuple(z.shape)}, "
                                           f"received {tuple(target.shape)}")
            value = float(xp.sum(target * (logsumexp(z, axis=1, keepdims=True) - z)) / n)
            # d/dz sum_k t_k (logsumexp(z) - z_k) = p * sum(t) - t  (= p - t for one-hot rows)
            grad = (p * target.sum(axis=1, keepdims=True) - target).astype(z.dtype, copy=False)
        grad /= n
        return value, grad

    def value(self, pred, target):
        target = np.asarray(target)
        if target.ndim == 1:
            y = check_labels(target, pred.shape[1]) if self.check else target
            return float(np.mean(logsumexp(pred, axis=1) - pred[np.arange(len(y)), y]))
        return float(np.sum(target * (logsumexp(pred, axis=1, keepdims=True) - pred)) / len(pred))


def _match_target(pred, target, where):
    target = np.asarray(target)
    if target.shape != pred.shape:
        if target.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1 and len(target) == len(pred):
            target = target[:, None]
        else:
            raise InvalidArgumentError(f"{where}: target shape {tuple(target.shape)} does not match prediction "
                             f"shape {tuple(pred.shape)}")
    return target.astype(pred.dtype, copy=False)


class MSE(Loss):
    """Mean squared error over all elements: ``mean((pred - target)**2)``."""

    name = "mse"

    def __call__(self, pred, target):
        target = _match_target(pred, target, "MSE")
        diff = pred - target
        return float(np.mean(diff * diff)), diff * pred.dtype.type(2.0 / diff.size)


class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy from logits, stable for any logit magnitude.

    ``mean(max(z, 0) - z * t + log(1 + exp(-|z|)))``; gradient ``(sigmoid(z) - t) / size``.
    Targets are in ``[0, 1]`` with the shape of the logits (``(N,)`` for ``(N, 1)`` logits is accepted).
    """

    name = "binary_cross_entropy"

    def __call__(self, pred, target):
        t = _match_target(pred, target, "BinaryCrossEntropy")
        if t.size and (float(t.min()) < 0 or float(t.max()) > 1):
            raise InvalidArgumentError("BinaryCrossEntropy: targets must lie in [0, 1], received values in "
                             f"[{float(t.min())}, {float(t.max())}]")
        z = pred
        value = float(np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))))
        return value, (sigmoid(z) - t) * z.dtype.type(1.0 / z.size)


LOSSES = {
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy,
    "sparse_categorical_crossentropy": SoftmaxCrossEntropy,
    "mse": MSE,
    "mean_squared_error": MSE,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
}


def get(loss):
    """Return a loss instance from an instance or a name (valid names are listed on error)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise InvalidArgumentError(f"unknown loss {loss!r}; valid names: {', '.join(sorted(LOSSES))}")
