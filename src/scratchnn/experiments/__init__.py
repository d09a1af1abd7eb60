"""The classic studies, one command each: ``scratchnn experiment NAME [--quick] [--out DIR]``.

Each study trains small networks on MNIST subsets (``--quick``: tiny subsets, falling back to
scikit-learn's 8x8 digits or the spiral when MNIST is not at hand) and writes ``NAME.png`` and a
table ``NAME.csv`` / ``NAME.json`` (with the settings and a summary of the measured results) to
its output folder. Study modules are imported only when run.

Example:
    >>> from scratchnn.experiments import run_experiment
    >>> result = run_experiment("optimizers", out_dir="runs/optimizers", data_dir="data")
    >>> result.summary
"""
from __future__ import annotations

import contextlib
import importlib
import os

from ._common import DataUnavailable, StudyResult
from ..errors import InvalidArgumentError

#: study name -> (module, one-line description)
STUDIES = {
    "init": ("initialization", "zeros, small normal, Xavier, He on a deep ReLU net: loss curves, signal per layer"),
    "regularization": ("regularization", "none, L2, L1, dropout, max-norm on an over-large net and 1,000 images"),
    "optimizers": ("optimization", "SGD, momentum, Nesterov, AdaGrad, RMSprop, Adam at four learning rates each"),
    "activations": ("activation", "sigmoid, tanh, ReLU, leaky ReLU, ELU: convergence speed and dead units"),
    "capacity": ("capacity", "spiral decision boundaries for 1, 3, 10, 100 hidden units, with and without L2"),
    "batchnorm": ("batchnorm", "with and without batch norm, three learning rates, good and bad initialization"),
    "numpy-vs-torch": ("torch_compare", "the same networks, weights and batches in scratchnn and PyTorch"),
    "transfer": ("transfer_study", "MNIST 0-4 -> 5-9 with few labels; a GAP CNN on larger images"),
    "fashion": ("fashion", "why Fashion-MNIST is harder: one MLP on both data sets, accuracy per class, confusions"),
}

__all__ = ["STUDIES", "run_experiment", "StudyResult", "DataUnavailable"]


def run_experiment(name, out_dir=None, quick=False, data_dir=None, seed=0, verbose=True) -> StudyResult:
    """Run one study and write its plot and table.

    Args:
        name: one of ``STUDIES`` (``"init"``, ``"regularization"``, ``"optimizers"``, ``"activations"``,
            ``"capacity"``, ``"batchnorm"``, ``"numpy-vs-torch"``, ``"transfer"``).
        out_dir: output folder (default ``runs/experiments/NAME``).
        quick: tiny data and budgets, a few seconds per study (BLAS runs single-threaded).
        data_dir: folder holding the MNIST files (else ``$SCRATCHNN_DATA_DIR``, the cache, a download;
            quick mode never downloads).
        seed: seed of the data subsets and initial weights.
        verbose: print progress and the summary.

    Returns:
        ``StudyResult`` with the table rows, the summary lines and the files written.
    """
    if name not in STUDIES:
        raise InvalidArgumentError(f"unknown experiment {name!r}; available: {', '.join(STUDIES)}")
    from ._common import Context

    module = importlib.import_module(f".{STUDIES[name][0]}", __name__)
    out_dir = out_dir if out_dir is not None else os.path.join("runs", "experiments", name)
    ctx = Context(name, out_dir, quick=quick, data_dir=data_dir, seed=seed, verbose=verbose)
    with _blas_threads(1 if quick else None):
        return module.run(ctx)


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
