"""Reporting: console tables, scaling plots (matplotlib, imported when plotting) and the issue's targets."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common
from .common import _f
from .machine import HOST_FAST
from .mlp import HEADLINE


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
                     _f(s["val_acc"], ".4f"), _f(s.get("foreign_cores_best"), ".2f"),
                     _f(s.get("host_speed_best"), ".2f")])
    print(common.fmt_table(["contender", "s/epoch", "median", "time/scratchnn", "GFLOP/s", "%peak", "peak MB",
                            "train MB", "val acc", "busy", "host"], rows))
    busy = max((s.get("foreign_cores_best") or 0) for s in c.values())
    if busy > 0.2:
        print(f"WARNING: other processes used up to {busy:.2f} cores during the best rounds: figures are unreliable")
    warn_if_slowed(r)
    if "memory_budget_mb" in r:
        print(f"memory budget (2 x (params + opt state + 1 batch activations + data)): {r['memory_budget_mb']:.0f} MB")
    if "scratchnn" in c and "fit_call_overhead_s" in c["scratchnn"]:
        s = c["scratchnn"]
        print(f"scratchnn fit(): {s['fit_internal_best_s']:.3f} s inside the epoch loop + "
              f"{s['fit_call_overhead_s']:.3f} s per call (argument checks, History)")


def warn_if_slowed(r: dict, what: str = "a best round") -> None:
    """A WARNING line when the host-speed probe read below ``HOST_FAST`` before ``what``."""
    speeds = [s["host_speed_best"] for s in r["contenders"].values() if s.get("host_speed_best") is not None]
    if speeds and min(speeds) < HOST_FAST:
        print(f"WARNING: the host ran at {min(speeds):.2f} of its quiet GEMM speed before {what}: "
              "figures are unreliable")


def print_inference(r: dict) -> None:
    print(f"\n== Inference throughput, {r['workload']} | {r['threads']} thread(s) | best of {r['rounds']}")
    rows = []
    for bs, row in r["batches"].items():
        for name, s in row.items():
            rows.append([f"batch {bs}", name, f"{s['images_per_s']:,.0f}", _f(s.get("gflops"), ".2f"),
                         _f(s.get("speedup_of_scratchnn"), ".2f") + "x", _f(s.get("foreign_cores_best"), ".2f")])
    print(common.fmt_table(["batch", "contender", "images/s", "GFLOP/s", "scratchnn speedup", "busy"], rows))


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
                             _f(s.get("foreign_cores_best"), ".2f"), _f(s.get("host_speed_best"), ".2f")])
        print(common.fmt_table([axis, "contender", "samples", "s/epoch", "GFLOP/s", "%peak", "peak MB", "train MB",
                                "budget MB", "time/scratchnn", "busy", "host"], rows))
        for p in pts:
            warn_if_slowed(p, f"a best round of {axis} {p['value']}")


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
        fig.suptitle(f"scratchnn vs PyTorch and the NumPy loop, {r['threads']} thread(s)")
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
    for key in [k for k in out if k.startswith("inference") and out[k].get("key", HEADLINE.key) == HEADLINE.key]:
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


def print_summary(out: dict) -> None:
    """One line per measured workload: scratchnn's epoch time and every contender's time ratio."""
    rows = []
    for r in out.get("workloads", []):
        c, rat = r["contenders"], r.get("ratios", {})
        sn = c.get("scratchnn", {})
        rows.append([r["workload"]["title"].split(",")[0] + f", b{r['workload']['batch']}", r["threads"],
                     _f(sn.get("epoch_s")), _f(rat.get("torch_over_scratchnn"), ".2f"),
                     _f(rat.get("numpy_over_scratchnn"), ".2f"), _f(sn.get("pct_peak"), ".1f"),
                     _f(sn.get("memory", {}).get("peak_mb"), ".0f"), _f(sn.get("val_acc"), ".4f")])
    for key in sorted(k for k in out if k.startswith("inference")):
        inf = out[key]
        for bs, row in inf["batches"].items():
            sn = row.get("scratchnn", {})
            name = inf["workload"].split(",")[0]
            rows.append([f"{name} inference, b{bs} (images/s {_f(sn.get('images_per_s'), ',.0f')})", inf["threads"], "-",
                         _f(row.get("torch", {}).get("speedup_of_scratchnn"), ".2f"),
                         _f(row.get("numpy", {}).get("speedup_of_scratchnn"), ".2f"), "-", "-", "-"])
    if rows:
        print("\n== Summary (torch, numpy: their time / scratchnn's; > 1 means scratchnn is faster)")
        print(common.fmt_table(["workload", "threads", "scratchnn s/epoch", "torch", "numpy", "%peak", "peak MB",
                                "val acc"], rows))


def print_memmap(rows: list) -> None:
    print("\n== Training from a memory-mapped file (784-100-10, one epoch)")
    print(common.fmt_table(["size", "samples", "file MB", "peak anon MB", "s/epoch", "train acc"],
                           [[f"{r['multiple']}x", f"{r['samples']:,}", f"{r['file_mb']:.0f}",
                             f"{r['peak_anon_mb']:.1f}", f"{r['seconds']:.1f}", f"{r['train_accuracy']:.3f}"]
                            for r in rows]))
