"""``benchmarks/process_split.py``: what two worker processes would give the CNN's two-core step
instead of the engine's two threads (issue 18: the GIL and the threads' waits).

Two worker processes (forked) each hold a replica of the network (same seed: same weights) and train
on their half of every 64-sample batch with one BLAS thread. Before each Adam step they average
their gradients through shared memory: one barrier per step, two alternating buffers (a worker
writing its next gradients never overwrites ones the other is still reading), and both add the two
halves in the same order, so the replicas stay identical. Batch normalization is NOT synchronized
across the workers (each normalizes its own 32 samples): for the ``cnn-bn`` network the figure lacks
the 16 exchanges per step a faithful version would make, so it is a bound, not a measurement.

Against: one process on one thread and one process on two threads (the engine's split), and the
workers with no exchange at all (independent replicas: the bound of the idea). Seconds per 10,000
samples, best of ``--rounds`` alternating rounds.

This is a probe, not a library feature: nothing here is imported by ``scratchnn``.
"""
from __future__ import annotations

import argparse
import mmap
import multiprocessing as mp
import os
import queue
import sys
import time

import numpy as np

from . import common, machine
from .cnn import BATCH, CNN, CNN_BN

HALF = BATCH // 2


def _model(network):
    return (CNN_BN if network == "cnn-bn" else CNN).build_scratchnn(0)


def _trainable(model):
    return [p for layer in model.layers if layer.trainable for p in layer.params.values()]


def flat_weights(model):
    """Every trainable value of ``model`` in one vector (to compare replicas)."""
    return np.concatenate([p.reshape(-1) for p in _trainable(model)])


def exchange_optimizer(base, rank, slots, barrier):
    """``base`` (an optimizer) that first replaces every gradient by the mean of both workers' (``slots``:
    ``(2 parities, 2 workers, values)`` float32 in shared memory)."""

    class Exchanging(type(base)):
        def step(self, params, grads):
            buf = slots[self.exchanges & 1]
            off = 0
            for g in grads.values():
                buf[rank, off:off + g.size] = g.reshape(-1)
                off += g.size
            barrier.wait()
            off = 0
            for g in grads.values():
                flat = g.reshape(-1)  # (the engine's grads are contiguous: a view)
                np.add(buf[0, off:off + g.size], buf[1, off:off + g.size], out=flat)  # same order in both
                flat *= flat.dtype.type(0.5)
                off += g.size
            self.exchanges += 1
            super().step(params, grads)

    opt = Exchanging.__new__(Exchanging)
    opt.__dict__.update(base.__dict__)
    opt.exchanges = 0
    return opt


def _worker(rank, network, X, y, commands, results, buf, barrier, values, optimizer):
    try:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        from threadpoolctl import threadpool_limits

        from scratchnn import parallel

        threadpool_limits(1)
        parallel.set_num_threads(1)  # no split inside a worker
        slots = np.frombuffer(buf, dtype=np.float32, count=4 * values).reshape(2, 2, values)
        model, free = _model(network), _model(network)
        base = optimizer() if optimizer else model.optimizer
        model.compile(exchange_optimizer(base, rank, slots, barrier), "softmax_cross_entropy")
        if optimizer:
            free.compile(optimizer(), "softmax_cross_entropy")
        Xk, yk = X[rank::2], y[rank::2]  # step i of the two workers: rows BATCH*i ... BATCH*(i+1)-1 of X
        while True:
            command = commands.get()
            if command is None:
                return
            which, send_weights = command
            m = free if which == "free" else model
            m.fit(Xk, yk, epochs=1, batch_size=HALF, shuffle=False, verbose=0)
            results.put((rank, flat_weights(m) if send_weights else None))
    except BaseException as e:  # (a broken barrier included: the other worker failed)
        results.put((rank, RuntimeError(f"worker {rank}: {type(e).__name__}: {e}")))


