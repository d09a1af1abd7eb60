"""Random hyperparameter search, on local processes or a Dask cluster.

Every configuration is sampled up front from ``seed`` (Bergstra & Bengio 2012: random search
beats a grid when only a few hyperparameters matter), each trial trains once, and the winner is
chosen on one held-out validation metric, ``val_accuracy`` (never on test data). A trial ends
``"ok"``, ``"diverged"`` (its loss became NaN or infinite: never chosen as best) or ``"failed"``
(any other error); the search goes on either way. Trials are numbered from 1 everywhere: progress
lines, ``results.csv``, ``results.json`` and ``best_config.json``. Results are rewritten after every
finished trial, so an interrupted search resumes where it stopped.

Example:
    >>> from scratchnn.search import Choice, LogUniform, random_search
    >>> space = {"lr": LogUniform(1e-4, 1e-1), "l2": LogUniform(1e-6, 1e-2), "batch_size": Choice([32, 64])}
    >>> base = {"dataset": "mnist", "model": "mlp-128-64", "epochs": 5, "limit": 10000, "val_size": 2000}
    >>> result = random_search(space, base, n_trials=20, out_dir="runs/search")
    >>> result.best_config
    {'lr': 0.0031..., 'l2': 2.1e-05, 'batch_size': 64}
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import pickle
import re
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from .errors import (InvalidArgumentError, InvalidTypeError, MissingDependencyError, MissingFileError,
                     TrainingDivergedError)
from . import recipe
from .backend import set_seed
from .runs import strict_json
from .saving import atomic_write_text, remove_stale_temp_files

__all__ = ["LogUniform", "Uniform", "IntUniform", "Choice", "distribution", "sample_configs", "random_search",
           "SearchResult", "TrainFromConfig", "train_from_config", "load_search_config", "EXECUTORS"]

EXECUTORS = ("process", "thread", "serial", "dask")
METRIC = "val_accuracy"
STATUSES = ("ok", "diverged", "failed")
#: version of ``results.json`` (``meta["format"]``); files without it numbered their trials from 0
RESULTS_FORMAT = 2


# ----------------------------------------------------------------------------- distributions

def _number(cls, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise InvalidArgumentError(f"{cls}: {name} must be a finite number, received {value!r}")
    return value


class LogUniform:
    """Values whose logarithm is uniform in ``[log(low), log(high)]``: for learning rates and penalties.

    Each decade gets the same share of the samples, so ``LogUniform(1e-5, 1e-1)`` tries 1e-5..1e-4
    as often as 1e-2..1e-1.

    Args:
        low, high: bounds, ``0 < low < high``.
    """

    def __init__(self, low, high):
        self.low, self.high = float(_number("LogUniform", "low", low)), float(_number("LogUniform", "high", high))
        if not 0 < self.low < self.high:
            raise InvalidArgumentError(f"LogUniform needs 0 < low < high, received low={low!r}, high={high!r}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def to_dict(self):
        return {"dist": "loguniform", "low": self.low, "high": self.high}

    def __repr__(self):
        return f"LogUniform({self.low!r}, {self.high!r})"


class Uniform:
    """Floats uniform in ``[low, high)``: for dropout rates, momentum and the like.

    Args:
        low, high: bounds, ``low < high``.
    """

    def __init__(self, low, high):
        self.low, self.high = float(_number("Uniform", "low", low)), float(_number("Uniform", "high", high))
        if not self.low < self.high:
            raise InvalidArgumentError(f"Uniform needs low < high, received low={low!r}, high={high!r}")

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def to_dict(self):
        return {"dist": "uniform", "low": self.low, "high": self.high}

    def __repr__(self):
        return f"Uniform({self.low!r}, {self.high!r})"


class IntUniform:
    """Integers uniform in ``[low, high]``, both ends included: for layer widths, epochs.

    Args:
        low, high: integer bounds, ``low <= high``.
    """

    def __init__(self, low, high):
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidArgumentError(f"IntUniform: {name} must be an integer, received {v!r}")
        self.low, self.high = int(low), int(high)
        if self.low > self.high:
            raise InvalidArgumentError(f"IntUniform needs low <= high, received low={low!r}, high={high!r}")

    def sample(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def to_dict(self):
        return {"dist": "int", "low": self.low, "high": self.high}

    def __repr__(self):
        return f"IntUniform({self.low!r}, {self.high!r})"


class Choice:
    """One of ``values``, each equally likely: for batch sizes, optimizer names.

    Args:
        values: non-empty list of JSON-friendly values (numbers, strings, booleans, None).
    """

    def __init__(self, values):
        if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__") or len(values) == 0:
            raise InvalidArgumentError(f"Choice needs a non-empty list of values, received {values!r}")
        self.values = [v.item() if isinstance(v, np.generic) else v for v in values]

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def to_dict(self):
        return {"dist": "choice", "values": list(self.values)}

    def __repr__(self):
        return f"Choice({self.values!r})"


_DISTS = {"loguniform": LogUniform, "log_uniform": LogUniform, "uniform": Uniform, "int": IntUniform,
          "intuniform": IntUniform, "int_uniform": IntUniform, "randint": IntUniform, "choice": Choice}
_DIST_TYPES = (LogUniform, Uniform, IntUniform, Choice)


def distribution(spec, name="?"):
    """A distribution from a config-file entry such as ``{dist = "loguniform", low = 1e-4, high = 0.1}``.

    ``{dist = "choice", values = [32, 64]}``; ``"int"`` (alias ``"randint"``) and ``"uniform"`` take
    ``low``/``high``. Distribution objects pass through; any other value is a constant.

    Args:
        spec: a dict with a ``dist`` key, a distribution object, or a constant.
        name: the hyperparameter's name, for error messages.
    """
    if isinstance(spec, _DIST_TYPES):
        return spec
    if not isinstance(spec, Mapping):
        return spec  # a constant
    kind = str(spec.get("dist", "")).lower()
    cls = _DISTS.get(kind)
    if cls is None:
        raise InvalidArgumentError(f"space entry {name!r}: unknown dist {spec.get('dist')!r}; "
                         "valid: loguniform, uniform, int, choice")
    args = {k: v for k, v in spec.items() if k != "dist"}
    want = ("values",) if cls is Choice else ("low", "high")
    if set(args) != set(want):
        raise InvalidArgumentError(f"space entry {name!r}: dist {kind!r} takes {' and '.join(want)}, received "
                         f"{sorted(args)}")
    try:
        return cls(*(args[k] for k in want))
    except ValueError as e:
        raise InvalidArgumentError(f"space entry {name!r}: {e}") from None


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def sample_configs(space: Mapping, n_trials: int, seed=0) -> list:
    """Draw ``n_trials`` configurations from ``space``.

    Trial ``i`` draws from its own generator, ``SeedSequence(seed, spawn_key=(i,))``, so its
    configuration depends only on ``seed`` and ``i``: the same seed gives the same configs, and
    asking for more trials later keeps the first ones.

    Args:
        space: dict ``name -> distribution`` (``LogUniform``, ``Uniform``, ``IntUniform``, ``Choice``,
            a config-file dict, or a constant).
        n_trials: number of configurations.
        seed: integer seed.

    Returns:
        A list of ``n_trials`` dicts of plain Python values.
    """
    if not isinstance(space, Mapping) or not space:
        raise InvalidArgumentError(f"space must be a non-empty dict of name -> distribution, received {space!r}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise InvalidArgumentError(f"n_trials must be a positive integer, received {n_trials!r}")
    dists = {str(k): distribution(v, k) for k, v in space.items()}
    configs = []
    for i in range(int(n_trials)):
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(i,)))
        configs.append({k: _plain(d.sample(rng)) if isinstance(d, _DIST_TYPES) else d for k, d in dists.items()})
    return configs


# ----------------------------------------------------------------------------- training from a config

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


# ----------------------------------------------------------------------------- results

def _canonical(config) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _json(obj) -> str:
    """Strict JSON: NaN and infinities become null, values JSON does not know become strings."""
    return strict_json(obj, indent=1, default=str)


def _atomic_write(path, text):
    """Write ``text`` to ``path`` through a temporary file (``tempfile.mkstemp``) in the same folder,
    then ``os.replace``: a reader sees the old file or the new one, never half of one. A failed write
    removes the temporary file, a symlink at ``path`` is replaced rather than written through, and the
    file gets the permissions the umask gives any new file (see ``saving.atomic_write``)."""
    atomic_write_text(path, text)


def _counts(records) -> dict:
    """How many trials ended in each status."""
    return {status: sum(r["status"] == status for r in records) for status in STATUSES}


def _write_results(out_dir, records, meta):
    """``results.json`` (meta, counts per status, every record) and ``results.csv`` (a row per trial)."""
    records = sorted(records, key=lambda r: r["trial"])
    _atomic_write(os.path.join(out_dir, "results.json"),
                  _json({"meta": meta, "counts": _counts(records), "trials": records}))
    params = list(dict.fromkeys(k for r in records for k in r["config"]))
    metrics = list(dict.fromkeys(k for r in records for k in r["metrics"]))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "status", *params, *metrics, "seconds", "diverged_epoch", "diverged_batch", "error"])
    for r in records:
        where = r.get("diverged_at") or {}
        w.writerow([r["trial"], r["status"], *(r["config"].get(k, "") for k in params),
                    *(f"{r['metrics'][k]:.6g}" if _finite_number(r["metrics"].get(k)) else r["metrics"].get(k, "")
                      for k in metrics), r["seconds"], where.get("epoch", ""), where.get("batch", ""),
                    r["error"] or ""])
    _atomic_write(os.path.join(out_dir, "results.csv"), buf.getvalue())


@dataclass
class SearchResult:
    """What ``random_search`` returns.

    Attributes:
        trials: one record per trial, ordered by trial number (from 1): ``trial``, ``config``,
            ``status`` (``"ok"``, ``"diverged"`` or ``"failed"``), ``metrics``, ``error``,
            ``diverged_at`` (``{"epoch", "batch"}`` from 1, for a diverged trial when known), ``seconds``.
        best: the ``"ok"`` record with the highest ``val_accuracy`` (None when no trial is ok).
        out_dir: folder holding ``results.csv``, ``results.json``, ``best_config.json`` and the plot.
        resumed: trials taken from a previous run instead of being trained again.
    """

    trials: list
    best: dict | None
    out_dir: str | None = None
    resumed: int = 0
    files: list = field(default_factory=list)

    @property
    def best_config(self):
        return None if self.best is None else dict(self.best["config"])

    @property
    def n_failed(self):
        """Trials that did not end ``"ok"``: the diverged ones included."""
        return sum(r["status"] != "ok" for r in self.trials)

    @property
    def n_diverged(self):
        """Trials whose loss (or a returned metric) became NaN or infinite."""
        return sum(r["status"] == "diverged" for r in self.trials)

    def __repr__(self):
        best = "none" if self.best is None else f"{self.best['metrics'][METRIC]:.4f} with {self.best['config']}"
        return (f"SearchResult(trials={len(self.trials)}, failed={self.n_failed} ({self.n_diverged} diverged), "
                f"best {METRIC} {best})")


# ----------------------------------------------------------------------------- resuming

def _previous_trials(out_dir, meta, configs) -> list:
    """The records in ``out_dir/results.json`` ([] without that file), once it is sure they come
    from this very search; otherwise an ``InvalidArgumentError`` that says what differs."""
    path = os.path.join(out_dir, "results.json")
    if not os.path.exists(path):
        return []
    doc = _read_results(path)
    differences = _differences(doc["meta"], json.loads(_json(meta)))  # compared as JSON, as stored
    if differences:
        raise InvalidArgumentError(f"cannot resume {out_dir}: it holds another search: {'; '.join(differences)} "
                                   "(search in another folder, or pass resume=False to start this one over)")
    for r in doc["trials"]:
        expected = configs[r["trial"] - 1]
        if _canonical(r["config"]) != _canonical(expected):
            raise InvalidArgumentError(
                f"cannot resume {out_dir}: trial {r['trial']} in {path} ran {_canonical(r['config'])}, but this "
                f"search samples {_canonical(expected)} (was the file edited, or written by another scratchnn version?)")
    return doc["trials"]


def _read_results(path) -> dict:
    """``results.json`` read and checked; an ``InvalidArgumentError`` naming the file if it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8 text
        raise InvalidArgumentError(f"cannot resume from {path}: not a readable search results file ({e})") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("meta"), dict) and isinstance(doc.get("trials"), list)):
        raise InvalidArgumentError(f"cannot resume from {path}: not a search results file "
                                   '(expected {"meta": {...}, "trials": [...]})')
    version = doc["meta"].get("format")
    if version is None:
        raise InvalidArgumentError(f"cannot resume from {path}: it was written by an older scratchnn, which numbered "
                                   "trials from 0 (and could record a diverged trial as ok); search in another "
                                   "folder, or pass resume=False to start this one over")
    if version != RESULTS_FORMAT:
        raise InvalidArgumentError(f"cannot resume from {path}: results format {version!r}, this scratchnn reads "
                                   f"format {RESULTS_FORMAT} (written by a newer version?)")
    problem = _results_problem(doc)
    if problem:
        raise InvalidArgumentError(f"cannot resume from {path}: not a search results file ({problem})")
    return doc


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _results_problem(doc):
    """What is wrong in a ``results.json`` document of the current format (None when nothing is)."""
    meta = doc["meta"]
    if not (_is_int(meta.get("n_trials")) and isinstance(meta.get("space"), dict)
            and isinstance(meta.get("base"), (dict, type(None)))):
        return "its meta needs n_trials, space and base"
    for r in doc["trials"]:
        if not (isinstance(r, dict) and _is_int(r.get("trial")) and 1 <= r["trial"] <= meta["n_trials"]
                and r.get("status") in STATUSES and isinstance(r.get("config"), dict)
                and isinstance(r.get("metrics"), dict)):
            return f"unexpected trial record {json.dumps(r, default=str):.150}"
        if r["status"] == "ok" and not _finite_number(r["metrics"].get(METRIC)):
            return f"trial {r['trial']} is 'ok' without a finite {METRIC}"
    return None


