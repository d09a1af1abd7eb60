"""Learning-rate schedules: callables mapping the epoch number (0-based) to a learning rate.

Pass one as an optimizer's ``lr``; ``Sequential.fit`` evaluates it at the start of each epoch.

Example:
    >>> SGD(lr=StepDecay(0.1, drop=0.5, every=10))   # 0.1 for epochs 0-9, 0.05 for 10-19, ...
"""
from __future__ import annotations

import math
from .errors import InvalidArgumentError


class Schedule:
    """Base class: ``schedule(epoch) -> lr``."""

    def __init__(self, lr):
        self.lr = float(lr)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InvalidArgumentError(f"{type(self).__name__}: lr must be a positive number, received {lr!r}")

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def get_config(self):
        return dict(vars(self))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class Constant(Schedule):
    """The same learning rate every epoch."""

    def __call__(self, epoch):
        return self.lr


class StepDecay(Schedule):
    """``lr * drop ** floor(epoch / every)``: multiply by ``drop`` every ``every`` epochs."""

    def __init__(self, lr, drop=0.5, every=10):
        super().__init__(lr)
        self.drop, self.every = float(drop), int(every)
        if not 0 < self.drop <= 1 or self.every < 1:
            raise InvalidArgumentError(f"StepDecay: need 0 < drop <= 1 and every >= 1, received drop={drop!r}, every={every!r}")

    def __call__(self, epoch):
        return self.lr * self.drop ** (epoch // self.every)


class ExponentialDecay(Schedule):
    """``lr * rate ** epoch``."""

    def __init__(self, lr, rate=0.95):
        super().__init__(lr)
        self.rate = float(rate)
        if not 0 < self.rate <= 1:
            raise InvalidArgumentError(f"ExponentialDecay: rate must be in (0, 1], received {rate!r}")

    def __call__(self, epoch):
        return self.lr * self.rate ** epoch


class InverseTimeDecay(Schedule):
    """``lr / (1 + k * epoch)`` (the "1/t" decay)."""

    def __init__(self, lr, k=0.1):
        super().__init__(lr)
        self.k = float(k)
        if self.k < 0:
            raise InvalidArgumentError(f"InverseTimeDecay: k must be >= 0, received {k!r}")

    def __call__(self, epoch):
        return self.lr / (1.0 + self.k * epoch)


class CosineDecay(Schedule):
    """Cosine annealing from ``lr`` to ``min_lr`` over ``epochs`` epochs (then stays at ``min_lr``)."""

    def __init__(self, lr, epochs=10, min_lr=0.0):
        super().__init__(lr)
        self.epochs, self.min_lr = int(epochs), float(min_lr)
        if self.epochs < 1 or not 0 <= self.min_lr <= self.lr:
            raise InvalidArgumentError(f"CosineDecay: need epochs >= 1 and 0 <= min_lr <= lr, received "
                             f"epochs={epochs!r}, min_lr={min_lr!r}")

    def __call__(self, epoch):
        t = min(epoch, self.epochs) / self.epochs
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * t))


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": ExponentialDecay,
             "inverse_time": InverseTimeDecay, "cosine": CosineDecay}


def get(name, lr, **kwargs) -> Schedule:
    """Build a schedule by name (``constant``, ``step``, ``exponential``, ``inverse_time``, ``cosine``)."""
    try:
        cls = SCHEDULES[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown schedule {name!r}; valid names: {', '.join(SCHEDULES)}") from None
    return cls(lr, **kwargs)
