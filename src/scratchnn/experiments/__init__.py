"""The classic studies, one command each: ``scratchnn experiment NAME [--quick] [--out DIR]``.

Each study trains small networks on MNIST subsets and writes ``NAME.png`` and a table
``NAME.csv`` / ``NAME.json`` (with the settings and a summary of the measured results) to its
output folder. It ends with its lesson as one sentence built from its own numbers (the study
module's ``conclusion(rows, meta)``): printed, drawn under the plot and stored in the JSON as
``"conclusion"``; where the numbers do not show the expected effect, the sentence says so.

Three budgets (``BUDGETS``): ``"default"`` shows each lesson on MNIST in about a minute per study
on 2 cores; ``"full"`` reproduces the tables of examples/README.md; ``"quick"`` is a smoke test of a
few seconds (tiny subsets, falling back to scikit-learn's 8x8 digits or the spiral when MNIST is
not at hand) whose numbers do not show the lessons, and says so in its output, JSON and plot.
Study modules are imported only when run.

Example:
    >>> from scratchnn.experiments import run_experiment
    >>> result = run_experiment("optimizers", out_dir="runs/optimizers", data_dir="data")
    >>> result.conclusion
"""
from __future__ import annotations

import contextlib
import importlib
import os

from ._common import BUDGETS, SMOKE_TEST, DataUnavailable, StudyResult
from ..errors import InvalidArgumentError

#: study name -> (module, one-line description)
STUDIES = {
    "init": ("initialization", "zeros, small normal, Xavier, He on a deep ReLU net: loss curves, signal per layer"),
    "regularization": ("regularization", "none, L2, L1, dropout, max-norm on an over-large net and 1,000 images"),
    "optimizers": ("optimization", "SGD, momentum, Nesterov, AdaGrad, RMSprop, Adam on equal budgets, each at the "
                                   "best of four learning rates (--quick: one rate each)"),
    "activations": ("activation", "sigmoid, tanh, ReLU, leaky ReLU, ELU: convergence speed and dead units"),
    "capacity": ("capacity", "spiral decision boundaries for 1, 3, 10, 100 hidden units, with and without L2"),
    "batchnorm": ("batchnorm", "with and without batch norm, three learning rates, good and bad initialization"),
    "numpy-vs-torch": ("torch_compare", "the same networks, weights and batches in scratchnn and PyTorch"),
    "transfer": ("transfer_study", "MNIST 0-4 -> 5-9 with few labels; a GAP CNN on larger images"),
    "fashion": ("fashion", "why Fashion-MNIST is harder: one MLP on both data sets, accuracy per class, confusions"),
}

__all__ = ["STUDIES", "BUDGETS", "SMOKE_TEST", "run_experiment", "conclusion_of", "StudyResult", "DataUnavailable"]


def run_experiment(name, out_dir=None, quick=False, data_dir=None, seed=0, verbose=True, budget=None) -> StudyResult:
    """Run one study, write its plot and table, and state its conclusion.

    Args:
        name: one of ``STUDIES`` (``"init"``, ``"regularization"``, ``"optimizers"``, ``"activations"``,
            ``"capacity"``, ``"batchnorm"``, ``"numpy-vs-torch"``, ``"transfer"``, ``"fashion"``).
        out_dir: output folder (default ``runs/experiments/NAME``).
        quick: the same as ``budget="quick"``.
        data_dir: folder holding the MNIST files (else ``$SCRATCHNN_DATA_DIR``, the cache, a download;
            quick mode never downloads).
        seed: seed of the data subsets and initial weights.
        verbose: print progress, the summary and the conclusion.
        budget: one of ``BUDGETS``: ``"quick"`` (a smoke test of a few seconds, BLAS single-threaded),
            ``"default"`` (about a minute per study on 2 cores; the default unless ``quick``) or
            ``"full"`` (the budgets of the tables in examples/README.md).

    Returns:
        ``StudyResult`` with the table rows, the summary lines, the conclusion and the files written.
    """
    if name not in STUDIES:
        raise InvalidArgumentError(f"unknown experiment {name!r}; available: {', '.join(STUDIES)}")
    if budget is None:
        budget = "quick" if quick else "default"
    elif budget not in BUDGETS:
        raise InvalidArgumentError(f"unknown budget {budget!r}; available: {', '.join(BUDGETS)}")
    elif quick and budget != "quick":
        raise InvalidArgumentError(f"quick=True contradicts budget={budget!r}")
    from ._common import Context

    module = importlib.import_module(f".{STUDIES[name][0]}", __name__)
    out_dir = out_dir if out_dir is not None else os.path.join("runs", "experiments", name)
    ctx = Context(name, out_dir, budget=budget, data_dir=data_dir, seed=seed, verbose=verbose,
                  conclude=module.conclusion)
    with _blas_threads(1 if budget == "quick" else None):
        return module.run(ctx)


def conclusion_of(name, rows, meta):
    """The conclusion study ``name`` draws from a result's ``rows`` and ``meta`` (e.g. the ``"rows"``
    and the rest of a ``NAME.json``), labelled as a smoke test when ``meta["mode"]`` is ``"quick"``."""
    from ._common import state_conclusion

    if name not in STUDIES:
        raise InvalidArgumentError(f"unknown experiment {name!r}; available: {', '.join(STUDIES)}")
    module = importlib.import_module(f".{STUDIES[name][0]}", __name__)
    return state_conclusion(module.conclusion, rows, meta, meta.get("mode") == "quick")


@contextlib.contextmanager
def _blas_threads(n):
    """Limit BLAS to ``n`` threads (when threadpoolctl is installed): quick mode's matrices are so
    small that starting threads costs more than it saves, badly so on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    if n is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
