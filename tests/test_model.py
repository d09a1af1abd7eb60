import numpy as np
import pytest

import scratchnn
from scratchnn import Sequential
from scratchnn.callbacks import EarlyStopping
from scratchnn.datasets import load_spiral
from scratchnn.layers import BatchNorm, Dense, Dropout, ReLU
from scratchnn.model import TrainingDivergedError
from scratchnn.optimizers import SGD, Adam


def mlp(hidden=64, out=3, **kw):
    return Sequential([Dense(hidden, **kw), ReLU(), Dense(out)])


def test_spiral_two_layer_network_reaches_high_accuracy():
    X, y = load_spiral(n_per_class=100, n_classes=3, seed=0)
    model = mlp(100)
    model.compile(optimizer=Adam(0.02), loss="softmax_cross_entropy")
    hist = model.fit(X, y, epochs=150, batch_size=64, verbose=0, seed=0)
    assert hist.history["accuracy"][-1] > 0.95
    assert model.evaluate(X, y)["accuracy"] > 0.95
    assert hist.history["loss"][-1] < hist.history["loss"][0] / 5


@pytest.mark.parametrize("batch_size", [1, 16, 300])
def test_sgd_minibatch_and_full_batch_all_learn(batch_size):
    X, y = load_spiral(n_per_class=100, n_classes=3, seed=1)
    model = mlp(50)
    lr = {1: 0.05, 16: 0.1, 300: 0.5}[batch_size]  # larger steps with momentum turn chaotic at batch 16
    model.compile(optimizer=SGD(lr, momentum=0.9 if batch_size > 1 else 0), loss="cross_entropy")
    epochs = {1: 20, 16: 60, 300: 300}[batch_size]
    hist = model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=0)
    assert hist.history["loss"][-1] < 0.6 * hist.history["loss"][0]
    assert hist.history["accuracy"][-1] > 0.6


def test_float32_default_and_float64_end_to_end(rng):
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    m = mlp(8)
    m.compile("sgd", "cross_entropy")
    m.fit(X, y, epochs=1, verbose=0)
    assert m.layers[0].params["W"].dtype == np.float32
    assert m.predict(X).dtype == np.float32
    m64 = Sequential([Dense(8), ReLU(), Dense(3)], dtype="float64")
    m64.compile(Adam(0.01), "cross_entropy")
    m64.fit(X, y, epochs=1, verbose=0)
    assert m64.layers[2].params["W"].dtype == np.float64
    assert m64.predict(X).dtype == np.float64
    assert Adam().state == {} and m64.optimizer.state["dense_1.W"]["m"].dtype == np.float64


def test_history_and_validation(rng):
    X, y = load_spiral(50, 3, seed=2)
    m = mlp(20)
    m.compile(Adam(0.01), "cross_entropy")
    h = m.fit(X, y, epochs=3, validation_data=(X, y), verbose=0)
    assert set(h.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert h.epoch == [0, 1, 2] and len(h["val_loss"]) == 3
    ev = m.evaluate(X, y)
    assert ev["accuracy"] == pytest.approx(h["val_accuracy"][-1])


def test_predict_probabilities_and_classes(rng):
    X = rng.standard_normal((10, 4))
    m = mlp(8, out=5)
    m.compile("adam", "cross_entropy")
    p = m.predict(X)
    assert p.shape == (10, 5)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(m.predict_classes(X), p.argmax(1))


def test_nan_loss_stops_with_epoch_and_batch(rng):
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    m = mlp(8)
    m.compile(SGD(1e30), "cross_entropy")
    with pytest.raises(TrainingDivergedError, match=r"at epoch \d+, batch \d+"):
        m.fit(X, y, epochs=5, batch_size=8, verbose=0)


def test_bad_inputs_are_named(rng):
    m = mlp(8)
    m.compile("sgd", "cross_entropy")
    X = rng.standard_normal((6, 4))
    with pytest.raises(ValueError, match=r"label 3 at index 5 is outside \[0, 3\)"):
        m.fit(X, np.array([0, 1, 2, 0, 1, 3]), verbose=0)
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"contains nan at index \(2, 1\)"):
        m.fit(Xn, np.zeros(6, int), verbose=0)
    Xn[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"contains inf"):
        m.predict(Xn)
    with pytest.raises(ValueError, match="6 samples but its labels have 5"):
        m.fit(X, np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match=r"Dense 'dense_1' expected input with 4 features.*\(6, 5\)"):
        m.predict(rng.standard_normal((6, 5)))
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(X, np.zeros(6, int))


