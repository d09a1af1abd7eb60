"""From settings to data and a compiled model: the one recipe behind ``scratchnn train`` and ``scratchnn search``.

A *setting* is one of the names in :data:`SETTINGS` (``lr``, ``batch_size``, ``dropout``...). The
command line turns its flags into settings, a search turns each sampled configuration into
settings, and both then call the same three functions, so they cannot drift apart:

1. :func:`check_settings` validates every value (and refuses combinations that would be silently
   ignored, such as a momentum for Adam) before any work starts;
2. :func:`build_model` resolves the preset or model file, applies the settings and returns a
   compiled model plus the full settings it trains with;
3. :func:`load_data` reads the data set, scales images to [0, 1] as ``(N, 1, H, W)`` float32 and
   holds out a validation part of the training set (the test part is never mixed in).

Example:
    >>> from scratchnn import recipe
    >>> s = recipe.check_settings({"dataset": "spiral", "model": "mlp", "epochs": 20, "lr": 0.05})
    >>> data = recipe.load_data(s["dataset"], seed=0)
    >>> model, s = recipe.build_model(s, data.info)
    >>> model.fit(data.X_train, data.y_train, epochs=s["epochs"], batch_size=s["batch_size"], verbose=0)
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidArgumentError

#: what each data set holds, known before its files are read
DATASETS = {
    "mnist": {"input_shape": (1, 28, 28), "class_names": [str(i) for i in range(10)]},
    "fashion-mnist": {"input_shape": (1, 28, 28),
                      "class_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                      "Sneaker", "Bag", "Ankle boot"]},
    "digits": {"input_shape": (1, 8, 8), "class_names": [str(i) for i in range(10)]},
    "spiral": {"input_shape": (2,), "class_names": ["arm 0", "arm 1", "arm 2"]},
}
#: validation samples held out by default: 5,000 (MNIST's classic split) or a tenth of a smaller set
DEFAULT_VAL_SIZE = 5000
#: settings every run has, whatever the preset says
DEFAULTS = {"dataset": "mnist", "model": "mlp", "optimizer": "adam", "lr": 0.001, "epochs": 10, "batch_size": 32,
            "seed": 0}
MOMENTUM_OPTIMIZERS = ("sgd", "momentum", "nesterov")
STANDARDIZE = ("feature", "global", "none")


def dataset_name(name) -> str:
    """The canonical name of a data set (``"Fashion_MNIST"`` -> ``"fashion-mnist"``), or an error."""
    key = str(name).strip().lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise InvalidArgumentError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    return key


# -- one check per setting: return the clean value or raise with a message that echoes it --------------
def _number(value, integer=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value) if not integer else int(str(value).strip())
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"expected {'an integer' if integer else 'a number'}, received {value!r}") \
                from None
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgumentError(f"expected an integer, received {value!r}")
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"must be a finite number, received {value!r}")
    return value


def _at_least(low, integer):
    def check(value):
        v = _number(value, integer)
        if v < low:
            raise InvalidArgumentError(f"must be >= {low}, received {value!r}")
        return v
    return check


def _positive(value):
    v = _number(value)
    if v <= 0:
        raise InvalidArgumentError(f"must be > 0, received {value!r}")
    return v


def _unit_interval(value):
    v = _number(value)
    if not 0 <= v < 1:
        raise InvalidArgumentError(f"must be in [0, 1), received {value!r}")
    return v


def _val_size(value):
    """A fraction in (0, 1) or a count >= 1 (a whole number)."""
    v = _number(value)
    if 0 < v < 1:
        return v
    if v >= 1 and float(v).is_integer():
        return int(v)
    raise InvalidArgumentError(f"must be a fraction in (0, 1) or a whole count >= 1, received {value!r}")


def _choice(names, noun):
    def check(value):
        v = str(value).strip().lower()
        if v not in names:
            raise InvalidArgumentError(f"unknown {noun} {value!r}; choose from {', '.join(names)}")
        return v
    return check


def _schedule_args(value):
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"expected key=value pairs, received {value!r}")
    return {str(k): _number(v) if not isinstance(v, numbers.Integral) else int(v) for k, v in value.items()}


def _text(value):
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InvalidArgumentError(f"expected a non-empty name or path, received {value!r}")
    return os.fspath(value)


def _optimizers():
    from .optimizers import OPTIMIZERS
    return tuple(OPTIMIZERS)


def _schedules():
    from .schedules import SCHEDULES
    return tuple(SCHEDULES)


#: name -> check(value) -> clean value
SETTINGS = {
    "dataset": dataset_name, "data_dir": _text, "model": _text,
    "optimizer": lambda v: _choice(_optimizers(), "optimizer")(v), "lr": _positive, "momentum": _unit_interval,
    "schedule": lambda v: _choice(_schedules(), "schedule")(v), "schedule_args": _schedule_args,
    "epochs": _at_least(1, True), "batch_size": _at_least(1, True),
    "l1": _at_least(0, False), "l2": _at_least(0, False), "max_norm": _positive, "dropout": _unit_interval,
    "standardize": _choice(STANDARDIZE, "standardization"), "val_size": _val_size, "limit": _at_least(2, True),
    "seed": _at_least(0, True),
}


def check_setting(name, value, label=None):
    """Validate one setting; errors read ``<label>: <problem>`` (label defaults to the name)."""
    if name not in SETTINGS:
        raise InvalidArgumentError(f"{label or 'settings'}: unknown setting {name!r}; valid: {', '.join(SETTINGS)}")
    try:
        return SETTINGS[name](value)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"{label or name}: {e}") from None


def check_settings(settings, label=None) -> dict:
    """Validate every setting of ``settings`` (None values are left out) and how they combine.

    Args:
        settings: mapping of setting name -> value.
        label: ``label(name)`` gives how errors name a setting (the CLI passes ``"--batch-size"``).

    Returns:
        a new dict of clean values.

    Raises:
        InvalidArgumentError: naming the first bad setting and its value.
    """
    label = label or (lambda k: k)
    out = {k: check_setting(k, v, label(k)) for k, v in settings.items() if v is not None}
    check_combination(out, label)
    return out


def check_combination(s, label=lambda k: k) -> None:
    """Refuse settings that would have no effect together (never drop one silently)."""
    opt = s.get("optimizer")
    if s.get("momentum") is not None and opt is not None and opt not in MOMENTUM_OPTIMIZERS:
        raise InvalidArgumentError(f"{label('momentum')} has no effect with optimizer {opt!r}; it applies to "
                                   f"{', '.join(MOMENTUM_OPTIMIZERS)}")
    if s.get("schedule_args") and s.get("schedule") == "constant":
        raise InvalidArgumentError(f"{label('schedule_args')} has no effect with the constant schedule; "
                                   "choose a schedule too")


# -- the model ----------------------------------------------------------------------------------------
def _set_dropout(layers, rate, model_name):
    """Rebuild every Dropout layer with ``rate`` (through the constructor, so it is validated)."""
    from .layers import Dropout

    if not any(isinstance(l, Dropout) for l in layers):
        raise InvalidArgumentError(f"dropout: model {model_name!r} has no Dropout layer to set")
    return [type(l)(**{**l.get_config(), "rate": rate}) if isinstance(l, Dropout) else l for l in layers]


def _schedule(s, label=lambda k: k):
    """The learning-rate schedule of settings ``s``; a clear error for an argument it does not take."""
    import inspect

    from . import schedules

    name = s.get("schedule") or "constant"
    args = dict(s.get("schedule_args") or {})
    accepted = [k for k in inspect.signature(schedules.SCHEDULES[name].__init__).parameters if k not in ("self", "lr")]
    unknown = [k for k in args if k not in accepted]
    if unknown:
        takes = f"takes {', '.join(accepted)}" if accepted else "takes no arguments"
        raise InvalidArgumentError(f"{label('schedule_args')}: the {name} schedule {takes}; received "
                                   f"{', '.join(unknown)}")
    if name == "cosine":
        args.setdefault("epochs", s["epochs"])
    try:
        return schedules.get(name, s["lr"], **args)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"{label('schedule_args')} (schedule {name}, lr {s['lr']:g}): {e}") from None


def check_model(settings, info, label=None):
    """Resolve the preset or model file of ``settings`` for a data set described by ``info``, and check it.

    Nothing is allocated: a bad model file, a setting it cannot take, or a network too large for this
    machine's memory is refused here, before any data is read.

    Returns:
        ``(layers, full settings)``: the preset's own training settings fill what ``settings`` lacks,
        then :data:`DEFAULTS`.
    """
    from .model import check_memory
    from .presets import resolve

    label = label or (lambda k: k)
    model_name = settings.get("model", DEFAULTS["model"])
    input_shape, n_classes = tuple(info["input_shape"]), len(info["class_names"])
    layers, preset = resolve(model_name, input_shape, n_classes)
    preset = check_settings(preset, label=lambda k: f"{model_name} [train] {k}")
    s = dict(DEFAULTS)
    s.update(preset)
    if "schedule" in settings and settings["schedule"] != preset.get("schedule"):
        s.pop("schedule_args", None)  # the preset's arguments belong to its own schedule
    if "optimizer" in settings and "momentum" not in settings:
        s.pop("momentum", None)  # the preset's momentum belongs to its own optimizer
    s.update(settings)
    check_combination(s, label)
    if s.get("dropout") is not None:
        layers = _set_dropout(layers, s["dropout"], model_name)
    _schedule(s, label)  # its arguments are checked now, not after the data loaded
    check_output(layers, input_shape, n_classes, f"model {model_name!r}", info.get("dataset", "the data set"))
    check_memory(layers, input_shape, what=f"model {model_name!r}", copies=4)
    return layers, s


def check_output(layers, input_shape, n_classes, what, dataset):
    """Refuse a network that cannot fit the data set: a layer that does not take its input's shape, a
    last layer whose width is not the number of classes, or a final Softmax (the loss takes logits)."""
    from .layers import Softmax

    shape = tuple(input_shape)
    for i, layer in enumerate(layers, 1):
        try:
            shape = tuple(layer.output_shape(shape))
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{what} does not fit {dataset} (inputs of shape {tuple(input_shape)}): "
                                       f"layer {i}: {e}") from None
    if isinstance(layers[-1], Softmax):
        raise InvalidArgumentError(f"{what} ends with a Softmax layer, but the loss already applies softmax to the "
                                   "network's outputs (logits): remove it (predict still returns probabilities)")
    if shape != (n_classes,):
        raise InvalidArgumentError(f"{what} ends with outputs of shape {shape}, but {dataset} has {n_classes} classes: "
                                   'make the last layer Dense with units = "classes"')


def build_model(settings, info, X_train=None, label=None):
    """A compiled and built ``Sequential`` for ``settings`` on a data set described by ``info``.

    Args:
        settings: checked settings (:func:`check_settings`); see :func:`check_model`.
        info: ``{"input_shape": ..., "class_names": [...]}`` (``load_data(...).info`` or :func:`dataset_info`).
        X_train: training inputs, needed only when ``standardize`` is set (its statistics).
        label: as for :func:`check_settings`.

    Returns:
        ``(model, full settings)``.
    """
    from . import optimizers
    from .layers import Standardize
    from .model import Sequential
    from .regularizers import L1, L2, ElasticNet, MaxNorm

    layers, s = check_model(settings, info, label)
    input_shape = tuple(info["input_shape"])
    if s.get("standardize") not in (None, "none"):
        if X_train is None:
            raise InvalidArgumentError("standardize: needs the training inputs (X_train)")
        front = Standardize(axis="global" if s["standardize"] == "global" else None, name="standardize")
        front.adapt(X_train)
        layers = [front, *layers]
    model = Sequential(layers, name=os.path.basename(str(s["model"])))
    opt_kwargs = {"lr": _schedule(s, label)}
    if s.get("momentum") is not None and s["optimizer"] in MOMENTUM_OPTIMIZERS:
        opt_kwargs["momentum"] = s["momentum"]
    l1, l2 = s.get("l1") or 0, s.get("l2") or 0
    reg = ElasticNet(l1, l2) if l1 and l2 else L1(l1) if l1 else L2(l2) if l2 else None
    model.compile(optimizer=optimizers.get(s["optimizer"], **opt_kwargs), loss="softmax_cross_entropy",
                  regularizer=reg, constraint=MaxNorm(s["max_norm"]) if s.get("max_norm") else None)
    model.build(input_shape)
    model.info = {k: v for k, v in info.items()}
    return model, s


# -- the data -----------------------------------------------------------------------------------------
def prepare_images(X):
    """uint8 images ``(N, H, W)`` -> float32 in [0, 1] shaped ``(N, 1, H, W)``; other data -> float32."""
    from .datasets import scale

    X = np.asarray(X)
    X = scale(X) if X.dtype == np.uint8 else X.astype(np.float32)
    return X[:, None, :, :] if X.ndim == 3 else X


def check_data_dir(dataset, data_dir, label="data_dir") -> None:
    """Refuse a data folder the user named that does not exist or lacks the data set's files
    (instead of silently reading another folder, or downloading)."""
    if data_dir is None:
        return
    if not os.path.isdir(data_dir):
        raise InvalidArgumentError(f"{label} {data_dir}: no such folder")
    name = dataset_name(dataset)
    if name in ("mnist", "fashion-mnist"):
        from .datasets.mnist import missing_files

        missing = missing_files(name, data_dir)
        if missing:
            raise InvalidArgumentError(f"{label} {data_dir}: no {name} files there (nor in its {name}/ subfolder): "
                                       f"missing {', '.join(f + '[.gz]' for f in missing)}")


def val_count(val_size, n, label="val_size") -> int:
    """Validation samples for ``val_size`` (fraction, count, or None for the default) out of ``n``."""
    if val_size is None:
        k = min(DEFAULT_VAL_SIZE, int(round(0.1 * n)))
    else:
        k = int(round(val_size * n)) if val_size < 1 else int(val_size)
    if not 0 < k < n and val_size is None:
        raise InvalidArgumentError(f"{n} training samples are too few to hold out a validation part (the default "
                                   f"is a tenth of them): use more samples (--limit), or give {label}")
    if not 0 < k < n:
        raise InvalidArgumentError(
            f"{label}: {val_size!r} gives {k} validation samples out of {n} training samples; both parts must be "
            f"non-empty (give a fraction such as 0.1 or a count below {n})")
    return k


@dataclass
class Data:
    """A data set split into training, validation and test parts, plus what the model file records."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    #: ``{"dataset", "input_shape", "class_names", "preprocess"}``, stored in model files
    info: dict = field(default_factory=dict)


