"""Search spaces: the distributions a configuration's values are drawn from, and the draw itself."""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import InvalidArgumentError


def _number(cls, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise InvalidArgumentError(f"{cls}: {name} must be a finite number, received {value!r}")
    return value


class LogUniform:
    """Values whose logarithm is uniform in ``[log(low), log(high)]``: for learning rates and penalties.

    Each decade gets the same share of the samples, so ``LogUniform(1e-5, 1e-1)`` tries 1e-5..1e-4
    as often as 1e-2..1e-1.

    Args:
        low, high: bounds, ``0 < low < high``.
    """

    def __init__(self, low, high):
        self.low, self.high = float(_number("LogUniform", "low", low)), float(_number("LogUniform", "high", high))
        if not 0 < self.low < self.high:
            raise InvalidArgumentError(f"LogUniform needs 0 < low < high, received low={low!r}, high={high!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def to_dict(self):
        return {"dist": "loguniform", "low": self.low, "high": self.high}

    def __repr__(self):
        return f"LogUniform({self.low!r}, {self.high!r})"


class Uniform:
    """Floats uniform in ``[low, high)``: for dropout rates, momentum and the like.

    Args:
        low, high: bounds, ``low < high``.
    """

    def __init__(self, low, high):
        self.low, self.high = float(_number("Uniform", "low", low)), float(_number("Uniform", "high", high))
        if not self.low < self.high:
            raise InvalidArgumentError(f"Uniform needs low < high, received low={low!r}, high={high!r}")

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def to_dict(self):
        return {"dist": "uniform", "low": self.low, "high": self.high}

    def __repr__(self):
        return f"Uniform({self.low!r}, {self.high!r})"


class IntUniform:
    """Integers uniform in ``[low, high]``, both ends included: for layer widths, epochs.

    Args:
        low, high: integer bounds, ``low <= high``.
    """

    def __init__(self, low, high):
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidArgumentError(f"IntUniform: {name} must be an integer, received {v!r}")
        self.low, self.high = int(low), int(high)
        if self.low > self.high:
            raise InvalidArgumentError(f"IntUniform needs low <= high, received low={low!r}, high={high!r}")

    def sample(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def to_dict(self):
        return {"dist": "int", "low": self.low, "high": self.high}

    def __repr__(self):
        return f"IntUniform({self.low!r}, {self.high!r})"


class Choice:
    """One of ``values``, each equally likely: for batch sizes, optimizer names.

    Args:
        values: non-empty list of JSON-friendly values (numbers, strings, booleans, None).
    """

    def __init__(self, values):
        if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__") or len(values) == 0:
            raise InvalidArgumentError(f"Choice needs a non-empty list of values, received {values!r}")
        self.values = [v.item() if isinstance(v, np.generic) else v for v in values]

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def to_dict(self):
        return {"dist": "choice", "values": list(self.values)}

    def __repr__(self):
        return f"Choice({self.values!r})"


_DISTS = {"loguniform": LogUniform, "log_uniform": LogUniform, "uniform": Uniform, "int": IntUniform,
          "intuniform": IntUniform, "int_uniform": IntUniform, "randint": IntUniform, "choice": Choice}
_DIST_TYPES = (LogUniform, Uniform, IntUniform, Choice)


def distribution(spec, name="?"):
    """A distribution from a config-file entry such as ``{dist = "loguniform", low = 1e-4, high = 0.1}``.

    ``{dist = "choice", values = [32, 64]}``; ``"int"`` (alias ``"randint"``) and ``"uniform"`` take
    ``low``/``high``. Distribution objects pass through; any other value is a constant.

    Args:
        spec: a dict with a ``dist`` key, a distribution object, or a constant.
        name: the hyperparameter's name, for error messages.
    """
    if isinstance(spec, _DIST_TYPES):
        return spec
    if not isinstance(spec, Mapping):
        return spec  # a constant
    kind = str(spec.get("dist", "")).lower()
    cls = _DISTS.get(kind)
    if cls is None:
        raise InvalidArgumentError(f"space entry {name!r}: unknown dist {spec.get('dist')!r}; "
                         "valid: loguniform, uniform, int, choice")
    args = {k: v for k, v in spec.items() if k != "dist"}
    want = ("values",) if cls is Choice else ("low", "high")
    if set(args) != set(want):
        raise InvalidArgumentError(f"space entry {name!r}: dist {kind!r} takes {' and '.join(want)}, received "
                         f"{sorted(args)}")
    try:
        return cls(*(args[k] for k in want))
    except ValueError as e:
        raise InvalidArgumentError(f"space entry {name!r}: {e}") from None


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def sample_configs(space: Mapping, n_trials: int, seed=0) -> list:
    """Draw ``n_trials`` configurations from ``space``.

    Trial ``i`` draws from its own generator, ``SeedSequence(seed, spawn_key=(i,))``, so its
    configuration depends only on ``seed`` and ``i``: the same seed gives the same configs, and
    asking for more trials later keeps the first ones.

    Args:
        space: dict ``name -> distribution`` (``LogUniform``, ``Uniform``, ``IntUniform``, ``Choice``,
            a config-file dict, or a constant).
        n_trials: number of configurations.
        seed: integer seed.

    Returns:
        A list of ``n_trials`` dicts of plain Python values.
    """
    if not isinstance(space, Mapping) or not space:
        raise InvalidArgumentError(f"space must be a non-empty dict of name -> distribution, received {space!r}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise InvalidArgumentError(f"n_trials must be a positive integer, received {n_trials!r}")
    dists = {str(k): distribution(v, k) for k, v in space.items()}
    configs = []
    for i in range(int(n_trials)):
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(i,)))
        configs.append({k: _plain(d.sample(rng)) if isinstance(d, _DIST_TYPES) else d for k, d in dists.items()})
    return configs
