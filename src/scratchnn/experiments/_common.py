"""What every study shares: data subsets, a training wrapper, tables, figures."""
from __future__ import annotations

import csv
import io
import functools
import json
import math
import os
import textwrap
import time
from dataclasses import dataclass, field

import numpy as np

from ..callbacks import Callback
from ..errors import InvalidArgumentError, ScratchnnError
from ..files import atomic_write_text
from ..runs import strict_json


@dataclass
class StudyResult:
    """What a study returns.

    Attributes:
        name: the study's name (``"init"``, ``"optimizers"``, ...).
        rows: the table, one dict per configuration (also in ``NAME.csv`` / ``NAME.json``).
        summary: lines stating the measured findings.
        files: paths written (PNG, CSV, JSON).
        meta: budget, data set, sizes and settings (also ``meta["conclusion"]``).
        conclusion: the study's lesson as one sentence built from its own numbers (printed, drawn
            under the plot and stored in ``NAME.json``); a quick run's starts with ``SMOKE_TEST``.
    """

    name: str
    rows: list
    summary: list
    files: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    conclusion: str = ""


#: the budgets of a study run, smallest first: ``quick`` is a smoke test of a few seconds whose
#: numbers do not show the lesson; ``default`` shows each lesson in about a minute per study on
#: 2 cores; ``full`` is the budget of the tables in examples/README.md
BUDGETS = ("quick", "default", "full")

#: how a quick run is labelled: in its printed conclusion, its JSON and its plot's title
SMOKE_TEST = "smoke test: --quick numbers do not show the lesson"


