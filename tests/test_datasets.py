"""Tests for scratchnn.datasets: IDX format, MNIST lookup/download/verification, toy data, preprocessing."""
import functools
import gzip
import os
import hashlib
import http.server
import re
import shutil
import socket
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from scratchnn import datasets
from scratchnn.datasets import idx, mnist
from scratchnn.errors import DataFormatError, MissingFileError, ScratchnnError
from scratchnn.datasets import (
    DatasetNotFoundError, IDXFormatError, Standardizer, load_dataset, load_digits, load_fashion_mnist,
    load_mnist, load_spiral, one_hot, read_idx, scale, standardize, train_val_split, write_idx,
)

REAL_DATA = Path(os.environ.get("SCRATCHNN_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
REAL_MNIST = REAL_DATA / "mnist"
FILES = mnist.FILES


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Never touch the real home cache or a user's data dir; never go through a proxy."""
    monkeypatch.setenv("SCRATCHNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNN_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ["http://127.0.0.1:9/unused/"])  # never the internet


# ----------------------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    path = write_idx(tmp_path / "a.idx", a, gz=gz)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.dtype.isnative and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    b[0, 0, 0] = 1  # writable


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed.raw", a, gz=True)
    write_idx(tmp_path / "plain.gz", a, gz=False)
    assert idx.is_gzip(tmp_path / "compressed.raw") and not idx.is_gzip(tmp_path / "plain.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed.raw"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), a)


def test_idx_gz_is_reproducible(tmp_path):
    a = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a", a, gz=True)
    write_idx(tmp_path / "b", a, gz=True)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_idx_mmap(tmp_path):
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    write_idx(tmp_path / "a", a)
    m = read_idx(tmp_path / "a", mmap=True)
    assert isinstance(m, np.memmap) and m.shape == (3, 4, 5)
    np.testing.assert_array_equal(m, a)
    write_idx(tmp_path / "a.gz", a, gz=True)
    with pytest.raises(ValueError, match="cannot memory-map.*a.gz"):
        read_idx(tmp_path / "a.gz", mmap=True)


def test_idx_truncated_raw_names_file_and_sizes(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((60, 28, 28), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: 16 + 1000])
    with pytest.raises(IDXFormatError, match=r"expected 47040 bytes of data.*found 1000") as e:
        read_idx(path)
    assert str(path) in str(e.value)
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(path, mmap=True)


def test_idx_trailing_bytes(tmp_path):
    for gz in (False, True):
        path = tmp_path / f"x{gz}"
        payload = bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3, 4])
        path.write_bytes(gzip.compress(payload) if gz else payload)
        with pytest.raises(IDXFormatError, match=r"expected 3 bytes of data.*found 4.*trailing"):
            read_idx(path)


def test_idx_gz_of_truncated_content(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 2, 0, 0, 0, 10, 0, 0, 0, 10]) + b"\0" * 42))
    with pytest.raises(IDXFormatError, match=r"short.gz.*expected 100 bytes of data.*found 42"):
        read_idx(path)


@pytest.mark.parametrize("content, message", [
    (b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", r"bad magic number: the file starts with bytes 01 02 08 01"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown data type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00", "file is 2 bytes long, too short for the 4-byte magic number"),
])
def test_idx_malformed(tmp_path, content, message):
    path = tmp_path / "bad-file"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError, match=message) as e:
        read_idx(path)
    assert str(path) in str(e.value)


# A small valid IDX file (4 random 28x28 uint8 images): 16 header bytes + 3136 data bytes.
SMALL_IMAGES = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
SMALL_RAW = bytes([0, 0, 8, 3]) + np.array([4, 28, 28], ">u4").tobytes() + SMALL_IMAGES.tobytes()
SMALL_GZ = gzip.compress(SMALL_RAW, mtime=0)  # random data: deflate stores it, about 3175 bytes


def _write(content):
    """A bad-file maker: write ``content`` to the path."""
    return lambda path: path.write_bytes(content)


