"""Dropout (Srivastava et al. 2014), inverted: scaling happens in training, not at inference."""
from __future__ import annotations

import numpy as np

from ..backend import global_rng
from .base import Layer
from ..errors import InvalidArgumentError


class Dropout(Layer):
    """Zero each input with probability ``rate`` in training and scale the rest by ``1/(1-rate)``.

    Identity when ``training=False``. Works on inputs of any shape (dense or NCHW).

    Args:
        rate: probability of dropping a unit, in ``[0, 1)`` (PyTorch's ``p``, Keras' ``rate``).
        seed: seed of this layer's own generator; None draws one from ``scratchnn.set_seed``'s
            global generator, so a seeded run is reproducible.
    """

    def __init__(self, rate=0.5, seed=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise InvalidArgumentError(f"Dropout: rate must be in [0, 1), received {rate!r}")
        self.rate = rate
        self.seed = seed
        self.reseed(seed if seed is not None else int(global_rng().integers(2**63)))

    def reseed(self, seed) -> None:
        """Restart the mask generator from ``seed`` (gradient checks fix the mask this way)."""
        self.rng = np.random.default_rng(seed)

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._cache = None if not training else 1
            return x
        keep = 1.0 - self.rate
        mask = self.rng.random(x.shape, dtype=np.float32) < keep
        mask = mask.astype(x.dtype) * x.dtype.type(1.0 / keep)
        self._cache = mask
        return x * mask

    def backward(self, dy):
        mask = self._require_cache()
        return dy * mask if self.rate else dy.copy()  # a new array, as the layer contract asks

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed, **super().get_config()}