class Workers:
    """The two forked workers; ``epoch(which)`` trains one epoch in both (``"exchange"``: gradients
    averaged; ``"free"``: independent replicas) and returns the wall time and, with ``weights``, each
    worker's trainable values."""

    def __init__(self, network, X, y, optimizer=None):
        """``optimizer``: a function returning the optimizer both workers use (default: the workload's)."""
        values = sum(p.size for p in _trainable(_built(network)))
        self.buf = mmap.mmap(-1, 4 * values * 4)
        ctx = mp.get_context("fork")
        self.commands = [ctx.Queue() for _ in range(2)]
        self.results = ctx.Queue()
        barrier = ctx.Barrier(2, timeout=120)  # a worker that died breaks it for the other one
        self.procs = [ctx.Process(target=_worker, daemon=True,
                                  args=(r, network, X, y, self.commands[r], self.results, self.buf, barrier, values,
                                        optimizer))
                      for r in range(2)]
        for p in self.procs:
            p.start()

    def epoch(self, which="exchange", weights=False):
        t0 = time.perf_counter()
        for q in self.commands:
            q.put((which, weights))
        out = {}
        while len(out) < 2:
            try:
                rank, value = self.results.get(timeout=0.5)
            except queue.Empty:
                dead = [r for r, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    self.close(force=True)
                    raise RuntimeError(f"worker {dead[0]} died (exit code {self.procs[dead[0]].exitcode})") from None
                continue
            if isinstance(value, RuntimeError):
                self.close(force=True)
                raise value
            out[rank] = value
        return time.perf_counter() - t0, out

    def close(self, force=False):
        """Stop the workers (``force``: at once, as when one failed: the other may wait at the barrier)."""
        for q in self.commands:
            q.put(None)
        for p in self.procs:
            if force:
                p.terminate()
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)


def _built(network):
    m = _model(network)
    m.build((1, 28, 28))
    return m


def measure(network, X, y, rounds) -> dict:
    """Best seconds per epoch of ``X`` for each contender (alternating rounds; round 0 warms up)."""
    single = _model(network)
    workers = Workers(network, X, y)

    def one_process(threads):
        with common.threads(threads):
            t0 = time.perf_counter()
            single.fit(X, y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
            return time.perf_counter() - t0

    contenders = {"1 process, 1 thread": lambda: one_process(1),
                  "1 process, 2 threads (the engine's split)": lambda: one_process(2),
                  "2 processes, gradients averaged": lambda: workers.epoch("exchange")[0],
                  "2 processes, no exchange (the bound)": lambda: workers.epoch("free")[0]}
    best = {k: float("inf") for k in contenders}
    try:
        for r in range(rounds + 1):
            for name, run in contenders.items():
                time.sleep(0.2)
                t = run()
                if r:
                    best[name] = min(best[name], t)
    finally:
        workers.close()
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0].strip("`"))
    ap.add_argument("--network", choices=("cnn", "cnn-bn"), default="cnn")
    ap.add_argument("--samples", type=common.whole_number, default=3200)
    ap.add_argument("--rounds", type=common.whole_number, default=5)
    ap.add_argument("--data-dir", help="folder holding the MNIST files (else random images)")
    args = ap.parse_args(argv)
    if args.samples < BATCH:
        ap.error(f"argument --samples: at least one batch of {BATCH}, received {args.samples}")
    machine.warn_openblas_env()
    data = common.load_data(n_train=args.samples // BATCH * BATCH, n_val=16, data_dir=args.data_dir)
    X, y = common.as_images(data["X_train"]), data["y_train"]
    try:
        best = measure(args.network, X, y, args.rounds)
    except RuntimeError as e:
        print(f"process_split.py: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    one = best["1 process, 1 thread"]
    print(f"{args.network}, batch {BATCH}, {len(X)} samples, best of {args.rounds} alternating rounds"
          + (" (batch norm not synchronized across the processes: a bound)" if args.network == "cnn-bn" else ""))
    for name, t in best.items():
        print(f"  {name:45s} {t * 10_000 / len(X):6.2f} s per 10k samples   {one / t:4.2f}x one thread's speed")
    return best


if __name__ == "__main__":
    main()
