"""Data augmentation layers: random transformations in training, identity at inference."""
from __future__ import annotations

import numpy as np

from ..backend import global_rng
from .base import Layer, check_positive_int
from ..errors import InvalidArgumentError


def _check_images(layer, x):
    if x.ndim != 4:
        raise InvalidArgumentError(f"{layer.label} expects images (batch, channels, height, width), "
                                   f"received shape {tuple(x.shape)}")


class RandomShift(Layer):
    """Shift each training image by a random whole number of pixels, filling with zeros.

    Every sample gets its own vertical and horizontal shift, drawn uniformly from
    ``[-max_shift, max_shift]``. Identity when ``training=False``, so a trained model
    predicts on the images as they are. Like Keras' ``RandomTranslation``, it is
    augmentation written as a parameter-free layer: put it first in the network.

    Args:
        max_shift: largest shift in pixels along each axis.
        seed: seed of this layer's own generator (None: drawn from ``scratchnn.set_seed``'s).

    Shape:
        input and output ``(N, C, H, W)``.
    """

    def __init__(self, max_shift=2, seed=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.max_shift = check_positive_int("RandomShift", "max_shift", max_shift)
        self.seed = seed
        self.reseed(seed if seed is not None else int(global_rng().integers(2**63)))

    def reseed(self, seed) -> None:
        self.rng = np.random.default_rng(seed)

    def _shifted(self, x, starts):
        """``out[i] = xpad[i, :, a_i:a_i + H, b_i:b_i + W]`` for ``starts = (a, b)``, where ``xpad`` is ``x``
        zero-padded by ``max_shift`` on every side: each image's window of its padded copy."""
        k = self.max_shift
        n, c, h, w = x.shape
        padded = np.zeros((n, c, h + 2 * k, w + 2 * k), dtype=x.dtype)
        padded[:, :, k:k + h, k:k + w] = x
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2k+1, 2k+1, H, W)
        return windows[np.arange(n), :, starts[0], starts[1]]  # (N, C, H, W): one window per image

    def forward(self, x, training=False):
        if not training:
            self._cache = None
            return x
        _check_images(self, x)
        k = self.max_shift
        # window start a in [0, 2k] of the padded image: the image moves by k - a pixels
        starts = self.rng.integers(0, 2 * k + 1, size=(2, len(x)))
        self._cache = starts
        return self._shifted(x, starts)

    def backward(self, dy):
        starts = self._require_cache()
        # a shift moves each pixel to a distinct place (or out of the image), so the gradient is dy
        # shifted back the other way: the window starting at 2k - a of dy padded likewise
        return self._shifted(dy, 2 * self.max_shift - starts)

    def get_config(self):
        return {"max_shift": self.max_shift, "seed": self.seed, **super().get_config()}


class RandomFlip(Layer):
    """Mirror each training image left to right with probability ``p`` (identity at inference).

    For data whose classes keep their name in a mirror (clothes, shoes, bags: Fashion-MNIST), not for
    digits or letters. Put it first in the network, like ``RandomShift``.

    Args:
        p: probability of flipping a sample, in [0, 1].
        seed: seed of this layer's own generator (None: drawn from ``scratchnn.set_seed``'s).

    Shape:
        input and output ``(N, C, H, W)``.
    """

    def __init__(self, p=0.5, seed=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"RandomFlip: p must be in [0, 1], received {p!r}")
        self.p = p
        self.seed = seed
        self.reseed(seed if seed is not None else int(global_rng().integers(2**63)))

    def reseed(self, seed) -> None:
        self.rng = np.random.default_rng(seed)

    def forward(self, x, training=False):
        if not training:
            self._cache = None
            return x
        _check_images(self, x)
        flip = self.rng.random(len(x)) < self.p  # which samples are mirrored
        self._cache = flip
        y = x.copy()
        y[flip] = x[flip, :, :, ::-1]
        return y

    def backward(self, dy):
        flip = self._require_cache()
        dx = dy.copy()  # a mirror moves each pixel to one place: the gradient moves back the same way
        dx[flip] = dy[flip, :, :, ::-1]
        return dx

    def get_config(self):
        return {"p": self.p, "seed": self.seed, **super().get_config()}
