"""Shared helpers of the benchmark suite: data, thread control, FLOPs, memory budget, tables.

PyTorch and threadpoolctl are optional and imported lazily.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import sys
from pathlib import Path

import numpy as np

SHARED_MNIST = "/work/shared/data/mnist"  # the project machine's copy; harmless elsewhere
N_TRAIN = 50_000
N_VAL = 10_000
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


# --------------------------------------------------------------------------- data
def _read_idx(path: Path) -> np.ndarray:
    """Minimal IDX reader (fallback when ``scratchnn.datasets`` is unavailable)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(folder: Path, name: str):
    for cand in (folder / name, folder / f"{name}.gz", folder / "mnist" / name, folder / "mnist" / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


def _load_mnist_train(data_dir=None, download=False):
    """``(X uint8 (60000, 28, 28), y int64, source)`` or None if MNIST is nowhere to be found.

    Looks in ``data_dir`` if given; else in the project machine's shared folder, then where
    ``scratchnn.datasets.load_mnist`` looks (``$SCRATCHNN_DATA_DIR``, the cache), downloading
    into the cache only with ``download=True``.
    """
    dirs = [data_dir] if data_dir else [d for d in (SHARED_MNIST, None) if d is None or Path(d).is_dir()]
    try:
        from scratchnn.datasets import load_mnist
    except Exception as e:  # the datasets module may be missing or broken in a checkout
        load_mnist = None
        print(f"note: scratchnn.datasets.load_mnist unavailable ({type(e).__name__}: {e}); "
              "reading the IDX files directly", file=sys.stderr)
    for d in dirs:
        if load_mnist is not None:
            try:
                (X, y), _ = load_mnist(data_dir=d, download=download, progress=False)
                return np.asarray(X), np.asarray(y, dtype=np.int64), f"MNIST via scratchnn.datasets.load_mnist({d!r})"
            except Exception as e:
                if d is not None:
                    print(f"note: load_mnist({d!r}) failed: {type(e).__name__}: {e}", file=sys.stderr)
        paths = [_find_idx(Path(d), n) for n in MNIST_FILES] if d is not None else [None]
        if all(paths):
            return _read_idx(paths[0]), _read_idx(paths[1]).astype(np.int64), f"MNIST IDX files in {d}"
    return None


def load_data(n_train: int = N_TRAIN, n_val: int = N_VAL, seed: int = 0, data_dir=None, download=False,
              random: bool = False) -> dict:
    """MNIST as float32 ``(N, 784)`` in ``[0, 1]`` plus int64 labels.

    The first 50,000 training images train, the last 10,000 validate (``n_train`` /
    ``n_val`` take fewer). Falls back to random data of MNIST's shape, with a printed note,
    when MNIST cannot be found (or with ``random=True``).
    """
    got = None if random else _load_mnist_train(data_dir, download)
    if got is None:
        if not random:
            print("note: MNIST not found (pass --data-dir, set $SCRATCHNN_DATA_DIR, or --download); "
                  "benchmarking on RANDOM data of MNIST's shape: accuracies are meaningless", file=sys.stderr)
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 256, size=(60_000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=60_000).astype(np.int64)
        source = "random"
    else:
        X, y, source = got
    n_train = min(int(n_train), N_TRAIN)
    n_val = min(int(n_val), N_VAL)
    flat = X.reshape(len(X), -1)

    def prep(rows):
        out = flat[rows].astype(np.float32)
        out *= np.float32(1 / 255)
        return out

    return {
        "X_train": prep(slice(0, n_train)), "y_train": np.ascontiguousarray(y[:n_train]),
        "X_val": prep(slice(60_000 - n_val, 60_000)), "y_val": np.ascontiguousarray(y[60_000 - n_val:]),
        "source": source,
    }


def random_data(n_train: int, n_val: int = 256, features: int = 784, classes: int = 10, seed: int = 0) -> dict:
    """Tiny random data in the layout of ``load_data`` (smoke tests)."""
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.random((n_train, features), dtype=np.float32),
        "y_train": rng.integers(0, classes, n_train).astype(np.int64),
        "X_val": rng.random((n_val, features), dtype=np.float32),
        "y_val": rng.integers(0, classes, n_val).astype(np.int64),
        "source": "random",
    }


# --------------------------------------------------------------------------- threads
def torch_or_none():
    """``torch`` if importable, else None (the caller prints why it skips)."""
    try:
        import torch
    except Exception:
        return None
    return torch