def test_nonfinite_data_is_named_before_anything_runs(rng):
    """NaN/inf anywhere in X, in float targets or in validation data: a ValueError naming the
    entry before the first step, even where the network would never see it (a -inf that the
    first ReLU zeroes) and with NumPy set to raise on invalid operations."""
    X, y = rng.standard_normal((48, 4)), rng.integers(0, 3, 48)
    m = Sequential([ReLU(), Dense(8), BatchNorm(), ReLU(), Dense(3)])
    m.compile(SGD(0.1), "cross_entropy")
    m.build((4,))
    before = {k: v.copy() for l in m.layers for k, v in {**l.params, **l.buffers}.items()}
    Xb = X.copy()
    Xb[40, 3] = -np.inf
    with np.errstate(all="raise"), pytest.raises(ValueError, match=r"X contains -inf at index \(40, 3\)"):
        m.fit(Xb, y, batch_size=8, shuffle=False, verbose=0)
    after = {k: v for l in m.layers for k, v in {**l.params, **l.buffers}.items()}
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing ran: BN statistics too
    Xv = X[:20].copy()
    Xv[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"validation X contains nan at index \(7, 0\)"):
        m.fit(X, y, validation_data=(Xv, y[:20]), verbose=0)
    with pytest.raises(ValueError, match=r"X contains nan at index \(7, 0\)"):
        m.evaluate(Xv, y[:20])
    with pytest.raises(ValueError, match=r"X contains nan at index \(7, 0\)"):
        m.predict_classes(Xv, batch_size=6)
    # float targets (regression, one-hot) are checked too, not left to diverge
    r = Sequential([Dense(1)]).compile(SGD(0.01), "mse")
    t = rng.standard_normal((16, 1))
    t[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"y contains nan at index \(5, 0\)"):
        r.fit(X[:16], t, batch_size=4, verbose=0)


def test_frozen_layer_is_not_updated(rng):
    X, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    m = mlp(8)
    m.compile(SGD(0.1), "cross_entropy")
    m.build((4,))
    m.layers[0].trainable = False
    w0 = m.layers[0].params["W"].copy()
    w2 = m.layers[2].params["W"].copy()
    m.fit(X, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(m.layers[0].params["W"], w0)
    assert not np.array_equal(m.layers[2].params["W"], w2)
    assert "(frozen)" in m.summary(print_fn=None)


def test_model_level_regularizer_and_max_norm(rng):
    from scratchnn.regularizers import L2, MaxNorm

    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    m = mlp(16)
    m.compile(SGD(0.5), "cross_entropy", regularizer=L2(1e-3), constraint=MaxNorm(0.5))
    m.fit(X, y, epochs=3, verbose=0)
    assert isinstance(m.layers[0].regularizer, L2)
    norms = np.linalg.norm(m.layers[0].params["W"], axis=0)
    assert norms.max() <= 0.5 + 1e-5


def test_summary_lists_shapes_and_counts(capsys):
    m = Sequential([Dense(100), ReLU(), Dense(200), ReLU(), Dense(10)])
    m.build((784,))
    m.summary()
    out = capsys.readouterr().out
    assert "(None, 100)" in out and "dense_3 (Dense)" in out
    assert f"Total params: {784*100+100 + 100*200+200 + 200*10+10:,}" in out


def test_seeded_fit_is_reproducible(rng):
    X, y = load_spiral(30, 3, seed=0)

    def train():
        scratchnn.set_seed(5)
        m = Sequential([Dense(16), ReLU(), Dropout(0.2), BatchNorm(), Dense(3)])
        m.compile(Adam(0.01), "cross_entropy")
        m.fit(X, y, epochs=2, batch_size=10, verbose=0)
        return m.layers[-1].params["W"]

    np.testing.assert_array_equal(train(), train())


def test_early_stopping_stops_and_restores_best(rng):
    m = mlp(4)
    m.build((3,))
    es = EarlyStopping(monitor="val_loss", patience=2)
    es.set_model(m)
    es.on_train_begin({})
    best = None
    for epoch, val in enumerate([1.0, 0.5, 0.7, 0.6, 0.4]):
        m.layers[0].params["W"] += 1.0  # the weights change every epoch
        if epoch == 1:
            best = m.layers[0].params["W"].copy()
        es.on_epoch_end(epoch, {"val_loss": val})
        if m.stop_training:
            break
    assert m.stop_training and es.stopped_epoch == 3 and es.best_epoch == 1
    es.on_train_end()
    np.testing.assert_array_equal(m.layers[0].params["W"], best)


def test_early_stopping_in_fit(rng):
    X, y = load_spiral(30, 3, seed=0)
    m = mlp(16)
    m.compile(Adam(0.01), "cross_entropy")
    es = EarlyStopping(monitor="accuracy", patience=0, min_delta=1.0)  # nothing can improve by 1.0
    h = m.fit(X, y, epochs=10, callbacks=[es], verbose=0)
    assert h.epoch == [0, 1] and es.stopped_epoch == 1


def test_a_monitored_key_nobody_logs_is_one_clear_error_and_a_callback_may_log_it(rng, tmp_path):
    from scratchnn.callbacks import Callback, ModelCheckpoint
    from scratchnn.errors import InvalidArgumentError

    X, y = load_spiral(30, 3, seed=0)
    m = mlp(16)
    m.compile(Adam(0.01), "cross_entropy")
    for cb in (EarlyStopping(monitor="val_loss"), ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)):
        with pytest.raises(InvalidArgumentError, match=r"monitors 'val_\w+' \(pass validation_data to fit\), "
                                                        "but the epoch logs hold 'accuracy', 'loss', 'time'"):
            m.fit(X, y, epochs=3, callbacks=[cb], verbose=0)
    with pytest.raises(InvalidArgumentError, match="monitors 'val_acc', but the epoch logs hold 'accuracy', "
                                                   "'loss', 'time', 'val_accuracy', 'val_loss'"):
        m.fit(X, y, epochs=3, callbacks=[EarlyStopping(monitor="val_acc")], validation_data=(X, y), verbose=0)

    class OwnValidation(Callback):  # validates on held-out data of its own
        def on_epoch_end(self, epoch, logs):
            logs["val_loss"] = self.model.evaluate(X[:20], y[:20])["loss"]

    es = EarlyStopping(monitor="val_loss", patience=5)
    h = m.fit(X, y, epochs=2, callbacks=[OwnValidation(), es], verbose=0)
    assert h.epoch == [0, 1] and es.best_epoch is not None


