"""Reading model files back into models: ``load``, ``load_checkpoint`` (the format and the writing
side: ``scratchnn.files``, whose names this module re-exports).

Loading checks every part of a file before using it (layer classes and arguments, input shape,
dtype, the memory the model needs, array shapes, dtypes and values) and raises ``ModelFileError``
naming the file and the problem.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .errors import InvalidTypeError, ModelFileError, ScratchnnError
from .files import (FORMAT_VERSION, NPZ_READ_ERRORS, TEMP_PREFIX, atomic_savez, atomic_write, atomic_write_text,
                    model_arrays, remove_stale_temp_files, save_checkpoint, save_model)
from .layers.base import LAYERS
from .model import Sequential, _float_dtype

__all__ = ["load", "load_checkpoint", "read_npz", "build_model", "ModelFileError", "FORMAT_VERSION", "NPZ_READ_ERRORS",
           "TEMP_PREFIX", "atomic_savez", "atomic_write", "atomic_write_text", "model_arrays",
           "remove_stale_temp_files", "save_checkpoint", "save_model"]

def read_npz(path) -> tuple[dict, dict]:
    """Return ``(architecture dict, arrays dict)`` of a scratchnn file, or raise ModelFileError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path!r} does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"model file {path!r} is a directory (give the .npz file inside it)")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path!r} is not a scratchnn model file (not an .npz archive: empty, truncated or "
                             "another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ModelFileError(f"{path!r} holds a single array, not a scratchnn model (.npz)")
            arrays = {k: z[k] for k in z.files}
    except ModelFileError:
        raise
    except NPZ_READ_ERRORS as e:
        raise ModelFileError(f"model file {path!r} is not a readable .npz ({type(e).__name__}: {e})") from None
    if "__scratchnn__" not in arrays:
        raise ModelFileError(f"{path!r} is an .npz file but not a scratchnn model (no __scratchnn__ entry)")
    try:
        arch = json.loads(str(arrays.pop("__scratchnn__")))
    except ValueError as e:
        raise ModelFileError(f"{path!r}: its architecture entry is not valid JSON ({e})") from None
    if not isinstance(arch, dict):
        raise ModelFileError(f"{path!r}: its architecture entry is not a JSON object")
    if arch.get("format") != FORMAT_VERSION:
        raise ModelFileError(f"{path!r} has model format {arch.get('format')!r}; this scratchnn reads {FORMAT_VERSION}")
    return arch, arrays


def _layers_from_arch(arch: dict, path) -> list:
    specs = arch.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ModelFileError(f"{path!r}: 'layers' must be a non-empty list")
    layers = []
    for i, spec in enumerate(specs, 1):
        if not (isinstance(spec, dict) and isinstance(spec.get("class"), str) and isinstance(spec.get("config"), dict)):
            raise ModelFileError(f"{path!r}: layer {i} is not a {{'class': ..., 'config': {{...}}}} entry")
        cls = LAYERS.get(spec["class"])
        if cls is None:
            raise ModelFileError(f"{path!r}: layer {i} has unknown class {spec['class']!r} (a layer of your own? "
                                 "register it with scratchnn.layers.register before loading)")
        try:
            layers.append(cls.from_config(spec["config"]))
        except (ScratchnnError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path!r}: layer {i} ({spec['class']}): {e}") from None
    return layers


def _input_shape(arch: dict, path) -> tuple:
    shape = arch.get("input_shape")
    if not (isinstance(shape, list) and shape and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                                      for s in shape)):
        raise ModelFileError(f"{path!r}: input_shape must be a list of positive integers, found {shape!r}")
    return tuple(shape)


def _dtype(arch: dict, path):
    try:  # the model's own rule (a float type), reported as a fault of the file
        return _float_dtype(arch.get("dtype") or "float32", "dtype")
    except InvalidTypeError:
        raise ModelFileError(f"{path!r}: dtype must be a float type, found {arch.get('dtype')!r}") from None


