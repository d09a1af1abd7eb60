import json
import os

import numpy as np
import pytest

import scratchnn
from scratchnn import Sequential
from scratchnn.layers import BatchNorm, Dense, Dropout, LeakyReLU, Maxout, ReLU
from scratchnn.regularizers import L2, MaxNorm
from scratchnn.saving import ModelFileError, atomic_savez


def trained_model(rng):
    m = Sequential([Dense(16, regularizer=L2(1e-4), constraint=MaxNorm(3)), BatchNorm(), LeakyReLU(0.1),
                    Dropout(0.2), Maxout(8, 2), ReLU(), Dense(3)])
    m.compile("adam", "cross_entropy")
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    m.fit(X, y, epochs=2, batch_size=16, verbose=0)
    return m, X


def test_round_trip_predicts_exactly_the_same(rng, tmp_path):
    m, X = trained_model(rng)
    path = tmp_path / "model.npz"
    m.save(path)
    loaded = scratchnn.load(path)
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    assert [type(l) for l in loaded.layers] == [type(l) for l in m.layers]
    assert isinstance(loaded.layers[0].regularizer, L2) and isinstance(loaded.layers[0].constraint, MaxNorm)
    np.testing.assert_array_equal(loaded.layers[1].buffers["running_var"], m.layers[1].buffers["running_var"])
    assert loaded.summary(print_fn=None) == m.summary(print_fn=None)


def test_file_holds_no_pickles(rng, tmp_path):
    m, _ = trained_model(rng)
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        arch = json.loads(str(z["__scratchnn__"]))
        assert arch["format"] == 1 and arch["layers"][0]["class"] == "Dense"
        assert all(z[k].dtype != object for k in z.files)


def test_crash_mid_save_keeps_old_file(rng, tmp_path, monkeypatch):
    m, X = trained_model(rng)
    path = tmp_path / "model.npz"
    m.save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        m.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp file left behind


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        scratchnn.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="junk.npz.*not a readable"):
        scratchnn.load(tmp_path / "junk.npz")
    atomic_savez(tmp_path / "other.npz", {"a": np.zeros(2)})
    with pytest.raises(ModelFileError, match="not a scratchnn model"):
        scratchnn.load(tmp_path / "other.npz")


def test_truncated_file(rng, tmp_path):
    m, _ = trained_model(rng)
    m.save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.npz"):
        scratchnn.load(tmp_path / "cut.npz")


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(RuntimeError, match="no weights yet"):
        Sequential([Dense(2)]).save(tmp_path / "x.npz")
    assert not os.listdir(tmp_path)
