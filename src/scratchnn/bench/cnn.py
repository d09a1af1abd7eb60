"""The CNN workload: the CNN issue's network, in scratchnn and in PyTorch with the same weights.

Network: Conv(32, 3x3, same)-ReLU-MaxPool2-Conv(64, 3x3, same)-ReLU-MaxPool2-Dense(128)-ReLU-
Dense(10), Adam(1e-3), batch 64, float32, MNIST images. It is the ``cnn`` section of the suite
(``scratchnn bench --sections cnn``) and part of its inference section; ``main`` is the
standalone ``benchmarks/bench_cnn.py``: contenders alternating round by round, the best round
reported as seconds per 10,000 training samples, with the ratio, achieved GFLOP/s against the
measured float32 GEMM peak, and the peak traced NumPy memory of a scratchnn training step next
to the largest im2col buffer. There is no NumPy floor for the CNN.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import common

BATCH = 64


@dataclass(frozen=True)
class CNNWorkload:
    """Conv(c1, 3x3, same)-ReLU-MaxPool2-Conv(c2, 3x3, same)-ReLU-MaxPool2-Dense(d)-ReLU-Dense(10), Adam."""

    key: str = "cnn"
    title: str = "CNN conv32-pool-conv64-pool-128-10, Adam(1e-3), batch 64"
    batch: int = BATCH
    lr: float = 1e-3
    channels: tuple = (32, 64)
    dense: int = 128

    kind = "cnn"
    input_shape = (1, 28, 28)
    has_numpy_floor = False
    optimizer = "adam"

    def with_(self, **kw) -> "CNNWorkload":
        return dataclasses.replace(self, **kw)

    def toy(self) -> "CNNWorkload":
        return self.with_(channels=(2, 2), dense=8)

    def _macs(self) -> tuple[int, int]:
        """Multiply-adds per sample: (first convolution, whole network)."""
        c1, c2 = self.channels
        conv1 = 28 * 28 * c1 * 9 * 1
        conv2 = 14 * 14 * c2 * 9 * c1
        dense = 7 * 7 * c2 * self.dense + self.dense * 10
        return conv1, conv1 + conv2 + dense

    def train_flops_per_sample(self) -> int:
        """Forward 2 per multiply-add, backward twice that, minus the first convolution's unused
        input gradient."""
        conv1, macs = self._macs()
        return 2 * macs * 3 - 2 * conv1

    def infer_flops_per_sample(self) -> int:
        return 2 * self._macs()[1]

    def memory_budget_bytes(self, n_data_rows: int) -> dict:
        """The issue's budget; activations = input, every layer output and the two im2col buffers."""
        c1, c2 = self.channels
        d = self.dense
        params = 9 * c1 + c1 + 9 * c1 * c2 + c2 + 49 * c2 * d + d + 10 * d + 10
        per_sample = (784 + 2 * 784 * c1 + 196 * c1 + 2 * 196 * c2 + 49 * c2 + 2 * d + 10  # layer outputs
                      + 784 * 9 + 196 * 9 * c1)  # im2col columns
        return common.budget_parts(params, 2 * params, self.batch * per_sample, n_data_rows)

    def build_scratchnn(self, seed: int = 0):
        import scratchnn as snn
        from scratchnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

        snn.set_seed(seed)
        c1, c2 = self.channels
        m = snn.Sequential([Conv2D(c1, 3, padding="same"), ReLU(), MaxPool2D(2), Conv2D(c2, 3, padding="same"), ReLU(),
                            MaxPool2D(2), Flatten(), Dense(self.dense, init="he_normal"), ReLU(), Dense(10)])
        m.compile(snn.optimizers.Adam(self.lr), "softmax_cross_entropy")
        m.build(self.input_shape)
        return m

    def build_torch(self, torch, snn_model):
        """``(nn.Sequential, Adam)`` with the scratchnn model's initial weights."""
        nn = torch.nn
        c1, c2 = self.channels
        net = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 3, padding=1),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(7 * 7 * c2, self.dense), nn.ReLU(),
                            nn.Linear(self.dense, 10))
        with torch.no_grad():  # the same initial weights: conv layouts agree, Linear is W.T
            params = [l.params for l in snn_model.layers if l.params]
            torch_layers = [l for l in net if isinstance(l, (nn.Conv2d, nn.Linear))]
            for p, t in zip(params, torch_layers):
                w = p["W"] if isinstance(t, nn.Conv2d) else p["W"].T
                t.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                t.bias.copy_(torch.from_numpy(p["b"]))
        return net, torch.optim.Adam(net.parameters(), lr=self.lr)


