"""Measuring: alternating rounds, workloads, inference throughput, scaling, the memory subprocess.

Run as ``python -m benchlab.measure SPEC_JSON`` it is the memory worker: one contender
of one workload in a fresh interpreter (see ``machine`` for the method).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from . import common, machine
from .cnn import CNNBNWorkload, CNNWorkload
from .mlp import HEADLINE, Workload
from .runners import CONTENDERS, make_runners

KINDS = {"mlp": Workload, "cnn": CNNWorkload, "cnn_bn": CNNBNWorkload}


#: seconds of idle before the host-speed probe and again before every epoch: the previous
#: contender's threads and the probe's (OpenBLAS spins ~0.1 s after its last call) park first,
#: so neither the probe nor an epoch starts beside another runtime's spinning threads
SETTLE_S = 0.2


def before_epoch(probe_ref: float | None, settle: float | None = None) -> float | None:
    """Idle, read the host's speed (``machine.gemm_probe`` / ``probe_ref``; None without a
    reference) and idle again: what precedes every timed epoch."""
    pause = SETTLE_S if settle is None else settle
    speed = None
    if probe_ref:
        time.sleep(pause)
        speed = machine.gemm_probe() / probe_ref
    time.sleep(pause)
    return speed


def time_rounds(runners: dict, X, y, rounds: int, probe_ref: float | None = None,
                settle: float | None = None) -> tuple[dict, dict]:
    """Alternate the contenders epoch by epoch (rotating the order each round); all times and loads.

    A full ``gc.collect()`` precedes every epoch; ``gc.freeze()`` first moves the libraries'
    import-time objects out of the collector's sight, so those collections stay cheap.

    Each epoch is preceded by ``before_epoch``: with ``probe_ref`` (the quiet host's
    ``machine.gemm_probe`` reading) its share of the reference is the epoch's ``host_speed``.
    Rounds go on past ``rounds`` (up to twice as many) until every contender has had
    ``ceil(rounds / 2)`` epochs on a host at full speed (``machine.HOST_FAST``), so its best
    time is not a slowed host's.
    """
    gc.collect()
    gc.freeze()
    names = list(runners)
    times = {n: [] for n in names}
    loads = {n: [] for n in names}
    need = -(-rounds // 2)
    r = 0
    while r < rounds or (probe_ref and r < 2 * rounds and min(
            sum(x["host_speed"] >= machine.HOST_FAST for x in loads[n]) for n in names) < need):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            speed = before_epoch(probe_ref, settle)
            s0 = machine.cpu_snapshot()
            times[name].append(runners[name].train_epoch(X, y))
            s1 = machine.cpu_snapshot()
            loads[name].append({"foreign_cores": machine.foreign_load(s0, s1)["foreign_cores"], "cpu_s": s1[2] - s0[2],
                                "host_speed": speed})
        r += 1
    return times, loads


def summarize(times: list, samples: int, flops_per_sample: int, peak_gflops: float, loads=None) -> dict:
    best = min(times)
    scale = common.N_TRAIN / samples
    at_best = loads[times.index(best)] if loads else {}
    return {
        "times_s": times, "best_s": best,
        # other processes' CPU use (cores) during each epoch, and this process's CPU seconds
        "foreign_cores": [x["foreign_cores"] for x in loads] if loads else None,
        "foreign_cores_best": at_best.get("foreign_cores"),
        "cpu_s": [x["cpu_s"] for x in loads] if loads else None,
        # the host's speed (machine.gemm_probe over its quiet reading) just before each epoch
        "host_speed": [x.get("host_speed") for x in loads] if loads else None,
        "host_speed_best": at_best.get("host_speed"),
        "median_s": statistics.median(times), "samples": samples,
        "epoch_s": best * scale, "extrapolated": samples != common.N_TRAIN,
        "gflops": flops_per_sample * samples / best / 1e9,
        "pct_peak": 100.0 * flops_per_sample * samples / best / 1e9 / peak_gflops,
    }


def bench_workload(wl, data: dict, threads: int, rounds: int, contenders=CONTENDERS,
                   n_train: int | None = None, memory: bool = True, peak: dict | None = None,
                   seed: int = 0, data_dir=None) -> dict:
    """Time one workload: every contender, ``rounds`` alternating epochs, plus accuracy and memory.

    ``n_train`` trains on a subset (epoch times are then extrapolated to 50,000 samples);
    the memory subprocesses still hold the whole data set, so peaks stay comparable.
    """
    X, y = data["X_train"], data["y_train"]
    if n_train is not None:
        X, y = X[:n_train], y[:n_train]
    fps = wl.train_flops_per_sample()
    with common.threads(threads):
        peak = peak or machine.gemm_peak()
        runners = make_runners(wl, contenders, seed)
        probe_ref = peak.get("probe_gflops")
        times, loads = time_rounds(runners, X, y, rounds, probe_ref)
        res = {"workload": {"kind": wl.kind, **dataclasses.asdict(wl)}, "threads": threads, "rounds": rounds,
               "flops_per_sample": fps, "gemm_peak_gflops": peak["gflops"], "probe_ref_gflops": probe_ref,
               "contenders": {}}
        if hasattr(wl, "sizes"):
            res["sizes"] = list(wl.sizes)
        for name, r in runners.items():
            s = summarize(times[name], len(X), fps, peak["gflops"], loads[name])
            s["epochs_trained"] = len(times[name])  # extra rounds on a slowed host count too
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
        budget = wl.memory_budget_bytes(n_data + len(data["y_val"]))
        res["memory_budget_mb"] = budget["budget"] / 2**20
        res["memory_parts_mb"] = {k: v / 2**20 for k, v in budget.items()}
        for name in runners:
            c[name]["memory"] = measure_in_subprocess(wl, name, threads, len(X), len(data["y_val"]), rounds=1,
                                                      data="mnist" if data["source"] != "random" else "random",
                                                      n_data=n_data, data_dir=data_dir)
    return res


def bench_inference(data: dict, threads: int, rounds: int, wl=HEADLINE, contenders=CONTENDERS,
                    n_images: dict | None = None, seed: int = 0) -> dict:
    """Images per second of the forward pass at batch 1 and batch 1000 (scratchnn: ``predict_logits``)."""
    n_images = n_images or {1: 2000, 1000: 10_000}
    Xv = data["X_val"] if len(data["X_val"]) else data["X_train"]
    res = {"key": wl.key, "workload": wl.title, "threads": threads, "rounds": rounds,
           "flops_per_image": wl.infer_flops_per_sample(), "batches": {}}
    with common.threads(threads):
        runners = make_runners(wl, contenders, seed, quiet=True)
        for bs, n in n_images.items():
            X = np.ascontiguousarray(np.resize(Xv, (n, Xv.shape[1])))
            times = {k: [] for k in runners}
            busy = {k: [] for k in runners}
            for r in range(rounds + 1):  # round 0 warms up
                for name, run in runners.items():
                    s0 = machine.cpu_snapshot()
                    t0 = time.perf_counter()
                    for i in range(0, n, bs):
                        run.predict(X[i:i + bs], bs)
                    if r:
                        times[name].append(time.perf_counter() - t0)
                        busy[name].append(machine.foreign_load(s0, machine.cpu_snapshot())["foreign_cores"])
            row = {name: {"best_s": min(t), "images_per_s": n / min(t), "images": n,
                          "gflops": res["flops_per_image"] * n / min(t) / 1e9,
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
    """Enough samples for ~100 GFLOP (>= 8 steps) per measurement at batch ``bs``: with fewer
    (30 GFLOP were 18 steps at width 512) the per-epoch fixed costs of both contenders and the
    noise of a ~0.2 s measurement weighed in the %peak of the smaller widths."""
    budget = 8e9 if quick else 1e11
    steps = int(budget / common.mlp_train_flops_per_sample(sizes) / bs)
    return bs * max(2 if quick else 8, min(steps, common.N_TRAIN // bs))


def bench_scaling(data: dict, threads: int, rounds: int, batches=(1, 8, 32, 128, 512),
                  widths=(64, 128, 256, 512, 1024, 2048), width_batch: int = 512, contenders=CONTENDERS,
                  quick: bool = False, memory: bool = True, samples=None, peak: dict | None = None,
                  seed: int = 0, retries: int = 0, max_wait: float = 60.0, data_dir=None) -> dict:
    """Time per epoch (and peak memory) vs batch size and vs hidden width, for each of ``contenders``."""
    res = {"threads": threads, "rounds": rounds, "batch": [], "width": []}
    if peak is None:
        with common.threads(threads):
            peak = machine.gemm_peak()
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
                                               peak=peak, seed=seed, data_dir=data_dir), retries, max_wait)
        r["value"] = value
        res[axis].append(r)
    return res


def busiest(res: dict) -> float:
    """Largest foreign CPU load (cores) during any contender's best measurement in a result."""
    vals = [c.get("foreign_cores_best") or 0.0 for c in res.get("contenders", {}).values()]
    for row in res.get("batches", {}).values():
        vals += [c.get("foreign_cores_best") or 0.0 for c in row.values()]
    return max(vals, default=0.0)