_UNSET = object()


def _show(value) -> str:
    """A stored setting in words: ``loguniform(0.0001, 0.1)``, ``choice([16, 32])``, ``5``, ``unset``."""
    if value is _UNSET:
        return "unset"
    if isinstance(value, dict) and "dist" in value:
        args = [value.get("values")] if value["dist"] == "choice" else [value.get("low"), value.get("high")]
        return f"{value['dist']}({', '.join(map(repr, args))})"
    return repr(value)


def _mapping_differences(name, old, new, ignore=()) -> list:
    keys = [k for k in dict.fromkeys([*old, *new]) if k not in ignore]
    return [f"{name} {k} was {_show(old.get(k, _UNSET))}, now {_show(new.get(k, _UNSET))}"
            for k in keys if old.get(k, _UNSET) != new.get(k, _UNSET)]


def _differences(old, new) -> list:
    """How the search described by meta ``new`` differs from the stored one, ``old``, in words.

    The executor may change (every executor gives the same results), ``n_trials`` may grow (the first
    trials keep their configs) and the base's ``data_dir`` may change (it says where the data set is,
    not which one); anything else gives other trials."""
    found = [f"{key} was {_show(old.get(key, _UNSET))}, now {_show(new[key])}"
             for key in ("metric", "seed") if old.get(key, _UNSET) != new[key]]
    if old["n_trials"] > new["n_trials"]:
        found.append(f"n_trials was {old['n_trials']}, now {new['n_trials']} (resuming can add trials, not remove "
                     "them)")
    space = _mapping_differences("space", old["space"], new["space"])
    if not space and list(old["space"]) != list(new["space"]):  # the order decides which draw goes where
        space.append(f"space order was {', '.join(old['space'])}, now {', '.join(new['space'])}")
    found += space
    if (old["base"] is None) != (new["base"] is None):
        what = {True: "a train_fn", False: "base settings"}
        found.append(f"it trained with {what[old['base'] is None]}, now with {what[new['base'] is None]}")
    elif new["base"] is not None:
        found += _mapping_differences("base", old["base"], new["base"], ignore=("data_dir",))
    return found


