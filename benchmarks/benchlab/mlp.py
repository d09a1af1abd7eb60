"""The MLP workloads of the suite and the floor: a minimal hand-written NumPy training loop.

A workload knows how to build its network in scratchnn (``build_scratchnn``, the public API
exactly as a user writes it) and in PyTorch with the same initial weights (``build_torch``),
its FLOPs per sample and the issue's memory budget; ``runners.py`` times any workload.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from . import common


@dataclass(frozen=True)
class Workload:
    """An MLP ``784-hidden...-10`` with ReLU (optionally BatchNorm and Dropout), trained on MNIST."""

    key: str
    title: str
    hidden: tuple
    batch: int = 32
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    bn: bool = False
    dropout: float = 0.0

    kind = "mlp"
    input_shape = (784,)
    has_numpy_floor = True

    @property
    def sizes(self) -> tuple:
        return (784, *self.hidden, 10)

    def with_(self, **kw) -> "Workload":
        return dataclasses.replace(self, **kw)

    def toy(self) -> "Workload":
        """A tiny version (warm-ups)."""
        return self.with_(hidden=(8,) * len(self.hidden), batch=32)

    def train_flops_per_sample(self) -> int:
        return common.mlp_train_flops_per_sample(self.sizes)

    def infer_flops_per_sample(self) -> int:
        return common.mlp_infer_flops_per_sample(self.sizes)

    def memory_budget_bytes(self, n_data_rows: int) -> dict:
        return common.memory_budget_bytes(self.sizes, self.batch, n_data_rows, self.optimizer, self.bn,
                                          bool(self.dropout))

    def build_scratchnn(self, seed: int = 0):
        import scratchnn as snn
        from scratchnn.layers import BatchNorm, Dense, Dropout, ReLU
        from scratchnn.optimizers import SGD, Adam

        snn.set_seed(seed)
        layers = []
        for h in self.hidden:
            layers.append(Dense(h))
            if self.bn:
                layers.append(BatchNorm())
            layers.append(ReLU())
            if self.dropout:
                layers.append(Dropout(self.dropout))
        layers.append(Dense(10))
        opt = SGD(self.lr) if self.optimizer == "sgd" else Adam(self.lr)
        model = snn.Sequential(layers).compile(opt, "softmax_cross_entropy")
        model.build(self.input_shape)
        return model

    def build_torch(self, torch, snn_model):
        """``(nn.Sequential, optimizer)`` with the same layers and the scratchnn model's initial weights."""
        from torch import nn

        init = dense_params(snn_model)
        mods = []
        for i, (W, b) in enumerate(init):
            lin = nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))  # scratchnn (in, out) -> torch (out, in)
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if i < len(init) - 1:
                if self.bn:
                    mods.append(nn.BatchNorm1d(W.shape[1], eps=1e-5, momentum=0.1))
                mods.append(nn.ReLU())
                if self.dropout:
                    mods.append(nn.Dropout(self.dropout))
        net = nn.Sequential(*mods)
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(net.parameters(), lr=self.lr)
        else:
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.9, 0.999), eps=1e-8)
        return net, opt


def dense_params(model) -> list:
    """``[(W (in, out), b), ...]`` of every layer with a weight matrix, copied."""
    return [(l.params["W"].copy(), l.params["b"].copy()) for l in model.layers if "W" in l.params]


HEADLINE = Workload("mlp_100_200", "MLP 784-100-200-10 ReLU, SGD(0.1), batch 32", (100, 200))
WORKLOADS = (
    HEADLINE,
    Workload("mlp_128_64", "MLP 784-128-64-10 ReLU, SGD(0.1), batch 32", (128, 64)),
    Workload("mlp_deep_bn", "MLP 784-512-BN-ReLU-Drop0.2-256-BN-ReLU-Drop0.2-10, Adam(1e-3), batch 128",
             (512, 256), batch=128, optimizer="adam", lr=1e-3, bn=True, dropout=0.2),
)
WORKLOADS_BY_KEY = {w.key: w for w in WORKLOADS}


