"""Callbacks: History, the progress display, EarlyStopping.

A callback's hooks are called by ``Sequential.fit``: ``on_train_begin(info)``,
``on_epoch_begin(epoch)``, ``on_batch_end(batch, loss, hits, size)``,
``on_epoch_end(epoch, logs)`` and ``on_train_end()``. Setting
``model.stop_training = True`` ends training after the current epoch.
"""
from __future__ import annotations

import sys

import numpy as np

from .files import save_checkpoint, save_model
from .errors import InvalidArgumentError


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, info): ...
    def on_epoch_begin(self, epoch): ...
    def on_batch_end(self, batch, loss, hits, size): ...
    def on_epoch_end(self, epoch, logs): ...
    def on_train_end(self): ...


class History(Callback):
    """Per-epoch metrics: ``history.history["val_accuracy"][-1]``, ``history.epoch``."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items()}
        return f"History(epochs={len(self.epoch)}, last={last})"


def format_logs(logs: dict) -> str:
    parts = []
    for k, v in logs.items():
        if k == "time":
            continue
        parts.append(f"{k} {v:.4f}")
    return " - ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and accuracy, and one summary line per epoch."""

    def __init__(self, bar=True, file=None, update_every=0.1):
        self.bar = bar
        self.file = file
        self.update_every = update_every
        self._pbar = None

    def on_train_begin(self, info):
        self.epochs = info["epochs"]
        self.steps = info["steps"]

    def on_epoch_begin(self, epoch):
        self._loss = 0.0
        self._hits = 0
        self._seen = 0
        self._epoch = epoch
        if self.bar:
            from tqdm.auto import tqdm

            self._pbar = tqdm(total=self.steps, desc=f"Epoch {epoch + 1}/{self.epochs}", unit="batch",
                              leave=False, file=self.file or sys.stderr, dynamic_ncols=True,
                              mininterval=self.update_every)
            self._next_post = 0

    def on_batch_end(self, batch, loss, hits, size):
        self._loss += loss * size
        self._hits += hits
        self._advance(batch, size, lambda: (self._loss, self._hits))

    def tick(self, batch, size, metrics):
        """What ``fit`` calls for the bar it adds itself: the running loss and accuracy are read from
        ``metrics`` (its ``epoch()``: the epoch's sums so far) only when the bar shows them."""
        self._advance(batch, size, metrics.epoch)

    def _advance(self, batch, size, totals):
        self._seen += size
        if self._pbar is not None:
            self._pbar.update(1)
            if batch >= self._next_post:  # postfix formatting is slow: refresh ~20 times per epoch
                loss, hits = totals()
                self._pbar.set_postfix(loss=f"{loss / self._seen:.4f}", acc=f"{hits / self._seen:.4f}",
                                       refresh=False)
                self._next_post = batch + max(1, self.steps // 20)

    def on_epoch_end(self, epoch, logs):
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        print(f"Epoch {epoch + 1}/{self.epochs} - {logs.get('time', 0):.1f}s - {format_logs(logs)}",
              file=self.file or sys.stdout, flush=True)


def monitored(who, monitor, logs):
    """``logs[monitor]``, or one clear error naming the keys there are (a callback before this one may
    add keys of its own, so a key fit does not log is not refused before training)."""
    if monitor not in logs:
        hint = " (pass validation_data to fit)" if monitor.startswith("val_") and "val_loss" not in logs else ""
        raise InvalidArgumentError(f"{who} monitors {monitor!r}{hint}, but the epoch logs hold "
                                   f"{', '.join(map(repr, sorted(logs)))}")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: a key of the epoch logs, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        patience: epochs without improvement to tolerate.
        min_delta: smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for names containing "acc").
        restore_best_weights: put back the best epoch's weights when stopping.
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="auto", restore_best_weights=True):
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise InvalidArgumentError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', received {mode!r}")
        self.mode = mode
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, info):
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs):
        v = monitored("EarlyStopping", self.monitor, logs)
        better = v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta
        if better:
            self.best, self.wait, self.best_epoch = v, 0, epoch
            if self.restore_best_weights:
                self.best_weights = snapshot(self.model)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
                self.stopped_epoch = epoch

    def on_train_end(self):
        if self.stopped_epoch is not None and self.best_weights is not None:
            restore(self.model, self.best_weights)