# ----------------------------------------------------------------------------- executors

def _dask_client(scheduler, n_workers):
    """``(client, things to close afterwards)`` for a scheduler address, a Client, or None."""
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError("executor='dask' needs Dask's distributed scheduler: "
                          "pip install 'scratchnn[dask]'  (or pip install 'dask[distributed]')") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if isinstance(scheduler, str):
        client = distributed.Client(scheduler)
        return client, [client]
    if scheduler is None:
        try:
            return distributed.get_client(), []
        except ValueError:  # no client yet: a cluster on this machine
            cluster = distributed.LocalCluster(n_workers=n_workers or os.cpu_count(), threads_per_worker=1)
            client = distributed.Client(cluster)
            return client, [client, cluster]
    raise InvalidTypeError(f"scheduler must be a Dask scheduler address (str), a distributed.Client or None, "
                    f"received {type(scheduler).__name__}")


def _run_pool(kind, train_fn, pending, n_workers, on_done):
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

    workers = max(1, min(n_workers or os.cpu_count() or 1, len(pending)))
    if kind == "process":
        import multiprocessing

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="scratchnn-trial")
    with pool, (_single_thread_blas_env() if kind == "process" else contextlib.nullcontext()):
        futures = {pool.submit(run_trial, train_fn, cfg, trial): (trial, cfg) for trial, cfg in pending}
        try:
            for fut in as_completed(futures):
                trial, cfg = futures[fut]
                try:
                    rec = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker crashed; the trial failed, not the search
                    rec = _failed_record(trial, cfg, e)
                on_done(rec)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(train_fn, pending, n_workers, scheduler, on_done):
    import distributed

    client, owned = _dask_client(scheduler, n_workers)
    futures = {}
    try:
        for trial, cfg in pending:
            fut = client.submit(run_trial, train_fn, cfg, trial, pure=False,
                                key=f"scratchnn-trial-{trial}-{os.urandom(4).hex()}")
            futures[fut] = (trial, cfg)
        for fut in distributed.as_completed(list(futures)):
            trial, cfg = futures[fut]
            try:
                rec = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker
                rec = _failed_record(trial, cfg, e)
            on_done(rec)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        futures.clear()  # release the results before a cluster we started goes away
        for obj in owned:  # our client first, then our cluster
            obj.close()


