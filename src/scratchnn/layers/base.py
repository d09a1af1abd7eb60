"""The Layer contract every layer follows.

``y = layer.forward(x, training=False)`` computes the output and, when
``training=True``, keeps on ``self`` exactly what the backward pass needs.
``dx = layer.backward(dy)`` returns the gradient w.r.t. the input (a new array: never write
into ``dy``) and fills ``layer.grads[k]`` for every ``layer.params[k]``. Optimizers,
regularizers, gradient checks, save/load and both ways ``fit`` runs a step (the plain
reference step and the default engine, ``scratchnn.engine``) use only this interface.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..backend import float_dtype
from ..errors import InvalidArgumentError, InvalidTypeError, StateError

#: name -> Layer subclass: the classes ``load`` and model description files may name (see ``register``)
LAYERS: dict[str, type] = {}
#: constructor arguments that make a layer build at once (``Dense(10, in_features=784)``)
DECLARED_INPUT_KEYS = ("in_features", "in_channels")


class Layer:
    """Base class of all layers.

    Args:
        name: optional name; a ``Sequential`` gives unnamed layers unique names.
        trainable: when False the optimizer leaves this layer's parameters alone. A frozen
            layer still behaves as in training when called with ``training=True``: a frozen
            ``BatchNorm`` updates its running statistics and a frozen ``Dropout`` drops.

    Attributes:
        params: dict of parameter arrays (``{}`` for layers without parameters).
        grads: dict of gradient arrays with the same keys, filled by ``backward``.
        buffers: dict of non-trainable state saved with the model (running statistics).
        regularizer: optional penalty applied to the weight parameters (``weight_keys``).
        constraint: optional constraint (for example max-norm) applied after each update.
    """

    #: parameters a regularizer or constraint applies to (biases and BN shifts are exempt)
    weight_keys: tuple[str, ...] = ()
    def __init__(self, name: str | None = None, trainable: bool = True):
        if name is not None and not (isinstance(name, str) and name.strip()):
            raise InvalidArgumentError(f"{type(self).__name__}: name must be a non-empty string, received {name!r}")
        self.name = name
        self.trainable = bool(trainable)
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}
        self.regularizer = None
        self.constraint = None
        self.built = False
        self.input_shape: tuple | None = None  # without the batch axis
        self._cache = None

    # -- construction -------------------------------------------------------------
    def build(self, input_shape: tuple, dtype) -> None:
        """Create parameters for inputs of ``input_shape`` (batch axis excluded)."""
        self.input_shape = tuple(input_shape)
        self.built = True

    def ensure_built(self, x) -> None:
        if not self.built:
            if x.ndim < 1:
                raise InvalidArgumentError(f"{self.label} expected a batched array, received a scalar")
            self.build(tuple(x.shape[1:]), float_dtype(x))

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (batch axis excluded)."""
        return tuple(input_shape)

    def param_shapes(self, input_shape: tuple) -> dict:
        """``{key: shape}`` of the parameters ``build(input_shape)`` would create, without creating them
        (a model's memory is checked with it before anything is allocated). Layers with parameters override it."""
        return {}

    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments (used by save/load)."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """A layer from ``get_config()``'s dict, with nothing allocated yet.

        A declared input size (``in_features``, ``in_channels``) is kept and checked when the layer is
        built, instead of building the layer right away, so a model's size can be checked first.
        """
        config = dict(config)
        accepted = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
        unknown = [k for k in config if k not in accepted]
        if unknown and "kwargs" not in accepted:
            raise InvalidArgumentError(f"{cls.__name__}: unknown argument(s) {', '.join(map(repr, unknown))}; "
                                       f"it takes {', '.join(accepted)}")
        declared = {k: config.pop(k) for k in DECLARED_INPUT_KEYS if config.get(k) is not None}
        layer = cls(**config)
        for k, v in declared.items():
            setattr(layer, k, check_positive_int(cls.__name__, k, v))
        return layer

    @property
    def label(self) -> str:
        """How error messages refer to this layer, e.g. ``Dense 'dense_1'``."""
        return f"{type(self).__name__} '{self.name}'" if self.name else type(self).__name__

    # -- computation --------------------------------------------------------------
    def __call__(self, x, training: bool = False):
        return self.forward(x, training=training)

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy):
        """Return dL/dx for dL/dy = ``dy`` and fill ``self.grads[k]`` = dL/d``params[k]``."""
        raise NotImplementedError

    def _require_cache(self):
        """Return the cache of the last training forward, or raise a clear error."""
        if self._cache is None:
            raise StateError(
                f"{self.label}: backward() called before forward(x, training=True); "
                "run a training forward pass first"
            )
        return self._cache

    def _check_features(self, x, axis: int, expected: int, what: str = "features") -> None:
        if x.ndim < 2 or x.shape[axis] != expected:
            raise InvalidArgumentError(
                f"{self.label} expected input with {expected} {what} "
                f"(shape (batch, ..., {expected})), received shape {tuple(x.shape)}"
                if axis == -1
                else f"{self.label} expected input with {expected} {what} on axis {axis}, "
                f"received shape {tuple(x.shape)}"
            )

    # -- parameters ---------------------------------------------------------------
    def zero_grads(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    def astype(self, dtype) -> "Layer":
        """Convert parameters, gradients and buffers to ``dtype`` in place (returns self)."""
        dtype = np.dtype(dtype)
        for d in (self.params, self.grads, self.buffers):
            for k, v in d.items():
                if v.dtype != dtype:
                    d[k] = v.astype(dtype)
        return self

    @property
    def dtype(self):
        for v in (*self.params.values(), *self.buffers.values()):
            return v.dtype
        return None

    def count_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def penalty(self) -> float:
        """Regularization term this layer adds to the loss."""
        if self.regularizer is None:
            return 0.0
        return float(sum(self.regularizer(self.params[k]) for k in self.weight_keys))

    def add_penalty_grads(self) -> None:
        """Add the regularizer's gradient to ``grads`` of the weight parameters."""
        if self.regularizer is not None:
            for k in self.weight_keys:
                self.regularizer.add_grad(self.params[k], self.grads[k])

    def apply_constraint(self) -> None:
        if self.constraint is not None:
            for k in self.weight_keys:
                self.constraint(self.params[k])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k not in ("name", "trainable"))
        return f"{type(self).__name__}({args})"


