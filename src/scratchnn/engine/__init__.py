"""The engine: how ``Sequential.fit`` and ``predict`` run by default. The same math as the plain step
(``Sequential.train_step``, ``fit(..., engine="reference")``), in fewer passes and on all cores.

Everything scratchnn does for speed is here, and only here:

- **kernels** (``kernels.py``): faster passes for some of the library's layers and for the
  softmax cross-entropy, looked up by the layer's exact class; any other layer runs its own
  plain ``forward``/``backward``. ``register_kernel`` is the hook for a layer of your own;
- **Winograd convolutions** (``winograd.py``): 3x3, stride-1 ``Conv2D`` layers of 16 or more
  input channels and an even output size by minimal filtering F(2x2, 3x3), 2.25x fewer
  multiplications than im2col, with their large temporaries reused from step to step;
- **the lowest trainable layer computes no input gradient** (nothing below it needs one);
- **ReLU then max-pooling runs as max-pooling then ReLU** (``plan.swap_relu_and_max_pool``): the
  same values and gradients, with the ReLU on a quarter of the values;
- **plain SGD inside the product** (``blas.py``): with ``SGD`` without momentum, unregularized
  ``Dense`` and ``Maxout`` layers take their step during backward: a large weight matrix as
  ``W += -lr x^T dy`` in one BLAS call, instead of a gradient array and two more passes, the bias
  as one matrix-vector product; the other parameters take SGD's update in the engine's own loop;
- **the epoch's loss and accuracy summed once per epoch** (``record.py``): with the softmax
  cross-entropy on integer labels, each step writes its samples' loss terms and predictions into
  arrays (up to 65,536 rows, folded when full) instead of reducing them (~8 small NumPy calls) at
  every step; a batch's values are computed only when a callback reads them;
- **ReLU in place at inference** (``_inference_fns``): over an input the layer before computed
  (``kernels.infers_fresh``), never the caller's input or what a layer of your own returns;
- **reused batch buffers**: each mini-batch is gathered into the same arrays, and the large
  temporaries of the Winograd and batch-normalization kernels come from buffers kept between steps
  (``buffers.py``; page faults of fresh multi-MB arrays cost as much as the work done in them);
- **threads** (``threads.py``): for convolutional networks each mini-batch is split across the
  cores, one BLAS thread per share, with batch normalization synchronized across them.

Any optimizer goes through its own ``step(params, grads)``; the engine's only special cases are
plain SGD (above: the exact class ``SGD`` with ``momentum=0``) and, with split batches, the
library's optimizers, whose per-parameter ``update`` it shares out among the threads.
``tests/test_engine.py`` trains the same models on both paths and compares the weights.
"""
from __future__ import annotations

import contextlib
import math
import weakref
from functools import partial

import numpy as np

from ..errors import TrainingDivergedError
from ..layers import ReLU
from . import buffers, kernels, threads
from .kernels import register_kernel
from .plan import Plan, forward_fn, run_plan
from .record import EpochRecord, StepSums

__all__ = ["EpochRecord", "FastEngine", "Plan", "StepSums", "register_kernel", "infer", "run_plan"]