# ----------------------------------------------------------------------------- the search

def random_search(space, train_fn, n_trials=20, seed=0, executor="process", n_workers=None, scheduler=None,
                  out_dir=None, resume=True, retry_failed=False, verbose=True) -> SearchResult:
    """Sample ``n_trials`` configurations from ``space``, train each, pick the best on validation accuracy.

    Args:
        space: dict ``name -> distribution``: ``LogUniform(lo, hi)`` for learning rates and penalties,
            ``Uniform``, ``IntUniform``, ``Choice([...])``, a config-file dict such as
            ``{"dist": "loguniform", "low": 1e-4, "high": 0.1}``, or a constant.
        train_fn: ``train_fn(config) -> dict`` of metrics with at least ``"val_accuracy"``, measured on
            held-out validation data (never the test set); or a dict of base training settings
            (``{"dataset": "mnist", "model": "mlp-128-64", "epochs": 5, ...}``, see ``train_from_config``)
            which each trial trains on with the sampled values added. With ``executor="process"`` a
            function must be defined at a module's top level (it is pickled).
        n_trials: number of configurations sampled (all of them up front, from ``seed``).
        seed: the same seed gives the same configurations.
        executor: ``"process"`` (default: a pool of spawned processes, one BLAS thread each),
            ``"thread"``, ``"serial"`` (in this process, one after the other) or ``"dask"``.
        n_workers: parallel trials (default: the number of CPUs; for ``"dask"`` without
            ``scheduler``, the workers of the local cluster started).
        scheduler: for ``"dask"``: a scheduler address (``"tcp://host:8786"``), a
            ``distributed.Client``, or None (the current client, else a new ``LocalCluster``).
        out_dir: folder for ``results.csv``, ``results.json``, ``best_config.json`` and
            ``val_accuracy.png``, all rewritten atomically after every trial; None writes nothing.
        resume: continue the search recorded in ``out_dir/results.json``: its finished trials are
            kept, the others run. It must be the same search: the same ``space`` (in the same order),
            ``seed`` and ``base`` settings (``data_dir`` aside), else ``InvalidArgumentError`` says
            what differs. ``n_trials`` may grow: the first trials keep their configs and only the
            new ones run; it may not shrink. The executor may change. A ``train_fn`` function cannot
            be compared: resuming with another one is up to you. False starts over, replacing the files.
        retry_failed: when resuming, run previously failed and diverged trials again.
        verbose: print a line per finished trial.

    Returns:
        ``SearchResult`` with every trial's record and the best one. A trial whose loss becomes
        NaN or infinite (``TrainingDivergedError``), or whose ``train_fn`` returns a NaN or infinite
        metric, is recorded with ``status="diverged"`` and where it happened; one that raises anything
        else (a bad setting...) with ``status="failed"`` and its error. Neither is ever the best, and
        the search continues.

    Raises:
        InvalidArgumentError: bad arguments; or, when resuming, a ``results.json`` that is corrupt,
            written by an older scratchnn (trials numbered from 0), or from another search.

    Example:
        >>> def train_fn(config):
        ...     model = build(config); model.fit(X, y, validation_data=(Xv, yv), verbose=0)
        ...     return {"val_accuracy": model.evaluate(Xv, yv)["accuracy"]}
        >>> result = random_search({"lr": LogUniform(1e-4, 1e-1)}, train_fn, n_trials=10, executor="thread")
    """
    if executor not in EXECUTORS:
        raise InvalidArgumentError(f"executor must be one of {', '.join(EXECUTORS)}, received {executor!r}")
    base = None
    if isinstance(train_fn, Mapping):
        base = dict(train_fn)
        clash = sorted(set(base) & set(space))
        if clash:
            raise InvalidArgumentError(f"{', '.join(clash)} set both in the base config and in the space; keep one")
        bad = sorted(set(space) - set(CONFIG_KEYS))
        if bad:
            raise InvalidArgumentError(f"space entry(ies) {', '.join(map(repr, bad))} are not training settings; "
                             f"valid: {', '.join(CONFIG_KEYS)}")
        train_fn = TrainFromConfig(base)
    elif not callable(train_fn):
        raise InvalidTypeError(f"train_fn must be a callable or a dict of base settings, received {type(train_fn).__name__}")
    if executor == "process":
        try:
            pickle.dumps(train_fn)
        except Exception as e:  # noqa: BLE001
            raise InvalidTypeError(f"executor='process' pickles train_fn, and {train_fn!r} cannot be pickled ({e}); define "
                            "it at a module's top level, or use executor='thread' or 'serial'") from None
    configs = sample_configs(space, n_trials, seed)  # configs[n - 1] is trial n's
    meta = {"format": RESULTS_FORMAT, "seed": int(seed), "n_trials": int(n_trials), "metric": METRIC,
            "executor": executor,
            "space": {k: (d.to_dict() if isinstance(d, _DIST_TYPES) else d)
                      for k, d in ((k, distribution(v, k)) for k, v in space.items())},
            "base": base}
    done: dict[int, dict] = {}  # trial number -> record
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        remove_stale_temp_files(out_dir)  # left by a write that was killed
        if resume:
            for r in _previous_trials(out_dir, meta, configs):
                if r["status"] == "ok" or not retry_failed:
                    done[r["trial"]] = r
    resumed = len(done)
    pending = [(n, c) for n, c in enumerate(configs, start=1) if n not in done]
    if verbose and resumed:
        print(f"resuming: {resumed} of {n_trials} trials already finished in {out_dir}", flush=True)

    def on_done(rec):
        done[rec["trial"]] = rec
        if out_dir is not None:
            _write_results(out_dir, list(done.values()), meta)
        if verbose:
            params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec["config"].items())
            if rec["status"] == "ok":
                what = f"{METRIC} {rec['metrics'][METRIC]:.4f}"
            else:  # DIVERGED or FAILED, and why
                what = f"{rec['status'].upper()} {rec['error']}"
            secs = f" ({rec['seconds']:.1f} s)" if rec.get("seconds") is not None else ""
            print(f"trial {rec['trial']}/{n_trials} [{len(done)} done] {what}{secs}  {params}", flush=True)

    if pending:
        if executor == "serial":
            for trial, cfg in pending:
                on_done(run_trial(train_fn, cfg, trial))
        elif executor == "dask":
            _run_dask(train_fn, pending, n_workers, scheduler, on_done)
        else:
            _run_pool(executor, train_fn, pending, n_workers, on_done)
    trials = [done[n] for n in sorted(done)]
    ok = [r for r in trials if r["status"] == "ok"]
    best = max(ok, key=lambda r: (r["metrics"][METRIC], -r["trial"])) if ok else None
    result = SearchResult(trials, best, out_dir, resumed)
    if out_dir is not None:
        _write_results(out_dir, trials, meta)
        result.files = [os.path.join(out_dir, "results.csv"), os.path.join(out_dir, "results.json")]
        if best is not None:
            best_doc = {"trial": best["trial"], "config": best["config"], "metrics": best["metrics"],
                        "selected_on": METRIC}
            if base is not None:
                best_doc["train_config"] = {**base, **best["config"]}
            _atomic_write(os.path.join(out_dir, "best_config.json"), _json(best_doc))
            result.files.append(os.path.join(out_dir, "best_config.json"))
            png = _plot(out_dir, ok, list(configs[0]))
            if png:
                result.files.append(png)
        written = {os.path.basename(f) for f in result.files}
        for name in ("best_config.json", f"{METRIC}.png"):  # left by an earlier search in this folder
            if name not in written and os.path.lexists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
    return result


