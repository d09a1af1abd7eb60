"""Reader and writer for the IDX format used by MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the array data in big-endian C order.
Files may be gzip-compressed; compression is detected from the gzip magic bytes
``1f 8b``, never from the file name.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np
from ..errors import DataFormatError, InvalidArgumentError, MissingFileError

__all__ = ["IDXFormatError", "read_idx", "write_idx", "is_gzip"]

# IDX type code -> big-endian dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_MAX_DEFLATE_RATIO = 1100  # deflate cannot expand data by more than ~1032x


class IDXFormatError(DataFormatError):
    """A file is not a well-formed IDX file; the message names the file and the problem."""

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"invalid IDX file '{self.path}': {problem}")


def is_gzip(path) -> bool:
    """Return True when the file starts with the gzip magic bytes ``1f 8b``."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _check_file(path):
    """Make sure ``path`` is a non-empty readable file; return True when it is gzip-compressed.

    Raises:
        IDXFormatError: ``path`` is a directory or an empty file.
        MissingFileError (a FileNotFoundError): ``path`` does not exist.
        PermissionError: ``path`` cannot be read; the message says so and names the file.
    """
    if os.path.isdir(path):
        raise IDXFormatError(path, "is a directory, expected an IDX file")
    try:
        size = os.path.getsize(path)
        gz = is_gzip(path)
    except FileNotFoundError:
        raise MissingFileError(f"IDX file '{path}' does not exist") from None
    except PermissionError as e:
        raise PermissionError(e.errno, "permission denied: cannot read this IDX file", path) from None
    if size == 0:
        raise IDXFormatError(path, "file is empty (0 bytes)")
    return gz