def slowest_host(res: dict) -> float | None:
    """Lowest host speed (``machine.gemm_probe`` share) before any contender's best epoch; None unprobed."""
    vals = [c.get("host_speed_best") for c in res.get("contenders", {}).values()]
    return min((v for v in vals if v is not None), default=None)


def host_slowed(res: dict) -> bool:
    speed = slowest_host(res)
    return speed is not None and speed < machine.HOST_FAST


def until_quiet(fn, retries: int = 2, max_wait: float = 60.0, threshold: float = 0.25):
    """Call ``fn()``; while its best measurements overlapped other processes' work (> ``threshold``
    cores) or a slowed host (``slowest_host`` < ``machine.HOST_FAST``), wait for a quiet machine and
    measure again, up to ``retries`` times. Returns the least disturbed result, with ``attempts``,
    ``busy_cores`` and ``host_speed`` recorded in it."""
    def disturbed(r):  # (slowed host, busy machine): compared in this order
        return host_slowed(r), busiest(r) > threshold, busiest(r), -(slowest_host(r) or 1.0)

    best, attempts = None, 0
    for attempts in range(1, retries + 2):
        r = fn()
        if best is None or disturbed(r) < disturbed(best):
            best = r
        if not any(disturbed(best)[:2]) or attempts > retries:
            break
        ref = best.get("probe_ref_gflops")
        with common.threads(best["threads"]) if ref else contextlib.nullcontext():
            machine.wait_for_quiet(max_wait, probe_ref=ref)
    best["attempts"], best["busy_cores"], best["host_speed"] = attempts, busiest(best), slowest_host(best)
    return best


