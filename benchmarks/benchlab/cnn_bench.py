"""``benchmarks/bench_cnn.py``: the suite's CNN alone, scratchnn against PyTorch, seconds per 10,000 samples
and the traced memory of a step."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import common, machine
from .cnn import BATCH, CNN, CNN_BN, flops_per_sample, peak_step_memory  # noqa: F401
from .measure import time_rounds
from .runners import make_runners


def main(argv=None, default_json=None):
    """``benchmarks/bench_cnn.py``: scratchnn vs torch on the CNN alone, seconds per 10,000 samples."""
    ap = argparse.ArgumentParser(description="The CNN benchmark: scratchnn against PyTorch CPU eager on the same "
                                             "network, same data, same weights.")
    ap.add_argument("--network", choices=("cnn", "cnn-bn"), default="cnn",
                    help="cnn: the suite's CNN; cnn-bn: the cnn-bn preset's network (batch norm, three stages)")
    ap.add_argument("--threads", type=common.whole_numbers, default="1,2")
    ap.add_argument("--rounds", type=common.whole_number, default=3)
    ap.add_argument("--samples", type=common.whole_number, default=10_000)
    ap.add_argument("--data-dir", help="folder holding the MNIST files")
    ap.add_argument("--json", default=default_json or "bench_cnn.json")
    args = ap.parse_args(argv)
    machine.warn_openblas_env()
    data = common.load_data(n_train=args.samples, n_val=16, data_dir=args.data_dir)
    X, y = data["X_train"], data["y_train"]
    if common.torch_or_none() is None:
        print("PyTorch is not installed: measuring scratchnn alone (pip install torch for the comparison)")
    wl = CNN_BN if args.network == "cnn-bn" else CNN
    print(wl.title)
    fps = wl.train_flops_per_sample()
    results = {"network": wl.key, "flops_per_sample": fps, "samples": len(X), "batch": BATCH, "rows": []}
    for n in args.threads:
        with common.threads(n):
            peak_run = machine.gemm_peak()
            peak = peak_run["gflops"]
            runners = make_runners(wl, ("scratchnn", "torch"), quiet=True)
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
