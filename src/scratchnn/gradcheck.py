"""Numerical gradient checking: compare analytic gradients with central differences.

Every check runs in float64, perturbs each input and parameter element by
``+-eps`` and compares the two gradients with the relative error
``||analytic - numeric|| / max(||analytic|| + ||numeric||, floor)`` per array. The
floor (default ``1e-2``) makes the test absolute for gradients that are exactly zero
analytically (a bias followed by batch norm), where the numeric estimate is pure
rounding noise of order 1e-10.

Example:
    >>> from scratchnn.layers import Dense
    >>> result = check_layer(Dense(3), np.random.randn(4, 5))
    >>> result.passed, result.max_rel_error < 1e-6
    (True, True)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from .errors import InvalidArgumentError

__all__ = ["GradCheckResult", "numerical_gradient", "check_layer", "check_loss", "check_model"]


@dataclass
class GradCheckResult:
    """Verdict of a gradient check.

    Attributes:
        passed: True when every array's relative error is below ``rtol``.
        max_rel_error: the largest relative error over all checked arrays.
        errors: relative error per array name (``"x"`` is the input, others are parameters).
    """

    passed: bool
    max_rel_error: float
    errors: dict = field(default_factory=dict)
    rtol: float = 1e-6

    @property
    def report(self) -> str:
        lines = [f"gradient check {'passed' if self.passed else 'FAILED'} "
                 f"(max relative error {self.max_rel_error:.3e}, tolerance {self.rtol:.0e})"]
        for name, err in self.errors.items():
            mark = "ok " if err < self.rtol else "BAD"
            lines.append(f"  {mark} {name:<24s} {err:.3e}")
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.report


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f()`` w.r.t. array ``x``.

    ``x`` is perturbed in place (and restored), so ``f`` must read ``x`` when called.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: x must be contiguous
    if not np.shares_memory(flat, x):
        raise InvalidArgumentError("numerical_gradient needs a contiguous array")
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def relative_error(a, n, floor: float = 1e-2) -> float:
    """``||a - n|| / max(||a|| + ||n||, floor)``."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    denom = max(np.linalg.norm(a) + np.linalg.norm(n), floor)
    return float(np.linalg.norm(a - n) / denom)


def _compare(f, analytic: dict, variables: dict, eps: float, rtol: float) -> GradCheckResult:
    errors = {}
    for name, var in variables.items():
        num = numerical_gradient(f, var, eps)
        errors[name] = relative_error(analytic[name], num)
    worst = max(errors.values()) if errors else 0.0
    return GradCheckResult(passed=worst < rtol, max_rel_error=worst, errors=errors, rtol=rtol)


def _reseed(layers, seed):
    for layer in layers:
        if hasattr(layer, "reseed"):
            layer.reseed(seed)


def check_layer(layer, x, *, seed: int = 0, eps: float = 1e-6, rtol: float = 1e-6,
                training: bool = True) -> GradCheckResult:
    """Check ``layer.backward`` against numerical gradients w.r.t. the input and every parameter.

    The layer is converted to float64. Stochastic layers (Dropout) are reseeded
    with ``seed`` before every forward pass, so the mask is fixed.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    layer.ensure_built(x)
    layer.astype(np.float64)
    rng = np.random.default_rng(seed + 1)
    _reseed([layer], seed)
    y = layer.forward(x, training=training)
    dy = rng.standard_normal(y.shape)

    def f():
        _reseed([layer], seed)
        return float(np.sum(layer.forward(x, training=training) * dy))

    _reseed([layer], seed)
    layer.forward(x, training=training)
    dx = layer.backward(dy.copy())
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    variables = {"x": x, **layer.params}
    return _compare(f, analytic, variables, eps, rtol)


def check_loss(loss, pred, target, *, eps: float = 1e-6, rtol: float = 1e-6) -> GradCheckResult:
    """Check a loss's gradient w.r.t. its prediction argument."""
    pred = np.ascontiguousarray(pred, dtype=np.float64)
    _, grad = loss(pred, target)
    return _compare(lambda: float(loss(pred, target)[0]), {"pred": grad}, {"pred": pred}, eps, rtol)


def check_model(model, X, y, *, seed: int = 0, eps: float = 1e-6, rtol: float = 1e-6) -> GradCheckResult:
    """Check a compiled model's gradients (loss + regularization) w.r.t. input and all parameters."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    model.build(X.shape[1:], np.float64)
    for layer in model.layers:
        layer.astype(np.float64)

    def f():
        _reseed(model.layers, seed)
        out = model.forward(X, training=True)
        return float(model.loss(out, y)[0]) + model.penalty()

    _reseed(model.layers, seed)
    out = model.forward(X, training=True)
    _, dout = model.loss(out, y)
    dx = model.backward(dout)
    analytic = {"x": dx}
    variables = {"x": X}
    for layer in model.layers:
        layer.add_penalty_grads()
        for k, p in layer.params.items():
            analytic[f"{layer.name}.{k}"] = layer.grads[k].copy()
            variables[f"{layer.name}.{k}"] = p
    return _compare(f, analytic, variables, eps, rtol)
