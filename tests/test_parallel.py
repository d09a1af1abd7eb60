"""Splitting a mini-batch across threads (scratchnn.engine.threads) gives the single-thread result."""
import numpy as np
import pytest

import scratchnn as snn
from scratchnn import engine, parallel
from scratchnn.engine import threads
from scratchnn.engine.plan import Plan, run_plan
from scratchnn.layers import (BatchNorm, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, RandomShift, ReLU)
from scratchnn.optimizers import SGD


@pytest.fixture
def split(monkeypatch):
    """Two threads, and every batch worth splitting."""
    monkeypatch.setattr(threads, "MIN_SHARD_MACS", 1)
    monkeypatch.setattr(threads, "MIN_MOVED_PER_MAC", 0)
    old = parallel._num_threads
    snn.set_num_threads(2)
    yield
    snn.set_num_threads(old)


def numpy_blas_threads():
    """NumPy's BLAS thread count(s); other libraries' BLAS (SciPy's, say) are not scratchnn's concern."""
    import threadpoolctl

    return [d["num_threads"] for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas" and "numpy" in d["filepath"]]


def cnn(seed=0, dtype="float64", extra=()):
    snn.set_seed(seed)
    m = snn.Sequential([*extra, Conv2D(4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(16), ReLU(), Dense(3)],
                       dtype=dtype)
    m.build((1, 6, 6))  # weights drawn right after the seed
    return m.compile(SGD(0.05, momentum=0.9), "softmax_cross_entropy")


def images(n=24, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 6, 6)), rng.integers(0, 3, n)


def test_split_gradients_equal_whole_batch_gradients(split):
    X, y = images(23)  # odd: shards of 12 and 11 samples, weighted by their sizes
    whole, halves = cnn(), cnn()
    loss1, hits1 = run_plan(Plan(whole, direct=False), X, y, True)
    reps = threads.Replicas(halves, 2)
    reps.new_epoch(Plan(halves, direct=False))
    loss2, hits2 = reps.forward_backward(X, y, True)
    assert loss2 == pytest.approx(loss1, rel=1e-12)
    assert hits2 == hits1
    for layer, twins in (pair for pairs in reps.update_sets for pair in pairs):
        for k, g in layer.grads.items():
            g += sum(t.grads[k] for t in twins)
    for a, b in zip(whole.layers, halves.layers):
        for k in a.grads:
            np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-10, atol=1e-12)


def test_fit_split_matches_single_thread(split):
    X, y = images(40)
    m2 = cnn()
    m2.fit(X, y, epochs=3, batch_size=8, verbose=0, seed=3)
    snn.set_num_threads(1)
    m1 = cnn()
    m1.fit(X, y, epochs=3, batch_size=8, verbose=0, seed=3)
    for a, b in zip(m1.layers, m2.layers):
        for k in a.params:
            np.testing.assert_allclose(b.params[k], a.params[k], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m2.history.history["loss"], m1.history.history["loss"], rtol=1e-9)


def test_split_is_used_and_blas_threads_are_restored(split):
    pytest.importorskip("threadpoolctl")
    X, y = images(40)
    m = cnn()
    seen = []

    class Spy(snn.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(numpy_blas_threads())

    calls = []
    original = threads.Replicas.forward_backward
    threads.Replicas.forward_backward = lambda self, *a: calls.append(1) or original(self, *a)
    try:
        before = numpy_blas_threads()
        m.fit(X, y, epochs=1, batch_size=8, verbose=0, callbacks=[Spy()])
    finally:
        threads.Replicas.forward_backward = original
    assert calls and seen[0] == [1] * len(before)  # split, one BLAS thread per share
    assert numpy_blas_threads() == before


def test_random_layers_reproducible_per_thread_count(split):
    X, y = images(32)

    def run():
        m = cnn(seed=5, extra=[RandomShift(1, seed=2), Dropout(0.3, seed=4)])
        m.fit(X, y, epochs=2, batch_size=16, verbose=0, seed=1)
        return m.layers[2].params["W"].copy()

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize("norm", [BatchNorm, BatchNorm2D])
def test_batch_norm_uses_whole_batch_statistics_across_threads(split, norm):
    X, y = images(23)

    def make():
        snn.set_seed(2)
        body = [Conv2D(3, 3), norm(), ReLU(), Flatten()] if norm is BatchNorm2D else [Flatten(), Dense(8), norm(), ReLU()]
        m = snn.Sequential([*body, Dense(3)], dtype="float64").compile(SGD(0.1), "softmax_cross_entropy")
        m.build(X.shape[1:])
        return m

    whole, halves = make(), make()
    loss1, _ = run_plan(Plan(whole, direct=False), X, y, True)
    reps = threads.Replicas(halves, 2)
    reps.new_epoch(Plan(halves, direct=False))
    loss2, _ = reps.forward_backward(X, y, True)
    for layer, twins in (pair for pairs in reps.update_sets for pair in pairs):
        for k, g in layer.grads.items():
            g += sum(t.grads[k] for t in twins)
    assert loss2 == pytest.approx(loss1, rel=1e-12)
    for a, b in zip(whole.layers, halves.layers):
        for k in a.grads:
            np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-9, atol=1e-12)
        for k in a.buffers:  # running statistics updated once, from the whole batch
            np.testing.assert_allclose(b.buffers[k], a.buffers[k], rtol=1e-12)
        assert getattr(b, "sync", None) is None