@contextlib.contextmanager
def threads(n: int, use_torch: bool = True):
    """Limit NumPy's BLAS (threadpoolctl), PyTorch's intra-op pool and scratchnn's batch
    splitting (``scratchnn.set_num_threads``) to ``n`` threads.

    PyTorch is limited only if already imported.
    """
    from threadpoolctl import threadpool_limits

    from scratchnn import parallel

    torch = sys.modules.get("torch") if use_torch else None
    old = torch.get_num_threads() if torch is not None else None
    old_snn = parallel._num_threads
    with threadpool_limits(limits=int(n), user_api="blas"):
        if torch is not None:
            torch.set_num_threads(int(n))
        parallel.set_num_threads(int(n))
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)
            parallel.set_num_threads(old_snn)


# --------------------------------------------------------------------------- FLOPs and budget
def dense_shapes(sizes) -> list[tuple[int, int]]:
    """``[(in, out), ...]`` of the Dense layers of an MLP with layer widths ``sizes``."""
    return list(zip(sizes[:-1], sizes[1:]))


def mlp_train_flops_per_sample(sizes) -> int:
    """Exact matmul FLOPs of one training step per sample of an MLP with widths ``sizes``.

    Forward 2 per weight; backward 4 per weight (2 for dL/dW, 2 for dL/dx); minus the
    input gradient of the first layer, which nobody needs (2 per first-layer weight).
    Biases, activations, normalization, loss and the optimizer are not counted (they are
    O(units), not O(weights)).
    """
    shapes = dense_shapes(sizes)
    weights = sum(i * o for i, o in shapes)
    return 6 * weights - 2 * shapes[0][0] * shapes[0][1]


def mlp_infer_flops_per_sample(sizes) -> int:
    """Matmul FLOPs of one forward pass per sample (2 per weight)."""
    return 2 * sum(i * o for i, o in dense_shapes(sizes))


def budget_parts(params: int, state: int, acts: int, n_data_rows: int, features: int = 784, itemsize: int = 4) -> dict:
    """The issue's memory budget, 2 x (params + optimizer state + one batch of activations + data set),
    from element counts (the data set: ``n_data_rows`` float32 rows plus int64 labels)."""
    parts = {"params": params * itemsize, "optimizer_state": state * itemsize, "activations": acts * itemsize,
             "data": n_data_rows * (features * itemsize + 8)}
    parts["total"] = sum(parts.values())
    parts["budget"] = 2 * parts["total"]
    return parts


def memory_budget_bytes(sizes, batch, n_data_rows, optimizer="sgd", bn=False, dropout=False,
                        itemsize=4) -> dict:
    """The memory budget of an MLP with widths ``sizes`` (see ``budget_parts``).

    Activations of one batch = the input batch plus every layer output that a backward
    pass keeps (Dense outputs, activations, and per BN/Dropout layer one more copy).
    """
    shapes = dense_shapes(sizes)
    params = sum(i * o + o for i, o in shapes)
    hidden = sizes[1:-1]
    if bn:
        params += 2 * sum(hidden)
    state = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer] * params
    per_sample = sizes[0] + sizes[-1] + 2 * sum(hidden) + (sum(hidden) if bn else 0) + (sum(hidden) if dropout else 0)
    return budget_parts(params, state, batch * per_sample, n_data_rows, sizes[0], itemsize)


# --------------------------------------------------------------------------- misc
def module_command(module: str, *args) -> tuple[list, dict]:
    """``(argv, env)`` running ``python -m module args`` on this very scratchnn and this lab."""
    import scratchnn

    roots = [str(Path(scratchnn.__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(roots + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return [sys.executable, "-m", module, *args], env


def as_images(X, shape=(1, 28, 28)):
    """A view of flat ``(N, 784)`` rows as ``(N, 1, 28, 28)`` images (no copy)."""
    return X if X.shape[1:] == tuple(shape) else X.reshape((len(X),) + tuple(shape))


def _f(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def fmt_table(headers, rows) -> str:
    """A plain fixed-width text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def whole_number(text: str) -> int:
    """argparse type: a whole number >= 1 (else argparse's one-line error, exit status 2)."""
    import argparse

    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, received {text!r}")
    return int(text)


def whole_numbers(text: str) -> list:
    """argparse type: comma-separated whole numbers >= 1, such as ``1,2``."""
    import argparse

    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers >= 1, such as 1,2; received {text!r}")
    return [int(p) for p in parts]
