"""MNIST and Fashion-MNIST: local lookup, mirrors, checksums and a download cache.

Where files are looked for, per file, first hit wins (``name`` before ``name.gz``):

1. ``data_dir`` argument: the folder itself, then its ``mnist/`` (``fashion-mnist/``) subfolder;
2. ``$SCRATCHNN_DATA_DIR``: its ``mnist/`` (``fashion-mnist/``) subfolder, then the folder itself;
3. the cache: ``$SCRATCHNN_CACHE_DIR/<name>``, else ``$XDG_CACHE_HOME/scratchnn/<name>``,
   else ``~/.cache/scratchnn/<name>`` (``<name>`` is ``mnist`` or ``fashion-mnist``).

A folder whose own name is the other data set's (``.../mnist`` when loading Fashion-MNIST)
is not searched directly, since both data sets use the same file names.

Missing files are downloaded (``download=True``) into the cache from each mirror in turn.
A download is written to a temporary file next to its destination, checked against the
published md5 of the gz file *or* of its decompressed content, and only then renamed into
place; a failed download never touches any other file. Local files are checked only when
``verify=True`` (an md5 over the file, about 0.2 s for all of MNIST); they are always
checked when read: IDX well-formedness, images of shape (N, 28, 28), labels in 0-9, and as
many labels as images.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zlib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .idx import read_idx
from ..errors import DataFormatError, ScratchnnError

__all__ = [
    "load_mnist", "load_fashion_mnist", "cache_dir", "DatasetNotFoundError",
    "MNIST_MIRRORS", "FASHION_MNIST_MIRRORS",
]

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
FASHION_MNIST_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
]

# published md5 of the .gz files, and of the decompressed IDX content (None: unknown)
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
# of the decompressed files: Debian's dataset-fashion-mnist package recompressed the gz files (other gz
# checksums), with the canonical content, so the content's checksum verifies either form
FASHION_MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
#: where Debian and Ubuntu packages put data sets (``apt-get install dataset-fashion-mnist``)
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16


class DatasetNotFoundError(ScratchnnError, FileNotFoundError):
    """A data set's files are neither available locally nor downloadable."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class _Spec:
    name: str            # cache folder name
    title: str
    subdirs: tuple
    mirrors: list
    gz_md5: dict
    raw_md5: dict
    n_classes: int = 10  # labels must be 0 .. n_classes - 1


def _spec(name):
    # built at call time so tests (and users) can swap the module-level tables
    if name == "mnist":
        return _Spec("mnist", "MNIST", ("mnist",), MNIST_MIRRORS, MNIST_GZ_MD5, MNIST_RAW_MD5)
    return _Spec("fashion-mnist", "Fashion-MNIST", ("fashion-mnist", "fashion_mnist"),
                 FASHION_MNIST_MIRRORS, FASHION_MNIST_GZ_MD5, FASHION_MNIST_RAW_MD5)


_ALL_SUBDIRS = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion_mnist")}


def cache_dir(name=None) -> Path:
    """The download cache folder, optionally for one data set.

    ``$SCRATCHNN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/scratchnn``, else
    ``~/.cache/scratchnn``; with ``name`` (``"mnist"``, ``"fashion-mnist"``) its subfolder.
    """
    root = os.environ.get("SCRATCHNN_CACHE_DIR")
    if root:
        root = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "scratchnn"
    return root / name if name else root


def _search_dirs(spec, data_dir):
    """Candidate folders in lookup order, as (folder, where-it-came-from) pairs."""
    def direct_ok(d):  # do not take MNIST files from ".../mnist" as Fashion-MNIST, or vice versa
        return not any(d.name in subs for other, subs in _ALL_SUBDIRS.items() if other != spec.name)

    dirs = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        dirs += [(d, "data_dir")] if direct_ok(d) else []
        dirs += [(d / s, "data_dir") for s in spec.subdirs]
    env = os.environ.get("SCRATCHNN_DATA_DIR")
    if env:
        d = Path(env).expanduser()
        dirs += [(d / s, "SCRATCHNN_DATA_DIR") for s in spec.subdirs]
        dirs += [(d, "SCRATCHNN_DATA_DIR")] if direct_ok(d) else []
    dirs += [(SYSTEM_DATA_DIR / s, "system package") for s in spec.subdirs]
    dirs.append((cache_dir(spec.name), "cache"))
    return dirs


