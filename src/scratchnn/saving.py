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
from .errors import ModelFileError, StateError

FORMAT_VERSION = 1


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
        raise StateError("save: the model has no weights yet; build it or fit it first")
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


# -- checkpoints: model + optimizer state + RNG states + history ---------------------------
def _rng_states(model) -> dict:
    states = {"layers": {l.name: l.rng.bit_generator.state for l in model.layers if hasattr(l, "rng")}}
    if model.shuffle_rng is not None:
        states["shuffle"] = model.shuffle_rng.bit_generator.state
    return states


def _set_rng_states(model, states: dict) -> None:
    for l in model.layers:
        if l.name in states.get("layers", {}):
            l.rng.bit_generator.state = states["layers"][l.name]
    if "shuffle" in states:
        model.shuffle_rng = np.random.default_rng()
        model.shuffle_rng.bit_generator.state = states["shuffle"]


def _serialize_optimizer(opt) -> dict:
    sched = opt.schedule
    return {"class": type(opt).__name__, "config": opt.get_config(),
            "schedule": None if sched is None else {"class": type(sched).__name__, "config": sched.get_config()}}


def _deserialize_optimizer(spec: dict):
    from . import optimizers, schedules

    cls = getattr(optimizers, spec["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, optimizers.Optimizer)):
        raise ModelFileError(f"checkpoint names unknown optimizer {spec['class']!r}")
    config = dict(spec["config"])
    if spec.get("schedule"):
        config["lr"] = getattr(schedules, spec["schedule"]["class"])(**spec["schedule"]["config"])
    return cls(**config)


def save_checkpoint(model, path, epoch: int, history: dict | None = None, info: dict | None = None) -> None:
    """Save everything needed to continue training exactly: weights, optimizer state,
    random generator states, the epoch reached and the history so far (atomically)."""
    if model.optimizer is None:
        raise StateError("save_checkpoint: the model is not compiled (no optimizer state to save)")
    extra = {"checkpoint": {"epoch": int(epoch), "history": history or {},
                            "optimizer": _serialize_optimizer(model.optimizer),
                            "rng": _rng_states(model), "info": info or {}}}
    arrays = {f"optimizer/{k}": v for k, v in model.optimizer.state_dict().items()}
    save_model(model, path, extra_arrays=arrays, extra=extra)


def load_checkpoint(path):
    """Return ``(model, checkpoint)``: a compiled model with optimizer and generator states
    restored, and the dict with ``epoch``, ``history`` and ``info``. Continue with
    ``model.fit(..., initial_epoch=checkpoint["epoch"])`` (and no new ``seed``)."""
    arch, arrays = read_npz(path)
    ck = arch.get("extra", {}).get("checkpoint")
    if ck is None:
        raise ModelFileError(f"{os.fspath(path)!r} is a model file, not a checkpoint (no optimizer state)")
    model = build_model(arch, arrays, path)
    model.optimizer = _deserialize_optimizer(ck["optimizer"])
    model.optimizer.load_state_dict({k[len("optimizer/"):]: v for k, v in arrays.items()
                                     if k.startswith("optimizer/")})
    _set_rng_states(model, ck["rng"])
    return model, ck
