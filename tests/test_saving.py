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
    with pytest.raises(ModelFileError, match="junk.npz.*not a scratchnn model file"):
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


def _run(tmp_path, epochs, resume_from=None, stop_after=None):
    from scratchnn.callbacks import ModelCheckpoint
    from scratchnn.datasets import load_spiral
    from scratchnn.optimizers import Adam
    from scratchnn.saving import load_checkpoint
    from scratchnn.schedules import StepDecay

    X, y = load_spiral(40, 3, seed=0)
    ck = tmp_path / "ck.npz"
    if resume_from is None:
        scratchnn.set_seed(11)
        m = Sequential([Dense(32), ReLU(), Dropout(0.3), BatchNorm(), Dense(3)])
        m.compile(Adam(StepDecay(0.01, drop=0.5, every=1)), "cross_entropy")
        start, prior = 0, None
        seed = 3
    else:
        m, info = load_checkpoint(resume_from)
        start, prior, seed = info["epoch"], info["history"], None
    cb = ModelCheckpoint(ck, prior_history=prior)
    m.fit(X, y, epochs=stop_after or epochs, batch_size=16, seed=seed, initial_epoch=start,
          callbacks=[cb], verbose=0)
    return m, ck


def test_resume_ends_with_exactly_the_same_weights(tmp_path):
    full, _ = _run(tmp_path / "a", epochs=4)
    _, ck = _run(tmp_path / "b", epochs=4, stop_after=2)  # "interrupted" after epoch 2
    resumed, ck2 = _run(tmp_path / "b", epochs=4, resume_from=ck)
    for la, lb in zip(full.layers, resumed.layers):
        for k in la.params:
            np.testing.assert_array_equal(la.params[k], lb.params[k])
        for k in la.buffers:
            np.testing.assert_array_equal(la.buffers[k], lb.buffers[k])
    from scratchnn.saving import load_checkpoint

    _, info = load_checkpoint(ck2)
    assert info["epoch"] == 4 and len(info["history"]["loss"]) == 4
    np.testing.assert_allclose(info["history"]["loss"], full.history.history["loss"], rtol=1e-12)
    assert resumed.optimizer.lr == pytest.approx(0.01 * 0.5**3)


def test_model_file_is_not_a_checkpoint(rng, tmp_path):
    from scratchnn.saving import load_checkpoint

    m, _ = trained_model(rng)
    m.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "m.npz")


def test_layer_registry_is_explicit(tmp_path):
    from scratchnn.errors import InvalidArgumentError
    from scratchnn.layers import LAYERS, Dense, Layer, register

    assert "_Pool2D" not in LAYERS and "_AlphaActivation" not in LAYERS and "Layer" not in LAYERS
    assert LAYERS["Dense"] is Dense

    class Dense(Layer):  # noqa: F811 - a user's own class that happens to share the name
        def forward(self, x, training=False):
            return x

    with pytest.raises(InvalidArgumentError, match="'Dense' is taken by scratchnn.layers.dense.Dense"):
        register(Dense)
    assert LAYERS["Dense"] is not Dense
    with pytest.raises(InvalidArgumentError, match="private name"):
        register(Dense, name="_Mine")


def test_a_custom_layer_saves_and_loads_once_registered(tmp_path):
    from scratchnn.errors import InvalidArgumentError
    from scratchnn.layers import LAYERS, Dense, Layer, register

    class Scale(Layer):
        def __init__(self, factor=2.0, name=None, trainable=True):
            super().__init__(name=name, trainable=trainable)
            self.factor = float(factor)

        def forward(self, x, training=False):
            return x * self.factor

        def backward(self, dy):
            return dy * self.factor

        def get_config(self):
            return {"factor": self.factor, **super().get_config()}

    m = scratchnn.Sequential([Dense(3), Scale(3.0)])
    m.build((4,))
    with pytest.raises(InvalidArgumentError, match=r"register\(Scale\)"):
        m.save(tmp_path / "m.npz")
    register(Scale)
    try:
        m.save(tmp_path / "m.npz")
        back = scratchnn.load(tmp_path / "m.npz")
        x = np.ones((2, 4), np.float32)
        np.testing.assert_array_equal(back.forward(x), m.forward(x))
        assert back.layers[1].factor == 3.0
    finally:
        del LAYERS["Scale"]
    with pytest.raises(ModelFileError, match="unknown class 'Scale'.*register it"):
        scratchnn.load(tmp_path / "m.npz")
