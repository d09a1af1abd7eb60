"""Using several cores: one mini-batch split across threads.

NumPy releases the GIL inside its kernels, so ``k`` Python threads that each run the
forward and backward pass of ``1/k`` of a mini-batch, with **one BLAS thread each**, keep
``k`` cores busy through the whole step: the im2col copies, pooling, activations and the
loss as well as the matrix products (BLAS threads parallelize only the matrix products).
This is data parallelism inside one process:

* thread 0 runs its shard through the model's own layers, thread ``i > 0`` through
  *replicas* (``replicate``) that share the parameters and own their gradients and caches;
* each shard's loss gradient is scaled by ``shard_size / batch_size``, so after the
  replicas' gradients are added into the layers' own ones they are exactly the gradients
  of the whole batch's mean loss (up to float rounding order);
* then each trainable layer is regularized, stepped and constrained once, as in a
  single-threaded step: the library's optimizers (whose ``step`` is ``update`` per parameter)
  with the layers shared out among the threads, any other through its own ``step``.

Batch normalization couples the samples of a batch: its kernels for split batches
(``kernels.batchnorm_forward`` and ``batchnorm_backward`` with ``sync``) exchange the per-thread sums
through a ``SyncGroup`` before using them (one exchange per pass for float arrays), so every thread
normalizes with the statistics of the whole batch, as on one thread (synchronized batch norm); only
the first thread updates the running statistics.
Inference has no such coupling: large ``predict`` batches are split the same way.

Random layers (``Dropout``, ``RandomShift``) draw from their own generator in every
replica, reseeded from the layer's generator at each epoch, so a seeded run is
reproducible for a given thread count (a different count draws different masks).

``scratchnn.set_num_threads(n)`` sets how many threads scratchnn uses (default: the cores this
process may run on). Which arrangement wins was measured, not assumed: splitting pays for
convolutional networks, whose im2col copies, pooling and activations BLAS threads leave
on one core; MLPs, nearly all matrix product, run faster on BLAS's own threads, and small
steps cannot repay a thread hand-off. ``shards_for`` holds the rule.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial

import numpy as np

from ..optimizers import Optimizer
from ..parallel import get_num_threads
from . import kernels
from .plan import Plan, run_plan

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()
_controller = None
_blas_users = 0  # threads inside single_blas_thread()
_blas_limit = None

#: below this many multiply-adds per shard a thread hand-off costs more than it saves
MIN_SHARD_MACS = 6_000_000
#: split only models moving at least this many values per multiply-add (see ``shards_for``)
MIN_MOVED_PER_MAC = 0.025


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool of helper threads (thread 0 is always the caller)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="scratchnn")
            _pool_size = workers
        return _pool


@contextlib.contextmanager
def single_blas_thread():
    """Context manager limiting BLAS to one thread per calling thread (threadpoolctl).

    OpenBLAS' thread count is a process-wide setting: the first of overlapping users (fits
    running in several threads, say) sets it, the last one restores it.
    """
    global _controller, _blas_users, _blas_limit
    with _lock:
        if _blas_users == 0:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            _blas_limit = _controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def work_per_sample(layers, input_shape) -> tuple[int, int]:
    """Rough cost of one sample's forward pass: ``(multiply-adds, values moved)``.

    Each parameter is used once per output position (``Dense``: once; ``Conv2D``: once per
    output pixel). Values moved, the work outside the matrix products, counts every layer's
    output plus the matrix each weighted layer multiplies (a convolution's im2col rows).
    """
    macs = moved = 0
    shape = tuple(input_shape)
    for layer in layers:
        shape = tuple(layer.output_shape(shape))
        size = 1
        for s in shape:
            size *= int(s)
        layer_macs = layer.count_params() * (size // int(shape[0]))
        macs += layer_macs
        moved += size + (layer_macs // int(shape[0]) if layer_macs else 0)
    return macs, moved


def shards_for(batch: int, work: tuple[int, int], threads: int | None = None) -> int:
    """How many threads a batch of ``batch`` samples of ``work = work_per_sample(...)`` is split into.

    Splitting pays where much of a step is outside the matrix products (convolutions:
    im2col/col2im copies, pooling, activations), which BLAS threads leave on one core. An
    MLP is almost all matrix product, which BLAS already spreads over the cores better
    than two half-size products would (measured on this project's 2-core machine: MLPs of
    width 100-1024 at batch 32-512 ran 1.3-2x slower split; the benchmark CNN 1.3x faster).
    """
    threads = get_num_threads() if threads is None else threads
    macs, moved = work
    if threads < 2 or moved < MIN_MOVED_PER_MAC * macs:
        return 1
    return max(1, min(threads, batch, batch * macs // MIN_SHARD_MACS))


def bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous slices of ``range(n)``, sizes differing by at most one."""
    edges = [n * i // shards for i in range(shards + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run(tasks):
    """Call each zero-argument function in ``tasks``, the first on this thread; return the results.

    An exception raised by any task is re-raised here (after all tasks finished).
    """
    if len(tasks) == 1:
        return [tasks[0]()]
    futures = [_executor(len(tasks) - 1).submit(t) for t in tasks[1:]]
    errors = []
    try:
        first = tasks[0]()
    except BaseException as e:  # noqa: BLE001 - re-raised below, after the other threads finished
        errors.append(e)
    wait(futures)  # never leave a thread running on the layers after an error
    errors += [f.exception() for f in futures if f.exception() is not None]
    if errors:  # the cause, not a BrokenBarrierError of a thread that was waiting for the failed one
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return [first, *(f.result() for f in futures)]


class SyncGroup:
    """Exchanges arrays across the threads of one split batch, so that batch normalization sees the
    statistics of the whole batch (synchronized batch norm).

    One barrier per exchange: the parts alternate between two slots, so a thread writing its next
    part never overwrites one that a slower thread is still reading (to reach the exchange after
    next, it must pass the next barrier, which the slower thread reaches only when done reading)."""

    def __init__(self, n: int):
        self.slots = ([None] * n, [None] * n)
        self.calls = [0] * n  # exchanges each thread has made: which slot it uses next
        self.barrier = threading.Barrier(n)
        self.samples = 0  # samples of the whole batch (set before each split step)

    def gather(self, index: int, a) -> list:
        """The ``a`` of every thread, in thread order; each thread calls it with its own ``index``."""
        parts = self.slots[self.calls[index] & 1]
        self.calls[index] += 1
        parts[index] = a
        self.barrier.wait()
        return list(parts)

    def allsum(self, index: int, a):
        """Sum of the ``a`` every thread passes, added in the same order on every thread."""
        parts = self.gather(index, a)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total


def replicate(layer):
    """A copy of ``layer`` for another thread: shares ``params`` and ``buffers``, owns ``grads`` and
    caches (layers keep nothing but their caches between forward and backward)."""
    twin = copy.copy(layer)
    twin.grads = {k: np.zeros_like(g) for k, g in layer.grads.items()}
    twin._cache = None
    return twin


class Replicas:
    """The per-thread copies of a model's layers that ``FastEngine`` splits its batches across."""

    def __init__(self, model, shards: int):
        self.model = model
        self.shards = shards
        self.stacks = [model.layers] + [[replicate(layer) for layer in model.layers] for _ in range(shards - 1)]
        # batch norm: one SyncGroup per layer joins its copies
        self.groups = [SyncGroup(shards) if type(l) in kernels.SYNCED else None for l in model.layers]
        self.plans = []
        self.update_sets = []

    def new_epoch(self, plan) -> None:
        """Follow (un)freezing done by callbacks, reseed random layers, make each thread's plan and
        share out the update."""
        own = self.model.layers
        for layers in self.stacks[1:]:
            for layer, twin in zip(own, layers):
                twin.trainable = layer.trainable
                if hasattr(layer, "reseed"):
                    twin.reseed(int(layer.rng.integers(2**63)))
        self.plans = []
        for k, layers in enumerate(self.stacks):
            view = copy.copy(self.model)
            view.layers = layers
            self.plans.append(Plan(view, direct=False, sync=[(g, k) if g else None for g in self.groups]))
        # each thread adds up, regularizes, steps and constrains its own set of trainable layers;
        # the largest layers are dealt out first
        trainable = sorted((i for i, layer in enumerate(own) if layer.trainable and layer.params),
                           key=lambda i: -own[i].count_params())
        self.update_sets = [[] for _ in range(self.shards)]
        load = [0] * self.shards
        for i in trainable:
            k = load.index(min(load))
            self.update_sets[k].append((own[i], [layers[i] for layers in self.stacks[1:]]))
            load[k] += own[i].count_params()

    def forward_backward(self, xb, yb, classify, record=None):
        """The batch's loss and correct count (with an ``EpochRecord``: the threads write their
        samples' rows there, and this returns ``(probe, None)``); its gradients end up in the threads'
        layers."""
        n = len(xb)
        for group in self.groups:
            if group is not None:
                group.samples = n

        def task(plan, a, b):
            try:
                return run_plan(plan, xb[a:b], yb[a:b], classify, (b - a) / n, always_backward=True,
                                rows=None if record is None else record.rows(a, b))
            except BaseException:
                for group in self.groups:  # release the threads waiting for this one
                    if group is not None:
                        group.barrier.abort()
                raise

        results = run([partial(task, plan, a, b) for plan, (a, b) in zip(self.plans, bounds(n, self.shards))])
        return sum(r[0] for r in results), None if record is not None else sum(r[1] for r in results)

    def update(self, optimizer, plan) -> None:
        """Add the threads' gradients into the model's layers, then take one step. The library's
        optimizers (the base ``step``: ``update`` per parameter) step the layers shared out among the
        threads; any other optimizer takes its own ``step`` on this thread."""
        per_parameter = type(optimizer).step is Optimizer.step

        def task(pairs):
            for layer, twins in pairs:
                for key, g in layer.grads.items():
                    for twin in twins:
                        g += twin.grads[key]
                if per_parameter:
                    layer.add_penalty_grads()
                    for key, p in layer.params.items():
                        optimizer.update(f"{layer.name}.{key}", p, layer.grads[key])
                    layer.apply_constraint()

        if per_parameter:
            optimizer.begin_step()
        run([partial(task, pairs) for pairs in self.update_sets if pairs])
        if not per_parameter:
            for layer in plan.regularized:
                layer.add_penalty_grads()
            optimizer.step(plan.params, plan.grads)
            for layer in plan.constrained:
                layer.apply_constraint()
