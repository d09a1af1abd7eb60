"""Batch normalization (Ioffe & Szegedy 2015) for dense (N, D) and image (N, C, H, W) inputs."""
from __future__ import annotations

import numpy as np

from ..backend import default_dtype, get_array_module
from .base import Layer
from ..errors import InvalidArgumentError


class BatchNorm(Layer):
    """Normalize each feature (axis 1) with batch statistics in training, running ones at inference.

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta``. Statistics are taken over every
    axis but axis 1, so ``(N, D)`` inputs get per-feature and ``(N, C, H, W)`` inputs
    per-channel statistics. Running estimates follow Keras' momentum convention:
    ``running = momentum * running + (1 - momentum) * batch`` (PyTorch's ``momentum=0.1``
    is this ``momentum=0.9``); the running variance uses the unbiased batch variance, as
    PyTorch does, so the statistics can be exchanged with it.

    Args:
        momentum: weight of the old running statistics, in ``[0, 1)``.
        eps: added to the variance for numerical stability.

    Shape:
        input ``(N, C)`` or ``(N, C, ...)``; ``params["gamma"]``, ``params["beta"]``,
        ``buffers["running_mean"]``, ``buffers["running_var"]``: ``(C,)``.
    """

    required_ndim: int | None = None

    def __init__(self, momentum=0.9, eps=1e-5, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.momentum = float(momentum)
        self.eps = float(eps)
        if not 0.0 <= self.momentum < 1.0:
            raise InvalidArgumentError(f"{type(self).__name__}: momentum must be in [0, 1), received {momentum!r}")
        if not self.eps > 0:
            raise InvalidArgumentError(f"{type(self).__name__}: eps must be positive, received {eps!r}")

    def build(self, input_shape, dtype):
        self._check_ndim(len(input_shape) + 1, input_shape)
        c = int(input_shape[0])
        self.params = {"gamma": np.ones(c, dtype=dtype), "beta": np.zeros(c, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": np.zeros(c, dtype=dtype), "running_var": np.ones(c, dtype=dtype)}
        super().build(input_shape, dtype)

    def param_shapes(self, input_shape):
        c = int(input_shape[0]) if len(input_shape) else 1
        return {"gamma": (c,), "beta": (c,)}

    def _check_ndim(self, ndim, shape):
        if ndim < 2 or (self.required_ndim is not None and ndim != self.required_ndim):
            want = f"{self.required_ndim}-D" if self.required_ndim else "at least 2-D"
            raise InvalidArgumentError(f"{self.label} expects {want} input (batch, channels, ...), "
                             f"received per-sample shape {tuple(shape)}")

    def _check_input(self, x):
        self.ensure_built(x)
        self._check_ndim(x.ndim, x.shape[1:])
        c = len(self.params["gamma"])
        if x.shape[1] != c:
            raise InvalidArgumentError(f"{self.label} expected {c} features/channels on axis 1, "
                                       f"received shape {tuple(x.shape)}")

    def forward(self, x, training=False):
        self._check_input(x)
        xp = get_array_module(x)
        c = len(self.params["gamma"])
        axes = (0,) + tuple(range(2, x.ndim))  # statistics over all axes but the features/channels
        bshape = (1, c) + (1,) * (x.ndim - 2)
        gamma = self.params["gamma"].reshape(bshape)
        beta = self.params["beta"].reshape(bshape)
        if training:
            m = x.size // c  # values per feature/channel
            mean = x.sum(axis=axes) / m
            xc = x - mean.reshape(bshape)
            var = (xc * xc).sum(axis=axes) / m
            inv_std = 1.0 / xp.sqrt(var + x.dtype.type(self.eps))
            xhat = xc * inv_std.reshape(bshape)
            self._update_running(mean, var, m)
            self._cache = (xhat, inv_std, axes, bshape, m)
            return xhat * gamma + beta
        self._cache = None
        inv_std = 1.0 / xp.sqrt(self.buffers["running_var"] + x.dtype.type(self.eps))
        scale = (self.params["gamma"] * inv_std).reshape(bshape)
        shift = beta - self.buffers["running_mean"].reshape(bshape) * scale
        return x * scale + shift

    def _update_running(self, mean, var, m):
        """running = momentum * running + (1 - momentum) * batch statistic (unbiased variance)."""
        mom = self.momentum
        unbiased = var * (m / (m - 1)) if m > 1 else var
        self.buffers["running_mean"] *= mom
        self.buffers["running_mean"] += (1 - mom) * mean
        self.buffers["running_var"] *= mom
        self.buffers["running_var"] += (1 - mom) * unbiased

    def backward(self, dy):
        xhat, inv_std, axes, bshape, m = self._require_cache()
        dbeta = dy.sum(axis=axes)  # dL/dbeta
        dgamma = (dy * xhat).sum(axis=axes)  # dL/dgamma
        self.grads["beta"][...] = dbeta
        self.grads["gamma"][...] = dgamma
        # dx = gamma / (m sigma) * (m dy - sum(dy) - xhat * sum(dy xhat))
        k = (self.params["gamma"] * inv_std / m).reshape(bshape)
        return k * (m * dy - dbeta.reshape(bshape) - xhat * dgamma.reshape(bshape))

    def get_config(self):
        return {"momentum": self.momentum, "eps": self.eps, **super().get_config()}


class BatchNorm2D(BatchNorm):
    """``BatchNorm`` for images ``(N, C, H, W)``: one mean/variance, gamma and beta per channel."""

    required_ndim = 4


class Standardize(Layer):
    """Fixed preprocessing: ``(x - mean) / std`` with statistics of the training set.

    Call ``adapt(X_train)`` once (per-feature statistics over the batch axis, as Keras'
    ``Normalization`` layer does); the statistics are buffers, saved with the model, so a
    loaded model applies the same preprocessing to raw inputs. No trainable parameters.

    Args:
        eps: added to the standard deviation (constant features stay finite).
        axis: ``None`` for one mean/std per input element, or ``"global"`` for one scalar pair.
    """

    def __init__(self, eps=1e-3, axis=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        if axis not in (None, "global"):
            raise InvalidArgumentError(f"Standardize: axis must be None or 'global', received {axis!r}")
        self.eps = float(eps)
        self.axis = axis

    def build(self, input_shape, dtype):
        shape = () if self.axis == "global" else tuple(input_shape)
        if not self.buffers:
            self.buffers = {"mean": np.zeros(shape, dtype=dtype), "std": np.ones(shape, dtype=dtype)}
        super().build(input_shape, dtype)

    def adapt(self, X, chunk=8192) -> "Standardize":
        """Compute the statistics from training data ``X`` (N, ...).

        Reads ``X`` in chunks of ``chunk`` rows with float64 accumulators, so a memory-mapped
        data set is never loaded (or converted) whole.
        """
        X = np.asanyarray(X)
        if not self.built:
            self.build(X.shape[1:], default_dtype())
        total = np.zeros(X.shape[1:], dtype=np.float64)
        total_sq = np.zeros(X.shape[1:], dtype=np.float64)
        for i in range(0, len(X), chunk):
            block = np.asarray(X[i:i + chunk], dtype=np.float64)
            total += block.sum(axis=0)
            total_sq += np.square(block).sum(axis=0)
        count = len(X)
        if self.axis == "global":
            total, total_sq, count = total.sum(), total_sq.sum(), count * max(total.size, 1)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
        self.buffers["mean"][...] = mean
        self.buffers["std"][...] = std + self.eps
        return self

    def forward(self, x, training=False):
        self.ensure_built(x)
        want = self.buffers["mean"].shape
        if want and tuple(x.shape[1:]) != want:
            raise InvalidArgumentError(f"{self.label} expected inputs of per-sample shape {want}, received {tuple(x.shape)}")
        self._cache = True if training else None
        return (x - self.buffers["mean"]) / self.buffers["std"]

    def backward(self, dy):
        self._require_cache()
        return dy / self.buffers["std"]

    def get_config(self):
        return {"eps": self.eps, "axis": self.axis, **super().get_config()}
