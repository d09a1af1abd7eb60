"""Writing model files: the ``.npz`` format, atomic writes, checkpoints (reading them: ``scratchnn.saving``).

Format (version 1), every entry a plain array:

- ``__scratchnn__``: JSON text ``{"format": 1, "name": ..., "dtype": ..., "input_shape": [...],
  "layers": [{"class": "Dense", "config": {...}}, ...], "loss": ..., "info": {...}, "extra": {...}}``
  (``info``: what the model was trained on, ``Sequential.info``)
- ``param/<layer name>/<key>``: each parameter (``W``, ``b``, ``gamma``...)
- ``buffer/<layer name>/<key>``: non-trainable state (BatchNorm running statistics)
- optional extra arrays under other prefixes (checkpoints add ``optimizer/...``)

Nothing is pickled, so loading a model file can never execute code. Every file is written to a
temporary file beside the target and renamed over it only when complete, so a crash mid-save
leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from .errors import StateError
from .layers.base import registered_name

FORMAT_VERSION = 1
#: what reading a damaged .npz raises: zipfile and NumPy fail in many ways (a bad zip, CRC or array
#: header, a tokenizer error inside the header parser, a huge shape); inside a read of the user's file
#: each of them means the file is damaged, so all are caught there
NPZ_READ_ERRORS = (Exception,)
#: name prefix of the temporary files of an unfinished save (never read as a model)
TEMP_PREFIX = ".tmp-"


def atomic_write(path, write, binary=True) -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file in the same folder, which then
    replaces ``path`` (a symlink at ``path`` is replaced, never written through). The new file gets
    the permissions the user's umask gives any new file; a crash leaves the old file intact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_savez(path, arrays: dict) -> None:
    """``np.savez`` to ``path`` through a temporary file and an atomic rename."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see ``atomic_write``)."""
    atomic_write(path, lambda f: f.write(text), binary=False)


def remove_stale_temp_files(folder) -> list:
    """Delete temporary files a killed save left in ``folder``; returns their names."""
    removed = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.startswith(TEMP_PREFIX):
            try:
                os.remove(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def model_arrays(model, extra: dict | None = None) -> dict:
    """The arrays of a model file (architecture JSON + weights)."""
    if not model.built:
        raise StateError("save: the model has no weights yet; build it or fit it first")
    arch = {
        "format": FORMAT_VERSION,
        "name": model.name,
        "dtype": str(model.dtype),
        "input_shape": list(model.input_shape),
        "layers": [{"class": registered_name(l), "config": l.get_config()} for l in model.layers],
        "loss": getattr(model.loss, "name", None),
        "info": dict(getattr(model, "info", {}) or {}),
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


def _rng_states(model) -> dict:
    states = {"layers": {l.name: l.rng.bit_generator.state for l in model.layers if hasattr(l, "rng")}}
    if model.shuffle_rng is not None:
        states["shuffle"] = model.shuffle_rng.bit_generator.state
    return states


def _serialize_optimizer(opt) -> dict:
    sched = opt.schedule
    return {"class": type(opt).__name__, "config": opt.get_config(),
            "schedule": None if sched is None else {"class": type(sched).__name__, "config": sched.get_config()}}


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
