"""Turning raw data-set arrays into training inputs: scaling, standardizing, one-hot, splits."""
from __future__ import annotations

import numbers

import numpy as np

from ..backend import default_dtype
from ..errors import InvalidArgumentError, StateError

__all__ = ["scale", "standardize", "Standardizer", "one_hot", "train_val_split", "pad_images"]


def scale(X, dtype=None, max_value=255.0):
    """Map pixel values from ``[0, max_value]`` to floats in ``[0, 1]``.

    Args:
        X: array of pixel values, typically uint8 images (a memmap is fine; it is read once).
        dtype: output float dtype; the library default (float32) when None.
        max_value: the value mapped to 1.0.

    Returns:
        A new array ``X / max_value`` of ``dtype``; ``X`` is never modified.
    """
    dtype = np.dtype(default_dtype() if dtype is None else dtype)
    if dtype.kind != "f":
        raise InvalidArgumentError(f"scale expected a float dtype, received {dtype}")
    if not max_value > 0:
        raise InvalidArgumentError(f"scale expected max_value > 0, received {max_value!r}")
    out = np.array(X, dtype=dtype, copy=True)
    out *= dtype.type(1.0 / max_value)
    return out


class Standardizer:
    """Zero mean, unit variance using statistics of the training set only.

    Args:
        per_feature: one mean/std per feature (per pixel for images, axis 0 reduced);
            False uses a single scalar mean/std over all values.
        eps: features whose training std is below ``eps`` are only centered, not divided,
            so constant pixels (MNIST's border) stay finite on new data.

    Example:
        >>> s = Standardizer().fit(X_train)
        >>> X_train, X_test = s.transform(X_train), s.transform(X_test)
    """

    def __init__(self, per_feature=True, eps=1e-8):
        self.per_feature = bool(per_feature)
        self.eps = float(eps)
        self.mean = self.std = None

    def fit(self, X):
        """Compute mean and std of ``X`` in float64, a chunk of rows at a time; returns ``self``."""
        if not hasattr(X, "shape"):
            X = np.asarray(X)
        if X.ndim == 0 or len(X) == 0:
            raise InvalidArgumentError(f"Standardizer.fit expected a non-empty array, received shape {X.shape}")
        axis = 0 if self.per_feature else None
        count = len(X) if self.per_feature else X.size
        step = max(1, (1 << 22) // max(1, X[0].size))  # ~4M values per chunk: bounded memory on memmaps
        chunks = [X[i:i + step] for i in range(0, len(X), step)]
        mean = sum(c.sum(axis=axis, dtype=np.float64) for c in chunks) / count
        var = sum(np.square(c - mean).sum(axis=axis) for c in chunks) / count  # two-pass: no cancellation
        std = np.sqrt(var)
        self.mean, self.std = mean, np.where(std < self.eps, 1.0, std)
        return self

    def transform(self, X):
        """Return ``(X - mean) / std`` as float (X's float dtype, else the library default)."""
        if self.mean is None:
            raise StateError("Standardizer.transform called before fit")
        X = np.asarray(X)
        if self.per_feature and X.shape[1:] != np.shape(self.mean):
            raise InvalidArgumentError(f"Standardizer was fit on per-sample shape {np.shape(self.mean)}, "
                             f"received shape {X.shape}")
        dtype = X.dtype if X.dtype.kind == "f" else default_dtype()
        out = X.astype(dtype, copy=True)
        out -= self.mean.astype(dtype)
        out /= self.std.astype(dtype)
        return out

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """Undo ``transform``."""
        Z = np.asarray(Z)
        return (Z * self.std + self.mean).astype(Z.dtype)


def standardize(X_train, *others, per_feature=True, eps=1e-8):
    """Standardize ``X_train`` and any other arrays with the training set's mean and std.

    Args:
        X_train: array whose statistics are used.
        *others: more arrays (validation, test) transformed with the same statistics.
        per_feature, eps: see ``Standardizer``.

    Returns:
        ``(X_train_std, *others_std, standardizer)``; ``standardizer.mean`` and
        ``standardizer.std`` hold the statistics, ``standardizer.transform`` applies them again.
    """
    s = Standardizer(per_feature=per_feature, eps=eps).fit(X_train)
    return (s.transform(X_train), *(s.transform(X) for X in others), s)


def one_hot(y, n_classes=None, dtype=np.float32):
    """One-hot encode integer labels.

    Args:
        y: labels of any shape; integers, or floats holding whole numbers.
        n_classes: number of classes; ``max(y) + 1`` when None.
        dtype: output dtype.

    Returns:
        Array of shape ``y.shape + (n_classes,)``.

    Raises:
        ValueError: naming the first label that is not an integer in ``[0, n_classes)``.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f":
            raise InvalidArgumentError(f"one_hot expected integer labels, received dtype {y.dtype}")
        bad = np.flatnonzero(y.ravel() != np.round(y.ravel()))
        if bad.size:
            i = np.unravel_index(bad[0], y.shape)
            raise InvalidArgumentError(f"one_hot expected integer labels, found label {y[i].item()!r} at index {tuple(map(int, i))}")
    y = y.astype(np.int64)
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.size else 0
    elif isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
        raise InvalidArgumentError(f"one_hot expected a positive integer n_classes, received {n_classes!r}")
    bad = np.flatnonzero((y.ravel() < 0) | (y.ravel() >= n_classes))
    if bad.size:
        i = np.unravel_index(bad[0], y.shape)
        raise InvalidArgumentError(f"one_hot found label {int(y[i])} at index {tuple(map(int, i))}, "
                         f"outside [0, {n_classes})")
    out = np.zeros((y.size, n_classes), dtype=dtype)
    out[np.arange(y.size), y.ravel()] = 1
    return out.reshape(*y.shape, n_classes)


def _stratified_val_indices(y, n_val, rng):
    """Pick ``n_val`` indices with class proportions as close as possible to ``y``'s."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts * n_val / len(y)
    take = np.floor(quota).astype(np.int64)
    short = n_val - take.sum()  # largest remainders get one more
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    picks = [rng.permutation(np.flatnonzero(inverse == c))[:k] for c, k in enumerate(take)]
    return np.concatenate(picks)


def train_val_split(X, y, val_size=0.1, seed=0, stratify=False):
    """Split a data set into shuffled training and validation parts.

    Args:
        X: samples, first axis indexes them.
        y: labels of the same length.
        val_size: fraction in (0, 1) or an absolute count of validation samples.
        seed: seed for the shuffle; the same seed gives the same split.
        stratify: keep class proportions of ``y`` in both parts.

    Returns:
        ``(X_train, y_train), (X_val, y_val)``.
    """
    X = X if hasattr(X, "shape") else np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise InvalidArgumentError(f"train_val_split expected X and y of the same length, received {n} and {len(y)}")
    if isinstance(val_size, numbers.Integral) and not isinstance(val_size, bool):
        n_val = int(val_size)
    elif isinstance(val_size, numbers.Real) and 0 < val_size < 1:
        n_val = int(round(val_size * n))
    else:
        raise InvalidArgumentError(f"train_val_split expected val_size as a fraction in (0, 1) or a count, "
                         f"received {val_size!r}")
    if not 0 < n_val < n:
        raise InvalidArgumentError(f"train_val_split: val_size={val_size!r} gives {n_val} validation samples out of {n}; "
                         f"both parts must be non-empty")
    rng = np.random.default_rng(seed)
    if stratify:
        val = rng.permutation(_stratified_val_indices(y, n_val, rng))
        mask = np.ones(n, dtype=bool)
        mask[val] = False
        train = rng.permutation(np.flatnonzero(mask))
    else:
        perm = rng.permutation(n)
        val, train = perm[:n_val], perm[n_val:]
    return (X[train], y[train]), (X[val], y[val])


def pad_images(X, size, rng=None):
    """Put each ``(C, h, w)`` image of ``X`` into a zero ``(C, size, size)`` canvas.

    Args:
        X: images, shape ``(N, C, h, w)``.
        size: side of the square canvas, at least ``max(h, w)``.
        rng: ``None`` centers every image; a ``numpy.random.Generator`` puts each at a random place.

    Returns:
        an array of shape ``(N, C, size, size)`` and ``X``'s dtype.

    Example:
        >>> import numpy as np
        >>> pad_images(np.ones((2, 1, 28, 28), np.float32), 36).shape
        (2, 1, 36, 36)
    """
    n, c, h, w = X.shape
    if size < max(h, w):
        raise InvalidArgumentError(f"pad_images: size {size} is smaller than the images ({h}x{w})")
    out = np.zeros((n, c, size, size), dtype=X.dtype)
    if rng is None:
        top, left = np.full(n, (size - h) // 2), np.full(n, (size - w) // 2)
    else:
        top, left = rng.integers(0, size - h + 1, n), rng.integers(0, size - w + 1, n)
    for i in range(n):
        out[i, :, top[i]:top[i] + h, left[i]:left[i] + w] = X[i]
    return out