def register(cls=None, *, name=None, replace=False):
    """Make a layer class loadable by name: by ``scratchnn.load`` and in TOML/YAML model files.

    The library's own layers are registered in ``scratchnn.layers``; register your own before
    saving or loading a model that uses it. Use it as a decorator or call it.

    Args:
        cls: a ``Layer`` subclass.
        name: the name files use (default: the class name); names starting with ``_`` are private.
        replace: allow taking over a name another class holds (otherwise that is an error, so a
            class of your own named ``Dense`` cannot silently replace the library's).

    Example:
        >>> @register
        ... class Square(Layer):
        ...     def forward(self, x, training=False):
        ...         self._cache = x if training else None
        ...         return x * x
        ...     def backward(self, dy):
        ...         return 2 * self._cache * dy
    """
    def add(layer_cls):
        if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
            raise InvalidTypeError(f"register: expected a Layer subclass, received {layer_cls!r}")
        key = name or layer_cls.__name__
        if key.startswith("_"):
            raise InvalidArgumentError(f"register: {key!r} is a private name; give a public one")
        taken = LAYERS.get(key)
        if taken is not None and taken is not layer_cls and not replace:
            raise InvalidArgumentError(
                f"register: the name {key!r} is taken by {taken.__module__}.{taken.__qualname__}; pass "
                f"name=... for another name, or replace=True to replace it")
        LAYERS[key] = layer_cls
        return layer_cls

    return add if cls is None else add(cls)


def registered_name(layer) -> str:
    """The name under which ``type(layer)`` is registered, or an error saying how to register it."""
    for key, cls in LAYERS.items():
        if cls is type(layer):
            return key
    raise InvalidArgumentError(f"{type(layer).__name__} is not a registered layer, so a saved model could not be "
                               f"loaded again: call scratchnn.layers.register({type(layer).__name__}) first")


def check_positive_int(layer: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{layer}: {name} must be a positive integer, received {value!r}")
    return int(value)
