"""Training from a memory-mapped data set: peak memory stays flat as the file grows.

Writes raw IDX files of 1x, 4x and 16x MNIST's training-set size (random uint8 images
with a learnable pattern), then trains one epoch of a 784-100-10 MLP on each file through
``read_idx(path, mmap=True)`` in a fresh process and reports the peak of the process's
anonymous memory (RssAnon: what the process allocated itself, as opposed to file pages
the kernel caches and can drop) next to the file size.

Run::

    python benchmarks/bench_memmap.py [--sizes 1,4,16] [--dir /tmp/scratchnn-memmap]
    python benchmarks/bench_mlp.py --sections memmap [--memmap-sizes 1,4,16]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .common import module_command

MNIST_TRAIN = 60_000


def rss_anon_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return -1


def make_file(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """Write ``n`` 28x28 uint8 images in chunks (never all in memory); return the labels."""
    from scratchnn.datasets import write_idx

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    header_path = path.with_suffix(".tmp")
    write_idx(header_path, np.zeros((1, 28, 28), np.uint8))  # a valid header for shape (1, 28, 28)
    header = bytearray(header_path.read_bytes()[:16])
    header_path.unlink()
    header[4:8] = n.to_bytes(4, "big")
    with open(path, "wb") as f:
        f.write(header)
        for i in range(0, n, 20_000):
            block = rng.integers(0, 60, (min(20_000, n - i), 28, 28), dtype=np.uint8)
            labels = y[i:i + len(block)]
            for c in range(10):  # class c lights up row band c: learnable, like a real data set
                block[labels == c, 2 * c + 4:2 * c + 6, 4:24] = 255
            f.write(block.tobytes())
    return y


def train_on(path: str, labels_path: str) -> dict:
    """Child process: train one epoch from the memory-mapped file, sampling RssAnon."""
    import scratchnn as snn
    from scratchnn.datasets import read_idx
    from scratchnn.layers import Dense, Flatten, ReLU, Standardize

    peak = [rss_anon_kb()]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_anon_kb())
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    base = rss_anon_kb()
    X = read_idx(path, mmap=True)
    y = np.load(labels_path)
    snn.set_seed(0)
    model = snn.Sequential([Standardize(axis="global").adapt(X), Flatten(), Dense(100), ReLU(), Dense(10)])
    model.compile(snn.optimizers.SGD(0.05), "cross_entropy")
    t0 = time.perf_counter()
    hist = model.fit(X, y, epochs=1, batch_size=128, verbose=0)
    seconds = time.perf_counter() - t0
    stop.set()
    peak[0] = max(peak[0], rss_anon_kb())
    return {"samples": len(X), "file_mb": os.path.getsize(path) / 2**20, "seconds": seconds,
            "base_anon_mb": base / 1024, "peak_anon_mb": peak[0] / 1024,
            "train_accuracy": hist["accuracy"][-1]}


def bench_memmap(sizes=(1, 4, 16), folder=None, base: int = MNIST_TRAIN, verbose: bool = True) -> list:
    """One row per size: a file of ``size * base`` images, trained on in a fresh process (then deleted)."""
    folder = Path(folder or tempfile.mkdtemp(prefix="scratchnn-memmap-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    if verbose:
        print(f"{'size':>5} {'samples':>9} {'file MB':>8} {'peak anon MB':>13} {'s/epoch':>8} {'train acc':>9}")
    for k in sizes:
        path = folder / f"images-{k}x"
        y = make_file(path, k * base, seed=k)
        labels = folder / f"labels-{k}x.npy"
        np.save(labels, y)
        try:
            cmd, env = module_command("benchlab.memmap", "--child", str(path), str(labels))
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        finally:
            path.unlink()
            labels.unlink()
        r = {"multiple": k, **json.loads(out.stdout.strip().splitlines()[-1])}
        rows.append(r)
        if verbose:
            print(f"{k:>4}x {r['samples']:>9,} {r['file_mb']:>8.0f} {r['peak_anon_mb']:>13.1f} {r['seconds']:>8.1f} "
                  f"{r['train_accuracy']:>9.3f}")
    return rows


def main(argv=None, default_json=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,16", help="multiples of MNIST's 60,000 training images")
    ap.add_argument("--dir", default=None, help="where to write the data files (default: a temp dir)")
    ap.add_argument("--json", default=default_json or "bench_memmap.json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(train_on(*args.child)))
        return None
    rows = bench_memmap([int(s) for s in args.sizes.split(",")], args.dir)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