BAD_FILES = {  # case -> (how to make the file at `path`, what the message must say)
    "empty": (_write(b""), r"file is empty \(0 bytes\)"),
    "truncated-header": (_write(SMALL_RAW[:10]),
                         r"header declares 3 dimensions \(12 bytes\) but only 6 bytes follow"),
    "truncated-data": (_write(SMALL_RAW[:16 + 100]),
                       r"expected 3136 bytes of data for shape \(4, 28, 28\) and dtype uint8, found 100 "
                       r"\(file is truncated\)"),
    "trailing-bytes": (_write(SMALL_RAW + b"xx"), r"expected 3136 bytes of data.*found 3138 \(trailing bytes"),
    "truncated-gzip": (_write(SMALL_GZ[:1500]),
                       r"gzip stream ends early, after \d+ decompressed bytes of the 3152 its header declares: "
                       r"the file is truncated"),
    "gzip-cut-in-its-header": (_write(SMALL_GZ[:5]),
                               r"gzip stream ends early, after 0 decompressed bytes: the file is truncated"),
    "gzip-without-end-marker": (_write(SMALL_GZ[:-8]),
                                r"gzip stream ends early, after 3152 decompressed bytes of the 3152"),
    "corrupt-gzip": (_write(SMALL_GZ[:10] + b"\xff" * 8 + SMALL_GZ[18:]),
                     r"gzip stream is corrupt after 0 decompressed bytes \(.*invalid block type\)"),
    "gzip-bad-checksum": (_write(SMALL_GZ[:-8] + bytes(4) + SMALL_GZ[-4:]),
                          r"gzip stream is corrupt after 3152 decompressed bytes .*CRC check failed"),
    "gzip-garbage": (_write(b"\x1f\x8b" + b"garbage" * 20),
                     r"gzip stream is corrupt after 0 decompressed bytes \(Unknown compression method\)"),
    "gzip-of-nothing": (_write(gzip.compress(b"")),
                        r"decompressed content is 0 bytes long, too short for the 4-byte magic number"),
    "wrong-magic-html": (_write(b"<html>404 Not Found</html>"),
                         r"bad magic number: the file starts with bytes 3c 68 74 6d \(b'<htm'\)"),
    "wrong-magic-gzipped-png": (_write(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(20))),
                                r"the decompressed content starts with bytes 89 50 4e 47 \(b'\\x89PNG'\)"),
    "directory": (lambda path: path.mkdir(), r"is a directory, expected an IDX file"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_idx_bad_file_raises_clear_error(tmp_path, case):
    make, message = BAD_FILES[case]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    make(path)
    with pytest.raises(IDXFormatError) as e:
        read_idx(path)
    assert isinstance(e.value, DataFormatError) and isinstance(e.value, ScratchnnError)
    assert f"invalid IDX file '{path}': " in str(e.value)
    assert re.search(message, str(e.value)), str(e.value)


@pytest.mark.parametrize("cut", [5, 11, 40, 1000, 2500, len(SMALL_GZ) - 8])
def test_idx_truncated_gzip_reports_true_byte_count(tmp_path, cut):
    path = tmp_path / "cut.gz"
    path.write_bytes(SMALL_GZ[:cut])
    truth = len(zlib.decompressobj(wbits=31).decompress(SMALL_GZ[:cut]))  # what can be decompressed
    with pytest.raises(IDXFormatError, match=rf"gzip stream ends early, after {truth} decompressed bytes"):
        read_idx(path)


def test_idx_no_raw_exception_for_any_truncation_or_byte_flip(tmp_path):
    """Every prefix, and every one-byte change, of a raw and a gzip IDX file either reads or raises
    an IDXFormatError naming the file: never an OSError, EOFError, zlib.error or numpy error."""
    raw = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]) + bytes(range(24))
    path = tmp_path / "f"
    for good in (raw, gzip.compress(raw, mtime=0)):
        variants = [good[:n] for n in range(len(good))]
        variants += [good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:] for i in range(len(good))]
        for content in variants:
            path.write_bytes(content)
            try:
                read_idx(path)
            except IDXFormatError as e:
                assert f"'{path}'" in str(e)


def test_idx_missing_file(tmp_path):
    path = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(MissingFileError, match=f"IDX file '{re.escape(str(path))}' does not exist") as e:
        read_idx(path)
    assert isinstance(e.value, FileNotFoundError)


def test_idx_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked"
    write_idx(path, np.zeros(3, np.uint8))

    def denied(p):
        raise PermissionError(13, "Permission denied", p)

    monkeypatch.setattr(idx, "is_gzip", denied)  # chmod does not stop root, which may run the tests
    with pytest.raises(PermissionError, match="permission denied: cannot read this IDX file") as e:
        read_idx(path)
    assert e.value.filename == str(path)