# =========================================================================== subprocess worker
def workload_from_spec(d: dict):
    """The workload a result's or a spec's ``workload`` dict describes (tuples restored)."""
    d = dict(d)
    cls = KINDS[d.pop("kind", "mlp")]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def measure_in_subprocess(wl, contender: str, threads: int, n_train: int, n_val: int, rounds: int = 1,
                          data: str = "mnist", n_data: int | None = None, timeout: float = 900,
                          data_dir=None, probe_ref: float | None = None) -> dict:
    """Run ``rounds`` epochs of one contender in a fresh interpreter: times and peak memory.

    The process holds ``n_data`` training rows (default ``n_train``) plus ``n_val`` validation
    rows and trains on the first ``n_train``, so memory curves can keep the data set fixed.
    With ``probe_ref`` every epoch is preceded by ``before_epoch`` (idle, host-speed probe).
    """
    spec = {"workload": {"kind": wl.kind, **dataclasses.asdict(wl)}, "contender": contender, "threads": threads,
            "n_train": n_train, "n_data": max(n_data or n_train, n_train), "n_val": n_val, "rounds": rounds,
            "data": data, "data_dir": data_dir, "probe_ref": probe_ref}
    cmd, env = common.module_command("benchlab.measure", json.dumps(spec))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": f"worker exited {proc.returncode}: {proc.stderr.strip()[-500:]}"}


def worker(spec: dict) -> dict:
    wl = workload_from_spec(spec["workload"])
    name = spec["contender"]
    if name == "torch":
        import torch  # noqa: F401 - load before the baseline so its libraries are not counted
    import scratchnn  # noqa: F401
    with common.threads(spec["threads"]):
        # warm up the library on a toy problem so lazily loaded kernels are part of the baseline
        toy = common.random_data(64, 0)
        make_runners(wl.toy(), (name,))[name].train_epoch(toy["X_train"], toy["y_train"])
        del toy
        probe_ref = spec.get("probe_ref")
        if probe_ref:
            machine.gemm_probe()  # its operands now belong to the baseline, not to the peak
        machine.trim_heap()
        rss0 = machine.rss_bytes()
        n_data = spec.get("n_data", spec["n_train"])
        if spec["data"] == "random":
            data = common.random_data(n_data, spec["n_val"])
        else:
            data = common.load_data(n_data, spec["n_val"], data_dir=spec.get("data_dir"))
        X, y = data["X_train"][:spec["n_train"]], data["y_train"][:spec["n_train"]]
        runner = make_runners(wl, (name,))[name]
        machine.trim_heap()
        rss1 = machine.rss_bytes()
        hwm_reset = machine.reset_peak_rss()
        times, busy, speeds = [], [], []
        for _ in range(spec["rounds"]):
            speeds.append(before_epoch(probe_ref) if probe_ref else None)
            s0 = machine.cpu_snapshot()
            times.append(runner.train_epoch(X, y))
            busy.append(machine.foreign_load(s0, machine.cpu_snapshot())["foreign_cores"])
        hwm = machine.peak_rss_bytes()
        acc = runner.val_accuracy(data["X_val"], data["y_val"]) if spec["n_val"] else None
    data_bytes = sum(data[k].nbytes for k in ("X_train", "y_train", "X_val", "y_val"))
    return {"contender": name, "times_s": times, "best_s": min(times), "samples": len(X), "val_acc": acc,
            "foreign_cores": busy, "foreign_cores_best": busy[times.index(min(times))],
            "host_speed": speeds, "host_speed_best": speeds[times.index(min(times))],
            "baseline_rss_mb": rss0 / 2**20, "ready_rss_mb": rss1 / 2**20, "hwm_mb": hwm / 2**20,
            "peak_mb": (hwm - rss0) / 2**20, "train_extra_mb": (hwm - rss1) / 2**20,
            "data_mb": data_bytes / 2**20, "hwm_reset": hwm_reset, "src_sha256": machine.src_hash()}


if __name__ == "__main__":
    print("RESULT " + json.dumps(worker(json.loads(sys.argv[1]))), flush=True)
