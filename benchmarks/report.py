"""Markdown tables from a suite JSON (bench_mlp.py; what benchmarks/README.md's results section shows).

    python benchmarks/report.py benchmarks/results/bench_mlp.json
"""
from __future__ import annotations

import json
import sys


def _f(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def _x(ratio) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def workloads(out) -> str:
    rows = []
    for r in out.get("workloads", []):
        base = r["contenders"].get("scratchnn", {}).get("best_s")
        for name, s in r["contenders"].items():
            mem = s.get("memory", {})
            rows.append([r["workload"]["title"].split(",")[0] + f", b{r['workload']['batch']}", r["threads"], name,
                         _f(s["epoch_s"]), _f(s["best_s"] / base, ".2f") + "x" if base else "-",
                         _f(s["gflops"], ".1f"), _f(s["pct_peak"], ".1f"), _f(mem.get("peak_mb"), ".0f"),
                         _f(r.get("memory_budget_mb"), ".0f"), _f(s["val_acc"], ".4f"), s.get("epochs_trained", "-"),
                         _f(s.get("foreign_cores_best"), ".2f"), _f(s.get("host_speed_best"), ".2f")])
    return table(["workload", "threads", "contender", "s/epoch", "time/scratchnn", "GFLOP/s", "%peak", "peak MB",
                  "budget MB", "val acc", "epochs", "busy", "host"], rows)


def isolated(out) -> str:
    rows = []
    inproc = {(r["threads"], n): s for r in out.get("workloads", []) if r["workload"]["key"] == "mlp_100_200"
              for n, s in r["contenders"].items()}
    for iso in out.get("isolated", []):
        for name, s in iso["contenders"].items():
            ip = inproc.get((iso["threads"], name), {})
            rows.append([iso["threads"], name, _f(ip.get("best_s")), _f(s.get("best_s")),
                         _f(s.get("best_s", float("nan")) / ip["best_s"], ".2f") if ip else "-",
                         _f(s.get("foreign_cores_best"), ".2f"), _f(s.get("host_speed_best"), ".2f")])
    return table(["threads", "contender", "in-process s", "isolated s", "isolated / in-process", "busy", "host"], rows)


def inference(out) -> str:
    rows = []
    for key in sorted(k for k in out if k.startswith("inference")):
        r = out[key]
        for bs, row in r["batches"].items():
            for name, s in row.items():
                rows.append([r["workload"].split(",")[0], r["threads"], bs, name, f"{s['images_per_s']:,.0f}",
                             _f(s.get("speedup_of_scratchnn"), ".2f") + "x", _f(s.get("foreign_cores_best"), ".2f")])
    return table(["workload", "threads", "batch", "contender", "images/s", "scratchnn speedup", "busy"], rows)


def scaling(out) -> str:
    parts = []
    for key in sorted(k for k in out if k.startswith("scaling")):
        sc = out[key]
        for axis in ("batch", "width"):
            rows = []
            for p in sc[axis]:
                c = p["contenders"]
                sn, tc, npy = c.get("scratchnn", {}), c.get("torch", {}), c.get("numpy", {})
                speeds = [s["host_speed_best"] for s in c.values() if s.get("host_speed_best") is not None]
                rows.append([p["value"], f"{sn.get('samples', 0):,}", _f(sn.get("epoch_s")), _f(tc.get("epoch_s")),
                             _x(p.get("ratios", {}).get("torch_over_scratchnn")),
                             _x(p.get("ratios", {}).get("numpy_over_scratchnn")),
                             _f(sn.get("pct_peak"), ".1f"), _f(tc.get("pct_peak"), ".1f"), _f(npy.get("pct_peak"), ".1f"),
                             _f(sn.get("memory", {}).get("peak_mb"), ".0f"), _f(tc.get("memory", {}).get("peak_mb"), ".0f"),
                             _f(p.get("memory_budget_mb"), ".0f"),
                             _f(max((s.get("foreign_cores_best") or 0) for s in c.values()), ".2f"),
                             _f(min(speeds) if speeds else None, ".2f")])
            parts.append(f"Scaling vs {axis}, {sc['threads']} thread(s), GEMM peak {sc['gemm_peak_gflops']:.1f} "
                         f"GFLOP/s, s/epoch extrapolated from `samples`:\n\n" + table(
                             [axis, "samples", "scratchnn s/epoch", "torch s/epoch", "torch/scratchnn", "numpy/scratchnn",
                              "scratchnn %peak", "torch %peak", "numpy %peak", "scratchnn MB", "torch MB", "budget MB",
                              "busy", "host"], rows))
    return "\n\n".join(parts)


def targets(out) -> str:
    return table(["target", "where", "measured", "met"],
                 [[t["target"], t["where"], t["value"], "yes" if t["pass"] else "**no**"]
                  for t in out.get("targets", [])])


def main(path):
    out = json.load(open(path))
    env = out["env"]
    blas = ", ".join(f"{b['internal_api']} {b.get('version')} kernel {b.get('architecture')}"
                     for b in env["blas"] if b["user_api"] == "blas")
    print(f"Environment: {env['cpu']}, {env['cores']} cores; Python {env['python']}, NumPy {env['numpy']} "
          f"({blas}), "
          f"torch {env.get('torch')}; scratchnn at git {str(env.get('git_commit'))[:7]}"
          f"{' + uncommitted src' if env.get('git_dirty') else ''} (src sha256 {env.get('src_sha256', '?')}). "
          f"GEMM peak (GFLOP/s): " + ", ".join(f"{t} thread(s) {p['gflops']:.1f}" for t, p in out["gemm_peak"].items())
          + f". Data: {out['data']}. Total {out.get('total_s', 0) / 60:.0f} min.\n")
    for title, fn in (("Workloads", workloads), ("Isolated check (headline)", isolated), ("Inference", inference),
                      ("Scaling", scaling), ("Targets", targets)):
        body = fn(out)
        if body.count("\n") > 1:
            print(f"### {title}\n\n{body}\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/bench_mlp.json")