def test_idx_huge_declared_size_in_small_gz(tmp_path):
    path = tmp_path / "lies.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0])))
    with pytest.raises(IDXFormatError, match="more than a"):
        read_idx(path)


def test_write_idx_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


# ------------------------------------------------------------------------- fake MNIST + server

def make_fake_set(root, n_train=20, n_test=10, seed=0, gz=True):
    """Write the four MNIST-named IDX files into ``root``; return {name: (images_or_labels array)}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, a in arrays.items():
        write_idx(root / (name + ".gz" if gz else name), a, gz=gz)
    return arrays


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake MNIST files in tmp/good, and the module's checksum tables pointed at them."""
    arrays = make_fake_set(tmp_path / "good")
    gz_md5 = {n: md5((tmp_path / "good" / f"{n}.gz").read_bytes()) for n in FILES}
    raw_md5 = {n: md5(gzip.decompress((tmp_path / "good" / f"{n}.gz").read_bytes())) for n in FILES}
    monkeypatch.setattr(mnist, "MNIST_GZ_MD5", gz_md5)
    monkeypatch.setattr(mnist, "MNIST_RAW_MD5", raw_md5)
    return arrays


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A threaded HTTP server on 127.0.0.1 (port 0) serving tmp/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def publish(tmp_path, www, mirror, corrupt=(), missing=()):
    """Copy the good fake files to www/<mirror>/, corrupting or leaving out some."""
    d = www / mirror
    d.mkdir()
    for n in FILES:
        if n in missing:
            continue
        data = (tmp_path / "good" / f"{n}.gz").read_bytes()
        if n in corrupt:  # still a valid gzip'd IDX, just different bytes
            raw = bytearray(gzip.decompress(data))
            raw[-1] ^= 0xFF
            data = gzip.compress(bytes(raw), mtime=0)
        (d / f"{n}.gz").write_bytes(data)
    return d


def assert_matches(loaded, arrays):
    (X, y), (Xt, yt) = loaded
    np.testing.assert_array_equal(X, arrays[FILES[0]])
    np.testing.assert_array_equal(Xt, arrays[FILES[2]])
    np.testing.assert_array_equal(y, arrays[FILES[1]])
    assert X.dtype == np.uint8 and y.dtype == np.int64 and yt.dtype == np.int64


def cache_listing(tmp_path):
    c = tmp_path / "cache" / "mnist"
    return sorted(p.name for p in c.iterdir()) if c.exists() else []


# ---------------------------------------------------------------------------------- download

def test_download_good_files_land_in_cache(tmp_path, fake, server, monkeypatch):
    url, www = server
    publish(tmp_path, www, "m1")
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", [f"{url}/m1/"])
    assert_matches(load_mnist(progress=False), fake)
    assert cache_listing(tmp_path) == sorted(f"{n}.gz" for n in FILES)
    for n in FILES:
        assert (tmp_path / "cache" / "mnist" / f"{n}.gz").read_bytes() == (tmp_path / "good" / f"{n}.gz").read_bytes()
    # second call is served from the cache: with the server gone it must still work
    shutil.rmtree(www / "m1")
    assert_matches(load_mnist(progress=False, mirrors=[closed_port_url()]), fake)


