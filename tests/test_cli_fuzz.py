"""Property-based tests of the command line: random flag values and randomly corrupted files.

Whatever is drawn, the rule holds: exit status 0 or 2, never a traceback, and the user's earlier
files unchanged.
"""
import hashlib
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchnn import cli

from helpers import write_mnist_files

FLAGS = ["--optimizer", "--lr", "--momentum", "--schedule", "--schedule-args", "--batch-size", "--l1", "--l2",
         "--max-norm", "--dropout", "--standardize", "--val-size", "--limit", "--seed", "--model", "--out"]
WORDS = ["adam", "sgd", "momentum", "nesterov", "cosine", "step", "constant", "feature", "global", "none", "mlp",
         "mlp-128-64", "fashion-mlp", "drop=0.5,every=2", "rate=0.9", "min_lr=0.01", "x=", "", "0.5", "1e-3"]
VALUES = st.one_of(
    st.integers(-3, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.text(alphabet="abc=,.-0123456789e", max_size=8),
    st.sampled_from(WORDS),
)
FUZZ = settings(max_examples=int(os.environ.get("SCRATCHNN_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def digest(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A finished spiral run (the user's earlier files) and small MNIST-layout files."""
    root = tmp_path_factory.mktemp("fuzz")
    assert cli.main(["train", "--dataset", "spiral", "--epochs", "2", "--quiet", "--no-plots",
                     "--out", str(root / "earlier")]) == 0
    write_mnist_files(root / "mnist", n_train=40, n_test=10)
    (root / "net.toml").write_text('[[layers]]\ntype = "Dense"\nunits = 8\n[[layers]]\ntype = "ReLU"\n'
                                   '[[layers]]\ntype = "Dense"\nunits = "classes"\n[train]\noptimizer = "adam"\n'
                                   'lr = 0.01\nbatch_size = 16\n')
    np.save(root / "points.npy", np.zeros((3, 2), np.float32))
    return root, digest(root / "earlier")


def check(argv, capsys, home):
    root, before = home
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err, (argv, err[-3000:])
    if code == 2:
        assert err.strip().splitlines()[-1].startswith("scratchnn "), err
    assert digest(root / "earlier") == before, argv


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(FLAGS), VALUES), max_size=4))
def test_random_flags(home, tmp_path_factory, capsys, flags):
    root, _ = home
    work = tmp_path_factory.mktemp("flags")
    argv = ["train", "--dataset", "spiral", "--epochs", "1", "--quiet", "--no-plots", "--out", work / "run"]
    for name, value in flags:
        if name == "--out":
            value = str(root / "earlier") if value in WORDS else str(work / "other")
        argv += [f"{name}={value}"]  # with '=', a value such as '-1' is a value, not a flag
    check(argv, capsys, home)


def corrupt(data: bytes, how, draw) -> bytes:
    if not data:
        return b"\x00"
    i = draw(st.integers(0, len(data) - 1))
    if how == "truncate":
        return data[:i]
    if how == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            j = draw(st.integers(0, len(b) - 1))
            b[j] ^= draw(st.integers(1, 255))
        return bytes(b)
    return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]


@FUZZ
@given(target=st.sampled_from(["model", "checkpoint", "config", "toml", "labels", "images"]),
       how=st.sampled_from(["truncate", "flip", "insert"]), data=st.data())
def test_corrupted_files(home, tmp_path_factory, capsys, target, how, data):
    root, _ = home
    work = tmp_path_factory.mktemp("corrupt")
    run = work / "run"
    shutil.copytree(root / "earlier", run)
    mnist = work / "mnist"
    shutil.copytree(root / "mnist", mnist)
    shutil.copy(root / "net.toml", work / "net.toml")
    path = {"model": run / "model.npz", "checkpoint": run / "checkpoint.npz", "config": run / "config.json",
            "toml": work / "net.toml", "labels": mnist / "train-labels-idx1-ubyte.gz",
            "images": mnist / "t10k-images-idx3-ubyte.gz"}[target]
    path.write_bytes(corrupt(path.read_bytes(), how, data.draw))
    if target == "model":
        check(["evaluate", path, "--json"], capsys, home)
        check(["predict", path, root / "points.npy"], capsys, home)
    elif target in ("checkpoint", "config"):
        check(["train", "--resume", run, "--epochs", "3", "--quiet", "--no-plots"], capsys, home)
    elif target == "toml":
        check(["train", "--dataset", "spiral", "--model", path, "--epochs", "1", "--quiet", "--no-plots",
               "--out", work / "new"], capsys, home)
    else:
        check(["train", "--dataset", "mnist", "--data-dir", mnist, "--model", "mlp-128-64", "--epochs", "1",
               "--quiet", "--no-plots", "--out", work / "new"], capsys, home)
