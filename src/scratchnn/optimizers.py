"""Optimizers. They only step: ``optimizer.step(params, grads)`` updates every array of the
``params`` dict in place from the ``grads`` dict with the same keys.

Per-parameter state (velocities, moment estimates) is created lazily with the
parameter's shape and dtype and keyed by the parameter's name, so it can be saved
in a checkpoint (``state_dict``) and restored (``load_state_dict``).

The gradient arrays are the optimizer's scratch space: once a gradient has been used,
``step`` overwrites it with intermediate values, so an update touches only the
parameter, its gradient and its state, allocates nothing, and streams the least memory
(the next ``backward`` refills the gradients). Copy ``layer.grads`` before ``step`` if
you want to keep them.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import get_array_module
from .schedules import Schedule
from .errors import InvalidArgumentError, InvalidTypeError


def _check(cls, name, value, lo=0.0, hi=None, lo_open=False, hi_open=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"{cls}: {name} must be a number, received {value!r}") from None
    bad = not math.isfinite(v) or v < lo or (lo_open and v == lo)
    if hi is not None:
        bad = bad or v > hi or (hi_open and v == hi)
    if bad:
        lo_b = "(" if lo_open else "["
        hi_b = ")" if hi_open else "]"
        rng = f"{lo_b}{lo}, {hi}{hi_b}" if hi is not None else f"{lo_b}{lo}, inf)"
        raise InvalidArgumentError(f"{cls}: {name} must be in {rng}, received {value!r}")
    return v


class Optimizer:
    """Base class.

    Args:
        lr: learning rate, a positive float or a ``Schedule`` (evaluated per epoch).
    """

    def __init__(self, lr):
        if isinstance(lr, Schedule):
            self.schedule = lr
            lr = lr(0)
        else:
            self.schedule = None
        self.lr = _check(type(self).__name__, "lr", lr, lo_open=True)
        self.iterations = 0
        self.state: dict[str, dict] = {}

    def set_epoch(self, epoch: int) -> None:
        """Update ``lr`` from the schedule, if any (``Sequential.fit`` calls this each epoch)."""
        if self.schedule is not None:
            self.lr = float(self.schedule(epoch))

    def step(self, params: dict, grads: dict) -> None:
        """Update each ``params[k]`` in place using ``grads[k]``."""
        self.begin_step()
        for key, p in params.items():
            self.update(key, p, grads[key])

    def begin_step(self) -> None:
        """Start a step: ``update`` follows once per parameter. (``step`` calls both; the engine may
        call ``update`` from several threads when it splits batches, each parameter on one thread,
        for optimizers that keep the base ``step``.)"""
        self.iterations += 1

    def update(self, key, p, g) -> None:
        raise NotImplementedError

    def _slot(self, key, name, like):
        st = self.state.setdefault(key, {})
        if name not in st:
            st[name] = get_array_module(like).zeros_like(like)
        return st[name]

    # checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Flat ``{name: array}`` of the optimizer's state (for a checkpoint .npz)."""
        out = {"iterations": np.array(self.iterations), "lr": np.array(self.lr)}
        for key, st in self.state.items():
            for name, arr in st.items():
                out[f"{key}/{name}"] = arr
        return out

    def load_state_dict(self, d: dict) -> None:
        self.iterations = int(d["iterations"])
        self.lr = float(d["lr"])
        self.state = {}
        for flat, arr in d.items():
            if "/" in flat:
                key, name = flat.rsplit("/", 1)
                self.state.setdefault(key, {})[name] = np.array(arr)

    def get_config(self) -> dict:
        cfg = {k: v for k, v in vars(self).items()
               if k not in ("state", "iterations", "schedule") and not k.startswith("_")}
        return cfg

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as PyTorch defines it.

    ``v = momentum * v + g``; ``p -= lr * v`` (classical) or ``p -= lr * (g + momentum * v)`` (Nesterov).
    With ``momentum=0`` this is plain ``p -= lr * g``.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = _check("SGD", "momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise InvalidArgumentError("SGD: nesterov=True needs momentum > 0")

    def update(self, key, p, g):
        if self.momentum == 0:
            g *= -self.lr  # the gradient becomes the step: no temporary (in place, so g keeps its dtype)
            p += g
            return
        t = p.dtype.type
        mu = t(self.momentum)
        v = self._slot(key, "velocity", p)
        v *= mu
        v += g
        if self.nesterov:  # p -= lr * (g + mu v), as lr mu (g / mu + v) without a temporary
            g *= t(1 / self.momentum)
            g += v
            g *= t(-self.lr * self.momentum)
        else:  # p -= lr v
            np.multiply(v, t(-self.lr), out=g)
        p += g


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): ``G += g**2``; ``p -= lr * g / (sqrt(G) + eps)``."""

    def __init__(self, lr=0.01, eps=1e-8):
        super().__init__(lr)
        self.eps = _check("AdaGrad", "eps", eps, lo_open=True)

    def update(self, key, p, g):
        t = p.dtype.type
        G = self._slot(key, "sum_sq", p)
        G += g * g
        np.divide(g, np.sqrt(G) + t(self.eps), out=g)
        g *= t(-self.lr)
        p += g


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012): ``E = rho E + (1 - rho) g**2``; ``p -= lr g / (sqrt(E) + eps)``."""

    def __init__(self, lr=0.001, rho=0.9, eps=1e-8):
        super().__init__(lr)
        self.rho = _check("RMSprop", "rho", rho, 0.0, 1.0)
        self.eps = _check("RMSprop", "eps", eps, lo_open=True)

    def update(self, key, p, g):
        t = p.dtype.type
        E = self._slot(key, "mean_sq", p)
        E *= t(self.rho)
        E += t(1 - self.rho) * (g * g)
        np.divide(g, np.sqrt(E) + t(self.eps), out=g)
        g *= t(-self.lr)
        p += g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g**2``;
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**t)``,
    ``v_hat = v / (1 - b2**t)``. The corrections are folded into one step size and
    one epsilon per step (as PyTorch does), so no bias-corrected copies are allocated.
    """

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1 = _check(type(self).__name__, "beta1", beta1, 0.0, 1.0)
        self.beta2 = _check(type(self).__name__, "beta2", beta2, 0.0, 1.0)
        self.eps = _check(type(self).__name__, "eps", eps, lo_open=True)

    def begin_step(self):
        super().begin_step()
        t = self.iterations
        bc1 = 1 - self.beta1 ** t
        bc2 = 1 - self.beta2 ** t
        # lr * (m/bc1) / (sqrt(v/bc2) + eps) == (lr sqrt(bc2)/bc1) * m / (sqrt(v) + eps sqrt(bc2))
        self._step_size = self.lr * math.sqrt(bc2) / bc1
        self._eps_t = self.eps * math.sqrt(bc2)

    def update(self, key, p, g):
        t = p.dtype.type
        m = self._slot(key, "m", p)
        v = self._slot(key, "v", p)
        # b m + (1 - b) g == g + b (m - g): the moving averages need no temporary
        m -= g
        m *= t(self.beta1)
        m += g
        g *= g
        v -= g
        v *= t(self.beta2)
        v += g
        self._decay(p)
        np.sqrt(v, out=g)  # g is free now: it holds the denominator, then the step
        g += t(self._eps_t)
        np.divide(m, g, out=g)
        g *= t(-self._step_size)
        p += g

    def _decay(self, p):
        pass


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): ``p -= lr * wd * p`` each step."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = _check("AdamW", "weight_decay", weight_decay)

    def _decay(self, p):
        if self.weight_decay:
            p *= p.dtype.type(1 - self.lr * self.weight_decay)


OPTIMIZERS = {"sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
              "momentum": lambda lr=0.01, **kw: SGD(lr, momentum=kw.pop("momentum", 0.9), **kw),
              "nesterov": lambda lr=0.01, **kw: SGD(lr, momentum=kw.pop("momentum", 0.9), nesterov=True, **kw)}


def get(opt, **kwargs) -> Optimizer:
    """Return an optimizer from an instance or a name (``"adam"``, ``"sgd"``, ``"momentum"``, ...)."""
    if isinstance(opt, Optimizer):
        return opt
    if isinstance(opt, str) and opt.lower() in OPTIMIZERS:
        return OPTIMIZERS[opt.lower()](**kwargs)
    raise InvalidArgumentError(f"unknown optimizer {opt!r}; valid names: {', '.join(sorted(OPTIMIZERS))}")
