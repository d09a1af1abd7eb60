"""MLP training and inference speed of scratchnn vs PyTorch (CPU, eager) vs a minimal NumPy loop.

Run (from the repository root; see benchmarks/README.md for every column)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_mlp.py
    python benchmarks/bench_mlp.py --quick                 # ~1 minute, subsets of the epoch
    python benchmarks/bench_mlp.py --threads 1 --rounds 5 --json out.json --isolated

Contenders, in one process, alternating round by round (the order rotates every round),
best of ``--rounds`` epochs each:

* ``scratchnn``: the public API exactly as a user writes it:
  ``Sequential([...]).compile(SGD(0.1), "softmax_cross_entropy")`` then
  ``model.fit(X, y, epochs=1, batch_size=32, verbose=0, shuffle=True)``, timed around the call.
* ``torch``: the same network (``nn.Linear`` with the scratchnn model's initial weights),
  optimizer and batch size, in the fastest fair eager loop: a shuffled index tensor and
  ``X[idx]`` gathers, no DataLoader. Skipped with a message when torch is not importable.
* ``numpy``: a minimal hand-written float32 loop (gather, matmuls, fused softmax-CE
  gradient, backward, in-place update): the floor that framework overhead is measured against.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # imported as part of a package (tests may do so) or run as a script
    from . import common
except ImportError:
    import common

HERE = Path(__file__).resolve().parent
CONTENDERS = ("scratchnn", "torch", "numpy")


# =========================================================================== workloads
@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    hidden: tuple
    batch: int = 32
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    bn: bool = False
    dropout: float = 0.0

    @property
    def sizes(self) -> tuple:
        return (784, *self.hidden, 10)

    def with_(self, **kw) -> "Workload":
        return dataclasses.replace(self, **kw)


HEADLINE = Workload("mlp_100_200", "MLP 784-100-200-10 ReLU, SGD(0.1), batch 32", (100, 200))
WORKLOADS = (
    HEADLINE,
    Workload("mlp_128_64", "MLP 784-128-64-10 ReLU, SGD(0.1), batch 32", (128, 64)),
    Workload("mlp_deep_bn", "MLP 784-512-BN-ReLU-Drop0.2-256-BN-ReLU-Drop0.2-10, Adam(1e-3), batch 128",
             (512, 256), batch=128, optimizer="adam", lr=1e-3, bn=True, dropout=0.2),
)
WORKLOADS_BY_KEY = {w.key: w for w in WORKLOADS}


# =========================================================================== contenders
class ScratchnnRunner:
    """scratchnn through its public API only."""

    name = "scratchnn"

    def __init__(self, wl: Workload, seed: int = 0):
        import scratchnn as snn
        from scratchnn.layers import BatchNorm, Dense, Dropout, ReLU
        from scratchnn.optimizers import SGD, Adam

        snn.set_seed(seed)
        layers = []
        for h in wl.hidden:
            layers.append(Dense(h))
            if wl.bn:
                layers.append(BatchNorm())
            layers.append(ReLU())
            if wl.dropout:
                layers.append(Dropout(wl.dropout))
        layers.append(Dense(10))
        opt = SGD(wl.lr) if wl.optimizer == "sgd" else Adam(wl.lr)
        self.model = snn.Sequential(layers).compile(opt, "softmax_cross_entropy")
        self.model.build((wl.sizes[0],))
        self.wl = wl
        self.internal_times = []  # fit's own per-epoch time (History "time"), without argument checks

    def init_params(self) -> list:
        """``[(W (in, out), b), ...]`` of every Dense layer, copied."""
        return [(l.params["W"].copy(), l.params["b"].copy()) for l in self.model.layers if "W" in l.params]

    def train_epoch(self, X, y) -> float:
        t0 = time.perf_counter()
        hist = self.model.fit(X, y, epochs=1, batch_size=self.wl.batch, verbose=0, shuffle=True)
        t = time.perf_counter() - t0
        with_time = getattr(hist, "history", {}).get("time")
        if with_time:
            self.internal_times.append(float(with_time[-1]))
        return t

    def predict(self, X, batch_size):
        return self.model.predict_logits(X, batch_size=batch_size)

    def val_accuracy(self, X, y) -> float:
        return float(np.mean(self.model.predict_logits(X).argmax(axis=1) == y))


class TorchRunner:
    """PyTorch eager on CPU: same layers, initial weights, optimizer and batch size."""

    name = "torch"

    def __init__(self, wl: Workload, init: list, seed: int = 0):
        import torch
        from torch import nn

        self.torch = torch
        torch.manual_seed(seed)
        mods = []
        for i, (W, b) in enumerate(init):
            lin = nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))  # scratchnn (in, out) -> torch (out, in)
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if i < len(init) - 1:
                if wl.bn:
                    mods.append(nn.BatchNorm1d(W.shape[1], eps=1e-5, momentum=0.1))
                mods.append(nn.ReLU())
                if wl.dropout:
                    mods.append(nn.Dropout(wl.dropout))
        self.model = nn.Sequential(*mods)
        if wl.optimizer == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=wl.lr)
        else:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=wl.lr, betas=(0.9, 0.999), eps=1e-8)
        self.wl = wl
        self._tensors = None

    def _as_tensors(self, X, y):
        key = (id(X), id(y))
        if self._tensors is None or self._tensors[0] != key:
            self._tensors = (key, self.torch.from_numpy(X), self.torch.from_numpy(y))
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
        self.model.eval()
        with torch.no_grad():
            return torch.cat([self.model(torch.from_numpy(X[i:i + batch_size]))
                              for i in range(0, len(X), batch_size)]).numpy()

    def val_accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X, 1000).argmax(axis=1) == y))


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


def make_runners(wl: Workload, names=CONTENDERS, seed: int = 0, quiet=False) -> dict:
    """The contenders, all starting from the scratchnn model's initial weights."""
    ref = ScratchnnRunner(wl, seed)
    init = ref.init_params()
    runners = {}
    for name in names:
        if name == "scratchnn":
            runners[name] = ref
        elif name == "torch":
            if common.torch_or_none() is None:
                if not quiet:
                    print("note: torch is not importable: PyTorch contender skipped "
                          "(pip install torch)", file=sys.stderr)
                continue
            runners[name] = TorchRunner(wl, init, seed)
        elif name == "numpy":
            runners[name] = NumpyRunner(wl, init, seed)
        else:
            raise ValueError(f"unknown contender {name!r}; choose from {CONTENDERS}")
    return runners


