"""Random hyperparameter search, on local processes or a Dask cluster.

Every configuration is sampled up front from ``seed`` (Bergstra & Bengio 2012: random search
beats a grid when only a few hyperparameters matter), each trial trains once, and the winner is
chosen on one held-out validation metric, ``val_accuracy`` (never on test data). Results are
rewritten after every finished trial, so an interrupted search resumes where it stopped.

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
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from .errors import InvalidArgumentError, InvalidTypeError, MissingDependencyError, MissingFileError

__all__ = ["LogUniform", "Uniform", "IntUniform", "Choice", "distribution", "sample_configs", "random_search",
           "SearchResult", "TrainFromConfig", "train_from_config", "load_search_config", "EXECUTORS"]

EXECUTORS = ("process", "thread", "serial", "dask")
METRIC = "val_accuracy"


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

#: keys a config-driven trial understands (in ``base`` or ``space``)
CONFIG_KEYS = ("dataset", "data_dir", "model", "epochs", "batch_size", "val_size", "limit", "seed", "optimizer",
               "lr", "momentum", "schedule", "schedule_args", "l1", "l2", "max_norm", "dropout")
_DATA_CACHE: dict = {}


def _split_data(dataset, data_dir, limit, val_size, seed):
    """``(X_train, y_train), (X_val, y_val), n_classes`` from the training part only (cached per process)."""
    key = (dataset, data_dir, limit, val_size, seed)
    if key not in _DATA_CACHE:
        from .datasets import load_dataset, scale, train_val_split

        kwargs = {"progress": False} if str(dataset).lower().replace("_", "-") in ("mnist", "fashion-mnist") else {}
        (X, y), _ = load_dataset(dataset, data_dir=data_dir, **kwargs)  # the test part is never touched
        X = np.asarray(X)
        X = scale(X) if X.dtype == np.uint8 else X.astype(np.float32)
        if X.ndim == 3:
            X = X[:, None]
        if limit:
            X, y = X[:int(limit)], y[:int(limit)]
        n_val = int(val_size) if val_size >= 1 else int(round(val_size * len(X)))
        train, val = train_val_split(X, y, val_size=n_val, seed=seed)
        _DATA_CACHE.clear()  # one data set per worker is enough
        _DATA_CACHE[key] = (train, val, int(y.max()) + 1)
    return _DATA_CACHE[key]


def train_from_config(config: Mapping) -> dict:
    """Train one network described by ``config`` and return its validation metrics.

    The data set's training part is split into training and validation samples (``val_size``,
    a count or a fraction; ``limit`` keeps only the first samples); the test part is never used.
    Settings missing from ``config`` come from the model preset.

    Args:
        config: dict with keys from ``CONFIG_KEYS``: ``dataset`` (default ``"spiral"``), ``data_dir``,
            ``model`` (preset name or model file, default ``"mlp"``), ``epochs``, ``batch_size``,
            ``val_size`` (default 0.2), ``limit``, ``seed`` (default 0: every trial starts from the
            same initial weights), ``optimizer``, ``lr``, ``momentum``, ``schedule``, ``schedule_args``,
            ``l1``, ``l2``, ``max_norm``, ``dropout``.

    Returns:
        ``{"val_accuracy", "val_loss", "train_accuracy", "train_loss", "epochs"}`` of the last epoch.

    Raises:
        scratchnn.TrainingDivergedError: when the loss becomes NaN or infinite.
    """
    from . import optimizers, schedules
    from .backend import set_seed
    from .layers import Dropout
    from .model import Sequential
    from .presets import resolve
    from .regularizers import L1, L2, ElasticNet, MaxNorm

    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise InvalidArgumentError(f"unknown training setting(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(CONFIG_KEYS)}")
    c = dict(config)
    seed = int(c.get("seed") or 0)
    train, val, n_classes = _split_data(c.get("dataset", "spiral"), c.get("data_dir"), c.get("limit"),
                                        c.get("val_size", 0.2), seed)
    set_seed(seed)  # same initial weights and dropout masks in every trial
    layers, defaults = resolve(str(c.get("model", "mlp")), train[0].shape[1:], n_classes)
    s = {**defaults, **{k: v for k, v in c.items() if v is not None}}
    if "schedule" in c and c["schedule"] != defaults.get("schedule"):
        s["schedule_args"] = c.get("schedule_args") or {}
    if s.get("dropout") is not None:
        drops = [l for l in layers if isinstance(l, Dropout)]
        if not drops:
            raise InvalidArgumentError(f"dropout={s['dropout']!r}: model {s.get('model', 'mlp')!r} has no Dropout layer")
        for l in drops:
            l.rate = float(s["dropout"])
    epochs, batch_size = int(s.get("epochs", 10)), int(s.get("batch_size", 32))
    sched_args = dict(s.get("schedule_args") or {})
    if s.get("schedule") == "cosine":
        sched_args.setdefault("epochs", epochs)
    lr = schedules.get(s.get("schedule") or "constant", float(s.get("lr", 0.001)), **sched_args)
    opt_name = s.get("optimizer", "adam")
    opt_kwargs = {"lr": lr}
    if s.get("momentum") is not None and opt_name in ("sgd", "momentum", "nesterov"):
        opt_kwargs["momentum"] = float(s["momentum"])
    l1, l2 = float(s.get("l1") or 0), float(s.get("l2") or 0)
    reg = ElasticNet(l1, l2) if l1 and l2 else L1(l1) if l1 else L2(l2) if l2 else None
    model = Sequential(layers)
    model.compile(optimizer=optimizers.get(opt_name, **opt_kwargs), loss="softmax_cross_entropy", regularizer=reg,
                  constraint=MaxNorm(float(s["max_norm"])) if s.get("max_norm") else None)
    h = model.fit(*train, epochs=epochs, batch_size=batch_size, validation_data=val, verbose=0, seed=seed).history
    return {"val_accuracy": h["val_accuracy"][-1], "val_loss": h["val_loss"][-1],
            "train_accuracy": h["accuracy"][-1], "train_loss": h["loss"][-1], "epochs": len(h["loss"])}


class TrainFromConfig:
    """A picklable ``train_fn``: ``TrainFromConfig(base)(config)`` trains on ``{**base, **config}``.

    Args:
        base: the fixed training settings (see ``train_from_config``).
    """

    def __init__(self, base: Mapping):
        self.base = dict(base)
        unknown = sorted(set(self.base) - set(CONFIG_KEYS))
        if unknown:
            raise InvalidArgumentError(f"base config: unknown setting(s) {', '.join(map(repr, unknown))}; "
                             f"valid: {', '.join(CONFIG_KEYS)}")

    def __call__(self, config):
        return train_from_config({**self.base, **config})

    def __repr__(self):
        return f"TrainFromConfig({self.base!r})"


# ----------------------------------------------------------------------------- one trial

def _finite_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def run_trial(train_fn, config: dict, index: int) -> dict:
    """Run ``train_fn(config)`` and return the trial's record; exceptions become a failed record."""
    t0 = time.perf_counter()
    record = {"trial": index, "config": config, "status": "ok", "metrics": {}, "error": None}
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging trial ends in TrainingDivergedError
            out = train_fn(dict(config))
        if not isinstance(out, Mapping) or not _finite_number(out.get(METRIC)):
            raise InvalidArgumentError(f"train_fn must return a dict with a finite {METRIC!r}, returned {out!r:.200}")
        record["metrics"] = {str(k): _plain(v) for k, v in out.items()}
    except Exception as e:  # noqa: BLE001 - a failing trial must not stop the search
        record.update(status="failed", error=f"{type(e).__name__}: {e}",
                      traceback="".join(traceback.format_exception(type(e), e, e.__traceback__, limit=-4)))
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record


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


