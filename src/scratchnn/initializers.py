"""Named weight initializers.

Each takes ``(shape, fan_in, fan_out, rng, dtype)`` and returns a new array.
``fan_in`` is the number of inputs feeding one output unit (for a Dense layer
``in_features``; for a convolution ``in_channels * kh * kw``).

=================  ============================================================
name               distribution
=================  ============================================================
``zeros``          all zeros; kept for teaching: every unit stays identical
``small_normal``   N(0, 0.01^2)
``xavier_normal``  N(0, 2 / (fan_in + fan_out))            (Glorot & Bengio 2010)
``xavier_uniform`` U(-a, a), a = sqrt(6 / (fan_in + fan_out))
``he_normal``      N(0, 2 / fan_in)                         (He et al. 2015)
``he_uniform``     U(-a, a), a = sqrt(6 / fan_in)
``lecun_normal``   N(0, 1 / fan_in)                         (LeCun 1998)
=================  ============================================================
"""
from __future__ import annotations

import numpy as np
from .errors import InvalidArgumentError


def zeros(shape, fan_in, fan_out, rng, dtype):
    return np.zeros(shape, dtype=dtype)


def small_normal(shape, fan_in, fan_out, rng, dtype):
    return (0.01 * rng.standard_normal(shape)).astype(dtype)


def xavier_normal(shape, fan_in, fan_out, rng, dtype):
    return (np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal(shape)).astype(dtype)


def xavier_uniform(shape, fan_in, fan_out, rng, dtype):
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape).astype(dtype)


def he_normal(shape, fan_in, fan_out, rng, dtype):
    return (np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)).astype(dtype)


def he_uniform(shape, fan_in, fan_out, rng, dtype):
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, shape).astype(dtype)


def lecun_normal(shape, fan_in, fan_out, rng, dtype):
    return (np.sqrt(1.0 / fan_in) * rng.standard_normal(shape)).astype(dtype)


INITIALIZERS = {
    "zeros": zeros,
    "small_normal": small_normal,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun": lecun_normal,
}


def get(name):
    """Return the initializer called ``name`` (a callable is returned unchanged)."""
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise InvalidArgumentError(
            f"unknown initializer {name!r}; valid names: {', '.join(sorted(INITIALIZERS))}"
        ) from None