# =========================================================================== measuring
def time_rounds(runners: dict, X, y, rounds: int) -> dict:
    """Alternate the contenders epoch by epoch (rotating the order each round); all times.

    A full ``gc.collect()`` precedes every epoch; ``gc.freeze()`` first moves the libraries'
    import-time objects out of the collector's sight, so those collections stay cheap.
    """
    gc.collect()
    gc.freeze()
    names = list(runners)
    times = {n: [] for n in names}
    loads = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            s0 = common.cpu_snapshot()
            times[name].append(runners[name].train_epoch(X, y))
            s1 = common.cpu_snapshot()
            loads[name].append({"foreign_cores": common.foreign_load(s0, s1)["foreign_cores"], "cpu_s": s1[2] - s0[2]})
    return times, loads


def summarize(times: list, samples: int, flops_per_sample: int, peak_gflops: float, loads=None) -> dict:
    best = min(times)
    scale = common.N_TRAIN / samples
    return {
        "times_s": times, "best_s": best,
        # other processes' CPU use (cores) during each epoch, and this process's CPU seconds
        "foreign_cores": [x["foreign_cores"] for x in loads] if loads else None,
        "foreign_cores_best": loads[times.index(best)]["foreign_cores"] if loads else None,
        "cpu_s": [x["cpu_s"] for x in loads] if loads else None,
        "median_s": statistics.median(times), "samples": samples,
        "epoch_s": best * scale, "extrapolated": samples != common.N_TRAIN,
        "gflops": flops_per_sample * samples / best / 1e9,
        "pct_peak": 100.0 * flops_per_sample * samples / best / 1e9 / peak_gflops,
    }