def missing_files(name, data_dir) -> list:
    """The files of data set ``name`` (``"mnist"``, ``"fashion-mnist"``) that ``data_dir`` (or its
    ``mnist/`` / ``fashion-mnist/`` subfolder) lacks; ``[]`` when it holds all four."""
    spec = _spec(name)
    dirs = [(d, "data_dir") for d, origin in _search_dirs(spec, data_dir) if origin == "data_dir"]
    return [f for f in FILES if _find(f, dirs) is None]


def _find(filename, dirs):
    """The first file ``filename`` or ``filename.gz`` in ``dirs``; else the first *folder* of that
    name (so reading it says "is a directory" rather than a misleading "not found"); else None."""
    folder = None
    for d, _ in dirs:
        for candidate in (d / filename, d / f"{filename}.gz"):
            if candidate.is_file():
                return candidate
            if folder is None and candidate.is_dir():
                folder = candidate
    return folder


def _md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _md5_gunzip(path):
    h = hashlib.md5()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _checksum_problem(path, gz_md5, raw_md5, file_md5=None):
    """None when ``path`` matches a known checksum, else the reason it does not.

    Accepts the md5 of a gz file or of its decompressed content (mirrors sometimes
    recompress, changing the gz bytes but not the data). With no known checksum at all,
    only IDX well-formedness is checked.
    """
    if gz_md5 is None and raw_md5 is None:
        try:
            read_idx(path)
        except ValueError as e:
            return f"no published checksum, and the file is not valid IDX ({e})"
        return None
    file_md5 = file_md5 or _md5_file(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if file_md5 == (gz_md5 if gz else raw_md5):
        return None
    content_md5 = None
    if gz:
        try:
            content_md5 = _md5_gunzip(path)
        except (OSError, EOFError, zlib.error) as e:
            return f"md5 {file_md5} does not match the published {gz_md5}, and the gzip data is unreadable ({e})"
        if content_md5 == raw_md5:
            return None
    got = f"gz md5 {file_md5}, decompressed md5 {content_md5}" if gz else f"md5 {file_md5} (not gzip)"
    want = " or ".join(x for x in (gz_md5 and f"gz md5 {gz_md5}", raw_md5 and f"decompressed md5 {raw_md5}") if x)
    return f"checksum mismatch: got {got}, expected {want}"


class _DownloadError(Exception):
    pass


def _progress_bar(total, desc):
    try:
        from tqdm import tqdm  # noqa: PLC0415 - only needed while downloading
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc)