def _atomic_write(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_results(out_dir, records, meta):
    records = sorted(records, key=lambda r: r["trial"])
    _atomic_write(os.path.join(out_dir, "results.json"),
                  json.dumps({"meta": meta, "trials": records}, indent=1, default=str))
    params = list(dict.fromkeys(k for r in records for k in r["config"]))
    metrics = list(dict.fromkeys(k for r in records for k in r["metrics"]))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "status", *params, *metrics, "seconds", "error"])
    for r in records:
        w.writerow([r["trial"], r["status"], *(r["config"].get(k, "") for k in params),
                    *(f"{r['metrics'][k]:.6g}" if _finite_number(r["metrics"].get(k)) else r["metrics"].get(k, "")
                      for k in metrics), r["seconds"], r["error"] or ""])
    _atomic_write(os.path.join(out_dir, "results.csv"), buf.getvalue())


def _read_previous(out_dir):
    path = os.path.join(out_dir, "results.json")
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            return list(json.load(f)["trials"])
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgumentError(f"cannot resume from {path}: not a search results file ({e})") from None


@dataclass
class SearchResult:
    """What ``random_search`` returns.

    Attributes:
        trials: one record per trial, ordered by trial index: ``trial``, ``config``, ``status``
            (``"ok"`` or ``"failed"``), ``metrics``, ``error``, ``seconds``.
        best: the record with the highest ``val_accuracy`` (None when every trial failed).
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
        return sum(r["status"] != "ok" for r in self.trials)

    def __repr__(self):
        best = "none" if self.best is None else f"{self.best['metrics'][METRIC]:.4f} with {self.best['config']}"
        return f"SearchResult(trials={len(self.trials)}, failed={self.n_failed}, best {METRIC} {best})"


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
        futures = {pool.submit(run_trial, train_fn, cfg, i): (i, cfg) for i, cfg in pending}
        try:
            for fut in as_completed(futures):
                i, cfg = futures[fut]
                try:
                    rec = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker crashed; the trial failed, not the search
                    rec = {"trial": i, "config": cfg, "status": "failed", "metrics": {},
                           "error": f"{type(e).__name__}: {e}", "seconds": None}
                on_done(rec)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(train_fn, pending, n_workers, scheduler, on_done):
    import distributed

    client, owned = _dask_client(scheduler, n_workers)
    futures = {}
    try:
        for i, cfg in pending:
            fut = client.submit(run_trial, train_fn, cfg, i, pure=False,
                                key=f"scratchnn-trial-{i}-{os.urandom(4).hex()}")
            futures[fut] = (i, cfg)
        for fut in distributed.as_completed(list(futures)):
            i, cfg = futures[fut]
            try:
                rec = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker
                rec = {"trial": i, "config": cfg, "status": "failed", "metrics": {},
                       "error": f"{type(e).__name__}: {e}", "seconds": None}
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
            ``val_accuracy.png``; None writes nothing.
        resume: reuse the trials recorded as finished in ``out_dir/results.json`` whose index and
            config match this search's (so an interrupted search continues); False starts over.
        retry_failed: when resuming, run previously failed trials again.
        verbose: print a line per finished trial.

    Returns:
        ``SearchResult`` with every trial's record and the best one. A trial that raises (for
        example ``TrainingDivergedError`` on a NaN loss, or a bad setting) is recorded with
        ``status="failed"`` and its error; the search continues.

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
    configs = sample_configs(space, n_trials, seed)
    meta = {"seed": seed, "n_trials": n_trials, "metric": METRIC, "executor": executor,
            "space": {k: (d.to_dict() if isinstance(d, _DIST_TYPES) else d)
                      for k, d in ((k, distribution(v, k)) for k, v in space.items())},
            "base": base}
    done: dict[int, dict] = {}
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        if resume:
            stale = 0
            for r in _read_previous(out_dir):
                i = r.get("trial")
                finished = r.get("status") == "ok" or (r.get("status") == "failed" and not retry_failed)
                if isinstance(i, int) and i < n_trials and _canonical(r.get("config")) == _canonical(configs[i]):
                    if finished:
                        done[i] = r
                else:
                    stale += 1
            if stale:
                warnings.warn(f"{stale} trial(s) in {out_dir}/results.json do not match this search's configs "
                              "(another space, seed or n_trials?); they are dropped", stacklevel=2)
    resumed = len(done)
    pending = [(i, c) for i, c in enumerate(configs) if i not in done]
    if verbose and resumed:
        print(f"resuming: {resumed} of {n_trials} trials already finished in {out_dir}", flush=True)

    def on_done(rec):
        done[rec["trial"]] = rec
        if out_dir is not None:
            _write_results(out_dir, list(done.values()), meta)
        if verbose:
            params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec["config"].items())
            what = f"{METRIC} {rec['metrics'][METRIC]:.4f}" if rec["status"] == "ok" else f"FAILED {rec['error']}"
            secs = f" ({rec['seconds']:.1f} s)" if rec.get("seconds") is not None else ""
            print(f"trial {rec['trial'] + 1}/{n_trials} [{len(done)} done] {what}{secs}  {params}", flush=True)

    if pending:
        if executor == "serial":
            for i, cfg in pending:
                on_done(run_trial(train_fn, cfg, i))
        elif executor == "dask":
            _run_dask(train_fn, pending, n_workers, scheduler, on_done)
        else:
            _run_pool(executor, train_fn, pending, n_workers, on_done)
    trials = [done[i] for i in sorted(done)]
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
            _atomic_write(os.path.join(out_dir, "best_config.json"), json.dumps(best_doc, indent=1, default=str))
            result.files.append(os.path.join(out_dir, "best_config.json"))
            png = _plot(out_dir, ok, list(configs[0]))
            if png:
                result.files.append(png)
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
    return {"base": base, "space": space, "n_trials": int(doc.get("n_trials", 20)), "seed": int(doc.get("seed", 0)),
            "executor": executor, "scheduler": doc.get("scheduler"), "n_workers": doc.get("n_workers")}

