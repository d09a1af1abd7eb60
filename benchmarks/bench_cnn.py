"""The CNN benchmark: scratchnn against PyTorch CPU eager on the same network, same data, same weights.

Network (the CNN issue's): Conv(32, 3x3, same)-ReLU-MaxPool2-Conv(64, 3x3, same)-ReLU-MaxPool2-
Dense(128)-ReLU-Dense(10), Adam(1e-3), batch 64, float32, MNIST images (random ones of the same
shape when the files are not at hand). Contenders alternate round by round; the best round is
reported as seconds per 10,000 training samples, with the ratio, achieved GFLOP/s against the
measured float32 GEMM peak, and the peak traced NumPy memory of a scratchnn training step next
to the largest im2col buffer.

Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cnn.py [--threads 1,2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np

try:
    from . import common
except ImportError:
    import common

HERE = Path(__file__).resolve().parent
BATCH = 64


def flops_per_sample() -> int:
    """Training FLOPs of one sample: forward 2 per multiply-add, backward twice that, minus
    the first convolution's unused input gradient."""
    conv1 = 28 * 28 * 32 * 9 * 1
    conv2 = 14 * 14 * 64 * 9 * 32
    dense = 7 * 7 * 64 * 128 + 128 * 10
    macs = conv1 + conv2 + dense
    return 2 * macs * 3 - 2 * conv1


def scratchnn_model(seed=0):
    import scratchnn as snn
    from scratchnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    snn.set_seed(seed)
    m = snn.Sequential([Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2), Conv2D(64, 3, padding="same"), ReLU(),
                        MaxPool2D(2), Flatten(), Dense(128, init="he_normal"), ReLU(), Dense(10)])
    m.compile(snn.optimizers.Adam(1e-3), "softmax_cross_entropy")
    m.build((1, 28, 28))
    return m


def torch_model(torch, snn_model):
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(7 * 7 * 64, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    with torch.no_grad():  # the same initial weights: conv layouts agree, Linear is W.T
        params = [l.params for l in snn_model.layers if l.params]
        torch_layers = [l for l in net if isinstance(l, (nn.Conv2d, nn.Linear))]
        for p, t in zip(params, torch_layers):
            w = p["W"] if isinstance(t, nn.Conv2d) else p["W"].T
            t.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            t.bias.copy_(torch.from_numpy(p["b"]))
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)


def train_scratchnn(model, X, y):
    t0 = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=BATCH, verbose=0)
    return time.perf_counter() - t0


def train_torch(torch, net, opt, X, y, seed=0):
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(X)))
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for i in range(0, len(X), BATCH):
        idx = order[i:i + BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def peak_step_memory(model, X, y) -> dict:
    """Peak traced NumPy memory of training steps (tracemalloc sees NumPy buffers)."""
    xb, yb = X[:BATCH], y[:BATCH]
    model.train_step(xb, yb)
    tracemalloc.start()
    model.train_step(xb, yb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    im2col = BATCH * 14 * 14 * 9 * 32 * 4  # the largest column buffer: second convolution
    return {"peak_step_mb": peak / 2**20, "largest_im2col_mb": im2col / 2**20, "ratio": peak / im2col}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--json", default=str(HERE / "results" / "bench_cnn.json"))
    args = ap.parse_args(argv)
    common.warn_openblas_env()
    data = common.load_data(n_train=args.samples, n_val=16)
    X = data["X_train"].reshape(-1, 1, 28, 28).astype(np.float32)
    y = data["y_train"].astype(np.int64)
    torch = common.torch_or_none()
    if torch is None:
        print("PyTorch is not installed: measuring scratchnn alone (pip install torch==2.13.0 for the comparison)")
    fps = flops_per_sample()
    results = {"flops_per_sample": fps, "samples": len(X), "batch": BATCH, "rows": []}
    for n in (int(t) for t in args.threads.split(",")):
        with common.threads(n):
            peak = common.gemm_peak()["gflops"]
            model = scratchnn_model()
            contenders = {"scratchnn": lambda: train_scratchnn(model, X, y)}
            if torch is not None:
                net, opt = torch_model(torch, model)
                contenders["torch"] = lambda: train_torch(torch, net, opt, X, y)
            best = {k: float("inf") for k in contenders}
            for _ in range(args.rounds):
                for name, run in contenders.items():
                    best[name] = min(best[name], run())
            mem = peak_step_memory(model, X, y)
        per10k = {k: v * 10_000 / len(X) for k, v in best.items()}
        row = {"threads": n, "gemm_peak_gflops": peak, "memory": mem}
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
        print(f"   peak traced memory of a training step {mem['peak_step_mb']:.1f} MB = {mem['ratio']:.2f}x "
              f"the largest im2col buffer ({mem['largest_im2col_mb']:.1f} MB)")
    results["env"] = common.environment(include_torch=torch is not None)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    main()
