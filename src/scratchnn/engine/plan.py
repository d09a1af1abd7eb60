"""One step's plan: which function runs each layer's forward and backward, the loss function, and
what the update touches (see ``scratchnn.engine``)."""
from __future__ import annotations

import math
from functools import partial

from ..layers import MaxPool2D, ReLU
from ..losses import correct_count
from ..optimizers import SGD
from . import kernels


def forward_fn(layer, training_split=None):
    """``f(x, training=...)`` running ``layer``'s forward: its kernel when it has one, else its own.
    ``training_split = (SyncGroup, index)`` selects batch normalization's synchronized kernel."""
    if training_split is not None and type(layer) in kernels.SYNCED:
        return partial(kernels.batchnorm_forward, layer, sync=training_split)
    kernel = kernels.FORWARD.get(type(layer))
    return layer.forward if kernel is None else partial(kernel, layer)


def backward_fn(layer, need_dx=True, step=None, sync=None, owned=False):
    """``f(dy) -> dx`` running ``layer``'s backward (its kernel when it has one); ``need_dx=False``
    may skip the input gradient (then returns None). ``owned``: the ``dy`` it will receive is the
    step's own array, which batch normalization's kernel may overwrite (see ``Plan``)."""
    if type(layer) in kernels.SYNCED and (sync is not None or kernels.BACKWARD.get(type(layer)) is
                                          kernels.batchnorm_backward):  # (not a kernel of the user's)
        return partial(kernels.batchnorm_backward, layer, need_dx=need_dx, step=None, sync=sync, owned=owned)
    kernel = kernels.BACKWARD.get(type(layer))
    if kernel is not None:
        return partial(kernel, layer, need_dx=need_dx, step=step)
    if need_dx:
        return layer.backward

    def params_only(dy):  # a layer without a kernel computes its input gradient anyway
        layer.backward(dy)

    return params_only


def _identity(a, training=None):
    return a


def _pool_then_relu(pool_forward, relu_forward, x, training=False):
    return relu_forward(pool_forward(x, training=training), training=training)


def _relu_grad_then_pool(relu_backward, pool_backward, dy):
    return pool_backward(relu_backward(dy))


def swap_relu_and_max_pool(layers, forward, backward, stop):
    """``ReLU`` then ``MaxPool2D`` run as ``MaxPool2D`` then ``ReLU``: the same values (the maximum of
    a window commutes with the monotone ReLU) for a quarter of the ReLU's work with 2x2 windows.
    The gradients are the same too for finite inputs: where a window's maximum is positive both
    orders send the gradient to its first maximum; elsewhere the ReLU's mask makes it zero in both
    (a NaN in a window makes the loss NaN, and the engine refuses that step). The ReLU layer
    keeps the pooled activations as its cache. ``forward`` and ``backward`` (``backward[k]`` is layer
    ``len(layers) - 1 - k``, down to ``stop``) are changed in place."""
    last = len(layers) - 1
    for i in range(last):
        if type(layers[i]) is not ReLU or type(layers[i + 1]) is not MaxPool2D:
            continue
        forward[i], forward[i + 1] = _identity, partial(_pool_then_relu, forward[i + 1], forward[i])
        if i >= stop:
            relu_b, pool_b = last - i, last - i - 1
            backward[pool_b], backward[relu_b] = partial(_relu_grad_then_pool, backward[relu_b], backward[pool_b]), \
                _identity


class Plan:
    """What one step of ``model`` runs: the forward and backward functions of every layer, the loss
    function, and what the update touches. Made again every epoch: a callback that (un)freezes a layer
    or changes the learning rate acts from the next epoch on (``fit(engine="reference")`` reads them at
    every step)."""

    def __init__(self, model, direct=True, sync=None):
        layers, opt = model.layers, model.optimizer
        # plain SGD: the step is a fixed multiple of the gradient, so a kernel may add it in itself
        step = -opt.lr if direct and type(opt) is SGD and opt.momentum == 0 else None
        stop = next((i for i, l in enumerate(layers) if l.trainable and l.params), len(layers) - 1)
        self.params, self.grads, direct_layers = {}, {}, set()
        self.refresh = []  # (key, the layer's grads dict, its key): read again after every backward
        for layer in layers:
            keys = kernels.DIRECT_KEYS.get(type(layer), ())
            stepped = step is not None and layer.trainable and layer.regularizer is None and keys
            if stepped:
                direct_layers.add(id(layer))
            if layer.trainable:
                for k, p in layer.params.items():
                    if not (stepped and k in keys):
                        self.params[f"{layer.name}.{k}"] = p
                        self.grads[f"{layer.name}.{k}"] = layer.grads[k]
                        if type(layer) not in kernels.BACKWARD:  # a layer may put a new array in its grads
                            self.refresh.append((f"{layer.name}.{k}", layer.grads, k))
        self.direct = [l for l in layers if id(l) in direct_layers]
        # plain SGD: the engine steps the other parameters too (``p += -lr g``, SGD.update's math)
        # (not when a layer without a kernel may put new arrays in its grads: ``refresh`` above)
        self.sgd_step = step if not self.refresh else None
        self.sgd_pairs = [(p, self.grads[k]) for k, p in self.params.items()] if self.sgd_step is not None else []
        self.forward = [forward_fn(l, sync[i] if sync else None) for i, l in enumerate(layers)]
        # a layer's dy is the step's own when the layer above returns fresh arrays (``kernels.returns_fresh``)
        self.backward = [backward_fn(layers[i], need_dx=i != stop,
                                     step=step if id(layers[i]) in direct_layers else None,
                                     sync=sync[i] if sync else None,
                                     owned=i + 1 < len(layers) and kernels.returns_fresh(layers[i + 1]))
                         for i in range(len(layers) - 1, stop - 1, -1)]
        swap_relu_and_max_pool(layers, self.forward, self.backward, stop)
        loss_kernel = kernels.LOSSES.get(type(model.loss))
        self.loss = model.loss if loss_kernel is None else partial(loss_kernel, model.loss)
        trainable = [l for l in layers if l.trainable and l.params]
        self.penalized = [l for l in layers if l.regularizer is not None]
        self.regularized = [l for l in trainable if l.regularizer is not None]
        self.constrained = [l for l in trainable if l.constraint is not None]


def run_plan(plan, xb, yb, classify, scale=1.0, always_backward=False, penalty=0.0, rows=None):
    """Forward, loss and backward of one batch (or of one thread's share of it, whose loss and
    gradients are weighted by ``scale``); returns ``(loss + penalty, correct predictions)``.

    With ``rows`` (``EpochRecord.rows()``: the batch's slots for the loss terms, and for the
    predictions) the loss kernel writes each sample's terms there, the predicted classes go to the
    second, and this returns ``(probe + penalty, None)`` (see ``kernels.softmax_cross_entropy``)."""
    out = xb
    for f in plan.forward:
        out = f(out, training=True)
    if rows is None:
        loss, dout = plan.loss(out, yb)
        hits = correct_count(out, yb) if classify else 0
    else:
        loss, dout = plan.loss(out, yb, rows=rows[0])
        out.argmax(axis=1, out=rows[1])
        hits = None
    if scale != 1.0:
        loss *= scale
        dout = dout * dout.dtype.type(scale)
    loss += penalty
    # a non-finite loss stops the run before any update (plain SGD steps inside backward), so its
    # backward is skipped; but not by one thread's share alone: batch norm's backward waits for every share
    if always_backward or math.isfinite(loss):
        for f in plan.backward:
            dout = f(dout)
    return loss, hits
