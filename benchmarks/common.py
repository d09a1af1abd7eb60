"""Shared helpers of the benchmark suite: data, thread control, GEMM peak, FLOPs, memory, environment.

Nothing here is imported by ``scratchnn`` itself; PyTorch and threadpoolctl are optional
and imported lazily.

Memory method (documented choice)
---------------------------------
``tracemalloc`` sees NumPy's data buffers (NumPy reports them) but not PyTorch's, so it
cannot compare the contenders. Instead every contender whose memory is reported runs in a
fresh subprocess (``bench_mlp.py --_worker``) that

1. imports its libraries and reads its resident set size (``VmRSS``): the *baseline*;
2. loads the data and builds the model, frees the loading temporaries (``gc`` +
   ``malloc_trim``), then resets the kernel's high-water mark by writing ``5`` to
   ``/proc/self/clear_refs`` (Linux >= 4.0);
3. trains, then reads the high-water mark ``VmHWM``.

``peak_mb = VmHWM - baseline``: everything training needs above the bare interpreter and
libraries, i.e. data set + parameters + optimizer state + activations + every temporary +
allocator caching. This is the same yardstick for NumPy and PyTorch. ``train_extra_mb`` is
``VmHWM`` minus the RSS just before training (no data set, no parameters). Where
``clear_refs`` is unavailable the high-water mark cannot be reset and ``ru_maxrss`` is used
(``hwm_reset: false`` in the JSON; loading transients may then dominate).
"""
from __future__ import annotations

import contextlib
import gc
import gzip
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scratchnn

SHARED_MNIST = "/work/shared/data/mnist"
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


def _load_mnist_train():
    """``(X uint8 (60000, 28, 28), y int64, source)`` or None if MNIST is nowhere to be found."""
    dirs = [SHARED_MNIST]
    if os.environ.get("SCRATCHNN_DATA_DIR"):
        dirs.append(os.environ["SCRATCHNN_DATA_DIR"])
    dirs = [d for d in dirs if Path(d).is_dir()]
    try:
        from scratchnn.datasets import load_mnist
    except Exception as e:  # the datasets module may be missing or broken in a checkout
        load_mnist = None
        print(f"note: scratchnn.datasets.load_mnist unavailable ({type(e).__name__}: {e}); "
              "reading the IDX files directly", file=sys.stderr)
    for d in dirs:
        if load_mnist is not None:
            try:
                (X, y), _ = load_mnist(data_dir=d, download=False, progress=False)
                return np.asarray(X), np.asarray(y, dtype=np.int64), f"MNIST via scratchnn.datasets.load_mnist({d!r})"
            except Exception as e:
                print(f"note: load_mnist({d!r}) failed: {type(e).__name__}: {e}", file=sys.stderr)
        paths = [_find_idx(Path(d), n) for n in MNIST_FILES]
        if all(paths):
            return _read_idx(paths[0]), _read_idx(paths[1]).astype(np.int64), f"MNIST IDX files in {d}"
    return None


def load_data(n_train: int = N_TRAIN, n_val: int = N_VAL, seed: int = 0) -> dict:
    """MNIST as float32 ``(N, 784)`` in ``[0, 1]`` plus int64 labels.

    The first 50,000 training images train, the last 10,000 validate (``n_train`` /
    ``n_val`` take fewer). Falls back to random data of MNIST's shape, with a printed note,
    when MNIST cannot be found (``/work/shared/data/mnist``, then ``$SCRATCHNN_DATA_DIR``).
    """
    got = _load_mnist_train()
    if got is None:
        print("note: MNIST not found (looked in /work/shared/data/mnist and $SCRATCHNN_DATA_DIR); "
              "benchmarking on RANDOM data of MNIST's shape: accuracies are meaningless", file=sys.stderr)
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 256, size=(60_000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=60_000).astype(np.int64)
        source = "random (MNIST not found)"
    else:
        X, y, source = got
    n_train = min(int(n_train), N_TRAIN)
    n_val = min(int(n_val), N_VAL)
    flat = X.reshape(len(X), -1)

    def prep(rows):
        out = flat[rows].astype(np.float32)
        out *= np.float32(1 / 255)
        return out

    d = {
        "X_train": prep(slice(0, n_train)), "y_train": np.ascontiguousarray(y[:n_train]),
        "X_val": prep(slice(60_000 - n_val, 60_000)), "y_val": np.ascontiguousarray(y[60_000 - n_val:]),
        "source": source,
    }
    return d


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

    Without threadpoolctl (``pip install threadpoolctl``) NumPy's BLAS keeps its own
    thread count and a note says so once.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        global _NOTED
        if not _NOTED:
            print("note: threadpoolctl not installed: NumPy's BLAS threads are not controlled "
                  "(pip install threadpoolctl)", file=sys.stderr)
            _NOTED = True
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=int(n), user_api="blas")
    torch = sys.modules.get("torch") if use_torch else None
    old = torch.get_num_threads() if torch is not None else None
    old_snn = scratchnn.parallel._num_threads
    with limits:
        if torch is not None:
            torch.set_num_threads(int(n))
        scratchnn.set_num_threads(int(n))
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)
            scratchnn.set_num_threads(old_snn)