CNN = CNNWorkload()


def flops_per_sample() -> int:
    """Training FLOPs of one sample of the issue's CNN (about 25 MFLOP)."""
    return CNN.train_flops_per_sample()


def peak_step_memory(model, X, y, batch: int = BATCH) -> dict:
    """Peak traced NumPy memory of a training step (tracemalloc sees NumPy buffers)."""
    X = common.as_images(X)
    xb, yb = X[:batch], y[:batch]
    model.train_step(xb, yb)
    tracemalloc.start()
    model.train_step(xb, yb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    c1 = model.layers[0].params["W"].shape[0]
    im2col = len(xb) * 14 * 14 * 9 * c1 * 4  # the largest column buffer: second convolution
    return {"peak_step_mb": peak / 2**20, "largest_im2col_mb": im2col / 2**20, "ratio": peak / im2col}


def main(argv=None, default_json=None):
    """``benchmarks/bench_cnn.py``: scratchnn vs torch on the CNN alone, seconds per 10,000 samples."""
    from . import machine
    from .measure import time_rounds
    from .runners import make_runners

    ap = argparse.ArgumentParser(description="The CNN benchmark: scratchnn against PyTorch CPU eager on the same "
                                             "network, same data, same weights.")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--data-dir", help="folder holding the MNIST files")
    ap.add_argument("--json", default=default_json or "bench_cnn.json")
    args = ap.parse_args(argv)
    machine.warn_openblas_env()
    data = common.load_data(n_train=args.samples, n_val=16, data_dir=args.data_dir)
    X, y = data["X_train"], data["y_train"]
    if common.torch_or_none() is None:
        print("PyTorch is not installed: measuring scratchnn alone (pip install torch for the comparison)")
    fps = flops_per_sample()
    results = {"flops_per_sample": fps, "samples": len(X), "batch": BATCH, "rows": []}
    for n in (int(t) for t in args.threads.split(",")):
        with common.threads(n):
            peak_run = machine.gemm_peak()
            peak = peak_run["gflops"]
            runners = make_runners(CNN, ("scratchnn", "torch"), quiet=True)
            times, loads = time_rounds(runners, X, y, args.rounds, peak_run["probe_gflops"])
            mem = peak_step_memory(runners["scratchnn"].model, X, y)
        per10k = {k: min(v) * 10_000 / len(X) for k, v in times.items()}
        row = {"threads": n, "gemm_peak_gflops": peak, "memory": mem,
               "host_speed_best": {k: loads[k][v.index(min(v))]["host_speed"] for k, v in times.items()}}
        for k, v in per10k.items():
            g = fps * 10_000 / v / 1e9
            row[k] = {"s_per_10k": v, "gflops": g, "pct_peak": 100 * g / peak}
        if "torch" in row:
            row["scratchnn_vs_torch"] = per10k["scratchnn"] / per10k["torch"]
        results["rows"].append(row)
        line = (f"{n} thread(s): scratchnn {per10k['scratchnn']:.2f} s/10k ({row['scratchnn']['gflops']:.1f} GFLOP/s, "
                f"{row['scratchnn']['pct_peak']:.0f}% of {peak:.0f})")
        if "torch" in row:
            line += (f" | torch {per10k['torch']:.2f} s/10k ({row['torch']['gflops']:.1f} GFLOP/s) | "
                     f"scratchnn/torch time {row['scratchnn_vs_torch']:.2f}x")
        print(line)
        print("   host speed before the best epochs (GEMM probe / quiet reading): "
              + ", ".join(f"{k} {v:.2f}" for k, v in row["host_speed_best"].items()))
        if min(row["host_speed_best"].values()) < machine.HOST_FAST:
            print("   WARNING: the host ran slowed before a best epoch: figures are unreliable")
        print(f"   peak traced memory of a training step {mem['peak_step_mb']:.1f} MB = {mem['ratio']:.2f}x "
              f"the largest im2col buffer ({mem['largest_im2col_mb']:.1f} MB)")
    results["env"] = machine.environment(include_torch=common.torch_or_none() is not None)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results