def test_progress_output(capsys, rng):
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    m = mlp(4, out=2)
    m.compile("adam", "cross_entropy")
    m.fit(X, y, epochs=2, batch_size=5, verbose=2, validation_data=(X, y))
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "val_accuracy" in out


def test_truncate_shares_layers(rng):
    m = mlp(8, out=3)
    m.build((4,))
    feat = m.truncate(1)
    X = rng.standard_normal((5, 4)).astype(np.float32)
    assert feat.predict_logits(X).shape == (5, 8)
    assert feat.layers[0] is m.layers[0]


def test_fit_backward_stops_below_the_first_trainable_layer(rng):
    calls = []

    class Spy(ReLU):
        def backward(self, dy):
            calls.append(self.name)
            return super().backward(dy)

    m = Sequential([Dense(8), Spy(name="low"), Dense(8), Spy(name="high"), Dense(3)])
    m.compile(SGD(0.1), "cross_entropy")
    X, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    m.fit(X, y, epochs=1, verbose=0)
    assert calls.count("low") == calls.count("high") > 0
    calls.clear()
    m.layers[0].trainable = False  # a frozen base: nothing below the second Dense needs gradients
    w0 = m.layers[0].params["W"].copy()
    m.fit(X, y, epochs=1, verbose=0)
    assert "low" not in calls and "high" in calls
    np.testing.assert_array_equal(m.layers[0].params["W"], w0)


def test_extract_features(rng):
    m = mlp(8, out=3)
    m.build((4,))
    X = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(m.extract_features(X, n_drop=1), np.maximum(X @ m.layers[0].params["W"]
                                                                        + m.layers[0].params["b"], 0), rtol=1e-6)