def test_download_accepts_decompressed_md5_when_gz_differs(tmp_path, fake, server, monkeypatch):
    """A mirror that recompressed the file: gz md5 differs, content md5 matches -> accepted."""
    url, www = server
    d = publish(tmp_path, www, "m1")
    for n in FILES:
        raw = gzip.decompress((d / f"{n}.gz").read_bytes())
        (d / f"{n}.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    assert_matches(load_mnist(progress=False, mirrors=[f"{url}/m1/"]), fake)


def test_download_with_progress_bar(tmp_path, fake, server, capsys):
    pytest.importorskip("tqdm")
    url, www = server
    publish(tmp_path, www, "m1")
    assert_matches(load_mnist(progress=True, mirrors=[f"{url}/m1/"]), fake)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_corrupt_first_mirror_good_second(tmp_path, fake, server):
    url, www = server
    publish(tmp_path, www, "bad", corrupt=FILES)
    publish(tmp_path, www, "good2")
    assert_matches(load_mnist(progress=False, mirrors=[f"{url}/bad/", f"{url}/good2/"]), fake)
    assert cache_listing(tmp_path) == sorted(f"{n}.gz" for n in FILES)  # no temp files left


def test_missing_on_first_mirror_uses_second(tmp_path, fake, server):
    url, www = server
    publish(tmp_path, www, "m1", missing=FILES[:2])
    publish(tmp_path, www, "m2")
    assert_matches(load_mnist(progress=False, mirrors=[f"{url}/m1/", f"{url}/m2/"]), fake)


def test_corrupt_everywhere_errors_and_leaves_user_files(tmp_path, fake, server):
    url, www = server
    publish(tmp_path, www, "m1", corrupt=[FILES[0]])
    publish(tmp_path, www, "m2", corrupt=[FILES[0]])
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    user_file = cache / "train-labels-idx1-ubyte"  # a user's own (uncompressed) copy
    write_idx(user_file, fake[FILES[1]])
    notes = cache / "train-images-idx3-ubyte.gz.part"  # even a file named like a temp file
    notes.write_bytes(b"mine")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in cache.iterdir()}
    mirrors = [f"{url}/m1/", f"{url}/m2/"]
    with pytest.raises(DatasetNotFoundError) as e:
        load_mnist(progress=False, mirrors=mirrors)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "checksum mismatch" in msg
    for m in mirrors:
        assert m + "train-images-idx3-ubyte.gz" in msg
    assert "--data-dir" in msg and "SCRATCHNN_DATA_DIR" in msg
    assert "train-labels" not in msg.split("Looked in")[0]  # it was found locally, not downloaded
    for name, (data, mtime) in before.items():
        assert (cache / name).read_bytes() == data and (cache / name).stat().st_mtime_ns == mtime
    # the good files did download; the bad one left nothing behind
    assert cache_listing(tmp_path) == sorted(
        [*before, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])


def test_404_everywhere_clear_error(tmp_path, fake, server):
    url, www = server
    publish(tmp_path, www, "m1", missing=[FILES[3]])
    with pytest.raises(DatasetNotFoundError, match=r"t10k-labels-idx1-ubyte\.gz[\s\S]*HTTP 404") as e:
        load_mnist(progress=False, mirrors=[f"{url}/m1/"])
    assert f"{url}/m1/t10k-labels-idx1-ubyte.gz" in str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" not in cache_listing(tmp_path)


def test_offline_all_mirrors_refused(tmp_path):
    mirrors = [closed_port_url(), closed_port_url().replace("/mnist/", "/other/")]
    with pytest.raises(DatasetNotFoundError) as e:
        load_mnist(progress=False, mirrors=mirrors, timeout=5)
    msg = str(e.value)
    for n in FILES:
        assert f"{n}.gz" in msg
    for m in mirrors:
        assert m in msg
    assert "--data-dir" in msg and "SCRATCHNN_DATA_DIR" in msg
    assert "skipped, mirror unreachable" in msg  # a dead mirror is not retried for every file
    assert isinstance(e.value, FileNotFoundError)
    assert cache_listing(tmp_path) == []


