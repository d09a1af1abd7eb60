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

import os
import pickle
from collections.abc import Mapping

from ..errors import InvalidArgumentError, InvalidTypeError, MissingFileError
from ..saving import remove_stale_temp_files
from .executors import _run_dask, _run_pool
from .results import (RESULTS_FORMAT, STATUSES, SearchResult, _atomic_write, _is_int, _json, _previous_trials,
                      _write_results)
from .space import _DIST_TYPES, Choice, IntUniform, LogUniform, Uniform, distribution, sample_configs
from .trials import CONFIG_DEFAULTS, CONFIG_KEYS, METRIC, TrainFromConfig, _finite_number, run_trial, train_from_config

__all__ = ["LogUniform", "Uniform", "IntUniform", "Choice", "distribution", "sample_configs", "random_search",
           "SearchResult", "TrainFromConfig", "train_from_config", "load_search_config", "EXECUTORS", "METRIC",
           "STATUSES", "RESULTS_FORMAT", "CONFIG_KEYS", "CONFIG_DEFAULTS", "run_trial"]

EXECUTORS = ("process", "thread", "serial", "dask")


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
    from .. import plots

    rows = [{**r["config"], METRIC: r["metrics"][METRIC]} for r in ok]
    numeric = [k for k in names if all(_finite_number(r.get(k)) for r in rows) and len({r[k] for r in rows}) > 1]
    if not numeric:
        return None
    return str(plots.plot_hparam_scatter(rows, os.path.join(out_dir, f"{METRIC}.png"), metric=METRIC, params=numeric))


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
    from ..presets import _read_description

    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"search config {path!r} does not exist")
    doc = _read_description(path, what="search config")
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