@dataclass
class Split:
    """Training and validation arrays (and optionally test arrays) of one data set."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    name: str
    n_classes: int
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def flat(self):
        """The same split with each sample flattened to a vector."""
        f = (lambda a: None if a is None else a.reshape(len(a), -1))
        return Split(f(self.X), self.y, f(self.X_val), self.y_val, self.name, self.n_classes,
                     f(self.X_test), self.y_test)

    @property
    def is_images(self):
        return self.X.ndim == 4


class DataUnavailable(ScratchnnError, RuntimeError):
    """No data set a study can use was found (``quick_helps``: the study's ``--quick`` smoke test
    would run without it)."""

    def __init__(self, message, quick_helps=True):
        super().__init__(message)
        self.quick_helps = quick_helps


@functools.lru_cache(maxsize=4)
def _mnist(data_dir, download):
    from ..datasets import load_mnist

    return load_mnist(data_dir, download=download, progress=False)


@functools.lru_cache(maxsize=1)
def _digits():
    from ..datasets import load_digits

    return load_digits(test_size=0.25, seed=0)


def _pick(y, n, classes, rng):
    """``n`` indices with (about) the same count per class in ``classes``."""
    per = [np.flatnonzero(y == c) for c in classes]
    counts = np.full(len(classes), n // len(classes))
    counts[: n % len(classes)] += 1
    idx = [rng.choice(p, size=min(k, len(p)), replace=False) for p, k in zip(per, counts)]
    return rng.permutation(np.concatenate(idx))


class Context:
    """Settings of one study run plus helpers (data, training, output files).

    Args:
        name: study name, used for file names.
        out_dir: output folder.
        budget: one of ``BUDGETS``: ``"quick"`` (a smoke test: tiny data, seconds), ``"default"``
            (about a minute) or ``"full"`` (the examples/README tables).
        data_dir: folder with the MNIST files (else ``$SCRATCHNN_DATA_DIR``, the cache, a download).
        seed: seed of data subsets and initial weights.
        verbose: print progress lines and the conclusion.
        conclude: ``conclude(rows, meta) -> str``, the study's lesson from its own numbers.
    """

    def __init__(self, name, out_dir, budget="default", data_dir=None, seed=0, verbose=True, conclude=None):
        if budget not in BUDGETS:
            raise InvalidArgumentError(f"unknown budget {budget!r}; available: {', '.join(BUDGETS)}")
        self.name, self.out_dir, self.budget = name, os.fspath(out_dir), budget
        self.data_dir, self.seed, self.verbose, self.conclude = data_dir, int(seed), verbose, conclude
        self.t0 = time.perf_counter()
        self.files: list = []
        os.makedirs(self.out_dir, exist_ok=True)

    @property
    def quick(self):
        """A smoke test: tiny data and budgets, MNIST optional."""
        return self.budget == "quick"

    def pick(self, quick, default, full):
        """The setting for this run's budget."""
        return {"quick": quick, "default": default, "full": full}[self.budget]

    def log(self, msg):
        if self.verbose:
            print(f"[{self.name} {time.perf_counter() - self.t0:5.1f}s] {msg}", flush=True)

    # -- data ----------------------------------------------------------------------------------
    def image_source(self):
        """``((X_train, y_train), (X_test, y_test), name)`` as uint8 images: MNIST, else (quick) 8x8 digits."""
        from ..datasets import DatasetNotFoundError

        try:
            return (*_mnist(self.data_dir, not self.quick), "mnist")
        except DatasetNotFoundError as e:
            if not self.quick:
                raise DataUnavailable(f"the {self.name} study needs MNIST: {e}") from None
            mnist_error = e
        try:
            return (*_digits(), "digits")
        except ImportError:
            raise DataUnavailable(f"the {self.name} study needs images: MNIST was not found ({mnist_error}) "
                                  "and the quick fallback, scikit-learn's 8x8 digits, is not installed") from None

    def images(self, n_train, n_val, classes=None, n_test=None, allow_spiral=False):
        """A class-balanced random subset scaled to [0, 1], shaped ``(N, 1, H, W)``.

        Validation samples come from the training file; ``n_test`` test samples (all when 0)
        from the test file. In quick mode, without MNIST or scikit-learn, ``allow_spiral``
        returns the 2-D spiral instead.
        """
        from ..datasets import load_spiral, train_val_split
        from ..recipe import prepare_images

        try:
            (Xtr, ytr), (Xte, yte), name = self.image_source()
        except DataUnavailable:
            if not (allow_spiral and self.quick):
                raise
            X, y = load_spiral(n_per_class=(n_train + n_val) // 3 + 1, n_classes=3, seed=self.seed)
            (X, y), (Xv, yv) = train_val_split(X, y, val_size=n_val, seed=self.seed, stratify=True)
            return Split(X, y, Xv, yv, "spiral", 3)
        classes = list(range(int(ytr.max()) + 1)) if classes is None else list(classes)
        rng = np.random.default_rng(self.seed)
        idx = _pick(ytr, n_train + n_val, classes, rng)
        tr, va = idx[:n_train], idx[n_train:]
        remap = np.full(int(ytr.max()) + 1, -1)
        remap[classes] = np.arange(len(classes))  # classes 5..9 become labels 0..4

        def prep(X, i):
            return prepare_images(X[i])

        split = Split(prep(Xtr, tr), remap[ytr[tr]], prep(Xtr, va), remap[ytr[va]], name, len(classes))
        if n_test is not None:
            t = np.flatnonzero(np.isin(yte, classes))
            if n_test:
                t = rng.choice(t, size=min(n_test, len(t)), replace=False)
            split.X_test, split.y_test = prep(Xte, t), remap[yte[t]]
        return split

    # -- training ------------------------------------------------------------------------------
    def seed_all(self, offset=0):
        from ..backend import set_seed

        set_seed(self.seed + offset)

    # -- outputs -------------------------------------------------------------------------------
    def path(self, filename):
        return os.path.join(self.out_dir, filename)

    def figure(self, nrows, ncols, width=4.6, height=3.6):
        from ..plots import _new_figure

        fig = _new_figure((width * ncols, height * nrows))
        return fig, fig.subplots(nrows, ncols, squeeze=False)

    def save_figure(self, fig, filename=None, title=None, conclusion=None):
        """Write ``fig`` as PNG: ``title`` on top (with ``SMOKE_TEST`` in a quick run), ``conclusion``
        (wrapped) under the panels."""
        from matplotlib.ticker import MaxNLocator

        from ..plots import _save

        for ax in fig.axes:
            if ax.get_xlabel() == "epoch":
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if self.quick:
            title = f"{title}\n{SMOKE_TEST}" if title else SMOKE_TEST
        if title:
            fig.suptitle(title, color="firebrick" if self.quick else "black")
        rect = (0, 0, 1, 1)
        if conclusion:
            w, h = fig.get_size_inches()
            lines = textwrap.wrap(conclusion, width=max(40, int(w * 13)))
            extra = 0.2 * len(lines) + 0.15  # inches of 9-point text
            fig.set_size_inches(w, h + extra)
            rect = (0, extra / (h + extra), 1, 1)
            fig.text(0.5, 0.06 / (h + extra), "\n".join(lines), ha="center", va="bottom", fontsize=9,
                     style="italic", wrap=False)
        fig.tight_layout(rect=rect)
        path = str(_save(fig, self.path(filename or f"{self.name}.png")))
        self.files.append(path)
        return path

    def finish(self, rows, summary, figure=None, title=None, **meta) -> StudyResult:
        """End the run: state the conclusion, draw the figure, write ``NAME.csv`` and ``NAME.json``.

        The one place where every study's lesson goes out: the conclusion is ``conclude(rows, meta)``
        (a sentence from the study's own numbers), marked ``SMOKE_TEST`` in a quick run; it is printed,
        drawn under ``figure`` (saved as ``NAME.png`` with ``title``) and stored in the JSON as
        ``"conclusion"``.
        """
        meta = {"study": self.name, "mode": self.budget, "smoke_test": self.quick, "seed": self.seed, **meta}
        rows = [{k: _plain(v) for k, v in r.items()} for r in rows]
        meta = {k: _plain(v) for k, v in meta.items()}
        conclusion = state_conclusion(self.conclude, rows, meta, self.quick)
        meta["conclusion"] = conclusion
        if figure is not None:
            self.save_figure(figure, title=title, conclusion=conclusion)
        meta["seconds"] = round(time.perf_counter() - self.t0, 1)
        csv_path, json_path = self.path(f"{self.name}.csv"), self.path(f"{self.name}.json")
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(keys)
        for r in rows:
            w.writerow([_cell(r.get(k, "")) for k in keys])
        atomic_write_text(csv_path, buf.getvalue())  # (atomic: an interrupted study leaves the old files)
        atomic_write_text(json_path, strict_json({**meta, "summary": summary, "rows": rows}, indent=1) + "\n")
        self.files += [csv_path, json_path]
        for line in summary:
            self.log(line)
        if self.verbose and conclusion:
            print(f"{self.name}: {conclusion}", flush=True)
        return StudyResult(self.name, rows, summary, list(self.files), meta, conclusion or "")


def state_conclusion(conclude, rows, meta, quick=False):
    """``conclude(rows, meta)``, prefixed with ``SMOKE_TEST`` when ``quick``."""
    sentence = conclude(rows, meta) if conclude else ""
    if not quick:
        return sentence
    return f"{SMOKE_TEST}. Measured: {sentence}" if sentence else SMOKE_TEST


# -- helpers of the conclusion functions ----------------------------------------------------------
def pct(x):
    """``0.9534`` -> ``"95.3%"``."""
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f}%"


