"""``Sequential``: a stack of layers trained with mini-batch gradient descent.

One mini-batch, end to end (``Sequential.train_step``, the reference step): each ``layer.forward``
-> ``loss`` -> each ``layer.backward`` in reverse -> regularizer gradients ->
``optimizer.step(params, grads)`` -> constraints; ``fit`` loops over batches and epochs and calls
the callbacks. By default ``fit`` runs that same step through ``scratchnn.engine``, which computes
the same thing faster (tests prove it); ``fit(..., engine="reference")`` runs ``train_step`` itself,
to read or step through in a debugger.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from . import engine as engine_mod
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from . import regularizers as regularizers_mod
from .backend import default_dtype, global_rng
from .callbacks import CallbackList, History
from .files import save_model
from .layers.base import Layer
from .errors import InvalidArgumentError, InvalidTypeError, StateError, TrainingDivergedError


def estimate_bytes(layers, input_shape, itemsize=4) -> tuple[int, str]:
    """Bytes of the parameters of ``layers`` for inputs of ``input_shape``, and the largest layer.

    Uses only shapes (``Layer.param_shapes`` and ``Layer.output_shape``): nothing is allocated.
    """
    total, largest, largest_size = 0, "", -1
    shape = tuple(input_shape)
    for layer in layers:
        shapes = layer.param_shapes(shape)
        size = sum(math.prod(s) for s in shapes.values())
        total += size * itemsize
        if size > largest_size:
            largest, largest_size = f"{layer.label} with {size:,} parameters", size
        shape = tuple(layer.output_shape(shape))
    return total, largest


def physical_memory() -> int:
    """Bytes of RAM on this machine (a large default where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def check_memory(layers, input_shape, what="model", itemsize=4, copies=2) -> int:
    """Refuse a network whose weights times ``copies`` (2: weights and gradients, as ``build`` makes them;
    4 with an optimizer's two slots) would not fit in this machine's memory, before anything is allocated."""
    weights, largest = estimate_bytes(layers, input_shape, itemsize)
    need, have = weights * copies, physical_memory()
    if need > have:
        raise InvalidArgumentError(
            f"{what} would need about {need / 2**30:,.1f} GiB ({need:,} bytes: {weights:,} bytes of weights, "
            f"x{copies} for {'gradients and optimizer state' if copies > 2 else 'their gradients'}; largest: "
            f"{largest}); this machine has "
            f"{have / 2**30:.1f} GiB")
    return need


_SMALL = 1 << 16  # arrays below this many values are checked by one scaled dot product
_SCALES: dict = {}  # dtype -> read-only vector of _SMALL copies of 2**-17


def _scaled_sum(X):
    """The sum of ``X``'s values times 2**-17: finite exactly when every value is, for fewer than
    2**16 float32 or float64 values. Each term is below 2**-17 of the dtype's largest value and fewer
    than 2**16 of them sum below 2**-1 of it (2**127 in float32, 2**1023 in float64), so a finite
    input cannot overflow; a NaN or inf term makes the sum NaN or inf (a power of two scales exactly).
    ``np.vdot``: one BLAS pass over ``X`` flattened (a copy only if it is not contiguous) that, unlike
    ``dot``, does not turn the floating-point flags into warnings: +inf and -inf together give NaN
    quietly, and tiny values underflow quietly. For one MNIST image ``check_finite`` takes ~1.0 us
    this way, against ~1.5 us (float32) and ~2.1 us (float64) with the sums it replaces."""
    v = _SCALES.get(X.dtype)
    if v is None:
        v = _SCALES[X.dtype] = np.full(_SMALL, 2.0 ** -17, X.dtype)
        v.flags.writeable = False
    return np.vdot(X, v[:X.size])


def _float_dtype(dtype, what) -> np.dtype:
    """``np.dtype(dtype)`` if it is a float type, else one clear error (a model computes in floats)."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.kind != "f":
        raise InvalidTypeError(f"{what} must be a float type such as float32 (the default) or float64, "
                               f"received {dtype!r}")
    return dt


def check_finite(X, what="X"):
    """Raise a ValueError naming the first NaN/inf entry of ``X``."""
    X = np.asarray(X)
    if X.dtype.kind not in "fc":
        return
    # one pass (no copy of contiguous data), no warning for huge finite values (they must not
    # overflow the check)
    if X.size < _SMALL and X.dtype.char in "fd":  # float32, float64 (a char: ~0.3 us less than dtypes)
        total = _scaled_sum(X)
    elif X.dtype.kind == "f" and X.dtype.itemsize <= 4 and X.size < _SMALL:  # float16: sum in float64
        total = np.add.reduce(X, axis=None, dtype=np.float64)
    elif type(X) is np.ndarray and X.dtype in (np.float32, np.float64) and X.flags.c_contiguous:
        # large data sets: the dot product of the values with themselves is one BLAS pass at memory
        # speed (~30% faster than a sum); finite only if every value is
        flat = X.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.dot(flat, flat)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            total = X.sum()
    # (math.isfinite reads a real scalar ~0.5 us faster than np.isfinite, which shows at batch 1)
    if (math.isfinite(total) if X.dtype.kind == "f" else np.isfinite(total)) or np.isfinite(X).all():
        return  # (a non-finite sum may be an overflow of huge finite values)
    bad = np.argwhere(~np.isfinite(X))[0]
    raise InvalidArgumentError(f"{what} contains {X[tuple(bad)]} at index {tuple(int(i) for i in bad)}; "
                     "inputs must be finite (clean or impute the data first)")


def forward(layers, x, training=False):
    """Run ``x`` through ``layers`` in order."""
    for layer in layers:
        x = layer.forward(x, training=training)
    return x


def backward(layers, dout):
    """Backpropagate ``dout`` through ``layers``, last to first; returns the input gradient."""
    for layer in reversed(layers):
        dout = layer.backward(dout)
    return dout


class ReferenceRunner:
    """How ``fit(..., engine="reference")`` runs: each batch copied out of the data, then ``train_step``."""

    def __init__(self, model):
        self.model = model
        self.metrics = engine_mod.StepSums()  # each step's loss and correct count, added up

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def begin_epoch(self):
        self.metrics.begin()

    def batch(self, X, y, idx):
        return np.asarray(X[idx], dtype=self.model.dtype), y[idx]

    def step(self, xb, yb, classify, epoch, batch):
        loss, hits = self.model.train_step(xb, yb, classify, epoch, batch)
        self.metrics.add(loss, hits, len(xb))


class Sequential:
    """A linear stack of layers.

    Args:
        layers: list of ``Layer`` objects.
        name: optional model name.
        dtype: float dtype of parameters and training data (default float32,
            see ``scratchnn.set_default_dtype``).

    Attributes:
        info: what the model was trained on, saved in its file: ``{"dataset": "mnist",
            "input_shape": [1, 28, 28], "class_names": [...], "preprocess": "scale_255"}`` when it was
            trained by ``scratchnn train`` (``{}`` otherwise; any JSON-serialisable dict).

    Example:
        >>> model = Sequential([Dense(100), ReLU(), Dense(10)])
        >>> model.compile(optimizer=SGD(lr=0.1), loss="softmax_cross_entropy")
        >>> history = model.fit(X, y, epochs=5, batch_size=32, validation_data=(Xv, yv))
        >>> model.evaluate(Xt, yt)["accuracy"]
    """

    def __init__(self, layers=None, name=None, dtype=None):
        self.name = name or "sequential"
        self.dtype = default_dtype() if dtype is None else _float_dtype(dtype, "Sequential: dtype")
        self.layers: list[Layer] = []
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        self.input_shape = None
        self.info: dict = {}
        self.shuffle_rng = None  # created by the first fit (or fit(seed=...)); checkpoints save its state
        for layer in layers or []:
            self.add(layer)

    # -- structure ------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise InvalidTypeError(f"Sequential.add expects a Layer, received {type(layer).__name__}")
        if layer.name is None:
            base = type(layer).__name__.lower()
            taken = {l.name for l in self.layers}
            i = 1
            while f"{base}_{i}" in taken:
                i += 1
            layer.name = f"{base}_{i}"
        elif any(l.name == layer.name for l in self.layers):
            raise InvalidArgumentError(f"Sequential: a layer named {layer.name!r} already exists")
        self.layers.append(layer)

    def build(self, input_shape, dtype=None) -> None:
        """Create every layer's parameters for per-sample inputs of ``input_shape``."""
        dtype = _float_dtype(dtype, "build: dtype") if dtype is not None else self.dtype
        shape = tuple(int(s) for s in input_shape)
        if not all(l.built for l in self.layers):
            check_memory(self.layers, shape, f"model {self.name!r}", dtype.itemsize)
        self.input_shape = shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape, dtype)
            elif layer.dtype is not None and layer.dtype != dtype:
                layer.astype(dtype)
            shape = tuple(layer.output_shape(shape))
        self.output_shape = shape

    @property
    def built(self) -> bool:
        if self.input_shape is None:
            return False
        for layer in self.layers:  # (a loop: predict at batch 1 asks this; all() and a generator cost ~0.5 us)
            if not layer.built:
                return False
        return True

    def truncate(self, n: int = 1) -> "Sequential":
        """A new model sharing the first ``len(layers) - n`` layers (drop the last ``n``).

        The layers (and their weights) are shared, not copied, so the result is a
        feature extractor of this model.
        """
        if not 0 <= n < len(self.layers):
            raise InvalidArgumentError(f"truncate: n must be in [0, {len(self.layers)}), received {n}")
        m = Sequential(self.layers[: len(self.layers) - n], name=f"{self.name}_truncated", dtype=self.dtype)
        if self.input_shape is not None:
            m.build(self.input_shape)
        return m

    def extract_features(self, X, n_drop=1, batch_size=1000):
        """Outputs of the network without its last ``n_drop`` layers (inference mode)."""
        return self.truncate(n_drop).predict_logits(X, batch_size)

    # -- configuration --------------------------------------------------------------
    def compile(self, optimizer="adam", loss="softmax_cross_entropy", regularizer=None, constraint=None):
        """Set the optimizer and loss (objects or names).

        ``regularizer`` / ``constraint`` (for example ``L2(1e-4)`` / ``MaxNorm(3)``) apply to
        every weighted layer that has none of its own.
        """
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        regularizer = regularizers_mod.get(regularizer)
        constraint = regularizers_mod.get(constraint)
        for layer in self.layers:
            if layer.weight_keys:
                if regularizer is not None and layer.regularizer is None:
                    layer.regularizer = regularizer
                if constraint is not None and layer.constraint is None:
                    layer.constraint = constraint
        return self

    def _require_compiled(self, what):
        if self.loss is None or (what == "fit" and self.optimizer is None):
            raise StateError(f"call model.compile(optimizer=..., loss=...) before {what}()")

    # -- the passes -----------------------------------------------------------------
    def forward(self, x, training=False):
        return forward(self.layers, x, training)

    def backward(self, dout):
        """Backpropagate ``dout`` from the last layer to the first; returns the input gradient."""
        return backward(self.layers, dout)

    def penalty(self) -> float:
        return float(sum(layer.penalty() for layer in self.layers))

    def parameters(self, trainable_only=False) -> dict:
        """``{"layer_name.key": array}`` of all (or trainable) parameters."""
        return {f"{l.name}.{k}": v for l in self.layers if l.trainable or not trainable_only
                for k, v in l.params.items()}

    def _prepare(self, X, y=None, what="X"):
        """Validate and convert ``X`` (and ``y``): a clear error for a wrong rank or dtype, a
        NaN/inf entry (named, before anything runs) or labels out of range."""
        X = np.asanyarray(X)
        if X.ndim < 2:
            raise InvalidArgumentError(f"{what} must have a batch axis: expected shape (samples, ...), received {X.shape}")
        if X.dtype != self.dtype:  # build() keeps every layer in the model's dtype
            if X.dtype.kind not in "fiu" and X.dtype != np.bool_:
                raise InvalidTypeError(f"{what} must be numeric, received dtype {X.dtype}")
            if not isinstance(X, np.memmap):  # a file on disk stays there: batches are cast one at a time
                X = X.astype(self.dtype)
        check_finite(X, what)
        if not self.built:
            self.build(X.shape[1:])
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(X):
                raise InvalidArgumentError(f"{what} has {len(X)} samples but its labels have {len(y)}")
            if y.ndim == 1 and isinstance(self.loss, losses_mod.SoftmaxCrossEntropy):
                y = losses_mod.check_labels(y, int(self.output_shape[-1]), where=f"labels of {what}")
            else:  # one-hot or regression targets
                check_finite(y, what.replace("X", "y"))
        return X, y

    # -- training -------------------------------------------------------------------
    def fit(self, X, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1,
            callbacks=None, seed=None, initial_epoch=0, engine="fast"):
        """Train with mini-batch gradient descent.

        Args:
            X, y: training inputs ``(N, ...)`` and targets (integer labels ``(N,)`` or one-hot).
            epochs: index of the last epoch (as in Keras; training runs ``initial_epoch..epochs-1``).
            batch_size: samples per update: 1 is pure SGD, ``len(X)`` is full-batch descent.
            validation_data: optional ``(X_val, y_val)`` evaluated after every epoch.
            shuffle: reshuffle the training set every epoch.
            verbose: 0 silent, 1 progress bar and a line per epoch, 2 a line per epoch.
            callbacks: list of ``scratchnn.callbacks.Callback``.
            seed: seed of the shuffling generator. None keeps the generator of the previous
                ``fit`` (or draws one from ``scratchnn.set_seed``'s global generator the first time).
            initial_epoch: epoch to start at (to continue a run restored from a checkpoint).
            engine: ``"fast"`` (default): steps run through ``scratchnn.engine`` (kernels, reused
                buffers, threads); ``"reference"``: each step is ``train_step``, the plain math, to
                read or step through in a debugger. Both compute the same updates (up to float
                rounding; tests compare them), except that on the engine a callback that (un)freezes a
                layer or changes the learning rate mid-epoch acts from the next epoch on.

        Returns:
            ``History`` with per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.

        Raises:
            ValueError: before training, naming a NaN/inf entry of ``X`` or of float targets, a
                label out of range, or mismatched lengths.
            TrainingDivergedError: when the training or validation loss stops being finite.
        """
        self._require_compiled("fit")
        X, y = self._prepare(X, y, "X")
        n = len(X)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise InvalidArgumentError(f"fit: batch_size must be >= 1, received {batch_size}")
        batch_size = min(batch_size, n)
        Xv = yv = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise InvalidArgumentError("validation_data must be a tuple (X_val, y_val)")
            Xv, yv = self._prepare(*validation_data, what="validation X")
        if seed is not None or self.shuffle_rng is None:
            self.shuffle_rng = np.random.default_rng(seed if seed is not None else int(global_rng().integers(2**63)))
        history = History()
        self.history = history
        cbs = CallbackList(callbacks, history, verbose=verbose, model=self)
        self.stop_training = False
        classify = isinstance(self.loss, losses_mod.SoftmaxCrossEntropy) or (y.ndim == 2 and y.shape[1] > 1)
        steps = math.ceil(n / batch_size)
        if engine == "fast":
            runner = engine_mod.FastEngine(self, batch_size, X.shape[1:], y.shape[1:], y.dtype, samples=n)
        elif engine == "reference":
            runner = ReferenceRunner(self)
        else:
            raise InvalidArgumentError(f"fit: engine must be 'fast' or 'reference', received {engine!r}")
        logged = ["loss"] + ["accuracy"] * classify
        logged += [f"val_{k}" for k in logged] * (Xv is not None) + ["time"]
        cbs.on_train_begin({"epochs": epochs, "steps": steps, "samples": n, "initial_epoch": initial_epoch,
                            "logs": logged})
        with runner:
            for epoch in range(initial_epoch, epochs):
                self.optimizer.set_epoch(epoch)
                cbs.on_epoch_begin(epoch)
                runner.begin_epoch()
                t0 = time.perf_counter()
                order = self.shuffle_rng.permutation(n) if shuffle else np.arange(n)
                for b in range(steps):
                    xb, yb = runner.batch(X, y, order[b * batch_size:(b + 1) * batch_size])
                    runner.step(xb, yb, classify, epoch, b)
                    if cbs.per_batch:  # (the batch's loss and hits are computed only if a callback reads them)
                        cbs.on_batch_end(b, runner.metrics, len(xb))
                total_loss, correct = runner.metrics.epoch()
                logs = {"loss": total_loss / n}
                if classify:
                    logs["accuracy"] = correct / n
                if Xv is not None:
                    logs.update({f"val_{k}": v for k, v in self._evaluate(Xv, yv, fast=engine == "fast").items()})
                    if not math.isfinite(logs["val_loss"]):  # the weights overflow on held-out data
                        error = TrainingDivergedError(
                            f"validation loss became {logs['val_loss']} after epoch {epoch + 1}; training "
                            "stopped (try a smaller learning rate or penalty, or check the inputs' scale)")
                        error.epoch = epoch + 1
                        raise error
                logs["time"] = time.perf_counter() - t0
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        cbs.on_train_end()
        return history

    def train_step(self, xb, yb, classify=True, epoch=0, batch=0):
        """One update on one mini-batch, as the math reads: the reference step.

        ``fit(..., engine="reference")`` calls it for every batch; the default engine computes the
        same update faster. Returns ``(mean loss including penalties, correct predictions)``.
        """
        out = self.forward(xb, training=True)  # each layer.forward, first to last
        loss, dout = self.loss(out, yb)  # the batch's mean loss and dL/d(out)
        loss += self.penalty()  # + the regularizers' terms
        if not math.isfinite(loss):  # stop before a NaN reaches the weights
            raise TrainingDivergedError.at(loss, epoch, batch)
        self.backward(dout)  # each layer.backward, last to first: fills every layer.grads
        trainable = [layer for layer in self.layers if layer.trainable and layer.params]
        for layer in trainable:
            layer.add_penalty_grads()  # + d(penalty)/dW
        params = {f"{layer.name}.{k}": p for layer in trainable for k, p in layer.params.items()}
        grads = {f"{layer.name}.{k}": layer.grads[k] for layer in trainable for k in layer.params}
        self.optimizer.step(params, grads)  # p -= lr * g (or momentum, Adam, ...)
        for layer in trainable:
            layer.apply_constraint()  # max-norm, if any
        return loss, losses_mod.correct_count(out, yb) if classify else 0

    # -- inference --------------------------------------------------------------------
    def _batches(self, X, batch_size, fast=True):
        for i in range(0, len(X), batch_size):
            yield self._infer(np.asarray(X[i:i + batch_size], dtype=self.dtype), fast)

    def _infer(self, x, fast=True):
        """Inference-mode forward pass of one batch: through the engine (threads for large batches,
        kernels) or, with ``fast=False``, each layer's plain forward."""
        return engine_mod.infer(self, x) if fast else forward(self.layers, x)

    def _evaluate(self, X, y, batch_size=1000, fast=True):
        total, correct = 0.0, 0
        classify = isinstance(self.loss, losses_mod.SoftmaxCrossEntropy) or (y.ndim == 2 and y.shape[1] > 1)
        for i, out in enumerate(self._batches(X, batch_size, fast)):
            yb = y[i * batch_size:(i + 1) * batch_size]
            total += self.loss.value(out, yb) * len(out)
            if classify:
                correct += losses_mod.correct_count(out, yb)
        res = {"loss": total / len(X) + self.penalty()}
        if classify:
            res["accuracy"] = correct / len(X)
        return res

    def evaluate(self, X, y, batch_size=1000) -> dict:
        """Return ``{"loss": ..., "accuracy": ...}`` on ``(X, y)`` in inference mode."""
        self._require_compiled("evaluate")
        X, y = self._prepare(X, y, "X")
        return self._evaluate(X, y, batch_size)

    def predict_logits(self, X, batch_size=1000):
        """Raw network outputs in inference mode."""
        X, _ = self._prepare(X)
        if len(X) <= batch_size:  # one batch: no list, no concatenate copy
            # (a plain ndarray: a subclass such as np.matrix or a masked array is converted, as _batches does)
            return self._infer(X if type(X) is np.ndarray and X.dtype == self.dtype else np.asarray(X, dtype=self.dtype))
        return np.concatenate(list(self._batches(X, batch_size)))

    def predict(self, X, batch_size=1000):
        """Class probabilities (softmax or sigmoid of the outputs, by the loss), in inference mode."""
        from .functional import sigmoid, softmax

        out = self.predict_logits(X, batch_size)
        if isinstance(self.loss, losses_mod.BinaryCrossEntropy):
            return sigmoid(out)
        if isinstance(self.loss, losses_mod.MSE):
            return out
        return softmax(out, axis=-1)

    def predict_classes(self, X, batch_size=1000):
        """Predicted class index per sample."""
        out = self.predict_logits(X, batch_size)
        if out.shape[-1] == 1:
            return (out[:, 0] > 0).astype(np.int64)
        return out.argmax(axis=-1)

    # -- reporting --------------------------------------------------------------------
    def count_params(self, trainable_only=False) -> int:
        return int(sum(l.count_params() for l in self.layers if l.trainable or not trainable_only))

    def summary(self, print_fn=print) -> str:
        """Print (and return) a table of layers, output shapes and parameter counts."""
        if not self.built:
            raise StateError("summary() needs a built model: call model.build(input_shape) or fit first")
        rows = [("Layer (type)", "Output shape", "Params")]
        shape = self.input_shape
        for l in self.layers:
            shape = tuple(l.output_shape(shape))
            note = "" if l.trainable else " (frozen)"
            rows.append((f"{l.name} ({type(l).__name__}){note}", str((None,) + shape), f"{l.count_params():,}"))
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "-" * (w[0] + w[1] + w[2] + 6)
        out = [f'Model "{self.name}"  input {(None,) + tuple(self.input_shape)}', line]
        for i, r in enumerate(rows):
            out.append(f"{r[0]:<{w[0]}}   {r[1]:<{w[1]}}   {r[2]:>{w[2]}}")
            if i == 0:
                out.append(line)
        total, train = self.count_params(), self.count_params(trainable_only=True)
        out += [line, f"Total params: {total:,}", f"Trainable params: {train:,}",
                f"Non-trainable params: {total - train:,}"]
        text = "\n".join(out)
        if print_fn is not None:
            print_fn(text)
        return text

    def save(self, path) -> None:
        """Save architecture and weights to a ``.npz`` file atomically (see ``scratchnn.files``)."""
        save_model(self, path)

    def __repr__(self):
        return f"Sequential([{', '.join(repr(l) for l in self.layers)}])"
