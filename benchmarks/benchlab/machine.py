"""The machine under test: GEMM peak, RSS high-water marks, other processes' load, environment.

Memory method (documented choice)
---------------------------------
``tracemalloc`` sees NumPy's data buffers (NumPy reports them) but not PyTorch's, so it
cannot compare the contenders. Instead every contender whose memory is reported runs in a
fresh subprocess (``python -m benchlab.measure``) that

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
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import torch_or_none


# --------------------------------------------------------------------------- GEMM peak
def gemm_peak(n: int = 2048, repeats: int = 7) -> dict:
    """Measured float32 GEMM peak: best of ``repeats`` ``np.matmul`` of ``n x n`` matrices.

    Uses the caller's thread setting (wrap in ``common.threads(k)``). With ``k > 1`` threads
    it is the better of two arrangements: one product on ``k`` BLAS threads, and ``k``
    single-threaded products side by side (how ``fit`` uses the cores when it splits a
    batch), so a split run cannot show more than 100% of "peak".
    """
    from functools import partial

    from scratchnn import parallel
    from scratchnn.engine import threads

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)

    def best_of(run):
        run()  # warm up (thread pool, page faults)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        return best

    best = best_of(lambda: np.matmul(a, b, out=out))
    res = {"n": n, "best_s": best, "gflops": 2.0 * n**3 / best / 1e9}
    k = parallel.get_num_threads()
    if k > 1:
        outs = [out] + [np.empty_like(out) for _ in range(k - 1)]
        with threads.single_blas_thread():
            side = best_of(lambda: threads.run([partial(np.matmul, a, b, out=o) for o in outs]))
        res["gflops_blas_threads"] = res["gflops"]
        res["gflops_side_by_side"] = k * 2.0 * n**3 / side / 1e9
        res["gflops"] = max(res["gflops"], res["gflops_side_by_side"])
    res["probe_gflops"] = max(gemm_probe() for _ in range(3))  # the quiet host's reading (see gemm_probe)
    return res


#: a round counts as run at full speed when the probe before it read at least this share of the
#: quiet reference (the best reading of the run; seen on the 2-core machines: 0.94-1.0 quiet,
#: 0.75-0.88 slowed)
HOST_FAST = 0.91
_probe_operands: dict = {}


def gemm_probe(n: int = 1024, repeats: int = 2) -> float:
    """How fast the machine multiplies right now: GFLOP/s of the best of ``repeats`` float32
    ``n x n`` products (after a warm-up one) on the caller's BLAS threads, ~30 ms on 2 cores.

    A shared host can slow down with nothing showing in ``/proc/stat``: this project's 2-core
    machines switch for tens of seconds at a time between two speeds, the probe reading ~12%
    lower and a width-512 MLP epoch taking ~37% longer in the slow one, while the foreign-load
    reading stays at 0. ``measure.time_rounds`` reads the probe before every epoch and compares
    it with ``gemm_peak``'s ``probe_gflops`` (``host_speed``).
    """
    if n not in _probe_operands:
        rng = np.random.default_rng(1)
        _probe_operands[n] = (rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32),
                              np.empty((n, n), np.float32))
    a, b, out = _probe_operands[n]
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def blas_info() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries (kernel, version, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture",
            "filepath")
    return [{k: v for k, v in d.items() if k in keep} for d in threadpool_info()]


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
    return (_status_kb("VmRSS") or 0) * 1024


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
        import resource

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

    The machine may be shared; a measurement taken while ``foreign_cores`` is well above 0
    is not trustworthy.
    """
    wall = max(s1[0] - s0[0], 1e-9)
    foreign = max(0.0, (s1[1] - s0[1]) - (s1[2] - s0[2]))
    return {"foreign_cores": foreign / wall, "steal_cores": (s1[3] - s0[3]) / wall,
            "own_cores": (s1[2] - s0[2]) / wall}


def wait_for_quiet(max_wait: float = 60.0, threshold: float = 0.15, probe: float = 1.0,
                   probe_ref: float | None = None) -> dict:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` cores over ``probe`` s
    and, given the quiet host's ``probe_ref`` GFLOP/s, ``gemm_probe`` reads at least ``HOST_FAST`` of it."""
    t_end = time.perf_counter() + max_wait
    while True:
        s0 = cpu_snapshot()
        time.sleep(probe)
        load = foreign_load(s0, cpu_snapshot())
        if probe_ref:
            load["host_speed"] = gemm_probe() / probe_ref
        fast = load.get("host_speed", 1.0) >= HOST_FAST
        if (load["foreign_cores"] < threshold and fast) or time.perf_counter() >= t_end:
            return load


# --------------------------------------------------------------------------- environment
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _package_dir() -> Path:
    import scratchnn

    return Path(scratchnn.__file__).resolve().parent


def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(_package_dir()), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except Exception:
        return None


def src_hash() -> str:
    """sha256 over the paths and contents of the scratchnn package's ``*.py`` files (12 hex digits)."""
    import hashlib

    h = hashlib.sha256()
    pkg = _package_dir()
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def environment(include_torch: bool = True) -> dict:
    """What ran: CPU, Python, NumPy + BLAS (kernel, version, threads), PyTorch, env vars, git."""
    import scratchnn

    env = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
        "python": sys.version.split()[0], "numpy": np.__version__, "scratchnn": getattr(scratchnn, "__version__", "?"),
        "scratchnn_path": str(_package_dir()),
        "blas": blas_info(),
        "env_vars": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                                    "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no", ".")),
        "src_sha256": src_hash(),  # identifies uncommitted source states
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