_NOTED = False


def blas_info() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries (kernel, version, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture",
            "filepath")
    return [{k: v for k, v in d.items() if k in keep} for d in threadpool_info()]


# --------------------------------------------------------------------------- FLOPs and peak
def gemm_peak(n: int = 2048, repeats: int = 7) -> dict:
    """Measured float32 GEMM peak: best of ``repeats`` ``np.matmul`` of ``n x n`` matrices.

    Uses the caller's current BLAS thread setting (wrap in ``threads(k)``).
    """
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)  # warm up (thread pool, page faults)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return {"n": n, "best_s": best, "gflops": 2.0 * n**3 / best / 1e9}


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


def memory_budget_bytes(sizes, batch, n_data_rows, optimizer="sgd", bn=False, dropout=False,
                        itemsize=4) -> dict:
    """The issue's memory budget: 2 x (params + optimizer state + one batch of activations + data set).

    Activations of one batch = the input batch plus every layer output that a backward
    pass keeps (Dense outputs, activations, and per BN/Dropout layer one more copy).
    The data set is ``n_data_rows`` float32 rows of ``sizes[0]`` features plus int64 labels.
    """
    shapes = dense_shapes(sizes)
    params = sum(i * o + o for i, o in shapes)
    hidden = sizes[1:-1]
    if bn:
        params += 2 * sum(hidden)
    state = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer] * params
    per_sample = sizes[0] + sizes[-1] + 2 * sum(hidden) + (sum(hidden) if bn else 0) + (sum(hidden) if dropout else 0)
    acts = batch * per_sample
    data = n_data_rows * (sizes[0] * itemsize + 8)
    parts = {"params": params * itemsize, "optimizer_state": state * itemsize,
             "activations": acts * itemsize, "data": data}
    parts["total"] = sum(parts.values())
    parts["budget"] = 2 * parts["total"]
    return parts


# --------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (``VmRSS``)."""
    kb = _status_kb("VmRSS")
    return (kb or 0) * 1024


def trim_heap() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def peak_rss_bytes() -> int:
    """High-water mark of the RSS since the last ``reset_peak_rss`` (or process start)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024


# --------------------------------------------------------------------------- contention
_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot() -> tuple:
    """``(wall, machine busy CPU-s, this process's CPU-s, steal CPU-s)`` for ``foreign_load``."""
    busy = steal = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / _TCK
        steal = v[7] / _TCK if len(v) > 7 else 0.0
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system, steal


def foreign_load(s0: tuple, s1: tuple) -> dict:
    """CPU cores used by *other* processes (and stolen by the hypervisor) between two snapshots.

    The machine is shared (tests of other engineers may run during a benchmark); a
    measurement taken while ``foreign_cores`` is well above 0 is not trustworthy.
    """
    wall = max(s1[0] - s0[0], 1e-9)
    foreign = max(0.0, (s1[1] - s0[1]) - (s1[2] - s0[2]))
    return {"foreign_cores": foreign / wall, "steal_cores": (s1[3] - s0[3]) / wall,
            "own_cores": (s1[2] - s0[2]) / wall}


def wait_for_quiet(max_wait: float = 60.0, threshold: float = 0.15, probe: float = 1.0) -> dict:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` cores over ``probe`` s."""
    t_end = time.perf_counter() + max_wait
    while True:
        s0 = cpu_snapshot()
        time.sleep(probe)
        load = foreign_load(s0, cpu_snapshot())
        if load["foreign_cores"] < threshold or time.perf_counter() >= t_end:
            return load


# --------------------------------------------------------------------------- environment
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git(*args) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except Exception:
        return None


def src_hash() -> str:
    """sha256 over the paths and contents of src/**/*.py (12 hex digits)."""
    import hashlib

    h = hashlib.sha256()
    src = Path(__file__).resolve().parent.parent / "src"
    for f in sorted(src.rglob("*.py")):
        h.update(str(f.relative_to(src)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def environment(include_torch: bool = True) -> dict:
    """What ran: CPU, Python, NumPy + BLAS (kernel, version, threads), PyTorch, env vars, git."""
    import scratchnn

    env = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
        "python": sys.version.split()[0], "numpy": np.__version__, "scratchnn": getattr(scratchnn, "__version__", "?"),
        "blas": blas_info(),
        "env_vars": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                                    "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "src")),
        "src_sha256": src_hash(),  # identifies uncommitted src/ states (others edit src/ concurrently)
    }
    torch = torch_or_none() if include_torch else None
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["torch_interop_threads"] = torch.get_num_interop_threads()
        env["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    else:
        env["torch"] = None
    return env


def warn_openblas_env() -> None:
    """Say so when OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set: they slow a current NumPy."""
    bad = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.get(k)]
    if bad:
        print(f"warning: {', '.join(bad)} set: OpenBLAS may run a slower kernel. For benchmarking run "
              "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_mlp.py` "
              "(never change them in tests or CI)", file=sys.stderr)


def fmt_table(headers, rows) -> str:
    """A plain fixed-width text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])
