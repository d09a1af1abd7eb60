"""Run folders: what ``scratchnn train`` writes, and the rules that keep a user's earlier runs safe.

A run folder holds ``config.json`` (everything needed to repeat or resume the run), ``metrics.json`` /
``metrics.csv`` (per epoch, rewritten as training goes), ``model.npz`` (the epoch chosen on validation
accuracy), ``checkpoint.npz`` (the last finished epoch, for ``--resume``) and ``plots/``. Every file is
written atomically (``saving.atomic_write``): a crash or Ctrl-C leaves the previous version readable.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os

from .errors import InvalidArgumentError
from .saving import atomic_write_text, remove_stale_temp_files

RUN_FILES = ("config.json", "metrics.json", "metrics.csv", "model.npz", "checkpoint.npz", "interrupted.npz")


def prepare_out(out, overwrite=False, flag="--out") -> None:
    """Check that ``out`` can take a new run: refuse a file, or an existing run unless ``overwrite``.

    Nothing is created here (the folder appears only once data and model are known good)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise InvalidArgumentError(f"{flag} {out}: is a file, not a folder")
    if os.path.isdir(out) and not overwrite:
        held = [f for f in RUN_FILES if os.path.lexists(os.path.join(out, f))]
        if held and not (held == ["config.json"] and _is_run_config(os.path.join(out, "config.json"))):
            raise InvalidArgumentError(f"{flag} {out}: already holds a run ({', '.join(held)}); pass --overwrite to "
                                       "replace it, --resume to continue it, or choose another folder")
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise InvalidArgumentError(f"{flag} {out}: {parent} is a file, not a folder")
    target = out if os.path.isdir(out) else parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"{flag} {out}: {target} is not writable")


def _is_run_config(path) -> bool:
    """Whether ``path`` is the config.json of a scratchnn run (one that stopped before its first epoch
    when nothing else is beside it)."""
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and isinstance(cfg.get("args"), dict) and isinstance(cfg.get("settings"), dict)


def create(out) -> None:
    """Make the run folder, without the files of a run it held (``prepare_out`` decided that may go:
    ``--overwrite`` was given, or that run never finished an epoch), old plots included."""
    os.makedirs(out, exist_ok=True)
    remove_stale_temp_files(out)
    for name in RUN_FILES:
        path = os.path.join(out, name)
        if os.path.lexists(path):
            os.remove(path)
    plots = os.path.join(out, "plots")
    for name in os.listdir(plots) if os.path.isdir(plots) else []:
        if name.endswith(".png"):
            os.remove(os.path.join(plots, name))


def strict_json(obj, **kwargs) -> str:
    """JSON with NaN and infinities written as null (they are not JSON)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), allow_nan=False, **kwargs)


def write_json(path, obj) -> None:
    atomic_write_text(path, strict_json(obj, indent=1) + "\n")


def read_config(run) -> dict:
    """The ``config.json`` of run folder ``run``, checked; errors name the file."""
    path = os.path.join(run, "config.json")
    if not os.path.isdir(run):
        raise InvalidArgumentError(f"--resume {run}: no such run folder")
    if not os.path.exists(path):
        raise InvalidArgumentError(f"--resume {run}: no config.json there (is it a run folder?)")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(f"{path}: not valid JSON ({e})") from None
    if not (isinstance(cfg, dict) and isinstance(cfg.get("args"), dict) and isinstance(cfg.get("settings"), dict)):
        raise InvalidArgumentError(f"{path}: not a scratchnn run configuration (needs 'args' and 'settings')")
    from . import recipe

    cfg["settings"] = recipe.check_settings(cfg["settings"], label=lambda k: f"{path}: settings.{k}")
    missing = [k for k in ("dataset", "model", "epochs", "batch_size", "optimizer", "lr", "seed")
               if k not in cfg["settings"]]
    if missing:
        raise InvalidArgumentError(f"{path}: settings lack {', '.join(missing)}")
    args = cfg["args"]
    for k in ("limit", "val_size"):
        if args.get(k) is not None:
            args[k] = recipe.check_setting(k, args[k], f"{path}: args.{k}")
    if not isinstance(args.get("data_dir") or "", str) or not isinstance(args.get("no_plots", False), bool):
        raise InvalidArgumentError(f"{path}: args.data_dir must be a path and args.no_plots true or false")
    return cfg


def write_metrics(out, history: dict, test: dict | None = None) -> None:
    """``metrics.json`` and ``metrics.csv``: one entry per epoch, and the test result when known."""
    write_json(os.path.join(out, "metrics.json"), {"epochs": history, "test": test})
    epochs = len(next(iter(history.values()), []))
    buf = io.StringIO()
    w = csv.writer(buf)
    keys = list(history)
    w.writerow(["epoch", *keys])
    for i in range(epochs):
        w.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    atomic_write_text(os.path.join(out, "metrics.csv"), buf.getvalue())


def write_plots(out, model, history, X, y, quiet=False) -> list:
    """Curves, confusion matrix, misclassified images, first-layer weights or filters, feature maps."""
    from . import plots
    from .layers import Conv2D, Dense

    folder = os.path.join(out, "plots")
    os.makedirs(folder, exist_ok=True)
    pred = model.predict_classes(X)
    names = model.info.get("class_names")
    written = [plots.plot_history(history, os.path.join(folder, "curves.png")),
               plots.plot_confusion_matrix(y, pred, os.path.join(folder, "confusion_matrix.png"), class_names=names)]
    if X.ndim == 4:
        written.append(plots.plot_misclassified(X, y, pred, os.path.join(folder, "misclassified.png"),
                                                class_names=names))
    elif X.shape[1:] == (2,):
        written.append(plots.plot_decision_boundary(model.predict_classes, X, y,
                                                    os.path.join(folder, "decision_boundary.png")))
    first = next((l for l in model.layers if l.params), None)
    if isinstance(first, Dense) and model.input_shape is not None and len(model.input_shape) >= 2:
        written.append(plots.plot_dense_weights(first.params["W"], os.path.join(folder, "first_layer_weights.png"),
                                                image_shape=model.input_shape[-2:]))
    if isinstance(first, Conv2D):
        written.append(plots.plot_conv_filters(first.params["W"], os.path.join(folder, "conv1_filters.png")))
        maps, x = [], X[:1]
        for layer in model.layers:
            x = layer.forward(x)
            if isinstance(layer, Conv2D):
                maps.append((layer.name, x[0]))
        written.append(plots.plot_feature_maps(maps, os.path.join(folder, "feature_maps.png")))
    if not quiet:
        print(f"plots: {', '.join(os.path.relpath(p, out) for p in written)}")
    return written