def _download(url, dest, gz_md5, raw_md5, timeout, progress):
    """Fetch ``url`` to a temp file beside ``dest``, verify it, then atomically rename it."""
    import tempfile  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415 - pulls in http.client/ssl; only needed here

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.md5()
        request = urllib.request.Request(url, headers={"User-Agent": "scratchnn (python urllib)"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            bar = _progress_bar(int(length) if length else None, dest.name) if progress else None
            try:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        problem = _checksum_problem(tmp, gz_md5, raw_md5, file_md5=h.hexdigest())
        if problem:
            raise _DownloadError(problem)
        os.replace(tmp, dest)
    finally:
        with suppress(FileNotFoundError):
            os.remove(tmp)  # only our own temp file; gone already after a successful replace


def _fetch_missing(spec, missing, mirrors, timeout, progress):
    """Download each missing file; return ({name: path}, {name: [(url, reason), ...]})."""
    import http.client  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415

    dest_dir = cache_dir(spec.name)
    got, failures, dead = {}, {}, {}
    for name in missing:
        tried = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{name}.gz"
            if mirror in dead:
                tried.append((url, f"skipped, mirror unreachable earlier ({dead[mirror]})"))
                continue
            try:
                _download(url, dest_dir / f"{name}.gz", spec.gz_md5.get(name), spec.raw_md5.get(name),
                          timeout, progress)
            except _DownloadError as e:
                tried.append((url, str(e)))
                continue
            except urllib.error.HTTPError as e:
                tried.append((url, f"HTTP {e.code} {e.reason}"))
                continue
            except (urllib.error.URLError, OSError) as e:  # refused, DNS, timeout, reset, ...
                reason = str(getattr(e, "reason", e)) or type(e).__name__
                dead[mirror] = reason
                tried.append((url, reason))
                continue
            except (http.client.HTTPException, ValueError) as e:  # incomplete read, bad URL, ...
                tried.append((url, f"{type(e).__name__}: {e}"))
                continue
            got[name] = dest_dir / f"{name}.gz"
            break
        else:
            failures[name] = tried
    return got, failures


def _hint(spec, dirs):
    looked = "\n".join(f"  {d}  ({src})" for d, src in dirs)
    subs = "/' or '".join(spec.subdirs)
    return (
        f"Looked in:\n{looked}\n"
        f"Pass --data-dir DIR (data_dir=DIR) or set SCRATCHNN_DATA_DIR to a folder holding the files "
        f"(directly or under '{subs}/'), or download them by hand into {cache_dir(spec.name)}."
        + (" On Debian or Ubuntu, apt-get install dataset-fashion-mnist puts them in "
           f"{SYSTEM_DATA_DIR / 'fashion-mnist'}." if spec.name == "fashion-mnist" else "")
    )


def _verify_local(spec, paths):
    for f, p in paths.items():
        if p.is_dir():
            continue  # read_idx reports it
        gz_md5, raw_md5 = spec.gz_md5.get(f), spec.raw_md5.get(f)
        with open(p, "rb") as fh:
            known = (gz_md5 or raw_md5) if fh.read(2) == b"\x1f\x8b" else raw_md5
        if known is None:
            warnings.warn(f"cannot verify {p}: no published {spec.title} checksum for this form of the file",
                          stacklevel=4)
            continue
        problem = _checksum_problem(p, gz_md5, raw_md5)
        if problem:
            raise DataFormatError(f"{spec.title} file {p} failed verification: {problem}. "
                                  f"Delete it to download a fresh copy, or load with verify=False.")


def _load(name, data_dir, download, progress, mirrors, verify, timeout):
    spec = _spec(name)
    mirrors = list(spec.mirrors if mirrors is None else mirrors)
    dirs = _search_dirs(spec, data_dir)
    paths = {f: _find(f, dirs) for f in FILES}
    missing = [f for f, p in paths.items() if p is None]
    if verify:
        _verify_local(spec, {f: p for f, p in paths.items() if p is not None})

    if missing and not download:
        raise DatasetNotFoundError(
            f"{spec.title} files not found: {', '.join(f + '[.gz]' for f in missing)}.\n"
            f"Downloading is disabled (download=False); the files are published at: {', '.join(mirrors)}\n"
            + _hint(spec, dirs)
        )
    if missing:
        got, failures = _fetch_missing(spec, missing, mirrors, timeout, progress)
        paths.update(got)
        if failures:
            lines = []
            for f, tried in failures.items():
                lines.append(f"  {f}.gz:")
                lines += [f"    - {url}: {reason}" for url, reason in tried] or ["    - (no mirrors given)"]
            raise DatasetNotFoundError(
                f"Could not download {spec.title} file(s) {', '.join(f + '.gz' for f in failures)} "
                f"from any mirror ({', '.join(mirrors) or 'none'}):\n" + "\n".join(lines) + "\n" + _hint(spec, dirs)
            )
    return _assemble(spec, paths)


def _check_images(X, path, spec):
    """Raise DataFormatError unless ``X`` (read from ``path``) is uint8 of shape (N, 28, 28)."""
    if X.ndim != 3 or X.shape[1:] != (28, 28) or X.dtype != np.uint8:
        raise DataFormatError(f"images file '{path}' holds {X.dtype} data of shape {X.shape}, "
                              f"expected uint8 of shape (N, 28, 28) for {spec.title}")


def _check_labels(y, path, spec):
    """Raise DataFormatError unless ``y`` (read from ``path``) is uint8 of shape (N,) with every
    label in 0 .. n_classes - 1; the message names the first bad label and its index."""
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DataFormatError(f"labels file '{path}' holds {y.dtype} data of shape {y.shape}, "
                              f"expected uint8 of shape (N,) for {spec.title}")
    bad = np.flatnonzero(y >= spec.n_classes)  # uint8: never negative
    if bad.size:
        i = int(bad[0])
        raise DataFormatError(f"labels file '{path}': label {y[i]} at index {i} is outside "
                              f"0-{spec.n_classes - 1} for {spec.title} "
                              f"({bad.size} of the {y.size} labels are out of range)")


def _assemble(spec, paths):
    """Read and check the four files; return ``(X_train, y_train), (X_test, y_test)``."""
    def pair(images_name, labels_name):
        ip, lp = paths[images_name], paths[labels_name]
        X, y = read_idx(ip), read_idx(lp)
        _check_images(X, ip, spec)
        _check_labels(y, lp, spec)
        if len(X) != len(y):
            raise DataFormatError(f"{spec.title} files disagree: images file '{ip}' has {len(X)} images "
                                  f"but labels file '{lp}' has {len(y)} labels")
        return X, y.astype(np.int64)

    return pair(*FILES[:2]), pair(*FILES[2:])


def load_mnist(data_dir=None, download=True, progress=True, *, mirrors=None, verify=False,
               timeout=DEFAULT_TIMEOUT):
    """Load MNIST, the 70,000 28x28 handwritten digits.

    Files are looked for in ``data_dir``, then ``$SCRATCHNN_DATA_DIR``, then the cache (exact
    folders in this module's docstring), as raw IDX or ``.gz``. Missing files are downloaded
    into the cache when ``download`` is True.

    Args:
        data_dir: folder holding the files, directly or in a ``mnist/`` subfolder.
        download: fetch missing files from the mirrors (md5-verified, written atomically).
        progress: show a tqdm progress bar while downloading.
        mirrors: base URLs to try in order; defaults to ``MNIST_MIRRORS``.
        verify: also md5-check files found locally (downloads are always checked).
        timeout: seconds before a stalled connection counts as a failed mirror.

    Returns:
        ``(X_train, y_train), (X_test, y_test)``: images uint8 of shape ``(N, 28, 28)`` with
        pixel values 0-255 (see ``preprocessing.scale``), labels int64 of shape ``(N,)`` in
        0-9; ``N`` is 60000 for training and 10000 for test.

    Raises:
        DatasetNotFoundError: files missing and download disabled or failed on every mirror;
            the message lists the files, each mirror tried with its error, and where to put
            the files (``--data-dir`` / ``SCRATCHNN_DATA_DIR``).
        DataFormatError (a ValueError): a file is not valid IDX (truncated, corrupt gzip, a
            folder, ...), holds images not of shape (N, 28, 28) or labels outside 0-9, the
            images and labels counts disagree, or a file fails ``verify``; the message names
            the file and the problem.
    """
    return _load("mnist", data_dir, download, progress, mirrors, verify, timeout)


def load_fashion_mnist(data_dir=None, download=True, progress=True, *, mirrors=None, verify=False,
                       timeout=DEFAULT_TIMEOUT):
    """Load Fashion-MNIST, 70,000 28x28 Zalando clothing images in 10 classes.

    Same files, format, arguments and return value as ``load_mnist``; the subfolder is
    ``fashion-mnist/`` (or ``fashion_mnist/``) and the mirrors ``FASHION_MNIST_MIRRORS``.
    Only the gz checksums are published, so ``verify=True`` cannot check uncompressed
    files (it warns and skips them).
    """
    return _load("fashion-mnist", data_dir, download, progress, mirrors, verify, timeout)