class FastEngine:
    """Runs ``fit``'s steps for ``model`` with mini-batches of up to ``batch_size`` samples
    (a context manager: BLAS threads are limited while batches are split across threads)."""

    def __init__(self, model, batch_size, sample_shape, y_shape, y_dtype, samples=None):
        self.model = model
        self.xbuf = np.empty((batch_size,) + tuple(sample_shape), dtype=model.dtype)
        self.ybuf = np.empty((batch_size,) + tuple(y_shape), dtype=y_dtype)
        # the epoch's loss and accuracy: summed once per epoch when the loss kernel can record its
        # samples' terms (``record.py``), else step by step
        self.metrics = (EpochRecord(samples, batch_size, model.dtype, y_dtype)
                        if samples and recordable(model, y_shape, y_dtype) else StepSums())
        shards = threads.shards_for(batch_size, work_per_sample(model)) if splittable(model) else 1
        self.replicas = threads.Replicas(model, shards) if shards > 1 else None
        self.plan = None
        self._limit = threads.single_blas_thread() if self.replicas else contextlib.nullcontext()

    def __enter__(self):
        self._limit.__enter__()
        return self

    def __exit__(self, *exc):
        self.plan = None
        buffers.release(self.model.layers)  # fit is over: its reused buffers go
        return self._limit.__exit__(*exc)

    def begin_epoch(self):
        self.plan = Plan(self.model, direct=self.replicas is None)
        if self.replicas is not None:
            self.replicas.new_epoch(self.plan)
        self.metrics.begin()

    def batch(self, X, y, idx):
        """Samples ``idx`` of ``X`` and ``y`` gathered into the reused buffers (the labels into the
        epoch's record, when there is one: ``step`` must follow)."""
        m = len(idx)
        if X.dtype != self.xbuf.dtype:  # memory-mapped data of another dtype: convert this batch only
            self.xbuf[:m] = X[idx]
            xb = self.xbuf[:m]
        else:
            xb = X.take(idx, 0, self.xbuf[:m], "clip")  # "raise" would copy twice
        if type(self.metrics) is EpochRecord:
            return xb, y.take(idx, 0, self.metrics.labels[self.metrics.next_batch(m)], "clip")
        return xb, y.take(idx, 0, self.ybuf[:m], "clip")

    def step(self, xb, yb, classify=True, epoch=0, batch=0):
        """One update (what ``Sequential.train_step`` does); ``metrics.batch()`` and
        ``metrics.epoch()`` read its loss and correct count."""
        plan, model, record = self.plan, self.model, self.metrics
        if type(record) is not EpochRecord:
            record = None
        split = self.replicas is not None and len(xb) >= self.replicas.shards
        penalty = sum(layer.penalty() for layer in plan.penalized) if plan.penalized else 0.0  # of the weights now
        if split:
            loss, hits = self.replicas.forward_backward(xb, yb, classify, record)
            loss += penalty
        else:
            loss, hits = run_plan(plan, xb, yb, classify, penalty=penalty, rows=record and record.rows())
        if record is None:
            self.metrics.add(loss, hits, len(xb))
        else:
            record.add_penalty(penalty)
            if not math.isfinite(loss):  # a probe (run_plan): the batch's loss itself decides
                loss = record.batch_loss()
        if not math.isfinite(loss):
            raise TrainingDivergedError.at(loss, epoch, batch)
        for key, grads, k in plan.refresh:
            plan.grads[key] = grads[k]
        if split:  # the threads' gradients added up, and the update shared out among them
            self.replicas.update(model.optimizer, plan)
            return
        for layer in plan.regularized:
            layer.add_penalty_grads()
        if plan.sgd_step is not None:  # plain SGD, as SGD.update does it (without a call per parameter)
            model.optimizer.begin_step()
            for p, g in plan.sgd_pairs:
                g *= plan.sgd_step
                p += g
        else:
            model.optimizer.step(plan.params, plan.grads)
        for layer in plan.constrained:
            layer.apply_constraint()


# -- inference ----------------------------------------------------------------------------------------
_FORWARD_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (layer ids, functions)
_WORK_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (key, work per sample)


def _forward_fns(model):
    key = (tuple(map(id, model.layers)), kernels.FORWARD.get(ReLU))
    cached = _FORWARD_CACHE.get(model)
    if cached is None or cached[0] != key:
        cached = _FORWARD_CACHE[model] = (key, _inference_fns(model.layers))
    return cached[1]


def _inference_fns(layers):
    """Each layer's inference forward; a ``ReLU`` whose input is fresh (computed by the layer before,
    referred to by nothing else: ``kernels.infers_fresh``) is applied in place. The caller's input is
    never written."""
    fns, fresh = [], False
    for layer in layers:
        if fresh and type(layer) is ReLU and kernels.FORWARD.get(ReLU) is kernels.relu_forward:
            fns.append(partial(kernels.relu_in_place, layer))
        else:
            fns.append(forward_fn(layer))
        fresh = kernels.infers_fresh(layer, fresh)
    return fns


def recordable(model, y_shape, y_dtype) -> bool:
    """Whether ``fit`` may sum the epoch's loss and accuracy once per epoch (``record.py``): the loss
    is the library's softmax cross-entropy (its kernel records), on integer labels and 2-D outputs."""
    return (kernels.LOSSES.get(type(model.loss)) is kernels.softmax_cross_entropy and len(y_shape) == 0
            and np.dtype(y_dtype).kind in "iu" and len(model.output_shape) == 1)


def splittable(model) -> bool:
    """Whether ``model``'s batches may be split across threads: every layer is known to compute its
    samples independently (``kernels.SAMPLE_WISE``) or has a synchronized kernel (batch norm)."""
    return all(type(l) in kernels.SAMPLE_WISE or type(l) in kernels.SYNCED for l in model.layers)


def work_per_sample(model):
    key = (model.input_shape, tuple(map(id, model.layers)))
    cached = _WORK_CACHE.get(model)
    if cached is None or cached[0] != key:
        cached = _WORK_CACHE[model] = (key, threads.work_per_sample(model.layers, model.input_shape))
    return cached[1]


def _forward(fns, x):
    for f in fns:
        x = f(x, training=False)
    return x


def infer(model, x):
    """Inference-mode forward pass of one batch, split across threads when it is large."""
    if len(x) == 1:  # one sample: no threads, and a dict lookup per layer instead of the cached plan
        for layer in model.layers:
            kernel = kernels.FORWARD.get(type(layer))
            x = layer.forward(x) if kernel is None else kernel(layer, x, False)
        return x
    fns = _forward_fns(model)
    shards = threads.shards_for(len(x), work_per_sample(model)) if len(x) > 1 and splittable(model) else 1
    if shards < 2:
        return _forward(fns, x)
    with threads.single_blas_thread():
        parts = threads.run([partial(_forward, fns, x[a:b]) for a, b in threads.bounds(len(x), shards)])
    return np.concatenate(parts)
