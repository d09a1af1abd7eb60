"""The suite: ``python benchmarks/bench_mlp.py``.

Sections (``--sections``, comma-separated):

* ``workloads``: the three MLPs (the headline at 1 thread and at ``--threads``);
* ``cnn``: the CNN issue's network at batch 64 (``--cnn-samples`` per epoch, extrapolated);
* ``cnn-bn``: the ``cnn-bn`` preset's network (three conv-BN-ReLU-pool stages; no augmentation) at
  batch 64, likewise;
* ``inference``: images/s of the headline MLP and of the CNN at batch 1 and batch 1000;
* ``scaling``: the headline MLP vs batch size and 784-W-W-10 vs width, scratchnn vs torch and the
  NumPy loop;
* ``memmap``: training from a memory-mapped file of 1x/4x/16x MNIST (not in the default list).

Contenders alternate round by round (best of ``--rounds``); PyTorch is skipped with a note
when not importable. Prints one table per section, a summary and the issue's targets; writes
JSON (every round, the environment, the targets) and, with matplotlib, PNG scaling curves.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from scratchnn.errors import UsageError

from .common import whole_numbers

SECTIONS = ("workloads", "cnn", "cnn-bn", "inference", "scaling", "memmap")
DEFAULT_SECTIONS = "workloads,cnn,cnn-bn,inference,scaling"
CONTENDER_NAMES = ("scratchnn", "torch", "numpy")




def parse_lists(args) -> tuple[list, tuple]:
    """``(sections, contenders)`` from ``args``, validated."""
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad or not sections:
        raise UsageError(f"--sections {args.sections!r}: choose from {', '.join(SECTIONS)}")
    contenders = tuple(c.strip() for c in args.contenders.split(",") if c.strip())
    if any(c not in CONTENDER_NAMES for c in contenders) or "scratchnn" not in contenders:
        raise UsageError(f"--contenders {args.contenders!r}: a subset of {', '.join(CONTENDER_NAMES)} "
                         "including scratchnn")
    for flag, value in (("--threads", args.threads), ("--rounds", args.rounds), ("--samples", args.samples),
                        ("--cnn-samples", args.cnn_samples)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: must be >= 1")
    for flag, text in (("--memmap-sizes", args.memmap_sizes), ("--scaling-threads", args.scaling_threads)):
        try:
            whole_numbers(text or "1")
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{flag}: {e}") from None
    return sections, contenders


def add_arguments(ap: argparse.ArgumentParser, default_json: str) -> argparse.ArgumentParser:
    ap.add_argument("--quick", action="store_true", help="subsets of the epoch and fewer rounds (a few minutes)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="BLAS / torch threads for every section (default: all cores, what both libraries use "
                         "out of the box); the headline row is measured at 1 thread and at this count")
    ap.add_argument("--rounds", type=int, default=None, help="epochs per contender, best taken (default 5, quick 2)")
    ap.add_argument("--json", default=default_json, help=f"output JSON, plots go beside it (default {default_json})")
    ap.add_argument("--sections", default=DEFAULT_SECTIONS,
                    help=f"comma-separated subset of: {', '.join(SECTIONS)} (default {DEFAULT_SECTIONS})")
    ap.add_argument("--contenders", default="scratchnn,torch,numpy",
                    help="comma-separated subset of scratchnn, torch, numpy (default all)")
    ap.add_argument("--data-dir", help="folder holding the MNIST files (else $SCRATCHNN_DATA_DIR or the cache)")
    ap.add_argument("--download", action="store_true", help="download MNIST into the cache if it is not found")
    ap.add_argument("--random-data", action="store_true",
                    help="random images of MNIST's shape (speed only: accuracies are meaningless)")
    ap.add_argument("--samples", type=int, default=None,
                    help="load only this many training images (and as many validation images, at most 10,000); "
                         "epoch times are extrapolated to 50,000")
    ap.add_argument("--cnn-samples", type=int, default=None,
                    help="training images per CNN epoch, extrapolated to 50,000 (default 10,000, quick 1,000)")
    ap.add_argument("--memmap-sizes", default=None, help="memmap section: multiples of 60,000 images "
                                                         "(default 1,4,16, quick 1)")
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
    return ap


def run(args) -> dict:
    """Run the sections ``args`` asks for; returns (and writes) the JSON document."""
    from . import common, machine, report
    from .cnn import CNN, CNN_BN
    from .measure import bench_inference, bench_scaling, bench_workload, measure_in_subprocess, until_quiet
    from .mlp import HEADLINE, WORKLOADS

    machine.warn_openblas_env()
    rounds = args.rounds or (2 if args.quick else 5)
    sections, contenders = parse_lists(args)
    memory = not args.no_memory
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else 60.0)
    retries = args.retries if args.retries is not None else (0 if args.quick else 2)
    if "torch" in contenders and common.torch_or_none() is None:  # load torch now so thread settings reach it
        print("note: PyTorch is not installed: torch columns are skipped (pip install torch)", file=sys.stderr)
    t_start = time.perf_counter()
    n_load = args.samples or common.N_TRAIN
    data = common.load_data(n_load, min(common.N_VAL, n_load), data_dir=args.data_dir, download=args.download,
                            random=args.random_data)
    print(f"data: {data['source']}: {len(data['X_train']):,} train / {len(data['X_val']):,} validation")
    n_train = 5000 if args.quick and not args.samples else None
    src = "random" if data["source"] == "random" else "mnist"
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    out = {"env": machine.environment(include_torch="torch" in contenders),
           "args": {k: v for k, v in vars(args).items() if not callable(v)}, "data": data["source"], "rounds": rounds,
           "gemm_peak": {}, "gemm_peak_runs": {}, "gemm_probe_runs": {}, "waits": [], "workloads": [], "isolated": []}
    head_threads = sorted({1, args.threads})
    gemm_n = 1024 if args.quick else 2048

    def save():
        out["total_s"] = time.perf_counter() - t_start
        json_path.write_text(json.dumps(out, indent=1, default=float))

    def peak_for(t):
        """Re-measure the GEMM peak for ``t`` threads; keep the best ever seen (contention only lowers it).
        With --quick the first measurement is kept."""
        if args.quick and str(t) in out["gemm_peak"]:
            return out["gemm_peak"][str(t)]
        with common.threads(t):
            m = machine.gemm_peak(gemm_n)
        out["gemm_peak_runs"].setdefault(str(t), []).append(m["gflops"])
        out["gemm_probe_runs"].setdefault(str(t), []).append(m["probe_gflops"])
        old = out["gemm_peak"].get(str(t))
        probe = max(m["probe_gflops"], old["probe_gflops"] if old else 0.0)  # the quiet host's probe, likewise
        if old is None or m["gflops"] > old["gflops"]:
            out["gemm_peak"][str(t)] = m
        out["gemm_peak"][str(t)]["probe_gflops"] = probe
        return out["gemm_peak"][str(t)]

    def quiet(what):
        if max_wait <= 0:
            return
        t0 = time.perf_counter()
        load = machine.wait_for_quiet(max_wait)
        out["waits"].append({"before": what, "waited_s": time.perf_counter() - t0, **load})
        if load["foreign_cores"] >= 0.15:
            print(f"note: machine still busy before {what} ({load['foreign_cores']:.2f} cores used by other "
                  f"processes after waiting {max_wait:.0f} s)", file=sys.stderr)

    def retry(fn):
        return until_quiet(fn, retries, max_wait)

    def workload(wl, t, n):
        quiet(f"{wl.key}, {t} thread(s)")
        r = retry(lambda: bench_workload(wl, data, t, rounds, contenders, n_train=n, memory=memory, peak=peak_for(t),
                                         data_dir=args.data_dir))
        out["workloads"].append(r)
        report.print_workload(r)
        return r

    for t in head_threads:
        peak_for(t)
        print(f"GEMM peak (float32 {gemm_n}^3 matmul, {t} thread(s)): {out['gemm_peak'][str(t)]['gflops']:.1f} GFLOP/s")
    blas = [b for b in out["env"]["blas"] if b["user_api"] == "blas"]
    if blas:
        print("BLAS:", ", ".join(f"{b['internal_api']} {b.get('version')} {b.get('architecture', '')} "
                                 f"({b['num_threads']} threads)" for b in blas))
    if "workloads" in sections:
        for wl in WORKLOADS:
            for t in (head_threads if wl is HEADLINE else [args.threads]):
                r = workload(wl, t, n_train)
                if args.isolated and wl is HEADLINE:
                    iso = {"threads": t, "contenders": {}}
                    for name in r["contenders"]:
                        iso["contenders"][name] = retry(lambda: {"threads": t, "probe_ref_gflops": r["probe_ref_gflops"],
                                                                 "contenders": {name: measure_in_subprocess(
                            wl, name, t, n_train or len(data["X_train"]), len(data["y_val"]), rounds, data=src,
                            data_dir=args.data_dir, probe_ref=r["probe_ref_gflops"])}})["contenders"][name]
                    out["isolated"].append(iso)
                    rows = [[n, common._f(r["contenders"][n]["best_s"]), common._f(s.get("best_s")),
                             common._f(s.get("best_s", math.nan) / r["contenders"][n]["best_s"], ".2f"),
                             common._f(s.get("val_acc"), ".4f"), common._f(s.get("peak_mb"), ".0f"),
                             common._f(s.get("foreign_cores_best"), ".2f"), common._f(s.get("host_speed_best"), ".2f")]
                            for n, s in iso["contenders"].items()]
                    print(f"-- isolated check, {t} thread(s): each contender alone in a fresh process, "
                          f"best of {rounds}")
                    print(common.fmt_table(["contender", "in-process s", "isolated s", "isolated/in-process",
                                            "val acc", "peak MB", "busy", "host"], rows))
                save()
    for key, wl in (("cnn", CNN), ("cnn-bn", CNN_BN)):
        if key in sections:
            workload(wl, args.threads, min(args.cnn_samples or (1000 if args.quick else 10_000), len(data["X_train"])))
            save()
    if "inference" in sections:
        def counts(default):
            return {b: min(n, args.samples) if args.samples else n for b, n in default.items()}

        mlp_images = {1: 500, 1000: 5000} if args.quick else {1: 2000, 1000: 10_000}
        cnn_images = {1: 100, 1000: 1000} if args.quick else {1: 1000, 1000: 5000}
        for wl, key, n_images in ((HEADLINE, "inference", mlp_images), (CNN, "inference_cnn", cnn_images)):
            for t in head_threads[::-1]:
                quiet(f"{key}, {t} thread(s)")
                r = retry(lambda: bench_inference(data, t, rounds, wl, contenders, n_images=counts(n_images)))
                out[key if t == args.threads else f"{key}_{t}t"] = r
                report.print_inference(r)
            save()
    if "scaling" in sections:
        scaling_threads = [int(t) for t in (args.scaling_threads or str(args.threads)).split(",")]
        out["plots"] = []
        for t in scaling_threads:
            quiet(f"scaling, {t} thread(s)")
            r = bench_scaling(data, t, 1 if args.quick else rounds, contenders=contenders,
                              quick=args.quick, memory=memory, peak=peak_for(t), retries=retries, max_wait=max_wait,
                              data_dir=args.data_dir)
            out["scaling" if t == args.threads else f"scaling_{t}t"] = r
            report.print_scaling(r)
            try:
                out["plots"] += report.plot_scaling(r, json_path.parent, "" if t == args.threads else f"_{t}t")
            except ImportError:
                print("note: matplotlib not installed: no scaling plots (pip install matplotlib)", file=sys.stderr)
            save()
        if out["plots"]:
            print("plots:", ", ".join(out["plots"]))
    if "memmap" in sections:
        from .memmap import MNIST_TRAIN, bench_memmap

        sizes = [int(s) for s in (args.memmap_sizes or ("1" if args.quick else "1,4,16")).split(",")]
        out["memmap"] = bench_memmap(sizes, base=min(MNIST_TRAIN, args.samples or MNIST_TRAIN), verbose=False)
        report.print_memmap(out["memmap"])
        save()
    report.print_summary(out)
    out["targets"] = report.check_targets(out)
    if out["targets"]:
        print("\n== Targets of the issue")
        print(common.fmt_table(["target", "where", "measured", "met"],
                               [[t["target"], t["where"], t["value"], "yes" if t["pass"] else "NO"]
                                for t in out["targets"]]))
    save()
    print(f"\nwrote {json_path} ({out['total_s']:.0f} s)")
    return out


def main(argv=None, default_json: str = os.path.join("scratchnn-bench", "bench.json")) -> dict:
    ap = argparse.ArgumentParser(prog="bench_mlp.py", description=__doc__.split("\n")[0])
    args = add_arguments(ap, default_json).parse_args(argv)
    try:
        parse_lists(args)
    except UsageError as e:
        ap.error(str(e))
    return run(args)
