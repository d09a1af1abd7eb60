"""How fast can plain NumPy train the headline MLP? The suite's floor against a leaner loop.

``NumpyRunner`` (the suite's floor) is the minimal loop a careful person writes.
``LeanNumpyRunner`` goes further: every buffer preallocated, gathers into them, every update
in place, the fewest NumPy calls per step. Both run the same matrix products, so if the lean
loop is no faster than the floor, no NumPy rewrite of a step can beat the floor by much, and a
target that needs it (the headline's 2.2x PyTorch at one thread on a host where the floor
itself is ~2.1x) is out of NumPy's reach there. Contenders alternate epoch by epoch. Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/floor_variants.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from . import common, machine
from .measure import time_rounds
from .mlp import HEADLINE, NumpyRunner
from .runners import make_runners
from scratchnn.errors import InvalidArgumentError


class LeanNumpyRunner(NumpyRunner):
    """The floor's network and plain SGD with preallocated buffers and in-place NumPy calls only."""

    name = "numpy_lean"

    def __init__(self, wl, init, seed=0):
        if wl.optimizer != "sgd" or wl.bn or wl.dropout:
            raise InvalidArgumentError("LeanNumpyRunner: plain SGD MLPs only (no BatchNorm, dropout or Adam)")
        super().__init__(wl, init, seed)
        f32, b = np.float32, wl.batch
        sizes = wl.sizes
        self.xb, self.tb = np.empty((b, sizes[0]), f32), np.empty(b, np.int64)
        self.hs = [self.xb] + [np.empty((b, s), f32) for s in sizes[1:]]  # layer outputs
        self.ds = [None] + [np.empty((b, s), f32) for s in sizes[1:]]  # input gradients
        self.masks = [None] + [np.empty((b, s), f32) for s in sizes[1:-1]]
        self.gWs = [np.empty_like(W) for W in self.Ws]
        self.gbs = [np.empty_like(v) for v in self.bs]
        self.row_max = np.empty(b, f32)
        self.row_sum = np.empty(b, f32)
        self.flat_hit = np.empty(b, np.intp)
        self.row_starts = np.arange(b) * sizes[-1]

    def train_epoch(self, X, y) -> float:
        t0 = time.perf_counter()
        n, b, L = len(X), self.wl.batch, len(self.Ws)
        neg_lr = np.float32(-self.wl.lr)
        Ws, bs, hs, ds, gWs, gbs = self.Ws, self.bs, self.hs, self.ds, self.gWs, self.gbs
        order = self.rng.permutation(n)
        for i in range(0, n, b):
            idx = order[i:i + b]
            m = len(idx)
            X.take(idx, 0, self.xb[:m], "clip")
            y.take(idx, 0, self.tb[:m], "clip")
            h = [a[:m] for a in hs]
            for l in range(L):
                np.matmul(h[l], Ws[l], out=h[l + 1])
                h[l + 1] += bs[l]
                if l < L - 1:
                    np.maximum(h[l + 1], 0, out=h[l + 1])
            z, mx, sm = h[L], self.row_max[:m], self.row_sum[:m]
            np.maximum.reduce(z, axis=1, out=mx)  # fused softmax-cross-entropy gradient, in place
            z -= mx[:, None]
            np.exp(z, out=z)
            np.add.reduce(z, axis=1, out=sm)
            sm *= m
            z /= sm[:, None]
            hit = np.add(self.row_starts[:m], self.tb[:m], out=self.flat_hit[:m])
            z.reshape(-1)[hit] -= np.float32(1.0 / m)
            d = z
            for l in range(L - 1, -1, -1):
                if l:
                    np.matmul(d, Ws[l].T, out=ds[l][:m])
                np.dot(h[l].T, d, out=gWs[l])
                np.add.reduce(d, axis=0, out=gbs[l])
                gWs[l] *= neg_lr
                Ws[l] += gWs[l]
                gbs[l] *= neg_lr
                bs[l] += gbs[l]
                if l:
                    d = ds[l][:m]
                    mask = self.masks[l][:m]
                    np.greater(h[l], 0, out=mask)  # ReLU's derivative as 0/1 floats
                    d *= mask
        return time.perf_counter() - t0


def compare(data: dict, threads: int, rounds: int, wl=HEADLINE, contenders=("scratchnn", "torch", "numpy")) -> dict:
    """Best epoch time of each contender and of the lean loop, in one alternating run."""
    with common.threads(threads):
        runners = make_runners(wl, contenders)
        runners["numpy_lean"] = LeanNumpyRunner(wl, runners["scratchnn"].init_params())
        X, y = data["X_train"], data["y_train"]
        for r in runners.values():  # warm-up on a few batches
            r.train_epoch(X[:4 * wl.batch], y[:4 * wl.batch])
        times, _ = time_rounds(runners, X, y, rounds)
    scale = common.N_TRAIN / len(X)
    best = {k: min(v) * scale for k, v in times.items()}
    accuracy = {k: r.val_accuracy(data["X_val"], data["y_val"]) for k, r in runners.items()}
    return {"threads": threads, "rounds": rounds, "samples": len(X), "epoch_s": best, "val_acc": accuracy}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=common.whole_numbers, default="1",
                    help="comma-separated BLAS/torch thread counts (default 1)")
    ap.add_argument("--rounds", type=common.whole_number, default=5)
    ap.add_argument("--samples", type=common.whole_number, default=common.N_TRAIN)
    ap.add_argument("--data-dir", help="folder holding the MNIST files")
    ap.add_argument("--random-data", action="store_true", help="random images of MNIST's shape (speed only)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    machine.warn_openblas_env()
    data = common.load_data(args.samples, 2000, data_dir=args.data_dir, random=args.random_data)
    results = []
    for t in args.threads:
        r = compare(data, t, args.rounds)
        results.append(r)
        floor = r["epoch_s"]["numpy"]
        rows = [[k, f"{s:.3f}", f"{s / floor:.2f}x", f"{r['epoch_s'].get('torch', float('nan')) / s:.2f}x",
                 f"{r['val_acc'][k]:.4f}"] for k, s in sorted(r["epoch_s"].items(), key=lambda kv: kv[1])]
        print(f"\n{HEADLINE.title}, {t} thread(s), best of {args.rounds} alternating epochs "
              f"(s/epoch of 50,000 samples)")
        print(common.fmt_table(["contender", "s/epoch", "time/floor", "torch/this", "val acc"], rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": machine.environment(), "results": results}, f, indent=1)
    return results
