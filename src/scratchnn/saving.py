"""Model files: architecture (JSON) and weights in one ``.npz``, loaded with ``allow_pickle=False``.

Format (version 1), every entry a plain array:

- ``__scratchnn__``: JSON text ``{"format": 1, "name": ..., "dtype": ..., "input_shape": [...],
  "layers": [{"class": "Dense", "config": {...}}, ...], "loss": ..., "extra": {...}}``
- ``param/<layer name>/<key>``: each parameter (``W``, ``b``, ``gamma``...)
- ``buffer/<layer name>/<key>``: non-trainable state (BatchNorm running statistics)
- optional extra arrays under other prefixes (checkpoints add ``optimizer/...``)

Because nothing is pickled, loading a model file can never execute code. Saving writes
a temporary file beside the target and renames it over the target only when complete,
so a crash mid-save leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .layers.base import LAYERS

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that is missing, truncated, or not in scratchnn's format."""


def atomic_savez(path, arrays: dict) -> None:
    """``np.savez`` to ``path`` through a temporary file and an atomic rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def model_arrays(model, extra: dict | None = None) -> dict:
    """The arrays of a model file (architecture JSON + weights)."""
    if not model.built:
        raise RuntimeError("save: the model has no weights yet; build it or fit it first")
    arch = {
        "format": FORMAT_VERSION,
        "name": model.name,
        "dtype": str(model.dtype),
        "input_shape": list(model.input_shape),
        "layers": [{"class": type(l).__name__, "config": l.get_config()} for l in model.layers],
        "loss": getattr(model.loss, "name", None),
        "extra": extra or {},
    }
    arrays = {"__scratchnn__": np.array(json.dumps(arch))}
    for l in model.layers:
        for k, v in l.params.items():
            arrays[f"param/{l.name}/{k}"] = v
        for k, v in l.buffers.items():
            arrays[f"buffer/{l.name}/{k}"] = v
    return arrays


def save_model(model, path, extra_arrays: dict | None = None, extra: dict | None = None) -> None:
    arrays = model_arrays(model, extra)
    arrays.update(extra_arrays or {})
    atomic_savez(path, arrays)


def read_npz(path) -> tuple[dict, dict]:
    """Return ``(architecture dict, arrays dict)`` of a scratchnn file, or raise ModelFileError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ModelFileError(f"model file {path!r} is not a readable .npz ({e})") from None
    if "__scratchnn__" not in arrays:
        raise ModelFileError(f"{path!r} is an .npz file but not a scratchnn model (no __scratchnn__ entry)")
    arch = json.loads(str(arrays.pop("__scratchnn__")))
    if arch.get("format") != FORMAT_VERSION:
        raise ModelFileError(f"{path!r} has model format {arch.get('format')!r}; this scratchnn reads {FORMAT_VERSION}")
    return arch, arrays


def build_model(arch: dict, arrays: dict, path="<memory>"):
    from . import losses
    from .model import Sequential

    layers = []
    for spec in arch["layers"]:
        cls = LAYERS.get(spec["class"])
        if cls is None:
            raise ModelFileError(f"{path!r} uses unknown layer class {spec['class']!r}")
        layers.append(cls(**spec["config"]))
    model = Sequential(layers, name=arch.get("name"), dtype=arch.get("dtype"))
    model.build(arch["input_shape"])
    for l in model.layers:
        for kind, d in (("param", l.params), ("buffer", l.buffers)):
            for k in d:
                key = f"{kind}/{l.name}/{k}"
                if key not in arrays:
                    raise ModelFileError(f"{path!r} lacks {key}")
                if arrays[key].shape != d[k].shape:
                    raise ModelFileError(f"{path!r}: {key} has shape {arrays[key].shape}, the architecture "
                                         f"needs {d[k].shape}")
                d[k][...] = arrays[key]
    if arch.get("loss"):
        model.loss = losses.get(arch["loss"])
    return model


def load(path):
    """Load a model saved with ``model.save(path)``. It predicts exactly what the saved one did.

    The loss is restored; call ``compile`` again to train further with a fresh optimizer
    (or resume from a checkpoint with ``scratchnn train --resume``).
    """
    arch, arrays = read_npz(path)
    return build_model(arch, arrays, path)
