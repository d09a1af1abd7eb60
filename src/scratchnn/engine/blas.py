"""One BLAS call NumPy does not offer: ``C += alpha * A^T B`` in place (a GEMM with beta = 1).

``np.matmul`` always overwrites its output, so a plain SGD step on a weight matrix costs a
matrix product into a gradient array and then two passes over that array (scale it by
``-lr``, add it to the weights). The GEMM of NumPy's own BLAS, called with ``beta = 1``,
adds the step straight into the weights instead: the weight gradient is never written or
read back. At batch size 1 this is the rank-1 update ``W += -lr * x^T dy``.

The library called is NumPy's own BLAS (found through threadpoolctl), so its threads are
NumPy's threads and ``threadpoolctl`` limits apply to it; a second BLAS (SciPy's, say) would
bring its own thread pool, and two pools spinning on two cores were measured 20x slower.
Where no CBLAS ``gemm`` symbol is found, or a self-test on a small product disagrees with
NumPy, ``add_at_b`` falls back to ``c += alpha * (a.T @ b)``: the same result, one temporary.

Example:
    >>> W = np.zeros((3, 2), np.float32)
    >>> add_at_b(-0.1, np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), W)
    >>> round(float(W[0, 0]), 6)   # -0.1 * 4
    -0.4
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
#: smallest matrix (elements) worth a direct update: the ctypes call costs ~6 us more than
#: np.dot, the two passes it saves ~0.15-0.3 ns per element (measured break-even: 20k-65k)
MIN_DIRECT_SIZE = 32_768
_gemm: dict = {}  # dtype char -> ctypes gemm function, or None where only the NumPy fallback works
_lock = threading.Lock()


def _candidates(t: str):
    """CBLAS ``?gemm`` symbol names of the common builds: NumPy's wheels (scipy-openblas, 64-bit
    integers, ``scipy_`` prefix, ``64_`` suffix), other ILP64 builds, plain CBLAS."""
    return (f"scipy_cblas_{t}gemm64_", f"cblas_{t}gemm64_", f"cblas_{t}gemm")


# 64-bit integers: right for ILP64 builds, and read right by LP64 ones on 64-bit platforms
# (every integer argument takes a 64-bit register or stack slot there); the self-test decides
_INT = ctypes.c_int64 if ctypes.sizeof(ctypes.c_void_p) == 8 else ctypes.c_int32


def _self_test(fn, dtype) -> bool:
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 3)).astype(dtype), rng.random((5, 4)).astype(dtype)
    c = rng.random((3, 4)).astype(dtype)
    want = c + 0.5 * (a.T @ b)
    fn(_ROW_MAJOR, _TRANS, _NO_TRANS, 3, 4, 5, 0.5, a.ctypes.data, 3, b.ctypes.data, 4, 1.0, c.ctypes.data, 4)
    return bool(np.allclose(c, want, rtol=1e-4, atol=1e-5))


def _find(dtype: np.dtype):
    """NumPy's BLAS ``?gemm`` for ``dtype`` as a ctypes function, or None."""
    t = {"f": "s", "d": "d"}[dtype.char]
    real = {"f": ctypes.c_float, "d": ctypes.c_double}[dtype.char]
    try:
        from threadpoolctl import threadpool_info

        libs = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        # NumPy's own first: another BLAS (SciPy's) brings its own thread pool
        libs.sort(key=lambda d: "numpy" not in str(d.get("filepath", "")).lower())
    except Exception:  # noqa: BLE001 - no threadpoolctl view: use the NumPy fallback
        return None
    for info in libs:
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for name in _candidates(t):
            fn = getattr(lib, name, None)
            if fn is None:
                continue
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, _INT, _INT, _INT, real,
                           ctypes.c_void_p, _INT, ctypes.c_void_p, _INT, real, ctypes.c_void_p, _INT]
            fn.restype = None
            if _self_test(fn, dtype):
                return fn
    return None


def _gemm_for(dtype: np.dtype):
    if dtype.char not in "fd":
        return None
    found = _gemm.get(dtype.char, False)
    if found is False:
        with _lock:
            found = _gemm.get(dtype.char, False)
            if found is False:
                found = _gemm[dtype.char] = _find(dtype)
    return found


def _rows(x) -> int:
    """Leading dimension of a float matrix whose rows are contiguous (what a row-major BLAS
    argument needs), else 0."""
    if x.ndim != 2 or x.shape[1] == 0:
        return 0
    if x.flags.c_contiguous:
        return x.shape[1]
    if x.strides[1] != x.itemsize:
        return 0
    ld = x.strides[0] // x.itemsize
    return ld if ld >= x.shape[1] else 0


_BYTE = ctypes.c_char


def _address(x) -> int:
    """Address of ``x``'s first element. Through the buffer protocol (~0.3 us) when ``x`` exports a
    writable contiguous buffer, else ``__array_interface__`` (~1 us: it builds a whole dict)."""
    try:
        return ctypes.addressof(_BYTE.from_buffer(x))
    except (TypeError, ValueError, BufferError):
        return x.__array_interface__["data"][0]


def add_at_b(alpha: float, a, b, c) -> None:
    """``c += alpha * a.T @ b`` in place; ``a``: ``(k, m)``, ``b``: ``(k, n)``, ``c``: ``(m, n)``.

    One BLAS GEMM with beta = 1 when all three are NumPy float32 (or all float64) arrays
    with contiguous rows; otherwise NumPy with one temporary. Releases the GIL.
    """
    gemm = _gemm_for(a.dtype) if type(a) is np.ndarray else None
    if (gemm is not None and type(b) is np.ndarray and type(c) is np.ndarray and a.dtype == b.dtype == c.dtype
            and a.shape[0] == b.shape[0] and c.shape == (a.shape[1], b.shape[1]) and c.flags.writeable):
        lda, ldb, ldc = _rows(a), _rows(b), _rows(c)
        if lda and ldb and ldc and a.shape[0]:
            gemm(_ROW_MAJOR, _TRANS, _NO_TRANS, a.shape[1], b.shape[1], a.shape[0], alpha,
                 _address(a), lda, _address(b), ldb, 1.0, _address(c), ldc)
            return
    c += c.dtype.type(alpha) * (a.T @ b)


def worth_direct(c) -> bool:
    """Whether ``add_at_b`` into ``c`` beats a gradient array plus an optimizer pass:
    a NumPy matrix of at least ``MIN_DIRECT_SIZE`` elements whose dtype the BLAS call serves."""
    return type(c) is np.ndarray and c.ndim == 2 and c.size >= MIN_DIRECT_SIZE and available(c.dtype)


def available(dtype=np.float32) -> bool:
    """Whether ``add_at_b`` reaches a BLAS GEMM for ``dtype`` (else it uses NumPy)."""
    return _gemm_for(np.dtype(dtype)) is not None