def test_download_false_names_missing_files_mirrors_and_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ["http://mirror.example/mnist/"])
    make_fake_set(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()  # three of four present
    with pytest.raises(DatasetNotFoundError) as e:
        load_mnist(tmp_path / "d", download=False)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte" in msg and "train-images" not in msg.split("\n")[0]
    assert "http://mirror.example/mnist/" in msg and "--data-dir" in msg and "download=False" in msg
    assert str(tmp_path / "d") in msg


# ------------------------------------------------------------------------------ local lookup

def test_lookup_order_data_dir_env_cache(tmp_path, monkeypatch):
    a = make_fake_set(tmp_path / "explicit", seed=1)
    b = make_fake_set(tmp_path / "envroot" / "mnist", seed=2, gz=False)  # uncompressed files too
    c = make_fake_set(tmp_path / "cache" / "mnist", seed=3)
    monkeypatch.setenv("SCRATCHNN_DATA_DIR", str(tmp_path / "envroot"))
    assert_matches(load_mnist(tmp_path / "explicit", download=False), a)
    assert_matches(load_mnist(download=False), b)
    monkeypatch.delenv("SCRATCHNN_DATA_DIR")
    assert_matches(load_mnist(download=False), c)


def test_lookup_subfolders_and_direct(tmp_path, monkeypatch):
    a = make_fake_set(tmp_path / "root" / "mnist", seed=4)
    assert_matches(load_mnist(tmp_path / "root", download=False), a)  # data_dir/mnist/
    b = make_fake_set(tmp_path / "flat", seed=5)
    monkeypatch.setenv("SCRATCHNN_DATA_DIR", str(tmp_path / "flat"))
    assert_matches(load_mnist(download=False), b)  # files directly in $SCRATCHNN_DATA_DIR


def test_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SCRATCHNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir("mnist") == tmp_path / "xdg" / "scratchnn" / "mnist"
    a = make_fake_set(tmp_path / "xdg" / "scratchnn" / "mnist", seed=6)
    assert_matches(load_mnist(download=False), a)


def test_fashion_mnist_not_confused_with_mnist(tmp_path, monkeypatch):
    make_fake_set(tmp_path / "data" / "mnist", seed=7)
    f = make_fake_set(tmp_path / "data" / "fashion-mnist", seed=8)
    assert_matches(load_fashion_mnist(tmp_path / "data", download=False), f)
    # pointing straight at the MNIST folder must not load MNIST as Fashion-MNIST
    with pytest.raises(DatasetNotFoundError, match="Fashion-MNIST"):
        load_fashion_mnist(tmp_path / "data" / "mnist", download=False)
    assert_matches(load_dataset("fashion_mnist", tmp_path / "data", download=False), f)


def test_local_truncated_file_names_it_and_is_kept(tmp_path, server):
    url, www = server
    d = tmp_path / "d"
    make_fake_set(d)
    bad = d / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(raw[:1000], mtime=0))
    with pytest.raises(IDXFormatError, match=r"expected 15680 bytes of data.*found 984") as e:
        load_mnist(d, mirrors=[f"{url}/nothing/"], progress=False)
    assert str(bad) in str(e.value)
    assert bad.exists()


def test_verify_local_files(tmp_path, fake, monkeypatch):
    d = tmp_path / "d"
    make_fake_set(d, seed=0)  # same as the good set: passes
    load_mnist(d, download=False, verify=True)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", (fake[FILES[3]] + 1) % 10, gz=True)  # valid IDX, wrong content
    (X, y), (Xt, yt) = load_mnist(d, download=False)  # not verified by default
    assert not np.array_equal(yt, fake[FILES[3]])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz failed verification.*checksum mismatch"):
        load_mnist(d, download=False, verify=True)
    # uncompressed copies are verified against the decompressed md5
    e = tmp_path / "e"
    make_fake_set(e, seed=0, gz=False)
    load_mnist(e, download=False, verify=True)


def _labels(*changes, n=20):
    """``n`` zero labels with ``changes`` = (index, value) pairs applied."""
    y = np.zeros(n, np.uint8)
    for i, v in changes:
        y[i] = v
    return y


BAD_SETS = {  # case -> (how to spoil the fake set in `d`, files the message names, what it must say)
    "label-42": (lambda d: write_idx(d / f"{FILES[1]}.gz", _labels((17, 42)), gz=True), [FILES[1]],
                 r"labels file '[^']*train-labels-idx1-ubyte\.gz': label 42 at index 17 is outside 0-9 for MNIST"),
    "label-255": (lambda d: write_idx(d / f"{FILES[3]}.gz", _labels((3, 255), (9, 10), n=10), gz=True), [FILES[3]],
                  r"label 255 at index 3 is outside 0-9 for MNIST \(2 of the 10 labels are out of range\)"),
    "count-mismatch": (lambda d: write_idx(d / f"{FILES[1]}.gz", _labels(n=19), gz=True), [FILES[0], FILES[1]],
                       r"MNIST files disagree: images file '[^']*' has 20 images but labels file '[^']*' has 19 labels"),
    "images-not-28x28": (lambda d: write_idx(d / f"{FILES[2]}.gz", np.zeros((10, 28, 27), np.uint8), gz=True),
                         [FILES[2]], r"holds uint8 data of shape \(10, 28, 27\), expected uint8 of shape \(N, 28, 28\)"),
    "labels-int32": (lambda d: write_idx(d / f"{FILES[1]}.gz", np.zeros(20, np.int32), gz=True), [FILES[1]],
                     r"holds int32 data of shape \(20,\), expected uint8 of shape \(N,\)"),
    "empty-labels": (lambda d: (d / f"{FILES[1]}.gz").write_bytes(b""), [FILES[1]], r"file is empty \(0 bytes\)"),
    "truncated-gzip-images": (lambda d: (d / f"{FILES[0]}.gz").write_bytes((d / f"{FILES[0]}.gz").read_bytes()[:3000]),
                              [FILES[0]], r"gzip stream ends early, after \d+ decompressed bytes of the 15696"),
    "folder-for-labels": (lambda d: ((d / f"{FILES[3]}.gz").unlink(), (d / FILES[3]).mkdir()), [FILES[3]],
                          r"is a directory, expected an IDX file"),
}


