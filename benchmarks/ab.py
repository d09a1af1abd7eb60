"""A/B timing of two scratchnn source trees on the suite's headline workloads, alternating rounds.

Each round runs every workload once per tree, each in a fresh process (so neither inherits the other's
caches or threads), trees alternating; the best time of each is kept and the new/old ratio printed.

    git worktree add /tmp/old <commit>
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab.py /tmp/old/src src --rounds 5

Workloads (random data of MNIST's shape; speed only): ``mlp-b32`` (784-100-200-10, SGD, batch 32),
``mlp-b8``, ``mlp-b1`` (1,000 steps), ``wide-b512`` (784-1024-1024-10, SGD, batch 512), ``adam-bn``
(784-512-256-10 with batch norm and dropout, Adam, batch 128), ``cnn`` (the suite's CNN, Adam, batch 64,
1,280 samples), ``cnn-bn`` (the cnn-bn preset's network without its augmentation, Adam, batch 64, 1,280
samples), ``infer-b1`` / ``infer-b1000`` (the MLP's predict).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r'''
import json, sys, time
import numpy as np
import scratchnn as snn
from scratchnn.layers import BatchNorm, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from scratchnn.optimizers import SGD, Adam

name, threads = sys.argv[1], int(sys.argv[2])
snn.set_num_threads(threads)
from threadpoolctl import threadpool_limits
threadpool_limits(threads, user_api="blas")
rng = np.random.default_rng(0)
snn.set_seed(0)

def mlp(widths):
    layers = [Flatten()]
    for w in widths:
        layers += [Dense(w, init="he_normal"), ReLU()]
    return snn.Sequential(layers + [Dense(10)])

if name.startswith("infer"):
    m = mlp([100, 200]).compile(SGD(0.01), "softmax_cross_entropy")
    m.build((1, 28, 28))
    b = int(name.split("-b")[1])
    X = rng.random((b, 1, 28, 28), dtype=np.float32)
    reps = 20000 if b == 1 else 60
    m.predict(X)
    t0 = time.perf_counter()
    for _ in range(reps):
        m.predict(X)
    per_image = (time.perf_counter() - t0) / (reps * b)
    print(json.dumps({"seconds": per_image * 50000}))
    sys.exit()
spec = {"mlp-b32": ([100, 200], SGD(0.01), 32, 50000), "mlp-b8": ([100, 200], SGD(0.01), 8, 12000),
        "mlp-b1": ([100, 200], SGD(0.01), 1, 1000), "wide-b512": ([1024, 1024], SGD(0.01), 512, 20480),
        "adam-bn": (None, Adam(1e-3), 128, 25600), "cnn": (None, Adam(1e-3), 64, 1280),
        "cnn-bn": (None, Adam(3e-3), 64, 1280)}[name]
widths, opt, batch, n = spec
if name == "adam-bn":
    m = snn.Sequential([Flatten(), Dense(512, use_bias=False), BatchNorm(), ReLU(), Dropout(0.2),
                        Dense(256, use_bias=False), BatchNorm(), ReLU(), Dropout(0.2), Dense(10)])
elif name == "cnn":
    m = snn.Sequential([Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2), Conv2D(64, 3, padding="same"), ReLU(),
                        MaxPool2D(2), Flatten(), Dense(128, init="he_normal"), ReLU(), Dropout(0.3), Dense(10)])
elif name == "cnn-bn":  # the cnn-bn preset's network, without its augmentation
    layers = []
    for c in (32, 64, 128):
        layers += [Conv2D(c, 3, padding="same", use_bias=False), BatchNorm2D(), ReLU(), MaxPool2D(2)]
    m = snn.Sequential(layers + [Flatten(), Dense(128, init="he_normal", use_bias=False), BatchNorm(), ReLU(),
                                 Dropout(0.4), Dense(10)])
else:
    m = mlp(widths)
m.compile(opt, "softmax_cross_entropy")
X = rng.random((n, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, n)
m.fit(X[:batch * 4], y[:batch * 4], epochs=1, batch_size=batch, verbose=0)  # warm up
t0 = time.perf_counter()
m.fit(X, y, epochs=1, batch_size=batch, verbose=0)
print(json.dumps({"seconds": (time.perf_counter() - t0) * 50000 / n}))
'''

WORKLOADS = ["mlp-b32", "mlp-b8", "mlp-b1", "wide-b512", "adam-bn", "cnn", "cnn-bn", "infer-b1", "infer-b1000"]


def run(tree, name, threads):
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    out = subprocess.run([sys.executable, "-c", WORKER, name, str(threads)], env=env, capture_output=True, text=True,
                         timeout=900)
    if out.returncode:
        raise SystemExit(f"{tree} {name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="src folder of the old tree")
    ap.add_argument("new", help="src folder of the new tree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for name in args.workloads.split(","):
            times = {"old": [], "new": []}
            for r in range(args.rounds):
                for which in (("old", "new") if r % 2 == 0 else ("new", "old")):
                    times[which].append(run(getattr(args, which), name, threads))
            old, new = min(times["old"]), min(times["new"])
            rows.append({"workload": name, "threads": threads, "old": old, "new": new, "new_over_old": new / old,
                         "rounds": times})
            print(f"{name:12s} {threads} thread(s)  old {old:8.3f} s  new {new:8.3f} s  new/old {new / old:.3f}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
