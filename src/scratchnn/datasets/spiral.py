"""Small built-in data sets: the CS231n 2-D spiral, and scikit-learn's 8x8 digits."""
from __future__ import annotations

import numpy as np

from .preprocessing import train_val_split
from ..errors import InvalidArgumentError, MissingDependencyError

__all__ = ["load_spiral", "make_spiral", "load_digits"]


def load_spiral(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """The classic CS231n spiral: ``n_classes`` interleaved arms, not linearly separable.

    Arm ``k`` has radii evenly spaced in [0, 1] and angles evenly spaced in
    ``[4k, 4(k+1)]`` radians plus Gaussian noise of standard deviation ``noise``.

    Args:
        n_per_class: points per arm.
        n_classes: number of arms (classes).
        noise: standard deviation of the angle noise, in radians.
        seed: seed for the noise; the same seed always gives the same points.

    Returns:
        ``(X, y)``: X float32 of shape ``(n_per_class * n_classes, 2)``, y int64 in
        ``[0, n_classes)``, ordered by class.
    """
    for name, value in (("n_per_class", n_per_class), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(f"load_spiral expected a positive integer {name}, received {value!r}")
    if not noise >= 0:
        raise InvalidArgumentError(f"load_spiral expected noise >= 0, received {noise!r}")
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(n_classes), n_per_class)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    t = np.concatenate([np.linspace(4 * j, 4 * (j + 1), n_per_class) for j in range(n_classes)])
    t = t + rng.standard_normal(t.shape) * noise
    X = np.stack([r * np.sin(t), r * np.cos(t)], axis=1).astype(np.float32)
    return X, k.astype(np.int64)


make_spiral = load_spiral


def load_digits(test_size=0.2, seed=0):
    """scikit-learn's 1,797 8x8 handwritten digits, split into train and test.

    Needs scikit-learn (imported here, not at package import). Pixel values 0-16 are
    rescaled to 0-255 uint8 so the images look like MNIST to ``preprocessing.scale``.

    Args:
        test_size: fraction (or count) of images held out, stratified by class.
        seed: seed for the split.

    Returns:
        ``(X_train, y_train), (X_test, y_test)``: images uint8 of shape ``(N, 8, 8)``,
        labels int64 in 0-9.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits  # noqa: PLC0415
    except ImportError as e:
        raise MissingDependencyError(
            "load_digits needs scikit-learn, which bundles the 8x8 digits: "
            "pip install scikit-learn  (or pip install scratchnn[digits])"
        ) from e
    bunch = sk_load_digits()
    X = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    y = bunch.target.astype(np.int64)
    return train_val_split(X, y, val_size=test_size, seed=seed, stratify=True)