@pytest.mark.parametrize("case", BAD_SETS)
def test_load_mnist_rejects_bad_files(tmp_path, case):
    spoil, named, message = BAD_SETS[case]
    d = tmp_path / "d"
    make_fake_set(d)
    spoil(d)
    with pytest.raises(DataFormatError) as e:
        load_mnist(d, download=False)
    msg = str(e.value)
    assert isinstance(e.value, ScratchnnError) and isinstance(e.value, ValueError)
    for name in named:
        assert str(d / name) in msg
    assert re.search(message, msg), msg


def test_load_mnist_folder_for_a_file_is_reported_even_with_verify_and_download(tmp_path, fake):
    d = tmp_path / "d"
    make_fake_set(d)
    (d / f"{FILES[0]}.gz").unlink()
    (d / f"{FILES[0]}.gz").mkdir()  # e.g. an archive unpacked into a folder of the file's name
    with pytest.raises(IDXFormatError, match=rf"'{re.escape(str(d / FILES[0]))}\.gz': is a directory"):
        load_mnist(d, verify=True, progress=False)  # not "not found", and no download attempted


def test_fashion_mnist_labels_are_range_checked(tmp_path):
    d = tmp_path / "fashion-mnist"
    make_fake_set(d)
    write_idx(d / f"{FILES[3]}.gz", _labels((0, 10), n=10), gz=True)
    with pytest.raises(DataFormatError, match=r"label 10 at index 0 is outside 0-9 for Fashion-MNIST") as e:
        load_fashion_mnist(tmp_path, download=False)
    assert str(d / f"{FILES[3]}.gz") in str(e.value)


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="real MNIST not available")
def test_real_mnist_shapes_and_checksums():
    (X, y), (Xt, yt) = load_mnist(REAL_MNIST, download=False, verify=True)
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28)
    assert X.dtype == Xt.dtype == np.uint8 and y.dtype == yt.dtype == np.int64
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert y.min() == 0 and y.max() == 9 and set(np.unique(yt)) == set(range(10))
    # the local train-images gz was recompressed: only the decompressed md5 matches
    p = REAL_MNIST / "train-images-idx3-ubyte.gz"
    assert mnist._md5_file(p) != mnist.MNIST_GZ_MD5["train-images-idx3-ubyte"]
    assert mnist._checksum_problem(p, mnist.MNIST_GZ_MD5["train-images-idx3-ubyte"],
                                   mnist.MNIST_RAW_MD5["train-images-idx3-ubyte"]) is None
    assert mnist._checksum_problem(p, mnist.MNIST_GZ_MD5["train-images-idx3-ubyte"], "0" * 32) is not None


REAL_FASHION = REAL_MNIST.parent / "fashion-mnist"


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="real Fashion-MNIST not available (../shared/data)")
def test_real_fashion_mnist_verifies_through_its_decompressed_checksums():
    """Debian's recompressed gz files: no gz checksum matches Zalando's, every decompressed one does."""
    (X, y), (Xt, yt) = load_fashion_mnist(REAL_FASHION.parent, download=False, verify=True)
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert abs(X.mean() / 255 - 0.2860) < 1e-4 and abs((X / 255).std() - 0.3530) < 1e-4
    for f in mnist.FILES:
        p = REAL_FASHION / f"{f}.gz"
        assert mnist._md5_file(p) != mnist.FASHION_MNIST_GZ_MD5[f]
        assert mnist._checksum_problem(p, mnist.FASHION_MNIST_GZ_MD5[f], mnist.FASHION_MNIST_RAW_MD5[f]) is None