def bench_workload(wl: Workload, data: dict, threads: int, rounds: int, contenders=CONTENDERS,
                   n_train: int | None = None, memory: bool = True, peak: dict | None = None,
                   seed: int = 0) -> dict:
    """Time one workload: every contender, ``rounds`` alternating epochs, plus accuracy and memory.

    ``n_train`` trains on a subset (epoch times are then extrapolated to 50,000 samples);
    the memory subprocesses still hold the whole data set, so peaks stay comparable.
    """
    X, y = data["X_train"], data["y_train"]
    if n_train is not None:
        X, y = X[:n_train], y[:n_train]
    fps = common.mlp_train_flops_per_sample(wl.sizes)
    with common.threads(threads):
        peak = peak or common.gemm_peak()
        runners = make_runners(wl, contenders, seed)
        times, loads = time_rounds(runners, X, y, rounds)
        res = {"workload": dataclasses.asdict(wl), "sizes": list(wl.sizes), "threads": threads, "rounds": rounds,
               "flops_per_sample": fps, "gemm_peak_gflops": peak["gflops"], "contenders": {}}
        for name, r in runners.items():
            s = summarize(times[name], len(X), fps, peak["gflops"], loads[name])
            s["epochs_trained"] = rounds
            s["val_acc"] = r.val_accuracy(data["X_val"], data["y_val"]) if len(data["y_val"]) else None
            if name == "scratchnn" and r.internal_times:
                s["fit_internal_best_s"] = min(r.internal_times)
                s["fit_call_overhead_s"] = min(times[name]) - min(r.internal_times)
            res["contenders"][name] = s
    c = res["contenders"]
    if "scratchnn" in c:
        base = c["scratchnn"]["best_s"]
        res["ratios"] = {f"{n}_over_scratchnn": c[n]["best_s"] / base for n in c if n != "scratchnn"}
    if memory:
        n_data = len(data["X_train"])
        budget = common.memory_budget_bytes(wl.sizes, wl.batch, n_data + len(data["y_val"]), wl.optimizer,
                                            wl.bn, bool(wl.dropout))
        res["memory_budget_mb"] = budget["budget"] / 2**20
        res["memory_parts_mb"] = {k: v / 2**20 for k, v in budget.items()}
        for name in runners:
            c[name]["memory"] = measure_in_subprocess(wl, name, threads, len(X), len(data["y_val"]), rounds=1,
                                                      data="mnist" if data["source"] != "random" else "random",
                                                      n_data=n_data)
    return res


def bench_inference(data: dict, threads: int, rounds: int, wl: Workload = HEADLINE, contenders=CONTENDERS,
                    n_images: dict | None = None, seed: int = 0) -> dict:
    """Images per second of the forward pass at batch 1 and batch 1000 (scratchnn: ``predict_logits``)."""
    n_images = n_images or {1: 2000, 1000: 10_000}
    Xv = data["X_val"] if len(data["X_val"]) else data["X_train"]
    res = {"workload": wl.title, "threads": threads, "rounds": rounds, "batches": {}}
    with common.threads(threads):
        runners = make_runners(wl, contenders, seed, quiet=True)
        for bs, n in n_images.items():
            X = np.ascontiguousarray(np.resize(Xv, (n, Xv.shape[1])))
            times = {k: [] for k in runners}
            busy = {k: [] for k in runners}
            for r in range(rounds + 1):  # round 0 warms up
                for name, run in runners.items():
                    s0 = common.cpu_snapshot()
                    t0 = time.perf_counter()
                    for i in range(0, n, bs):
                        run.predict(X[i:i + bs], bs)
                    if r:
                        times[name].append(time.perf_counter() - t0)
                        busy[name].append(common.foreign_load(s0, common.cpu_snapshot())["foreign_cores"])
            row = {name: {"best_s": min(t), "images_per_s": n / min(t), "images": n,
                          "foreign_cores_best": busy[name][t.index(min(t))]} for name, t in times.items()}
            if "scratchnn" in row:
                for name in row:
                    row[name]["speedup_of_scratchnn"] = row["scratchnn"]["images_per_s"] / row[name]["images_per_s"]
            res["batches"][str(bs)] = row
    return res