def build_model(arch: dict, arrays: dict, path="<memory>"):
    """The model an architecture dict and its arrays describe; every part is checked first
    (layer classes and arguments, input shape, dtype, memory, array shapes, dtypes and values)."""
    from . import losses

    layers = _layers_from_arch(arch, path)
    info = arch.get("info", {})
    if not isinstance(info, dict):
        raise ModelFileError(f"{path!r}: 'info' must be a JSON object")
    try:
        model = Sequential(layers, name=arch.get("name"), dtype=_dtype(arch, path))
        model.build(_input_shape(arch, path))
    except ScratchnnError as e:
        raise ModelFileError(f"{path!r}: {e}") from None
    names = info.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                                  and len(names) == int(np.prod(model.output_shape))):
        raise ModelFileError(f"{path!r}: info.class_names must be {int(np.prod(model.output_shape))} names, one per "
                             f"output, found {names!r:.200}")
    model.info = info
    expected = set()
    for l in model.layers:
        for kind, d in (("param", l.params), ("buffer", l.buffers)):
            for k in d:
                key = f"{kind}/{l.name}/{k}"
                expected.add(key)
                if key not in arrays:
                    raise ModelFileError(f"{path!r} lacks {key}")
                a = arrays[key]
                if a.shape != d[k].shape:
                    raise ModelFileError(f"{path!r}: {key} has shape {a.shape}, the architecture "
                                         f"needs {d[k].shape}")
                if a.dtype.kind != "f":
                    raise ModelFileError(f"{path!r}: {key} has dtype {a.dtype}, expected a float array")
                if not np.all(np.isfinite(a)):
                    raise ModelFileError(f"{path!r}: {key} holds NaN or infinite values")
                d[k][...] = a
    unknown = sorted(k for k in arrays if k.startswith(("param/", "buffer/")) and k not in expected)
    if unknown:
        raise ModelFileError(f"{path!r}: entries that no layer uses: {', '.join(unknown[:5])}")
    if arch.get("loss"):
        try:
            model.loss = losses.get(arch["loss"])
        except (ScratchnnError, TypeError) as e:
            raise ModelFileError(f"{path!r}: loss {arch['loss']!r}: {e}") from None
    return model


def load(path):
    """Load a model saved with ``model.save(path)``. It predicts exactly what the saved one did.

    The loss is restored; call ``compile`` again to train further with a fresh optimizer
    (or resume from a checkpoint with ``scratchnn train --resume``).
    """
    arch, arrays = read_npz(path)
    return build_model(arch, arrays, path)


# -- checkpoints: model + optimizer state + RNG states + history ---------------------------
def _set_rng_states(model, states: dict) -> None:
    for l in model.layers:
        if l.name in states.get("layers", {}):
            l.rng.bit_generator.state = states["layers"][l.name]
    if "shuffle" in states:
        model.shuffle_rng = np.random.default_rng()
        model.shuffle_rng.bit_generator.state = states["shuffle"]


def _deserialize_optimizer(spec: dict):
    from . import optimizers, schedules

    cls = getattr(optimizers, spec["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, optimizers.Optimizer)):
        raise ModelFileError(f"checkpoint names unknown optimizer {spec['class']!r}")
    config = dict(spec["config"])
    if spec.get("schedule"):
        name = spec["schedule"]["class"]
        sched = next((c for c in schedules.SCHEDULES.values() if c.__name__ == name), None)
        if sched is None:
            raise ModelFileError(f"checkpoint names unknown schedule {name!r}")
        config["lr"] = sched(**spec["schedule"]["config"])
    return cls(**config)


def load_checkpoint(path):
    """Return ``(model, checkpoint)``: a compiled model with optimizer and generator states
    restored, and the dict with ``epoch``, ``history`` and ``info``. Continue with
    ``model.fit(..., initial_epoch=checkpoint["epoch"])`` (and no new ``seed``)."""
    arch, arrays = read_npz(path)
    ck = arch.get("extra", {}).get("checkpoint")
    if ck is None:
        raise ModelFileError(f"{os.fspath(path)!r} is a model file, not a checkpoint (no optimizer state)")
    model = build_model(arch, arrays, path)
    try:  # anything wrong below is a damaged checkpoint, said in one line
        if not (isinstance(ck, dict) and isinstance(ck.get("epoch"), int) and ck["epoch"] >= 0
                and isinstance(ck.get("history"), dict)):
            raise ModelFileError("its epoch or history is missing or malformed")
        model.optimizer = _deserialize_optimizer(ck["optimizer"])
        model.optimizer.load_state_dict({k[len("optimizer/"):]: v for k, v in arrays.items()
                                         if k.startswith("optimizer/")})
        _set_rng_states(model, ck["rng"])
    except (ScratchnnError, TypeError, ValueError, KeyError, AttributeError) as e:
        raise ModelFileError(f"checkpoint {os.fspath(path)!r} is damaged: {e}") from None
    return model, ck