def test_fashion_mnist_is_found_where_debian_installs_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SCRATCHNN_DATA_DIR", raising=False)
    monkeypatch.setenv("SCRATCHNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "SYSTEM_DATA_DIR", tmp_path / "usr-share-datasets")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(download=False)
    rng = np.random.default_rng(0)
    d = tmp_path / "usr-share-datasets" / "fashion-mnist"
    d.mkdir(parents=True)
    for f, shape in zip(mnist.FILES, [(5, 28, 28), (5,), (3, 28, 28), (3,)]):
        write_idx(d / f"{f}.gz", rng.integers(0, 10 if len(shape) == 1 else 256, shape, dtype=np.uint8), gz=True)
    (X, _), (Xt, _) = load_fashion_mnist(download=False)
    assert X.shape == (5, 28, 28) and Xt.shape == (3, 28, 28)


# ------------------------------------------------------------------------------- toy data sets

def test_spiral():
    X, y = load_spiral(n_per_class=50, n_classes=4, noise=0.1, seed=3)
    assert X.shape == (200, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50] * 4
    assert np.all(np.linalg.norm(X, axis=1) <= 1 + 1e-6)
    X2, y2 = load_spiral(n_per_class=50, n_classes=4, noise=0.1, seed=3)
    np.testing.assert_array_equal(X, X2)
    assert not np.array_equal(X, load_spiral(n_per_class=50, n_classes=4, noise=0.1, seed=4)[0])
    assert datasets.make_spiral is load_spiral
    with pytest.raises(ValueError, match="n_classes"):
        load_spiral(n_classes=0)


def test_digits():
    pytest.importorskip("sklearn")
    (X, y), (Xt, yt) = load_digits(test_size=0.2, seed=0)
    assert X.shape[1:] == (8, 8) and X.dtype == np.uint8 and y.dtype == np.int64
    assert len(X) + len(Xt) == 1797 and len(Xt) == 359
    assert X.max() == 255 and set(np.unique(yt)) == set(range(10))
    (X2, _), _ = load_digits(test_size=0.2, seed=0)
    np.testing.assert_array_equal(X, X2)


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits()


def test_load_dataset_dispatch(tmp_path):
    (X, y), (Xt, yt) = load_dataset("Spiral", n_per_class=20, seed=1)
    assert len(X) == 48 and len(Xt) == 12 and X.shape[1] == 2
    a = make_fake_set(tmp_path / "mnist")
    assert_matches(load_dataset("mnist", tmp_path, download=False), a)
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*mnist, fashion-mnist, spiral, digits"):
        load_dataset("cifar")


def test_import_is_light():
    code = ("import sys, scratchnn.datasets; "
            "bad = [m for m in ('tqdm', 'sklearn', 'urllib.request', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------ preprocessing

def test_scale():
    X = np.array([[0, 51, 255]], dtype=np.uint8)
    out = scale(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0.2, 1]], rtol=1e-6)
    assert scale(X, dtype=np.float64).dtype == np.float64
    assert X[0, 1] == 51  # input untouched
    with pytest.raises(ValueError, match="float dtype"):
        scale(X, dtype=np.int32)