def points(d):
    """A difference of accuracies in percentage points: ``0.0123`` -> ``"1.2 points"``."""
    return f"{100 * abs(d):.1f} point{'' if round(100 * abs(d), 1) == 1 else 's'}"


def noise(p, n):
    """Standard error of a difference of two accuracies near ``p``, each measured on ``n`` images
    (as if independent: ``sqrt(2 p (1 - p) / n)``). ``n`` images cannot resolve a smaller difference."""
    if not n or p is None or not math.isfinite(p):
        return float("inf")
    p = min(max(p, 0.5 / n), 1 - 0.5 / n)
    return math.sqrt(2 * p * (1 - p) / n)


def paired_noise(correct_a, correct_b):
    """Standard error of the difference of two classifiers' accuracies on the same images, from
    the images on which they disagree (McNemar): ``sqrt(b + c) / n``, at least half an image."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    n = max(1, len(a))
    return max(math.sqrt(int(np.count_nonzero(a != b))), 0.5) / n


def ahead(a, b, se, k=2.0):
    """``a`` is ahead of ``b`` by more than ``k`` standard errors ``se``."""
    return a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a - b > k * se


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN
    return v


def _cell(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return json.dumps([round(x, 6) if isinstance(x, float) else x for x in v])
    return "" if v is None else v


class BatchLosses(Callback):
    """Records the loss of every mini-batch (for per-iteration curves)."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, loss, hits, size):
        self.losses.append(float(loss))


def smooth(values, window):
    """Mean of consecutive windows of ``window`` values: ``(x, y)`` with x the window's last iteration."""
    v = np.asarray(values, dtype=np.float64)
    k = max(1, int(window))
    n = len(v) // k
    if n == 0:
        return np.arange(1, len(v) + 1), v
    return np.arange(1, n + 1) * k, v[: n * k].reshape(n, k).mean(axis=1)


def fit(model, split, epochs, batch_size, seed, batch_losses=False, callbacks=()):
    """``model.fit`` on ``split`` with validation; a NaN loss ends the run instead of raising.

    Returns:
        ``(history dict, batch losses or None, diverged flag)``.
    """
    from ..model import TrainingDivergedError

    cb = BatchLosses() if batch_losses else None
    diverged = False
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows before its NaN loss stops it
            model.fit(split.X, split.y, epochs=epochs, batch_size=batch_size,
                      validation_data=(split.X_val, split.y_val), verbose=0, seed=seed,
                      callbacks=[*callbacks, *([cb] if cb else [])])
    except TrainingDivergedError:
        diverged = True
    h = {k: list(v) for k, v in model.history.history.items()}
    return h, (cb.losses if cb else None), diverged


def last(h, key, default=float("nan")):
    v = h.get(key) or []
    return v[-1] if v else default