def _read_exact(f, n):
    """Read up to ``n`` bytes, looping over short reads; returns fewer only at end of file."""
    parts, got = [], 0
    while got < n:
        chunk = f.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _parse_header(f, path, what="file"):
    """Read and validate the header from the open stream; return (dtype, shape, header_size).

    ``what`` names the stream in messages: ``"file"`` or ``"decompressed content"``.
    """
    magic = _read_exact(f, 4)
    if len(magic) < 4:
        raise IDXFormatError(path, f"{what} is {len(magic)} bytes long, too short for the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            path, f"bad magic number: the {what} starts with bytes {magic.hex(' ')} ({magic!r}), but an IDX "
            f"file starts with 00 00 <type code> <ndim> (is this an IDX file?)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} {dt.name}" for c, dt in IDX_DTYPES.items())
        raise IDXFormatError(path, f"unknown data type code 0x{code:02x} in magic number (expected one of {known})")
    if ndim == 0:
        raise IDXFormatError(path, "magic number declares 0 dimensions")
    raw_dims = _read_exact(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IDXFormatError(
            path, f"header declares {ndim} dimensions ({4 * ndim} bytes) but only {len(raw_dims)} bytes follow"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    return IDX_DTYPES[code], shape, 4 + 4 * ndim


def _size_error(path, expected, found, shape, dtype):
    return IDXFormatError(
        path,
        f"expected {expected} bytes of data for shape {shape} and dtype {dtype.name}, found {found}"
        + (" (file is truncated)" if found < expected else " (trailing bytes after the data)"),
    )


def _read_data(f, path, dtype, shape):
    """Read the data that follows the header into a new array in native byte order.

    Reads straight into the output buffer, then makes sure nothing follows the data.

    Raises:
        IDXFormatError: the stream holds fewer or more bytes than ``shape`` and ``dtype`` need.
    """
    expected = math.prod(shape) * dtype.itemsize
    out = np.empty(shape, dtype=dtype.newbyteorder("="))
    buf = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    while got < expected:
        n = f.readinto(buf[got:])
        if not n:
            break
        got += n
    extra = 0
    if got == expected:
        while chunk := f.read(_CHUNK):
            extra += len(chunk)
    if got != expected or extra:
        raise _size_error(path, expected, got + extra, shape, dtype)
    if not dtype.isnative:
        out.byteswap(inplace=True)  # big-endian bytes -> native values
    return out


def _read_raw(path, mmap):
    """Read an uncompressed IDX file (see ``read_idx``); the data size is checked before reading."""
    with open(path, "rb") as f:
        dtype, shape, header = _parse_header(f, path)
        expected = math.prod(shape) * dtype.itemsize
        found = os.path.getsize(path) - header
        if found != expected:
            raise _size_error(path, expected, found, shape, dtype)
        if mmap:
            return np.memmap(path, dtype=dtype, mode="r", offset=header, shape=shape)
        return _read_data(f, path, dtype, shape)


def _read_gzip(path):
    """Read a gzip-compressed IDX file (see ``read_idx``).

    A gzip stream that stops early, or that cannot be decompressed, raises an IDXFormatError
    saying how many bytes were decompressed before the problem.
    """
    declared = ""  # what the header promises, once it has been read
    with gzip.open(path, "rb") as f:
        try:
            dtype, shape, header = _parse_header(f, path, what="decompressed content")
            expected = math.prod(shape) * dtype.itemsize
            declared = f" of the {header + expected} its header declares"
            compressed = os.path.getsize(path)
            if expected > _MAX_DEFLATE_RATIO * compressed:
                raise IDXFormatError(
                    path, f"header declares {expected} bytes of data for shape {shape}, more than a "
                    f"{compressed}-byte gzip file can hold (corrupt header or truncated file)"
                )
            return _read_data(f, path, dtype, shape)
        except EOFError:
            raise IDXFormatError(
                path, f"gzip stream ends early, after {f.tell()} decompressed bytes{declared}: the file is truncated"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise IDXFormatError(
                path, f"gzip stream is corrupt after {f.tell()} decompressed bytes{declared} ({e})"
            ) from None


def read_idx(path, mmap=False) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array.

    Args:
        path: file path. Gzip compression is detected from the content, not the name.
        mmap: return a read-only ``np.memmap`` instead of loading the data; only for
            uncompressed files. The memmap keeps the file's big-endian dtype.

    Returns:
        Array of the file's shape, in native byte order (unless ``mmap=True``).

    Raises:
        IDXFormatError (a DataFormatError, so a ValueError): ``path`` is a directory or an empty
            file; bad magic number, unknown type code, truncated header, or a payload whose
            length is not ``prod(shape) * itemsize``; a gzip stream that ends early or is
            corrupt. The message names the file and the problem, with byte counts.
        MissingFileError (a FileNotFoundError): ``path`` does not exist.
        PermissionError: ``path`` cannot be read.
        InvalidArgumentError: ``mmap=True`` for a gzip-compressed file.
    """
    path = os.fspath(path)
    gz = _check_file(path)
    if mmap and gz:
        raise InvalidArgumentError(
            f"cannot memory-map the gzip-compressed file '{path}'; decompress it first "
            f"(e.g. `gunzip -k {path}`) or call read_idx(..., mmap=False)"
        )
    return _read_gzip(path) if gz else _read_raw(path, mmap)


def write_idx(path, array, gz=False):
    """Write an array as an IDX file.

    Args:
        path: destination path (written as given; no suffix is added).
        array: array of dtype uint8, int8, int16, int32, float32 or float64 with at least 1 dimension.
        gz: gzip-compress the file (with a fixed timestamp, so output is reproducible).

    Returns:
        The path written.
    """
    path = os.fspath(path)
    a = np.asarray(array)
    code = _CODES.get((a.dtype.kind, a.dtype.itemsize))
    if code is None or a.dtype.kind == "b":
        supported = ", ".join(dt.name for dt in IDX_DTYPES.values())
        raise InvalidArgumentError(f"IDX cannot store dtype {a.dtype} (supported: {supported}); cast the array first")
    if a.ndim == 0 or a.ndim > 255:
        raise InvalidArgumentError(f"IDX arrays need 1 to 255 dimensions, received shape {a.shape}")
    if any(d >= 2**32 for d in a.shape):
        raise InvalidArgumentError(f"IDX dimensions must fit in uint32, received shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(a, dtype=IDX_DTYPES[code]).tobytes()
    with open(path, "wb") as raw:
        if gz:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                f.write(header)
                f.write(data)
        else:
            raw.write(header)
            raw.write(data)
    return path