def test_standardize_uses_training_stats():
    rng = np.random.default_rng(0)
    X_train = rng.normal(5, 3, (500, 4)).astype(np.float32)
    X_train[:, 3] = 7.0  # constant feature
    X_test = rng.normal(5, 3, (100, 4)).astype(np.float32)
    Xs, Xts, s = standardize(X_train, X_test)
    assert Xs.dtype == np.float32
    np.testing.assert_allclose(Xs[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Xs[:, :3].std(0), 1, atol=1e-5)
    assert np.all(Xs[:, 3] == 0) and np.all(np.isfinite(Xts))
    np.testing.assert_allclose(Xts, (X_test - s.mean) / s.std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.inverse_transform(Xts), X_test, rtol=1e-5, atol=1e-4)


def test_standardizer_images_and_scalar():
    X = np.random.default_rng(1).integers(0, 256, (30, 5, 5), dtype=np.uint8)
    s = Standardizer().fit(X)
    assert s.mean.shape == (5, 5)
    Z = s.transform(X)
    assert Z.dtype == np.float32
    g = Standardizer(per_feature=False).fit(X)
    assert np.ndim(g.mean) == 0
    np.testing.assert_allclose(g.transform(X).std(), 1, atol=1e-5)
    with pytest.raises(ValueError, match="per-sample shape"):
        s.transform(np.zeros((3, 4, 4)))
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().transform(X)


def test_one_hot():
    out = one_hot([2, 0, 1])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert one_hot(np.array([1, 3]), n_classes=10, dtype=np.float64).shape == (2, 10)
    assert one_hot(np.array([[1, 2], [0, 0]]), 3).shape == (2, 2, 3)
    np.testing.assert_array_equal(one_hot(np.array([1.0, 0.0]), 2), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"label 10 at index \(2,\), outside \[0, 10\)"):
        one_hot(np.array([1, 2, 10]), 10)
    with pytest.raises(ValueError, match=r"label -1"):
        one_hot(np.array([-1, 2]), 3)
    with pytest.raises(ValueError, match=r"found label 1.5 at index \(1,\)"):
        one_hot(np.array([1.0, 1.5]), 3)
    with pytest.raises(ValueError, match="dtype <U1"):
        one_hot(np.array(["a"]))


def test_train_val_split():
    X = np.arange(100).reshape(50, 2)
    y = np.arange(50) % 5
    (Xtr, ytr), (Xv, yv) = train_val_split(X, y, val_size=0.2, seed=1)
    assert len(Xv) == 10 and len(Xtr) == 40
    assert sorted(np.concatenate([Xtr[:, 0], Xv[:, 0]]).tolist()) == X[:, 0].tolist()
    np.testing.assert_array_equal(ytr, Xtr[:, 0] // 2 % 5)  # rows and labels stay paired
    (Xtr2, _), _ = train_val_split(X, y, val_size=0.2, seed=1)
    np.testing.assert_array_equal(Xtr, Xtr2)
    (_, _), (Xv3, _) = train_val_split(X, y, val_size=7, seed=1)
    assert len(Xv3) == 7
    with pytest.raises(ValueError, match="val_size"):
        train_val_split(X, y, val_size=1.5)
    with pytest.raises(ValueError, match="both parts"):
        train_val_split(X, y, val_size=50)
    with pytest.raises(ValueError, match="same length"):
        train_val_split(X, y[:3])


def test_train_val_split_stratified():
    y = np.array([0] * 80 + [1] * 15 + [2] * 5)
    X = np.arange(100)
    (Xtr, ytr), (Xv, yv) = train_val_split(X, y, val_size=0.2, seed=0, stratify=True)
    assert np.bincount(yv).tolist() == [16, 3, 1]
    assert np.bincount(ytr).tolist() == [64, 12, 4]
    np.testing.assert_array_equal(y[Xv], yv)
    (_, _), (_, yv2) = train_val_split(X, y, val_size=7, seed=0, stratify=True)
    assert len(yv2) == 7 and yv2.tolist().count(0) in (5, 6)


def test_fashion_mnist_download_path(tmp_path, server, monkeypatch):
    """Fashion-MNIST goes through the same mirror/checksum/cache path (only gz checksums are published)."""
    from scratchnn.datasets import load_fashion_mnist

    arrays = make_fake_set(tmp_path / "good", seed=3)
    url, www = server
    publish(tmp_path, www, "fashion")
    monkeypatch.setattr(mnist, "FASHION_MNIST_GZ_MD5",
                        {n: md5((tmp_path / "good" / f"{n}.gz").read_bytes()) for n in FILES})
    monkeypatch.setenv("SCRATCHNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNN_DATA_DIR", raising=False)
    loaded = load_fashion_mnist(mirrors=[closed_port_url(), f"{url}/fashion/"], progress=False)
    assert_matches(loaded, arrays)
    assert sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir()) == sorted(f"{n}.gz" for n in FILES)


def test_pad_images_centers_or_places_each_image_at_random():
    from scratchnn.datasets import pad_images

    X = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3) + 1
    out = pad_images(X, 5)
    assert out.shape == (2, 1, 5, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, 1:3, 1:4], X)
    assert out.sum() == X.sum()
    rand = pad_images(X, 5, np.random.default_rng(0))
    assert rand.sum() == X.sum()
    for img, src in zip(rand[:, 0], X[:, 0]):
        r, c = np.argwhere(img == src[0, 0])[0]
        np.testing.assert_array_equal(img[r:r + 2, c:c + 3], src)
    with pytest.raises(ValueError, match="pad_images: size 2 is smaller than the images"):
        pad_images(X, 2)
