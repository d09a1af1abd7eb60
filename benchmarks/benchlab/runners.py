"""The contenders of any workload (an ``mlp.Workload`` or a ``cnn.CNNWorkload``).

* ``scratchnn``: the public API exactly as a user writes it: ``Sequential([...]).compile(...)``
  then ``model.fit(X, y, epochs=1, batch_size=b, verbose=0, shuffle=True)``, timed around the call.
* ``torch``: the same network with the scratchnn model's initial weights, same optimizer and
  batch size, in the fastest fair eager loop: ``torch.randperm`` and ``X[idx]`` gathers, no
  DataLoader, no ``.item()``. Skipped with a message when torch is not importable.
* ``numpy``: the minimal hand-written loop (``mlp.NumpyRunner``), for workloads that have one.

Every runner takes flat ``(N, 784)`` float32 rows and views them in the workload's input shape.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from . import common
from scratchnn.errors import InvalidArgumentError

CONTENDERS = ("scratchnn", "torch", "numpy")


class ScratchnnRunner:
    """scratchnn through its public API only."""

    name = "scratchnn"

    def __init__(self, wl, seed: int = 0):
        self.model = wl.build_scratchnn(seed)
        self.wl = wl
        self.internal_times = []  # fit's own per-epoch time (History "time"), without argument checks

    def init_params(self) -> list:
        """``[(W, b), ...]`` of every layer with weights, copied (MLP: ``W`` is ``(in, out)``)."""
        from .mlp import dense_params

        return dense_params(self.model)

    def _x(self, X):
        return common.as_images(X, self.wl.input_shape) if len(self.wl.input_shape) > 1 else X

    def train_epoch(self, X, y) -> float:
        X = self._x(X)
        t0 = time.perf_counter()
        hist = self.model.fit(X, y, epochs=1, batch_size=self.wl.batch, verbose=0, shuffle=True)
        t = time.perf_counter() - t0
        with_time = getattr(hist, "history", {}).get("time")
        if with_time:
            self.internal_times.append(float(with_time[-1]))
        return t

    def predict(self, X, batch_size):
        return self.model.predict_logits(self._x(X), batch_size=batch_size)

    def val_accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X, 500).argmax(axis=1) == y))


class TorchRunner:
    """PyTorch eager on CPU: same layers, initial weights, optimizer and batch size."""

    name = "torch"

    def __init__(self, wl, ref_model, seed: int = 0):
        import torch

        self.torch = torch
        torch.manual_seed(seed)
        self.model, self.opt = wl.build_torch(torch, ref_model)
        self.wl = wl
        self._tensors = None

    def _as_tensors(self, X, y):
        key = (id(X), id(y))
        if self._tensors is None or self._tensors[0] != key:
            Xt = self.torch.from_numpy(X).reshape((len(X),) + tuple(self.wl.input_shape))
            self._tensors = (key, Xt, self.torch.from_numpy(y))
        return self._tensors[1], self._tensors[2]

    def train_epoch(self, X, y) -> float:
        torch = self.torch
        F = torch.nn.functional
        Xt, yt = self._as_tensors(X, y)
        model, opt, bs = self.model, self.opt, self.wl.batch
        t0 = time.perf_counter()
        model.train()
        n = len(Xt)
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(model(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    def predict(self, X, batch_size):
        torch = self.torch
        shape = tuple(self.wl.input_shape)
        self.model.eval()
        with torch.no_grad():
            return torch.cat([self.model(torch.from_numpy(X[i:i + batch_size]).reshape((-1,) + shape))
                              for i in range(0, len(X), batch_size)]).numpy()

    def val_accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X, 500).argmax(axis=1) == y))


def make_runners(wl, names=CONTENDERS, seed: int = 0, quiet=False) -> dict:
    """The contenders, all starting from the scratchnn model's initial weights.

    A contender that cannot run (torch not importable, no NumPy floor for this workload) is
    skipped with a note on stderr (unless ``quiet``).
    """
    ref = ScratchnnRunner(wl, seed)
    runners = {}
    for name in names:
        if name == "scratchnn":
            runners[name] = ref
        elif name == "torch":
            if common.torch_or_none() is None:
                if not quiet:
                    print("note: torch is not importable: PyTorch contender skipped (pip install torch)",
                          file=sys.stderr)
                continue
            runners[name] = TorchRunner(wl, ref.model, seed)
        elif name == "numpy":
            if not wl.has_numpy_floor:
                if not quiet:
                    print(f"note: no minimal NumPy loop for {wl.key}: numpy contender skipped", file=sys.stderr)
                continue
            from .mlp import NumpyRunner

            runners[name] = NumpyRunner(wl, ref.init_params(), seed)
        else:
            raise InvalidArgumentError(f"unknown contender {name!r}; choose from {CONTENDERS}")
    return runners
