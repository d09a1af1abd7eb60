"""What both converters share: the supported layers, optional imports, geometry, building the result."""
from __future__ import annotations

import importlib
import re

import numpy as np

from .. import functional as F
from ..errors import InvalidArgumentError, InvalidTypeError, MissingDependencyError, StateError

#: layers ``to_onnx`` / ``to_torch`` convert (the augmentation layers become the identity)
SUPPORTED = ("Dense", "Maxout", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "BatchNorm", "BatchNorm2D",
             "Dropout", "Flatten", "Reshape", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax",
             "Standardize", "RandomShift", "RandomFlip")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def require(module: str, extra: str, what: str):
    """``import module``, or one line naming the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{what} needs {module}: pip install \"scratchnn[{extra}]\"") from None


def check_exportable(model, to: str):
    """The model's layers with their per-sample input shapes; refuses an unbuilt model or an unknown layer."""
    from ..model import Sequential

    if not isinstance(model, Sequential):
        raise InvalidTypeError(f"export to {to}: expected a scratchnn Sequential, received {type(model).__name__}")
    if not model.built:
        raise StateError(f"export to {to}: the model is not built; call model.build(input_shape) or run it once")
    out, shape = [], tuple(model.input_shape)
    for layer in model.layers:
        if not is_supported(layer):
            raise InvalidArgumentError(
                f"export to {to}: {layer.label} has no {to} counterpart; supported layers: {', '.join(SUPPORTED)}")
        out.append((layer, shape))
        shape = tuple(layer.output_shape(shape))
    return out


def is_supported(layer) -> bool:
    """True for the library's own classes in ``SUPPORTED`` (a subclass may compute something else)."""
    from .. import layers

    name = type(layer).__name__
    return name in SUPPORTED and type(layer) is getattr(layers, name, None)


def window_pads(layer, shape):
    """``((top, bottom), (left, right))`` padding of a Conv2D or pooling layer for per-sample ``shape``."""
    size = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
    return F.resolve_padding(layer.padding, shape[1:], size, layer.stride)


def unsupported(kind: str, what: str, supported) -> InvalidArgumentError:
    return InvalidArgumentError(f"import from {kind}: {what} has no scratchnn counterpart; "
                                f"supported: {', '.join(supported)}")


def clean_name(name, taken: set):
    """``name`` when it can name a scratchnn layer (an identifier, not taken yet), else None (auto-named)."""
    if isinstance(name, str) and _NAME.match(name) and name not in taken:
        taken.add(name)
        return name
    return None


def assemble(specs, input_shape, dtype, where: str):
    """Build a ``Sequential`` from ``[(layer, {param: array}, {buffer: array}), ...]`` and copy the arrays in."""
    from ..model import Sequential

    if not specs:
        raise InvalidArgumentError(f"{where}: found no layers to convert")
    taken = {layer.name for layer, _, _ in specs if layer.name}
    for layer, _, _ in specs:  # name the unnamed ones around the names the source gave
        if not layer.name:
            base, i = type(layer).__name__.lower(), 1
            while f"{base}_{i}" in taken:
                i += 1
            layer.name = f"{base}_{i}"
            taken.add(layer.name)
    model = Sequential([layer for layer, _, _ in specs], dtype=dtype)
    model.build(tuple(int(d) for d in input_shape))
    for layer, params, buffers in specs:
        for store, arrays in ((layer.params, params), (layer.buffers, buffers)):
            for key, value in arrays.items():
                value = np.asarray(value)
                if store[key].shape != value.shape:
                    raise InvalidArgumentError(f"{where}: {layer.label} expects {key} of shape {store[key].shape}, "
                                               f"found {value.shape}")
                store[key][...] = value
    return model


def model_dtype(arrays, default=np.float32):
    """float64 when the source's parameters are float64, else float32."""
    for a in arrays:
        if np.asarray(a).dtype == np.float64:
            return np.float64
    return default
