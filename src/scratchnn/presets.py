"""Named networks for ``scratchnn train --model NAME`` and model description files.

A preset is a function ``(input_shape, n_classes) -> list of layers`` plus the
training settings it was tuned with; command-line options override the settings.
A model file (TOML or YAML) lists layers by class name with their arguments and may
carry a ``[train]`` table of the same settings:

.. code-block:: toml

    [[layers]]
    type = "Dense"
    units = 100
    [[layers]]
    type = "ReLU"
    [[layers]]
    type = "Dense"
    units = 10
    [train]
    optimizer = "sgd"
    lr = 0.1
    batch_size = 32
"""
from __future__ import annotations

import os

from .layers import (LAYERS, BatchNorm, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, LeakyReLU,
                     MaxPool2D, RandomFlip, RandomShift, ReLU)
from .errors import InvalidArgumentError, MissingDependencyError, MissingFileError


def _shift(input_shape, pixels):
    """Random-shift augmentation for image inputs (nothing for other data)."""
    return [RandomShift(pixels)] if len(input_shape) == 3 else []


def mlp(input_shape, n_classes):
    """The classic 784-100-200-10 ReLU network, trained on images shifted by up to 1 pixel."""
    return [*_shift(input_shape, 1), Flatten(), Dense(100, init="he_normal"), ReLU(), Dense(200, init="he_normal"), ReLU(),
            Dense(n_classes)]


def mlp_128_64(input_shape, n_classes):
    """784-128-64-10 ReLU network."""
    return [Flatten(), Dense(128, init="he_normal"), ReLU(), Dense(64, init="he_normal"), ReLU(), Dense(n_classes)]


def _flip(input_shape):
    """Left-right mirroring for image inputs (clothes keep their class in a mirror; digits do not)."""
    return [RandomFlip(0.5)] if len(input_shape) == 3 else []


def fashion_classic(input_shape, n_classes):
    """The classic Fashion-MNIST lesson's network: one hidden layer of 100 leaky-ReLU units on standardized
    inputs, trained briefly with plain SGD (the lesson's ~82%)."""
    return [Flatten(), Dense(100, init="he_normal"), LeakyReLU(0.01), Dense(n_classes)]


def fashion_mlp(input_shape, n_classes):
    """784-512-256-10 leaky ReLU with dropout 0.3, mirrored training images (shifts cost an MLP accuracy here)."""
    return [*_flip(input_shape), Flatten(),
            Dense(512, init="he_normal"), LeakyReLU(0.01), Dropout(0.3),
            Dense(256, init="he_normal"), LeakyReLU(0.01), Dropout(0.3), Dense(n_classes)]


def fashion_cnn(input_shape, n_classes):
    """Three conv-BN-ReLU-pool stages (32/64/128 filters), Dense(256)-BN-ReLU-Dropout, mirrored and shifted images."""
    def stage(c):
        return [Conv2D(c, 3, padding="same", use_bias=False), BatchNorm2D(), ReLU(), MaxPool2D(2)]
    return [*_flip(input_shape), *_shift(input_shape, 1), *stage(32), *stage(64), *stage(128), Flatten(),
            Dense(256, init="he_normal", use_bias=False), BatchNorm(), ReLU(), Dropout(0.4), Dense(n_classes)]


def mlp_bn(input_shape, n_classes):
    """Deeper MLP with batch normalization and dropout: 784-1024-1024-10, 2-pixel random shifts."""
    return [*_shift(input_shape, 2), Flatten(),
            Dense(1024, init="he_normal", use_bias=False), BatchNorm(), ReLU(), Dropout(0.3),
            Dense(1024, init="he_normal", use_bias=False), BatchNorm(), ReLU(), Dropout(0.3),
            Dense(n_classes)]


def cnn(input_shape, n_classes):
    """Conv(32,3x3,same)-ReLU-MaxPool2-Conv(64,3x3,same)-ReLU-MaxPool2-Dense(128)-ReLU-Dense(10)."""
    return [*_shift(input_shape, 2), Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2),
            Conv2D(64, 3, padding="same"), ReLU(), MaxPool2D(2),
            Flatten(), Dense(128, init="he_normal"), ReLU(), Dropout(0.3), Dense(n_classes)]


def cnn_bn(input_shape, n_classes):
    """Three conv-BN-ReLU-pool stages (32/64/128 filters), then Dense(128)-BN-ReLU-Dropout-Dense(10).

    About 1.8x the multiply-adds of ``cnn`` per image: depth and batch norm, not width.
    """
    def stage(c):
        return [Conv2D(c, 3, padding="same", use_bias=False), BatchNorm2D(), ReLU(), MaxPool2D(2)]
    return [*_shift(input_shape, 2), *stage(32), *stage(64), *stage(128), Flatten(),
            Dense(128, init="he_normal", use_bias=False), BatchNorm(), ReLU(), Dropout(0.4), Dense(n_classes)]


