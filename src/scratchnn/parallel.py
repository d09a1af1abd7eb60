"""How many threads scratchnn may use: ``set_num_threads`` / ``get_num_threads``.

The machinery that splits a mini-batch across threads lives in ``scratchnn.engine.threads``.
"""
from __future__ import annotations

import os

from .errors import InvalidArgumentError

_num_threads: int | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Threads scratchnn splits a mini-batch across (``None``: all cores available).

    Example:
        >>> scratchnn.set_num_threads(1)   # one core, e.g. beside other jobs
    """
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidArgumentError(f"set_num_threads: expected a positive int or None, received {n!r}")
    _num_threads = n


def get_num_threads() -> int:
    return _num_threads or available_cores()