def default_batch_samples(bs: int, quick: bool) -> int:
    """Samples measured per batch size (the epoch time is extrapolated to 50,000)."""
    n = {1: 2000, 8: 8000, 32: 16_000, 128: 32_000, 512: 50_000}.get(bs, 16_000)
    return max(bs, n // 4 if quick else n)


def default_width_samples(sizes, bs: int, quick: bool) -> int:
    """Enough samples for ~30 GFLOP (>= 4 steps) per measurement at batch ``bs``."""
    budget = 8e9 if quick else 3e10
    steps = int(budget / common.mlp_train_flops_per_sample(sizes) / bs)
    return bs * max(2 if quick else 4, min(steps, common.N_TRAIN // bs))


def bench_scaling(data: dict, threads: int, rounds: int, batches=(1, 8, 32, 128, 512),
                  widths=(64, 128, 256, 512, 1024, 2048), width_batch: int = 512, contenders=("scratchnn", "torch"),
                  quick: bool = False, memory: bool = True, samples=None, peak: dict | None = None,
                  seed: int = 0, retries: int = 0, max_wait: float = 60.0) -> dict:
    """Time per epoch (and peak memory) vs batch size and vs hidden width, scratchnn vs torch."""
    res = {"threads": threads, "rounds": rounds, "batch": [], "width": []}
    if peak is None:
        with common.threads(threads):
            peak = common.gemm_peak()
    res["gemm_peak_gflops"] = peak["gflops"]
    points = [("batch", HEADLINE.with_(key=f"batch_{b}", batch=b, title=f"784-100-200-10 batch {b}"), b) for b in batches]
    points += [("width", HEADLINE.with_(key=f"width_{w}", hidden=(w, w), batch=width_batch,
                                        title=f"784-{w}-{w}-10 batch {width_batch}"), w) for w in widths]
    for axis, wl, value in points:
        if samples is not None:
            n = samples(axis, wl)
        elif axis == "batch":
            n = default_batch_samples(wl.batch, quick)
        else:
            n = default_width_samples(wl.sizes, wl.batch, quick)
        n = min(n, len(data["X_train"]))
        r = until_quiet(lambda: bench_workload(wl, data, threads, rounds, contenders, n_train=n, memory=memory,
                                               peak=peak, seed=seed), retries, max_wait)
        r["value"] = value
        res[axis].append(r)
    return res


def busiest(res: dict) -> float:
    """Largest foreign CPU load (cores) during any contender's best measurement in a result."""
    vals = []
    for c in res.get("contenders", {}).values():
        vals.append(c.get("foreign_cores_best") or 0.0)
    for row in res.get("batches", {}).values():
        vals += [c.get("foreign_cores_best") or 0.0 for c in row.values()]
    return max(vals, default=0.0)


def until_quiet(fn, retries: int = 2, max_wait: float = 60.0, threshold: float = 0.25):
    """Call ``fn()``; while its best measurements overlapped other processes' work (> ``threshold``
    cores), wait for a quiet machine and measure again, up to ``retries`` times. Returns the
    least disturbed result, with ``attempts`` and ``busy_cores`` recorded in it."""
    best, attempts = None, 0
    for attempts in range(1, retries + 2):
        r = fn()
        if best is None or busiest(r) < busiest(best):
            best = r
        if busiest(best) <= threshold or attempts > retries:
            break
        common.wait_for_quiet(max_wait)
    best["attempts"], best["busy_cores"] = attempts, busiest(best)
    return best


# =========================================================================== subprocess worker
def measure_in_subprocess(wl: Workload, contender: str, threads: int, n_train: int, n_val: int, rounds: int = 1,
                          data: str = "mnist", n_data: int | None = None, timeout: float = 900) -> dict:
    """Run ``rounds`` epochs of one contender in a fresh interpreter: times and peak memory.

    The process holds ``n_data`` training rows (default ``n_train``) plus ``n_val`` validation
    rows and trains on the first ``n_train``, so memory curves can keep the data set fixed.
    """
    spec = {"workload": dataclasses.asdict(wl), "contender": contender, "threads": threads, "n_train": n_train,
            "n_data": max(n_data or n_train, n_train), "n_val": n_val, "rounds": rounds, "data": data}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_worker", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": f"worker exited {proc.returncode}: {proc.stderr.strip()[-500:]}"}


def worker(spec: dict) -> dict:
    wl = Workload(**{**spec["workload"], "hidden": tuple(spec["workload"]["hidden"])})
    name = spec["contender"]
    if name == "torch":
        import torch  # noqa: F401 - load before the baseline so its libraries are not counted
    import scratchnn  # noqa: F401
    with common.threads(spec["threads"]):
        # warm up the library on a toy problem so lazily loaded kernels are part of the baseline
        toy = common.random_data(64, 0)
        make_runners(wl.with_(hidden=(8,) * len(wl.hidden), batch=32), (name,))[name].train_epoch(
            toy["X_train"], toy["y_train"])
        del toy
        common.trim_heap()
        rss0 = common.rss_bytes()
        n_data = spec.get("n_data", spec["n_train"])
        if spec["data"] == "random":
            data = common.random_data(n_data, spec["n_val"])
        else:
            data = common.load_data(n_data, spec["n_val"])
        X, y = data["X_train"][:spec["n_train"]], data["y_train"][:spec["n_train"]]
        runner = make_runners(wl, (name,))[name]
        common.trim_heap()
        rss1 = common.rss_bytes()
        hwm_reset = common.reset_peak_rss()
        times, busy = [], []
        for _ in range(spec["rounds"]):
            s0 = common.cpu_snapshot()
            times.append(runner.train_epoch(X, y))
            busy.append(common.foreign_load(s0, common.cpu_snapshot())["foreign_cores"])
        hwm = common.peak_rss_bytes()
        acc = runner.val_accuracy(data["X_val"], data["y_val"]) if spec["n_val"] else None
    data_bytes = sum(data[k].nbytes for k in ("X_train", "y_train", "X_val", "y_val"))
    return {"contender": name, "times_s": times, "best_s": min(times), "samples": len(X), "val_acc": acc,
            "foreign_cores": busy, "foreign_cores_best": busy[times.index(min(times))],
            "baseline_rss_mb": rss0 / 2**20, "ready_rss_mb": rss1 / 2**20, "hwm_mb": hwm / 2**20,
            "peak_mb": (hwm - rss0) / 2**20, "train_extra_mb": (hwm - rss1) / 2**20,
            "data_mb": data_bytes / 2**20, "hwm_reset": hwm_reset, "src_sha256": common.src_hash()}


# =========================================================================== reporting
def _f(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def print_workload(r: dict) -> None:
    wl, c = r["workload"], r["contenders"]
    first = next(iter(c.values()))
    ext = f" (extrapolated from {first['samples']:,} samples)" if first["extrapolated"] else ""
    print(f"\n== {wl['title']} | {r['threads']} thread(s) | best of {r['rounds']} | "
          f"GEMM peak {r['gemm_peak_gflops']:.1f} GFLOP/s | s/epoch = 50,000 samples{ext}")
    base = c.get("scratchnn", {}).get("best_s")
    rows = []
    for name, s in c.items():
        mem = s.get("memory", {})
        rows.append([name, _f(s["epoch_s"]), _f(s["median_s"] * s["epoch_s"] / s["best_s"]),
                     _f(s["best_s"] / base, ".2f") + "x" if base else "-",
                     _f(s["gflops"], ".2f"), _f(s["pct_peak"], ".1f"),
                     _f(mem.get("peak_mb"), ".0f"), _f(mem.get("train_extra_mb"), ".1f"),
                     _f(s["val_acc"], ".4f"), _f(s.get("foreign_cores_best"), ".2f")])
    print(common.fmt_table(["contender", "s/epoch", "median", "time/scratchnn", "GFLOP/s", "%peak", "peak MB",
                            "train MB", "val acc", "busy"], rows))
    busy = max((s.get("foreign_cores_best") or 0) for s in c.values())
    if busy > 0.2:
        print(f"WARNING: other processes used up to {busy:.2f} cores during the best rounds: figures are unreliable")
    if "memory_budget_mb" in r:
        print(f"memory budget (2 x (params + opt state + 1 batch activations + data)): {r['memory_budget_mb']:.0f} MB")
    if "scratchnn" in c and "fit_call_overhead_s" in c["scratchnn"]:
        s = c["scratchnn"]
        print(f"scratchnn fit(): {s['fit_internal_best_s']:.3f} s inside the epoch loop + "
              f"{s['fit_call_overhead_s']:.3f} s per call (argument checks, History)")


def print_inference(r: dict) -> None:
    print(f"\n== Inference throughput, {r['workload']} | {r['threads']} thread(s) | best of {r['rounds']}")
    rows = []
    for bs, row in r["batches"].items():
        for name, s in row.items():
            rows.append([f"batch {bs}", name, f"{s['images_per_s']:,.0f}", _f(s.get("speedup_of_scratchnn"), ".2f") + "x"])
    print(common.fmt_table(["batch", "contender", "images/s", "scratchnn speedup"], rows))


def print_scaling(r: dict) -> None:
    for axis in ("batch", "width"):
        pts = r[axis]
        if not pts:
            continue
        print(f"\n== Scaling vs {axis} | {r['threads']} thread(s) | best of {r['rounds']} | "
              f"GEMM peak {r['gemm_peak_gflops']:.1f} GFLOP/s | s/epoch extrapolated to 50,000 samples")
        rows = []
        for p in pts:
            for name, s in p["contenders"].items():
                mem = s.get("memory", {})
                rows.append([p["value"], name, f"{s['samples']:,}", _f(s["epoch_s"]), _f(s["gflops"], ".2f"),
                             _f(s["pct_peak"], ".1f"), _f(mem.get("peak_mb"), ".0f"), _f(mem.get("train_extra_mb"), ".1f"),
                             _f(p.get("memory_budget_mb"), ".0f"),
                             _f(p.get("ratios", {}).get(f"{name}_over_scratchnn"), ".2f"),
                             _f(s.get("foreign_cores_best"), ".2f")])
        print(common.fmt_table([axis, "contender", "samples", "s/epoch", "GFLOP/s", "%peak", "peak MB", "train MB",
                                "budget MB", "time/scratchnn", "busy"], rows))


def plot_scaling(r: dict, out_dir: Path, suffix: str = "") -> list:
    """``scaling_batch.png`` and ``scaling_width.png``: time/epoch, GFLOP/s and peak memory curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for axis, label in (("batch", "batch size (784-100-200-10)"), ("width", "hidden width W (784-W-W-10, batch 512)")):
        pts = r[axis]
        if not pts:
            continue
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        xs = [p["value"] for p in pts]
        for name in pts[0]["contenders"]:
            c = [p["contenders"].get(name) for p in pts]
            axes[0].plot(xs, [s["epoch_s"] if s else np.nan for s in c], "o-", label=name)
            axes[1].plot(xs, [s["gflops"] if s else np.nan for s in c], "o-", label=name)
            axes[2].plot(xs, [s.get("memory", {}).get("peak_mb", np.nan) if s else np.nan for s in c], "o-", label=name)
        axes[1].axhline(r["gemm_peak_gflops"], color="k", ls="--", lw=1, label="GEMM peak")
        axes[1].axhline(0.85 * r["gemm_peak_gflops"], color="gray", ls=":", lw=1, label="85% of peak")
        if any("memory_budget_mb" in p for p in pts):
            axes[2].plot(xs, [p.get("memory_budget_mb", np.nan) for p in pts], "k--", lw=1, label="budget")
        for ax, yl in zip(axes, ("s / epoch (50,000 samples, extrapolated)", "achieved GFLOP/s", "peak RSS above baseline (MB)")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel(label)
            ax.set_ylabel(yl)
            ax.grid(alpha=0.3)
            ax.legend()
        axes[0].set_yscale("log")
        fig.suptitle(f"scratchnn vs PyTorch, {r['threads']} thread(s)")
        fig.tight_layout()
        path = out_dir / f"scaling_{axis}{suffix}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(str(path))
    return files


def check_targets(out: dict) -> list:
    """The issue's targets, each with the measured value and pass/fail (None: not measured)."""
    rows = []

    def add(name, value, ok, where):
        rows.append({"target": name, "value": value, "pass": ok, "where": where})

    for r in out.get("workloads", []):
        if r["workload"]["key"] != HEADLINE.key:
            continue
        rat = r.get("ratios", {})
        where = f"{HEADLINE.key}, {r['threads']} thread(s)"
        if "torch_over_scratchnn" in rat:
            v = rat["torch_over_scratchnn"]
            add("784-100-200-10 b32: scratchnn >= 2.2x faster than torch per epoch", f"{v:.2f}x", v >= 2.2, where)
        if "numpy_over_scratchnn" in rat:
            v = 1 / rat["numpy_over_scratchnn"]
            add("784-100-200-10 b32: scratchnn <= 1.0x the minimal NumPy loop's time", f"{v:.2f}x", v <= 1.0, where)
    for key in [k for k in out if k.startswith("inference")]:
        row = out[key]["batches"].get("1", {})
        if "torch" in row:
            v = row["torch"]["speedup_of_scratchnn"]
            add("batch 1: scratchnn >= 3x faster than torch (inference, predict_logits)", f"{v:.2f}x", v >= 3,
                f"{out[key]['threads']} thread(s)")
    for key in [k for k in out if k.startswith("scaling")]:
        sc = out[key]
        for p in sc["batch"]:
            if p["value"] == 1 and "torch_over_scratchnn" in p.get("ratios", {}):
                v = p["ratios"]["torch_over_scratchnn"]
                add("batch 1: scratchnn >= 3x faster than torch (training epoch)", f"{v:.2f}x", v >= 3,
                    f"{sc['threads']} thread(s)")
        for p in sc["width"]:
            if 512 <= p["value"] <= 2048 and p["workload"]["batch"] >= 256 and "scratchnn" in p["contenders"]:
                v = p["contenders"]["scratchnn"]["pct_peak"]
                add(f"width {p['value']}, batch {p['workload']['batch']}: scratchnn >= 85% of GEMM peak",
                    f"{v:.1f}%", v >= 85, f"{sc['threads']} thread(s)")
    mem_rows = out.get("workloads", []) + [p for k in out if k.startswith("scaling")
                                           for p in out[k]["width"] + out[k]["batch"]]
    worst = None
    for r in mem_rows:
        mem = r.get("contenders", {}).get("scratchnn", {}).get("memory", {})
        if "peak_mb" in mem and "memory_budget_mb" in r:
            ratio = mem["peak_mb"] / r["memory_budget_mb"]
            if worst is None or ratio > worst[0]:
                worst = (ratio, mem["peak_mb"], r)
    if worst is not None:
        ratio, peak_mb, r = worst
        add("scratchnn peak memory < 2x(params+opt state+batch activations+data), worst row",
            f"{peak_mb:.0f} / {r['memory_budget_mb']:.0f} MB", ratio < 1,
            f"{r['workload']['title'].split(',')[0]}, {r['threads']} thread(s)")
    return rows


# =========================================================================== main
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subsets of the epoch and fewer rounds (~1-2 min)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="BLAS / torch threads for every section (default: all cores, what both libraries use "
                         "out of the box); the headline row is measured at 1 thread and at this count")
    ap.add_argument("--rounds", type=int, default=None, help="epochs per contender, best taken (default 5, quick 2)")
    ap.add_argument("--json", default=str(HERE / "results" / "bench_mlp.json"), help="output JSON (plots go beside it)")
    ap.add_argument("--sections", default="workloads,inference,scaling",
                    help="comma-separated subset of: workloads, inference, scaling")
    ap.add_argument("--isolated", action="store_true",
                    help="also run the headline row with every contender in its own subprocess")
    ap.add_argument("--scaling-threads", default=None,
                    help="comma-separated thread counts for the scaling section (default: --threads); "
                         "plots of other counts get a _<N>t suffix")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-contender memory subprocesses")
    ap.add_argument("--max-wait", type=float, default=None,
                    help="before each section wait up to this many seconds for other processes to go quiet "
                         "(default 60, quick 0)")
    ap.add_argument("--retries", type=int, default=None,
                    help="re-measure a row whose best rounds overlapped other processes' work (> 0.25 cores), "
                         "up to this many times (default 2, quick 0)")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        print("RESULT " + json.dumps(worker(json.loads(args._worker))), flush=True)
        return {}

    common.warn_openblas_env()
    rounds = args.rounds or (2 if args.quick else 5)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    memory = not args.no_memory
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else 60.0)
    retries = args.retries if args.retries is not None else (0 if args.quick else 2)
    common.torch_or_none()  # load torch (if present) so thread settings reach it
    t_start = time.perf_counter()
    data = common.load_data()
    print(f"data: {data['source']}: {len(data['X_train']):,} train / {len(data['X_val']):,} validation")
    n_train = 5000 if args.quick else None
    src = "mnist" if data["source"] != "random" else "random"
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    out = {"env": common.environment(), "args": vars(args), "data": data["source"], "rounds": rounds,
           "gemm_peak": {}, "gemm_peak_runs": {}, "waits": [], "workloads": [], "isolated": []}
    head_threads = sorted({1, args.threads})

    def save():
        out["total_s"] = time.perf_counter() - t_start
        json_path.write_text(json.dumps(out, indent=1, default=float))

    def peak_for(t):
        """Re-measure the GEMM peak for ``t`` threads; keep the best ever seen (contention only lowers it)."""
        with common.threads(t):
            m = common.gemm_peak()
        out["gemm_peak_runs"].setdefault(str(t), []).append(m["gflops"])
        old = out["gemm_peak"].get(str(t))
        if old is None or m["gflops"] > old["gflops"]:
            out["gemm_peak"][str(t)] = m
        return out["gemm_peak"][str(t)]

    def quiet(what):
        if max_wait <= 0:
            return
        t0 = time.perf_counter()
        load = common.wait_for_quiet(max_wait)
        out["waits"].append({"before": what, "waited_s": time.perf_counter() - t0, **load})
        if load["foreign_cores"] >= 0.15:
            print(f"note: machine still busy before {what} ({load['foreign_cores']:.2f} cores used by other "
                  f"processes after waiting {max_wait:.0f} s)", file=sys.stderr)

    def retry(fn):
        return until_quiet(fn, retries, max_wait)

    for t in head_threads:
        peak_for(t)
        print(f"GEMM peak (float32 2048^3 matmul, {t} thread(s)): {out['gemm_peak'][str(t)]['gflops']:.1f} GFLOP/s")
    print("BLAS:", ", ".join(f"{b['internal_api']} {b.get('version')} {b.get('architecture', '')} "
                             f"({b['num_threads']} threads)" for b in out["env"]["blas"] if b["user_api"] == "blas"))
    if "workloads" in sections:
        for wl in WORKLOADS:
            for t in (head_threads if wl is HEADLINE else [args.threads]):
                quiet(f"{wl.key}, {t} thread(s)")
                r = retry(lambda: bench_workload(wl, data, t, rounds, n_train=n_train, memory=memory, peak=peak_for(t)))
                out["workloads"].append(r)
                print_workload(r)
                if args.isolated and wl is HEADLINE:
                    iso = {"threads": t, "contenders": {}}
                    for name in r["contenders"]:
                        iso["contenders"][name] = retry(lambda: {"contenders": {name: measure_in_subprocess(
                            wl, name, t, n_train or common.N_TRAIN, common.N_VAL, rounds, data=src)}})["contenders"][name]
                    out["isolated"].append(iso)
                    rows = [[n, _f(r["contenders"][n]["best_s"]), _f(s.get("best_s")),
                             _f(s.get("best_s", math.nan) / r["contenders"][n]["best_s"], ".2f"),
                             _f(s.get("val_acc"), ".4f"), _f(s.get("peak_mb"), ".0f"), _f(s.get("foreign_cores_best"), ".2f")]
                            for n, s in iso["contenders"].items()]
                    print(f"-- isolated check, {t} thread(s): each contender alone in a fresh process, best of {rounds}")
                    print(common.fmt_table(["contender", "in-process s", "isolated s", "isolated/in-process",
                                            "val acc", "peak MB", "busy"], rows))
                save()
    if "inference" in sections:
        n_images = {1: 500, 1000: 5000} if args.quick else None
        for t in head_threads[::-1]:
            quiet(f"inference, {t} thread(s)")
            r = retry(lambda: bench_inference(data, t, rounds, n_images=n_images))
            out["inference" if t == args.threads else f"inference_{t}t"] = r
            print_inference(r)
        save()
    if "scaling" in sections:
        scaling_threads = [int(t) for t in (args.scaling_threads or str(args.threads)).split(",")]
        out["plots"] = []
        for t in scaling_threads:
            quiet(f"scaling, {t} thread(s)")
            r = bench_scaling(data, t, 1 if args.quick else 3, quick=args.quick, memory=memory, peak=peak_for(t),
                              retries=retries, max_wait=max_wait)
            out["scaling" if t == args.threads else f"scaling_{t}t"] = r
            print_scaling(r)
            out["plots"] += plot_scaling(r, json_path.parent, "" if t == args.threads else f"_{t}t")
            save()
        print("plots:", ", ".join(out["plots"]))
    out["targets"] = check_targets(out)
    if out["targets"]:
        print("\n== Targets of the issue")
        print(common.fmt_table(["target", "where", "measured", "met"],
                               [[t["target"], t["where"], t["value"], "yes" if t["pass"] else "NO"]
                                for t in out["targets"]]))
    save()
    print(f"\nwrote {json_path} ({out['total_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