#: name -> (builder, training settings)
PRESETS = {
    "mlp": (mlp, {"optimizer": "sgd", "lr": 0.1, "batch_size": 32, "epochs": 30, "l2": 3e-5,
                  "schedule": "step", "schedule_args": {"drop": 0.5, "every": 10}}),
    "mlp-128-64": (mlp_128_64, {"optimizer": "sgd", "lr": 0.1, "batch_size": 32, "epochs": 30,
                                "schedule": "step", "schedule_args": {"drop": 0.5, "every": 10}}),
    "fashion-classic": (fashion_classic, {"optimizer": "sgd", "lr": 0.01, "batch_size": 64, "epochs": 2,
                                          "standardize": "feature"}),
    "fashion-mlp": (fashion_mlp, {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 40,
                                  "schedule": "cosine", "standardize": "feature"}),
    "fashion-cnn": (fashion_cnn, {"optimizer": "adam", "lr": 0.003, "batch_size": 64, "epochs": 20,
                                  "schedule": "cosine"}),
    "mlp-bn": (mlp_bn, {"optimizer": "adam", "lr": 0.001, "batch_size": 128, "epochs": 40,
                        "schedule": "cosine"}),
    "cnn": (cnn, {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 12, "schedule": "cosine"}),
    "cnn-bn": (cnn_bn, {"optimizer": "adam", "lr": 0.003, "batch_size": 64, "epochs": 15, "schedule": "cosine"}),
}


def _read_description(path, what="model file") -> dict:
    """The table of a TOML or YAML file; any problem with the file is one clear error naming it."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        raise InvalidArgumentError(f"{what} {path!r} is a directory, not a .toml/.yaml file")
    if ext not in (".toml", ".yaml", ".yml"):
        raise InvalidArgumentError(f"{what} {path!r}: use a .toml, .yaml or .yml file")
    if not os.path.exists(path):
        raise MissingFileError(f"{path!r} does not exist")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    if ext == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgumentError(f"{path}: invalid TOML: {e}") from None
    else:
        try:
            import yaml
        except ModuleNotFoundError:
            raise MissingDependencyError(f"reading {path} needs PyYAML: pip install pyyaml") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidArgumentError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"{path}: expected a table of keys at the top, found a {type(doc).__name__}")
    return doc


def layers_from_description(desc: dict, n_classes: int | None = None, where="model file") -> list:
    """Build layers from ``{"layers": [{"type": "Dense", "units": 100}, ...]}``.

    ``units = "classes"`` in a layer is replaced by the data set's number of classes. Nothing is
    allocated yet (see ``Layer.from_config``): the model's memory is checked when it is built.
    """
    specs = desc.get("layers")
    if not isinstance(specs, list) or not specs:
        raise InvalidArgumentError(f"{where}: expected a non-empty list 'layers' of layer tables")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise InvalidArgumentError(f"{where}: layer {i + 1} must be a table such as {{type = \"Dense\", "
                                       f"units = 10}}, found {spec!r}")
        spec = dict(spec)
        kind = spec.pop("type", None)
        cls = LAYERS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            valid = ", ".join(sorted(LAYERS))
            hint = next((f" (did you mean {k!r}?)" for k in LAYERS if isinstance(kind, str) and k.lower() == kind.lower()), "")
            raise InvalidArgumentError(f"{where}: layer {i + 1} has unknown type {kind!r}{hint}; valid types: {valid}")
        if spec.get("units") == "classes":
            spec["units"] = n_classes
        try:
            layers.append(cls.from_config(spec))
        except (TypeError, ValueError) as e:
            if isinstance(e, InvalidArgumentError):
                raise InvalidArgumentError(f"{where}: layer {i + 1}: {e}") from None
            raise InvalidArgumentError(f"{where}: layer {i + 1} ({kind}): {e}") from None
    return layers


def resolve(name_or_path: str, input_shape, n_classes):
    """Return ``(layers, training settings)`` for a preset name or a TOML/YAML model file."""
    if name_or_path in PRESETS:
        build, settings = PRESETS[name_or_path]
        return build(input_shape, n_classes), dict(settings)
    if os.path.exists(name_or_path):
        desc = _read_description(name_or_path)
        unknown = sorted(set(desc) - {"layers", "train"})
        if unknown:
            raise InvalidArgumentError(f"{name_or_path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                                       "a model file has 'layers' and optionally 'train'")
        train = desc.get("train", {})
        if not isinstance(train, dict):
            raise InvalidArgumentError(f"{name_or_path}: 'train' must be a table of training settings")
        return layers_from_description(desc, n_classes, where=name_or_path), dict(train)
    if os.path.splitext(str(name_or_path))[1].lower() in (".toml", ".yaml", ".yml"):
        raise MissingFileError(f"model file {name_or_path!r} does not exist")
    raise InvalidArgumentError(f"unknown model {name_or_path!r}: give a preset ({', '.join(PRESETS)}) "
                               "or the path of a .toml/.yaml model file")
