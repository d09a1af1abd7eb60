"""One trial: training from a configuration of settings (the shared recipe), and running a trial so
that any error becomes its record instead of stopping the search."""
from __future__ import annotations

import contextlib
import math
import os
import re
import time
import traceback
from collections.abc import Mapping

import numpy as np

from .. import recipe
from ..backend import set_seed
from ..errors import InvalidArgumentError, TrainingDivergedError
from .space import _plain

METRIC = "val_accuracy"


#: keys a config-driven trial understands (in ``base`` or ``space``): the settings of ``scratchnn.recipe``
CONFIG_KEYS = tuple(recipe.SETTINGS)
#: what a config-driven trial assumes where its config says nothing
CONFIG_DEFAULTS = {"dataset": "spiral", "model": "mlp", "val_size": 0.2, "seed": 0}
_DATA_CACHE: dict = {}


def _split_data(dataset, data_dir, limit, val_size, seed) -> "recipe.Data":
    """The data set split by ``recipe.load_data`` (cached per process: every trial of a worker shares it)."""
    key = (dataset, data_dir, limit, val_size, seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one data set per worker is enough
        _DATA_CACHE[key] = recipe.load_data(dataset, data_dir, limit, val_size, seed)
    return _DATA_CACHE[key]


def train_from_config(config: Mapping) -> dict:
    """Train one network described by ``config`` and return its validation metrics.

    The same recipe as ``scratchnn train`` (``scratchnn.recipe``): the data set's training part is
    split into training and validation samples; the test part is never used. Settings missing from
    ``config`` come from the model preset, then ``CONFIG_DEFAULTS``.

    Args:
        config: dict with keys from ``CONFIG_KEYS``: ``dataset`` (default ``"spiral"``), ``data_dir``,
            ``model`` (preset name or model file, default ``"mlp"``), ``epochs``, ``batch_size``,
            ``val_size`` (a count or a fraction, default 0.2), ``limit``, ``seed`` (default 0: every
            trial starts from the same initial weights), ``optimizer``, ``lr``, ``momentum``,
            ``schedule``, ``schedule_args``, ``l1``, ``l2``, ``max_norm``, ``dropout``, ``standardize``.

    Returns:
        ``{"val_accuracy", "val_loss", "train_accuracy", "train_loss", "epochs"}`` of the last epoch.

    Raises:
        scratchnn.errors.InvalidArgumentError: an unknown setting or a bad value (named).
        scratchnn.TrainingDivergedError: when the loss becomes NaN or infinite.
    """
    s = {**CONFIG_DEFAULTS, **recipe.check_settings(config)}
    data = _split_data(s["dataset"], s.get("data_dir"), s.get("limit"), s["val_size"], s["seed"])
    set_seed(s["seed"])  # same initial weights and dropout masks in every trial
    model, s = recipe.build_model(s, data.info, data.X_train)
    h = model.fit(data.X_train, data.y_train, epochs=s["epochs"], batch_size=s["batch_size"],
                  validation_data=(data.X_val, data.y_val), verbose=0, seed=s["seed"]).history
    return {"val_accuracy": h["val_accuracy"][-1], "val_loss": h["val_loss"][-1],
            "train_accuracy": h["accuracy"][-1], "train_loss": h["loss"][-1], "epochs": len(h["loss"])}


class TrainFromConfig:
    """A picklable ``train_fn``: ``TrainFromConfig(base)(config)`` trains on ``{**base, **config}``.

    Args:
        base: the fixed training settings (see ``train_from_config``).
    """

    def __init__(self, base: Mapping):
        self.base = dict(base)
        recipe.check_settings(self.base, label=lambda k: f"base config: {k}")  # names a bad key or value now

    def __call__(self, config):
        return train_from_config({**self.base, **config})

    def __repr__(self):
        return f"TrainFromConfig({self.base!r})"


# ----------------------------------------------------------------------------- one trial

def _finite_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def run_trial(train_fn, config: dict, trial: int) -> dict:
    """Run ``train_fn(config)`` and return the record of trial number ``trial`` (counted from 1).

    The record's ``status`` is:

    - ``"ok"``: ``train_fn`` returned a dict of finite metrics including a ``val_accuracy``;
    - ``"diverged"``: it raised ``TrainingDivergedError`` (the loss became NaN or infinite), or it
      returned a NaN or infinite metric (for instance a ``val_loss`` computed after a last update that
      broke the weights); ``diverged_at`` is ``{"epoch", "batch"}`` (from 1) when known;
    - ``"failed"``: any other exception, or no ``val_accuracy`` in what it returned.

    Exceptions never escape: a failing trial must not stop the search.
    """
    t0 = time.perf_counter()
    record = {"trial": trial, "config": config, "status": "ok", "metrics": {}, "error": None, "diverged_at": None}
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging trial ends in TrainingDivergedError
            out = train_fn(dict(config))
        if not isinstance(out, Mapping):
            raise InvalidArgumentError(f"train_fn must return a dict with a finite {METRIC!r}, returned {out!r:.200}")
        record["metrics"] = metrics = {str(k): _plain(v) for k, v in out.items()}
        not_finite = [f"{k}={v}" for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if not_finite:
            raise TrainingDivergedError(f"train_fn returned {', '.join(not_finite)}: the training diverged")
        if not _finite_number(metrics.get(METRIC)):
            raise InvalidArgumentError(f"train_fn must return a dict with a finite {METRIC!r}, returned {out!r:.200}")
    except TrainingDivergedError as e:
        record.update(status="diverged", error=f"{type(e).__name__}: {e}", diverged_at=_where_diverged(e))
    except Exception as e:  # noqa: BLE001 - a failing trial must not stop the search
        record.update(status="failed", error=f"{type(e).__name__}: {e}",
                      traceback="".join(traceback.format_exception(type(e), e, e.__traceback__, limit=-4)))
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record


def _where_diverged(error):
    """``{"epoch", "batch"}`` where training diverged, or None when unknown.

    ``Sequential.fit`` puts them on the error; a ``train_fn`` of one's own may only say
    "... at epoch 2, batch 5" in the message."""
    epoch, batch = getattr(error, "epoch", None), getattr(error, "batch", None)
    if epoch is None:
        found = re.search(r"epoch (\d+), batch (\d+)", str(error))
        if found:
            epoch, batch = int(found[1]), int(found[2])
    return None if epoch is None else {"epoch": epoch, "batch": batch}


def _failed_record(trial, config, error):
    """The record of a trial whose worker crashed before ``run_trial`` could return one."""
    return {"trial": trial, "config": config, "status": "failed", "metrics": {},
            "error": f"{type(error).__name__}: {error}", "diverged_at": None, "seconds": None}


_BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS")
_limiter = None


def _init_worker():
    """Process-pool initializer: one BLAS thread per worker (workers, not BLAS, use the cores)."""
    global _limiter
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return  # the environment variables set while spawning already apply
    _limiter = threadpool_limits(limits=1)


@contextlib.contextmanager
def _single_thread_blas_env():
    """Set the BLAS thread variables to 1 (unless the user set them) while workers are spawned."""
    added = [k for k in _BLAS_ENV if k not in os.environ]
    for k in added:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)