class RejectsMarkedSample(Layer):
    """Identity that raises on a sample whose first pixel is marked (< -100)."""

    def forward(self, x, training=False):
        if (x[:, 0, 0, 0] < -100).any():
            raise ValueError("RejectsMarkedSample: bad sample")
        return x

    def backward(self, dy):
        return dy


engine.register_kernel(RejectsMarkedSample, sample_wise=True)  # so its batches are split across threads


def marked_images():
    X, y = images(16)
    X[15, 0, 0, 0] = -1000  # in the second shard, which a helper thread runs
    return X, y


def test_failure_in_one_thread_releases_batch_norm_peers(split):
    X, y = marked_images()
    m = snn.Sequential([RejectsMarkedSample(), Flatten(), Dense(8), BatchNorm(), Dense(3)]).compile("sgd")
    with pytest.raises(ValueError, match="bad sample"):  # not a deadlock, not a BrokenBarrierError
        m.fit(X, y, epochs=1, batch_size=16, verbose=0, shuffle=False)


def test_error_in_a_worker_thread_reaches_the_caller(split):
    X, y = marked_images()
    m = cnn(extra=[RejectsMarkedSample()])
    with pytest.raises(ValueError, match="bad sample"):
        m.fit(X, y, epochs=1, batch_size=16, verbose=0, shuffle=False)


def test_inference_split_matches_single_thread(split):
    X, _ = images(101)
    m = cnn()
    out2 = m.predict_logits(X)
    snn.set_num_threads(1)
    np.testing.assert_allclose(out2, m.predict_logits(X), rtol=1e-12)


def test_shard_rules():
    assert threads.bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    conv_net = (4_300_000, 150_000)  # the benchmark CNN: much work outside the matrix products
    assert threads.shards_for(64, conv_net, threads=2) == 2
    assert threads.shards_for(64, conv_net, threads=1) == 1
    assert threads.shards_for(1, conv_net, threads=4) == 1
    assert threads.shards_for(512, (1_860_000, 7_000), threads=2) == 1  # an MLP: BLAS threads do better
    assert threads.shards_for(1, (100_000, 10_000), threads=2) == 1  # too little work to hand off
    with pytest.raises(ValueError, match="positive int"):
        snn.set_num_threads(0)


def test_work_per_sample_counts_conv_positions_and_im2col():
    m = snn.Sequential([Conv2D(8, 3, padding="same"), Flatten(), Dense(10)])
    m.build((1, 5, 5))
    conv_macs, dense_macs = (8 * 9 + 8) * 25, 200 * 10 + 10
    conv_moved = 8 * 25 + conv_macs // 8  # output + im2col (one 3x3 window per pixel)
    assert engine.work_per_sample(m) == (conv_macs + dense_macs, conv_moved + 200 + 10 + dense_macs // 10)


def test_resume_with_split_batches_is_exact(split, tmp_path):
    from scratchnn.callbacks import ModelCheckpoint
    from scratchnn.saving import load_checkpoint

    X, y = images(32)

    def run(folder, stop_after=None, resume=False):
        ck = folder / "ck.npz"
        if resume:
            m, info = load_checkpoint(ck)
            start, prior, seed = info["epoch"], info["history"], None
        else:
            m, start, prior, seed = cnn(seed=7, extra=[Dropout(0.2, seed=1)]), 0, None, 3
        m.fit(X, y, epochs=stop_after or 4, batch_size=16, seed=seed, initial_epoch=start, verbose=0,
              callbacks=[ModelCheckpoint(ck, prior_history=prior)])
        return m

    full = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=2)
    resumed = run(tmp_path / "b", resume=True)
    for la, lb in zip(full.layers, resumed.layers):
        for k in la.params:
            np.testing.assert_array_equal(la.params[k], lb.params[k])


@pytest.mark.parametrize("opt", ["adam", "adamw", "rmsprop", "adagrad", "nesterov"])
def test_every_optimizer_steps_the_same_split_or_not(split, opt):
    X, y = images(32)
    runs = []
    for threads in (2, 1):
        snn.set_num_threads(threads)
        m = cnn()
        m.compile(snn.optimizers.get(opt, lr=0.01), "softmax_cross_entropy", regularizer=snn.regularizers.L2(1e-3))
        m.fit(X, y, epochs=2, batch_size=8, verbose=0, seed=3)
        runs.append(m)
    for a, b in zip(*[r.layers for r in runs]):
        for k in a.params:
            np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-8, atol=1e-10)


def test_non_finite_loss_in_one_shard_stops_the_run_without_deadlock(split):
    import threading

    class NanForLabelTwo(snn.losses.SoftmaxCrossEntropy):  # a loss that fails on one shard only
        def __call__(self, pred, target):
            value, grad = super().__call__(pred, target)
            return (float("nan") if (target == 2).any() else value), grad

    X, y = images(16)
    y[:] = y % 2
    y[12] = 2  # in the second shard
    m = snn.Sequential([Flatten(), Dense(8), BatchNorm(), ReLU(), Dense(3)]).compile(SGD(0.1), NanForLabelTwo())
    errors = []

    def fit():
        try:
            m.fit(X, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=fit, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the split step deadlocked"
    assert errors and isinstance(errors[0], snn.TrainingDivergedError)


def test_overlapping_blas_limits_restore_the_original_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = numpy_blas_threads()
        a, b = threads.single_blas_thread(), threads.single_blas_thread()
        a.__enter__()  # two fits in two threads: entered A, B, left A, B
        b.__enter__()
        a.__exit__(None, None, None)
        assert numpy_blas_threads() == [1] * len(before)  # B still splits batches
        b.__exit__(None, None, None)
        assert numpy_blas_threads() == before
