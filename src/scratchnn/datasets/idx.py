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
from ..errors import DataFormatError, InvalidArgumentError

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


def _parse_header(f, path):
    """Read and validate the header from the open stream; return (dtype, shape, header_size)."""
    magic = _read_exact(f, 4)
    if len(magic) < 4:
        raise IDXFormatError(path, f"file is {len(magic)} bytes long, too short for the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            path, f"bad magic number 0x{magic.hex()}: the first two bytes must be zero (is this an IDX file?)"
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


def read_idx(path, mmap=False) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array.

    Args:
        path: file path. Gzip compression is detected from the content, not the name.
        mmap: return a read-only ``np.memmap`` instead of loading the data; only for
            uncompressed files. The memmap keeps the file's big-endian dtype.

    Returns:
        Array of the file's shape, in native byte order (unless ``mmap=True``).

    Raises:
        IDXFormatError (a ValueError): bad magic number, unknown type code, truncated
            header, or a payload whose length is not ``prod(shape) * itemsize``.
    """
    path = os.fspath(path)
    gz = is_gzip(path)
    if mmap and gz:
        raise InvalidArgumentError(
            f"cannot memory-map the gzip-compressed file '{path}'; decompress it first "
            f"(e.g. `gunzip -k {path}`) or call read_idx(..., mmap=False)"
        )
    opener = gzip.open if gz else open
    got, expected = 0, None
    try:
        with opener(path, "rb") as f:
            dtype, shape, header = _parse_header(f, path)
            expected = math.prod(shape) * dtype.itemsize
            if gz and expected > _MAX_DEFLATE_RATIO * os.path.getsize(path):
                raise IDXFormatError(
                    path, f"header declares {expected} bytes of data for shape {shape}, more than a "
                    f"{os.path.getsize(path)}-byte gzip file can hold (corrupt header or truncated file)"
                )
            if not gz:
                found = os.path.getsize(path) - header
                if found != expected:
                    raise _size_error(path, expected, found, shape, dtype)
                if mmap:
                    return np.memmap(path, dtype=dtype, mode="r", offset=header, shape=shape)
            # read straight into the output buffer, then make sure nothing follows it
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
    except EOFError:  # gzip stream cut short
        where = "inside the header" if expected is None else f"after {got} of the {expected} expected data bytes"
        raise IDXFormatError(path, f"gzip stream is truncated: it ends {where}") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise IDXFormatError(path, f"corrupt gzip data ({e})") from None
    if not dtype.isnative:
        out.byteswap(inplace=True)  # big-endian bytes -> native values
    return out


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
