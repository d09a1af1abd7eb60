"""Transfer learning: reuse a trained network's layers as a feature extractor for a new task.

The recipe (Yosinski et al. 2014; the Keras transfer-learning guide): drop the old output
layer(s), freeze what remains, put a new head on top and train only the head; then, optionally,
unfreeze the later layers and fine-tune everything with a much smaller learning rate.

Example:
    >>> from scratchnn.transfer import extract_features, freeze, new_head_model, unfreeze
    >>> model = new_head_model(pretrained, [Dense(5)], n_drop=1)   # copies, freezes the base
    >>> model.compile(optimizer=Adam(1e-3)); model.fit(X_small, y_small, epochs=30)
    >>> unfreeze(model, start=-3)                                 # the last layers learn again
    >>> model.compile(optimizer=Adam(1e-4)); model.fit(X_small, y_small, epochs=10)

A frozen layer keeps its parameters, but a frozen ``BatchNorm`` still updates its running
statistics when it runs in training mode, and a frozen ``Dropout`` still drops.
"""
from __future__ import annotations

import copy
from .errors import InvalidArgumentError, InvalidTypeError, StateError

__all__ = ["extract_features", "set_trainable", "freeze", "unfreeze", "new_head_model"]


def _check_model(model, what):
    from .model import Sequential

    if not isinstance(model, Sequential):
        raise InvalidTypeError(f"{what} expects a Sequential model, received {type(model).__name__}")


def extract_features(model, X, n_drop=1, batch_size=1000):
    """Outputs of ``model`` without its last ``n_drop`` layers, in inference mode.

    Args:
        model: a built (trained) ``Sequential``.
        X: inputs of shape ``(N, ...)`` that ``model`` accepts.
        n_drop: layers removed from the end (1 drops the output layer; an activation after the
            last hidden layer stays unless it is also dropped).
        batch_size: samples per forward pass.

    Returns:
        Array ``(N, ...)`` of features, e.g. ``(N, 128)`` for the last hidden layer of an MLP.
    """
    _check_model(model, "extract_features")
    if not model.built:
        raise StateError("extract_features needs a built model: fit it (or call model.build(input_shape)) first")
    return model.extract_features(X, n_drop=n_drop, batch_size=batch_size)


def set_trainable(model, trainable, start=0, stop=None):
    """Set ``layer.trainable`` on ``model.layers[start:stop]`` (Python slice semantics).

    Args:
        model: a ``Sequential``.
        trainable: True lets the optimizer update those layers, False freezes them.
        start, stop: slice bounds; negative values count from the end.

    Returns:
        The list of layers changed.
    """
    _check_model(model, "set_trainable")
    layers = model.layers[start:stop]
    for layer in layers:
        layer.trainable = bool(trainable)
    return layers


def freeze(model, stop=None):
    """Freeze ``model.layers[:stop]`` (every layer when ``stop`` is None); returns the layers frozen."""
    return set_trainable(model, False, 0, stop)


def unfreeze(model, start=0):
    """Make ``model.layers[start:]`` trainable again (``start=-2``: the last two layers)."""
    return set_trainable(model, True, start, None)


def new_head_model(base, head, n_drop=1, freeze_base=True, copy_base=True, name=None):
    """A new ``Sequential``: ``base`` without its last ``n_drop`` layers, followed by ``head``.

    Args:
        base: a trained, built ``Sequential``.
        head: list of new layers (e.g. ``[Dense(5)]``) put after the kept layers.
        n_drop: layers removed from the end of ``base``.
        freeze_base: mark the kept layers ``trainable=False`` so only the head learns.
        copy_base: copy the kept layers so training the new model (after ``unfreeze``) never
            changes ``base``; False shares them, as ``base.truncate`` does.
        name: the new model's name.

    Returns:
        A built, uncompiled ``Sequential``; ``compile`` it with a (small) learning rate and ``fit``.
    """
    from .layers.base import Layer
    from .model import Sequential

    _check_model(base, "new_head_model")
    if not base.built:
        raise StateError("new_head_model needs a built (trained) base model")
    if isinstance(head, Layer):
        head = [head]
    if not head or not all(isinstance(l, Layer) for l in head):
        raise InvalidArgumentError(f"head must be a non-empty list of layers, received {head!r}")
    kept = base.truncate(n_drop).layers
    if copy_base:
        kept = [copy.deepcopy(l) for l in kept]
        for l in kept:
            l._cache = None
    if freeze_base:
        for l in kept:
            l.trainable = False
    model = Sequential([*kept, *head], name=name or f"{base.name}_transfer", dtype=base.dtype)
    model.build(base.input_shape)
    return model