class NumpyRunner:
    """The floor: a minimal float32 NumPy loop for the same network, nothing but the math."""

    name = "numpy"

    def __init__(self, wl: Workload, init: list, seed: int = 0):
        self.wl = wl
        self.rng = np.random.default_rng(seed + 1)
        self.Ws = [W.astype(np.float32, copy=True) for W, _ in init]
        self.bs = [b.astype(np.float32, copy=True) for _, b in init]
        f32 = np.float32
        self.gamma = [np.ones(h, f32) for h in wl.hidden] if wl.bn else []
        self.beta = [np.zeros(h, f32) for h in wl.hidden] if wl.bn else []
        self.rmean = [np.zeros(h, f32) for h in wl.hidden] if wl.bn else []
        self.rvar = [np.ones(h, f32) for h in wl.hidden] if wl.bn else []
        self.params = self.Ws + self.bs + self.gamma + self.beta
        if wl.optimizer == "adam":
            self.m = [np.zeros_like(p) for p in self.params]
            self.v = [np.zeros_like(p) for p in self.params]
            self.t = 0
        self.rows = np.arange(wl.batch)
        self._step = self._step_sgd if (wl.optimizer == "sgd" and not wl.bn and not wl.dropout) else self._step_general

    def _loss_grad(self, z, y):
        """Fused softmax-cross-entropy gradient ``(softmax(z) - onehot(y)) / n``, in place in ``z``."""
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        n = len(y)
        z[self.rows[:n], y] -= 1
        z *= 1.0 / n
        return z

    # --- the plain MLP: Dense/ReLU, SGD --------------------------------------------
    def _step_sgd(self, x, y):
        Ws, bs, L = self.Ws, self.bs, len(self.Ws)
        hs = [x]
        h = x
        for l in range(L - 1):
            h = h @ Ws[l]
            h += bs[l]
            np.maximum(h, 0, out=h)
            hs.append(h)
        z = h @ Ws[-1]
        z += bs[-1]
        d, neg_lr = self._loss_grad(z, y), -self.wl.lr
        for l in range(L - 1, -1, -1):
            gW = hs[l].T @ d
            gb = d.sum(axis=0)
            if l:
                dp = d @ Ws[l].T
                dp *= hs[l] > 0  # ReLU mask from its output
            gW *= neg_lr
            Ws[l] += gW
            gb *= neg_lr
            bs[l] += gb
            if l:
                d = dp

    # --- with BatchNorm / Dropout / Adam ----------------------------------------------
    def _step_general(self, x, y):
        wl, Ws, bs, L = self.wl, self.Ws, self.bs, len(self.Ws)
        keep = 1.0 - wl.dropout
        caches = []
        h = x
        for l in range(L - 1):
            inp = h
            h = inp @ Ws[l]
            h += bs[l]
            bn = None
            if wl.bn:
                mu = h.mean(axis=0)
                h -= mu
                var = (h * h).mean(axis=0)
                inv = 1.0 / np.sqrt(var + 1e-5)
                h *= inv  # h is now xhat
                m = len(h)
                self.rmean[l] *= 0.9
                self.rmean[l] += 0.1 * mu
                self.rvar[l] *= 0.9
                self.rvar[l] += (0.1 * m / max(m - 1, 1)) * var
                bn = (h.copy(), inv)
                h *= self.gamma[l]
                h += self.beta[l]
            np.maximum(h, 0, out=h)
            mask = None
            if wl.dropout:
                mask = self.rng.random(h.shape, dtype=np.float32) < keep
                h = h * mask
                h *= 1.0 / keep
            caches.append((inp, bn, h, mask))
        z = h @ Ws[-1]
        z += bs[-1]
        grads = [None] * len(self.params)
        d = self._loss_grad(z, y)
        for l in range(L - 1, -1, -1):
            inp = caches[l][0] if l < L - 1 else h
            grads[l] = inp.T @ d
            grads[L + l] = d.sum(axis=0)
            if l == 0:
                break
            d = d @ Ws[l].T
            _, bn, out, mask = caches[l - 1]
            d *= out > 0  # ReLU (and dropout zeros) mask
            if mask is not None:
                d *= 1.0 / keep
            if bn is not None:
                xhat, inv = bn
                gbeta = d.sum(axis=0)
                ggamma = (d * xhat).sum(axis=0)
                grads[2 * L + l - 1] = ggamma
                grads[2 * L + (L - 1) + l - 1] = gbeta
                m = len(d)
                d *= m
                d -= gbeta
                d -= xhat * ggamma
                d *= self.gamma[l - 1] * (inv / m)
        self._update(grads)

    def _update(self, grads):
        lr = self.wl.lr
        if self.wl.optimizer == "sgd":
            for p, g in zip(self.params, grads):
                g *= -lr
                p += g
            return
        self.t += 1
        b1, b2 = 0.9, 0.999
        step = lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        eps = 1e-8 * math.sqrt(1 - b2**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            g *= g
            v *= b2
            v += (1 - b2) * g
            den = np.sqrt(v)
            den += eps
            np.divide(m, den, out=den)
            den *= -step
            p += den

    def train_epoch(self, X, y) -> float:
        t0 = time.perf_counter()
        n, bs = len(X), self.wl.batch
        order = self.rng.permutation(n)
        step = self._step
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            step(X[idx], y[idx])
        return time.perf_counter() - t0

    def predict(self, X, batch_size):
        outs = []
        L = len(self.Ws)
        for i in range(0, len(X), batch_size):
            h = X[i:i + batch_size]
            for l in range(L - 1):
                h = h @ self.Ws[l]
                h += self.bs[l]
                if self.wl.bn:
                    h -= self.rmean[l]
                    h *= self.gamma[l] / np.sqrt(self.rvar[l] + 1e-5)
                    h += self.beta[l]
                np.maximum(h, 0, out=h)
            z = h @ self.Ws[-1]
            z += self.bs[-1]
            outs.append(z)
        return np.concatenate(outs)

    def val_accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X, 1000).argmax(axis=1) == y))
