"""The one place that knows which array module is in use.

Everything else asks ``xp = get_array_module(x)`` and writes ``xp.zeros_like``,
``xp.matmul`` and so on, so a CuPy backend can be added here later without
touching the layers. Only this module may import CuPy.
"""
from __future__ import annotations

import numpy as np
from .errors import InvalidArgumentError

_default_dtype = np.dtype(np.float32)


def get_array_module(*arrays):
    """Return the array module (``numpy`` or ``cupy``) that owns ``arrays``."""
    for a in arrays:
        if type(a) is not np.ndarray and type(a).__module__.startswith("cupy"):
            import cupy  # noqa: PLC0415 - optional GPU backend, imported only when used

            return cupy
    return np


def as_numpy(x):
    """Return ``x`` as a NumPy array (copies from the GPU when needed)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def default_dtype() -> np.dtype:
    """The float dtype new parameters and training data use (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the default float dtype: ``"float32"`` (default) or ``"float64"``."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise InvalidArgumentError(f"default dtype must be float32 or float64, received {dt}")
    _default_dtype = dt


def float_dtype(x) -> np.dtype:
    """The float dtype computation on ``x`` should use: its own if floating, else the default."""
    dt = np.dtype(getattr(x, "dtype", _default_dtype))
    if dt in (np.float32, np.float64):
        return dt
    return _default_dtype


_rng = np.random.default_rng()


def set_seed(seed: int | None) -> None:
    """Seed scratchnn's global generator (weight initialization, dropout masks, shuffling)."""
    global _rng
    _rng = np.random.default_rng(seed)


def global_rng() -> np.random.Generator:
    """The generator layers draw initial weights from when no explicit one is given."""
    return _rng
