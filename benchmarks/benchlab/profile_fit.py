"""Where does scratchnn's ``fit`` spend its time? The headline MLP (784-100-200-10, SGD 0.1, batch 32).

Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_fit.py [--threads 1] [--samples 50000]

Three views, all printed and written to ``--out`` + ``.txt`` / ``.json`` (the script's default:
``benchmarks/results/profile_fit``):

1. Phases per step, from timers wrapped around the functions ``fit``'s engine runs: each layer's
   forward and backward (its kernel or its own method), the loss, ``penalty`` and the whole step
   (the wrapper's own cost, measured on a no-op, is subtracted). "fit loop" is what ``fit`` does
   between steps (batch gather, callbacks, the epoch's metrics); "step bookkeeping" is the step
   minus the phases it calls (with plain SGD it includes the update of the small parameters).
2. The same step in the minimal NumPy loop, split the same way, so each phase's overhead is
   visible (framework time minus floor time).
3. A sampling profile (pyinstrument if installed, else cProfile's top functions).
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import common, machine
from .mlp import HEADLINE, NumpyRunner
from .runners import ScratchnnRunner


class PhaseTimer:
    """Accumulates perf_counter time per phase name."""

    def __init__(self):
        self.t = defaultdict(float)
        self.n = defaultdict(int)

    def wrap(self, fn, phase):
        clock, t, n = time.perf_counter, self.t, self.n

        def timed(*a, **k):
            t0 = clock()
            r = fn(*a, **k)
            t[phase] += clock() - t0
            n[phase] += 1
            return r

        return timed


def wrapper_overhead() -> float:
    """Seconds a ``PhaseTimer`` wrapper adds per call (measured on a no-op)."""
    pt = PhaseTimer()
    f = pt.wrap(lambda *a, **k: None, "x")
    g = lambda *a, **k: None  # noqa: E731
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        f(1, training=True)
    t1 = time.perf_counter()
    for _ in range(n):
        g(1, training=True)
    t2 = time.perf_counter()
    return max(0.0, ((t1 - t0) - (t2 - t1)) / n)


@contextlib.contextmanager
def instrument(model, pt: PhaseTimer):
    """Wrap, with timers, the functions ``fit``'s engine runs for ``model``: each layer's forward and
    backward (its kernel or its own method, as the epoch's plan picked them), the loss, the penalty,
    and the whole step (``FastEngine.step``)."""
    from scratchnn.engine import FastEngine

    kinds = [type(layer).__name__ for layer in model.layers]
    begin_epoch, step = FastEngine.begin_epoch, FastEngine.step

    def timed_begin_epoch(self):
        begin_epoch(self)
        plan = self.plan
        plan.forward = [pt.wrap(f, f"forward {k}") for f, k in zip(plan.forward, kinds)]
        plan.backward = [pt.wrap(f, f"backward {k}") for f, k in zip(plan.backward, reversed(kinds))]
        plan.loss = pt.wrap(plan.loss, "loss (fused gradient; the value once per epoch)")

    FastEngine.begin_epoch = timed_begin_epoch
    FastEngine.step = pt.wrap(step, "step")
    model.penalty = pt.wrap(model.penalty, "penalty()")
    try:
        yield
    finally:
        FastEngine.begin_epoch, FastEngine.step = begin_epoch, step
        del model.penalty


def scratchnn_phases(data, steps_per_epoch, overhead) -> dict:
    run = ScratchnnRunner(HEADLINE)
    X, y = data["X_train"], data["y_train"]
    run.train_epoch(X[:2000], y[:2000])  # warm up
    pt = PhaseTimer()
    with instrument(run.model, pt):
        wall = run.train_epoch(X, y)
    internal = run.internal_times[-1]
    inner = [k for k in pt.t if k != "step"]
    res = {k: max(0.0, pt.t[k] - pt.n[k] * overhead) for k in inner}
    step_total = pt.t["step"] - pt.n["step"] * overhead - sum(pt.n[k] for k in inner) * overhead
    res["step bookkeeping and update (plain SGD: in the step)"] = max(0.0, step_total - sum(res.values()))
    res["fit loop (gather X[idx], callbacks, epoch metrics)"] = max(0.0, internal - step_total - pt.n["step"] * overhead)
    res["fit() call (argument checks, History)"] = max(0.0, wall - internal)
    return {"wall_s": wall, "steps": steps_per_epoch, "phases_s": res}


def numpy_phases(data, steps_per_epoch) -> dict:
    """The minimal loop, instrumented inline (same math as mlp.NumpyRunner._step_sgd)."""
    run = NumpyRunner(HEADLINE, ScratchnnRunner(HEADLINE).init_params())
    X, y = data["X_train"], data["y_train"]
    Ws, bs, lr, rows = run.Ws, run.bs, run.wl.lr, run.rows
    clock = time.perf_counter
    ph = defaultdict(float)
    t_start = clock()
    order = run.rng.permutation(len(X))
    for i in range(0, len(X), 32):
        t0 = clock()
        idx = order[i:i + 32]
        xb, yb = X[idx], y[idx]
        t1 = clock()
        h1 = xb @ Ws[0]
        h1 += bs[0]
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ Ws[1]
        h2 += bs[1]
        np.maximum(h2, 0, out=h2)
        z = h2 @ Ws[2]
        z += bs[2]
        t2 = clock()
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z[rows[:len(yb)], yb] -= 1
        z *= 1.0 / len(yb)
        t3 = clock()
        g2 = h2.T @ z
        gb2 = z.sum(axis=0)
        d2 = z @ Ws[2].T
        d2 *= h2 > 0
        g1 = h1.T @ d2
        gb1 = d2.sum(axis=0)
        d1 = d2 @ Ws[1].T
        d1 *= h1 > 0
        g0 = xb.T @ d1
        gb0 = d1.sum(axis=0)
        t4 = clock()
        for p, g in ((Ws[2], g2), (bs[2], gb2), (Ws[1], g1), (bs[1], gb1), (Ws[0], g0), (bs[0], gb0)):
            g *= -lr
            p += g
        t5 = clock()
        ph["gather"] += t1 - t0
        ph["forward"] += t2 - t1
        ph["loss gradient"] += t3 - t2
        ph["backward"] += t4 - t3
        ph["optimizer"] += t5 - t4
    wall = clock() - t_start
    ph["loop + timers"] = wall - sum(ph.values())
    return {"wall_s": wall, "steps": steps_per_epoch, "phases_s": dict(ph)}


def sampling_profile(data) -> str:
    run = ScratchnnRunner(HEADLINE)
    X, y = data["X_train"], data["y_train"]
    run.train_epoch(X[:2000], y[:2000])
    try:
        from pyinstrument import Profiler
    except ImportError:
        pr = cProfile.Profile()
        pr.enable()
        run.train_epoch(X, y)
        pr.disable()
        buf = io.StringIO()
        pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(25)
        return "cProfile (pip install pyinstrument for a sampling profile)\n" + buf.getvalue()
    p = Profiler(interval=0.0002)
    p.start()
    run.train_epoch(X, y)
    p.stop()
    return p.output_text(unicode=False, color=False)


def main(argv=None, default_out=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=common.whole_number, default=1)
    ap.add_argument("--samples", type=common.whole_number, default=common.N_TRAIN)
    ap.add_argument("--data-dir", help="folder holding the MNIST files")
    ap.add_argument("--out", default=default_out or "profile_fit", help="output path without suffix")
    args = ap.parse_args(argv)
    machine.warn_openblas_env()
    data = common.load_data(args.samples, 1000, data_dir=args.data_dir)
    steps = -(-len(data["X_train"]) // 32)
    out = {"threads": args.threads, "samples": len(data["X_train"]), "env": machine.environment(include_torch=False)}
    lines = []
    with common.threads(args.threads):
        ovh = wrapper_overhead()
        load0 = machine.cpu_snapshot()
        sn = scratchnn_phases(data, steps, ovh)
        npy = numpy_phases(data, steps)
        out["busy_cores"] = machine.foreign_load(load0, machine.cpu_snapshot())["foreign_cores"]
        out.update(scratchnn=sn, numpy=npy, wrapper_overhead_us=ovh * 1e6)
        lines.append(f"scratchnn fit, 784-100-200-10, batch 32, {len(data['X_train']):,} samples, {args.threads} "
                     f"thread(s); per step ({steps} steps; timer overhead {ovh * 1e6:.2f} us/call subtracted; "
                     f"other processes used {out['busy_cores']:.2f} cores meanwhile)")
        for name, r in (("scratchnn", sn), ("numpy floor", npy)):
            tot = r["wall_s"]
            lines.append(f"\n{name}: {tot:.3f} s/epoch = {tot / steps * 1e6:.1f} us/step (instrumented)")
            rows = [[k, f"{v / steps * 1e6:.1f}", f"{100 * v / tot:.1f}"]
                    for k, v in sorted(r["phases_s"].items(), key=lambda kv: -kv[1])]
            lines.append(common.fmt_table(["phase", "us/step", "%"], rows))
        lines.append("\n" + sampling_profile(data))
    text = "\n".join(lines)
    print(text)
    base = Path(args.out)
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".txt").write_text(text)
    base.with_suffix(".json").write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {base.with_suffix('.txt')} and .json")


if __name__ == "__main__":
    main()