def snapshot(model) -> dict:
    """Copies of every layer's parameters and buffers."""
    return {(l.name, kind, k): v.copy() for l in model.layers
            for kind, d in (("p", l.params), ("b", l.buffers)) for k, v in d.items()}


def restore(model, snap: dict) -> None:
    for l in model.layers:
        for kind, d in (("p", l.params), ("b", l.buffers)):
            for k in d:
                d[k][...] = snap[(l.name, kind, k)]


class CallbackList:
    """Dispatches fit's events to History, the progress display and the user's callbacks."""

    def __init__(self, callbacks, history, verbose=1, model=None):
        cbs = [history]
        progress = ProgressBar(bar=verbose == 1) if verbose else None
        if progress is not None:
            cbs.append(progress)
        cbs += list(callbacks or [])
        for cb in cbs:
            cb.set_model(model)
        self.callbacks = cbs
        # the per-batch hook runs ~1,500 times an epoch: call only the callbacks that define it; a
        # batch's loss and accuracy are computed only for them. The bar fit adds reads the epoch's
        # running sums only when it shows them (``ProgressBar.tick``)
        self.batch_hooks = [cb.on_batch_end for cb in cbs if cb is not progress
                            and type(cb).on_batch_end is not Callback.on_batch_end]
        self._bar = progress if progress is not None and progress.bar else None
        self.per_batch = bool(self.batch_hooks) or self._bar is not None

    def on_train_begin(self, info):
        for cb in self.callbacks:
            cb.on_train_begin(info)

    def on_epoch_begin(self, epoch):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)

    def on_batch_end(self, batch, metrics, size):
        """After each step: ``metrics`` (the runner's ``batch()`` and ``epoch()``) is read only as far
        as the callbacks need it."""
        if self.batch_hooks:
            loss, hits = metrics.batch()
            for hook in self.batch_hooks:
                hook(batch, loss, hits, size)
        if self._bar is not None:
            self._bar.tick(batch, size, metrics)

    def on_epoch_end(self, epoch, logs):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self):
        for cb in self.callbacks:
            cb.on_train_end()


class ModelCheckpoint(Callback):
    """Save during training.

    Args:
        path: file to write (``.npz``), rewritten atomically.
        monitor, mode: with ``save_best_only``, the metric that decides what "best" is.
        save_best_only: write a plain model file only when ``monitor`` improves (the model
            you would pick on the validation set); otherwise write a full checkpoint
            (weights, optimizer and generator states, history) after every epoch, from
            which ``scratchnn.saving.load_checkpoint`` continues training exactly.
        prior_history: history of epochs run before a resume, kept in the checkpoint.
    """

    def __init__(self, path, monitor="val_accuracy", mode="auto", save_best_only=False, prior_history=None,
                 info=None):
        self.path = path
        self.monitor = monitor
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.save_best_only = save_best_only
        self.prior = {k: list(v) for k, v in (prior_history or {}).items()}
        self.info = info or {}
        self.best = None
        self.best_epoch = None
        if self.prior.get(monitor):  # resuming: the best so far is already on disk
            self.best = (max if self.mode == "max" else min)(self.prior[monitor])

    def history(self) -> dict:
        h = {k: list(v) for k, v in self.prior.items()}
        for k, v in self.model.history.history.items():
            h.setdefault(k, []).extend(v)
        return h

    def on_epoch_end(self, epoch, logs):
        if not self.save_best_only:
            save_checkpoint(self.model, self.path, epoch + 1, self.history(), self.info)
            return
        v = monitored("ModelCheckpoint", self.monitor, logs)
        if self.best is None or (v > self.best if self.mode == "max" else v < self.best):
            self.best, self.best_epoch = v, epoch
            save_model(self.model, self.path, extra={"epoch": epoch + 1, self.monitor: v})