def dataset_info(name) -> dict:
    """What a model trained on data set ``name`` records about its inputs."""
    name = dataset_name(name)
    d = DATASETS[name]
    return {"dataset": name, "input_shape": list(d["input_shape"]), "class_names": list(d["class_names"]),
            "preprocess": "scale_255" if len(d["input_shape"]) == 3 else "none"}


def load_data(dataset, data_dir=None, limit=None, val_size=None, seed=0, progress=False, label=None,
              download=True) -> Data:
    """Read ``dataset`` and split its training part into training and validation samples.

    Args:
        dataset: a name of :data:`DATASETS`.
        data_dir: folder with the MNIST / Fashion-MNIST files (else ``$SCRATCHNN_DATA_DIR``, the cache,
            a download).
        limit: keep only the first ``limit`` training samples.
        val_size: validation fraction or count; None: 5,000 or a tenth of the training samples,
            whichever is smaller.
        seed: seed of the validation split.
        progress: show a download progress bar.
        label: as for :func:`check_settings`.
        download: fetch MNIST / Fashion-MNIST files that are not found locally (else a
            ``DatasetNotFoundError`` saying where it looked).
    """
    from .datasets import load_dataset, train_val_split

    label = label or (lambda k: k)
    name = dataset_name(dataset)
    kwargs = {"progress": progress, "download": download} if name in ("mnist", "fashion-mnist") else {}
    (Xtr, ytr), (Xte, yte) = load_dataset(name, data_dir=data_dir, **kwargs)
    info = dataset_info(name)
    Xtr, Xte = prepare_images(Xtr), prepare_images(Xte)
    for what, X in (("training", Xtr), ("test", Xte)):
        if X.shape[1:] != tuple(info["input_shape"]):
            raise InvalidArgumentError(f"{name}: {what} samples have shape {X.shape[1:]}, expected "
                                       f"{tuple(info['input_shape'])}")
    if limit:
        Xtr, ytr = Xtr[:limit], ytr[:limit]
    k = val_count(val_size, len(Xtr), label("val_size"))
    (Xtr, ytr), (Xval, yval) = train_val_split(Xtr, ytr, val_size=k, seed=seed)
    return Data(Xtr, ytr, Xval, yval, Xte, yte, info)