def test_fit_streams_memory_mapped_uint8_data(tmp_path):
    """A data set on disk is read batch by batch: never converted (or loaded) whole."""
    import tracemalloc

    from scratchnn.datasets import read_idx, write_idx
    from scratchnn.layers import Flatten, Standardize

    rng = np.random.default_rng(0)
    n = 6000
    y = rng.integers(0, 2, n)
    images = rng.integers(0, 100, (n, 28, 28), dtype=np.uint8)
    images[y == 1, 10:18, 10:18] = 255  # class 1 has a bright square
    write_idx(tmp_path / "images", images)
    X = read_idx(tmp_path / "images", mmap=True)
    assert isinstance(X, np.memmap) and X.dtype == np.uint8
    model = Sequential([Standardize(axis="global").adapt(X), Flatten(), Dense(16), ReLU(), Dense(2)])
    model.compile(Adam(0.01), "cross_entropy")
    tracemalloc.start()
    hist = model.fit(X, y, epochs=1, batch_size=100, verbose=0, validation_data=(X[:200], y[:200]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3_000_000  # batches and activations (~2.1 MB), never a float32 copy of the data (18.8 MB)
    assert hist["val_accuracy"][-1] > 0.95
    np.testing.assert_array_equal(model.predict_classes(X[:50]), model.predict_classes(np.asarray(X[:50])))


def test_check_finite_huge_but_finite_values_pass():
    """Huge finite values pass without a warning: small arrays by a scaled sum that cannot overflow,
    large ones by a one-pass sum that may overflow and an exact check that then clears them."""
    from scratchnn.model import check_finite

    import warnings

    X = np.full((4, 3), 3e38, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no NumPy overflow warning leaks to the user
        check_finite(X)  # sum is inf, every entry finite: no error
        check_finite(np.full((300, 300), 3e38, dtype=np.float32))  # the large-array path too
        check_finite(np.full((4, 3), 1e308))  # float64 too
        check_finite(np.full((300, 300), 1e308))  # (the large path's sum overflows here)
    X[2, 1] = -np.inf
    with pytest.raises(ValueError, match=r"contains -inf at index \(2, 1\)"):
        check_finite(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_finite_scaled_sum_cannot_overflow_below_its_size_limit(dtype):
    """Small arrays are checked by one dot product with 2**-17: the largest finite values, as many as
    the path takes, sum to a finite number (no warning, no fallback), and one NaN or inf anywhere shows."""
    import warnings

    from scratchnn.model import _SMALL, _scaled_sum, check_finite

    big = np.finfo(dtype).max
    X = np.full((1, _SMALL - 1), big, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(_scaled_sum(X))
        check_finite(X)
        check_finite(-X)
        check_finite(np.zeros((3, 5), dtype))
    for bad, idx in ((np.nan, 7), (np.inf, 0), (-np.inf, _SMALL - 2)):
        Y = X.copy()
        Y[0, idx] = bad
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not np.isfinite(_scaled_sum(Y))
            with pytest.raises(ValueError, match=rf"contains {bad} at index \(0, {idx}\)"):
                check_finite(Y)
    # +inf and -inf together (their sum is NaN), and tiny values that underflow when scaled: one clear
    # error, or none, and no NumPy warning even where the user made floating-point flags errors
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"contains inf at index \(0, 1\)"):
            check_finite(np.array([[1.0, np.inf, -np.inf]], dtype))
        check_finite(np.array([[np.finfo(dtype).smallest_subnormal, 1e-35, 1.0]], dtype))
    Z = np.ones((2, 3), dtype)[:, ::2]  # not contiguous: vdot flattens a copy, same answer
    Z[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"contains nan at index \(1, 1\)"):
        check_finite(Z)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_predict_of_one_batch_returns_a_plain_array_for_an_ndarray_subclass():
    """np.matrix's * is a matrix product and a masked array computes on its mask: both are converted to
    plain arrays before the layers see them, whether the input is one batch or several."""
    m = Sequential([BatchNorm(), Dense(3)]).compile("sgd", loss="softmax_cross_entropy")
    m.build((4,))
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    want = m.predict_logits(X)
    for sub in (np.matrix(X), np.ma.array(X, mask=X > 1)):
        for bs in (1000, 2):
            got = m.predict_logits(sub, batch_size=bs)
            assert type(got) is np.ndarray
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # (batches of 2: other GEMM shapes)


@pytest.mark.parametrize("dtype", ["int32", "complex128", object, "U3", "floaty", ("f8", -1), "f4, i4)"])
def test_a_model_of_a_non_float_dtype_is_one_clear_error(dtype):
    with pytest.raises(TypeError, match=r"Sequential: dtype must be a float type such as float32 \(the default\)"):
        Sequential([Dense(2)], dtype=dtype)
    with pytest.raises(TypeError, match=r"build: dtype must be a float type"):
        Sequential([Dense(2)]).build((3,), dtype=dtype)
    assert Sequential([Dense(2)], dtype="float64").dtype == np.float64