def _plot(out_dir, ok, names):
    """``val_accuracy.png`` against each numeric hyperparameter that varies (None when there is none)."""
    from . import plots

    rows = [{**r["config"], METRIC: r["metrics"][METRIC]} for r in ok]
    numeric = [k for k in names if all(_finite_number(r.get(k)) for r in rows) and len({r[k] for r in rows}) > 1]
    if not numeric:
        return None
    return str(plots.plot_hparam_scatter(rows, os.path.join(out_dir, f"{METRIC}.png"), metric=METRIC, params=numeric))


# ----------------------------------------------------------------------------- config files

_FILE_KEYS = {"base", "space", "n_trials", "seed", "executor", "scheduler", "n_workers"}


def load_search_config(path) -> dict:
    """Read a search description from TOML or YAML.

    .. code-block:: toml

        n_trials = 20
        seed = 0
        executor = "process"        # or "thread", "serial", "dask"
        # scheduler = "tcp://10.0.0.5:8786"
        [base]
        dataset = "mnist"
        model = "mlp-128-64"
        epochs = 5
        limit = 12000
        val_size = 2000
        [space]
        lr = {dist = "loguniform", low = 1e-4, high = 1e-1}
        l2 = {dist = "loguniform", low = 1e-6, high = 1e-2}
        batch_size = {dist = "choice", values = [32, 64, 128]}

    Returns:
        ``{"base": dict, "space": dict of distributions, "n_trials", "seed", "executor", "scheduler", "n_workers"}``.
    """
    from .presets import _read_description

    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"search config {path!r} does not exist")
    doc = _read_description(path)
    unknown = sorted(set(doc) - _FILE_KEYS)
    if unknown:
        raise InvalidArgumentError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(sorted(_FILE_KEYS))}")
    if not isinstance(doc.get("space"), Mapping) or not doc["space"]:
        raise InvalidArgumentError(f"{path}: needs a non-empty [space] table, "
                         'e.g. lr = {dist = "loguniform", low = 1e-4, high = 0.1}')
    if not isinstance(doc.get("base", {}), Mapping):
        raise InvalidArgumentError(f"{path}: [base] must be a table of training settings, received {doc['base']!r}")
    base = dict(doc.get("base") or {})
    TrainFromConfig(base)  # validates the keys
    space = {k: distribution(v, k) for k, v in doc["space"].items()}
    bad = sorted(set(space) - set(CONFIG_KEYS))
    if bad:
        raise InvalidArgumentError(f"{path}: [space] entry(ies) {', '.join(map(repr, bad))} are not training settings; "
                         f"valid: {', '.join(CONFIG_KEYS)}")
    executor = doc.get("executor", "process")
    if executor not in EXECUTORS:
        raise InvalidArgumentError(f"{path}: executor must be one of {', '.join(EXECUTORS)}, received {executor!r}")
    return {"base": base, "space": space, "n_trials": _file_int(path, doc, "n_trials", 20, low=1),
            "seed": _file_int(path, doc, "seed", 0, low=0), "executor": executor, "scheduler": doc.get("scheduler"),
            "n_workers": _file_int(path, doc, "n_workers", None, low=1)}


def _file_int(path, doc, key, default, low):
    """``doc[key]`` (``default`` when absent), which must be an integer >= ``low``."""
    value = doc.get(key, default)
    if value is not None and not (_is_int(value) and value >= low):
        raise InvalidArgumentError(f"{path}: {key} must be an integer >= {low}, received {value!r}")
    return value

