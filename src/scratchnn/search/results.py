"""Search results: ``results.json`` / ``results.csv``, what ``random_search`` returns, and the checks that
a search resumes only from its own results."""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field

from ..errors import InvalidArgumentError
from ..runs import strict_json
from ..saving import atomic_write_text
from .trials import METRIC, _finite_number

STATUSES = ("ok", "diverged", "failed")
#: version of ``results.json`` (``meta["format"]``); files without it numbered their trials from 0
RESULTS_FORMAT = 2


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
        raise InvalidArgumentError(f"cannot resume {out_dir}: its search differs: {'; '.join(differences)} (give the "
                                   "same settings to continue it, or search in another folder)")
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
                                   "folder")
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
