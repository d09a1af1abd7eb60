"""Data sets and preprocessing.

Every image loader returns ``(X_train, y_train), (X_test, y_test)`` with uint8 images of
shape ``(N, H, W)`` and int64 labels; ``load_spiral`` returns a single ``(X, y)``.

Example:
    >>> from scratchnn.datasets import load_mnist, scale, one_hot
    >>> (X_train, y_train), (X_test, y_test) = load_mnist(data_dir="data")
    >>> X_train = scale(X_train).reshape(len(X_train), -1)
"""
from __future__ import annotations

from .idx import IDXFormatError, read_idx, write_idx
from .mnist import DatasetNotFoundError, cache_dir, load_fashion_mnist, load_mnist
from .preprocessing import Standardizer, one_hot, pad_images, scale, standardize, train_val_split
from .spiral import load_digits, load_spiral, make_spiral
from ..errors import InvalidArgumentError

__all__ = [
    "load_dataset", "DATASETS", "load_mnist", "load_fashion_mnist", "load_spiral", "make_spiral",
    "load_digits", "read_idx", "write_idx", "IDXFormatError", "DatasetNotFoundError", "cache_dir",
    "scale", "standardize", "Standardizer", "one_hot", "train_val_split", "pad_images",
]

DATASETS = ("mnist", "fashion-mnist", "spiral", "digits")


def load_dataset(name, data_dir=None, **kwargs):
    """Load a data set by name, always as ``(X_train, y_train), (X_test, y_test)``.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` (or ``"fashion_mnist"``), ``"spiral"`` or
            ``"digits"``; case-insensitive.
        data_dir: folder with the files (MNIST and Fashion-MNIST only; ignored otherwise).
        **kwargs: passed to the loader. For ``"spiral"``, ``test_size`` (default 0.2) sets
            the stratified held-out part and the rest go to ``load_spiral``.

    Returns:
        ``(X_train, y_train), (X_test, y_test)``.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key in ("mnist",):
        return load_mnist(data_dir, **kwargs)
    if key in ("fashion-mnist", "fashionmnist", "fashion"):
        return load_fashion_mnist(data_dir, **kwargs)
    if key == "spiral":
        test_size = kwargs.pop("test_size", 0.2)
        seed = kwargs.get("seed", 0)
        X, y = load_spiral(**kwargs)
        return train_val_split(X, y, val_size=test_size, seed=seed, stratify=True)
    if key == "digits":
        return load_digits(**kwargs)
    raise InvalidArgumentError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
