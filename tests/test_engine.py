"""The engine computes what the plain path computes.

Each kernel is compared with the layer's (or loss's) own plain code, and whole trainings on the
default path (``engine="fast"``) are compared with ``engine="reference"`` (``Sequential.train_step``).
Tolerances: kernels that run the same NumPy operations are compared bitwise; where the engine
reorders sums (BLAS products with ones, a GEMM that adds the SGD step in place, threads adding
their shares), float64 runs agree to rtol 1e-9 / atol 1e-9 (a convolution's bias before batch norm
has a gradient of ~1e-9 that is only rounding noise) and float32 runs, the training default, to
rtol 2e-4 / atol 2e-6 after several steps.
"""
import numpy as np
import pytest

import scratchnn as snn
from scratchnn import engine
from scratchnn.engine import kernels, threads
from scratchnn.gradcheck import check_layer
from scratchnn.layers import (BatchNorm, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, Maxout, ReLU,
                              register)
from scratchnn.losses import SoftmaxCrossEntropy
from scratchnn.optimizers import SGD, Adam
from scratchnn.regularizers import L2, MaxNorm

F32 = dict(rtol=2e-4, atol=2e-6)
F64 = dict(rtol=1e-9, atol=1e-9)


@pytest.fixture
def split(monkeypatch):
    """Two threads, and every batch worth splitting."""
    monkeypatch.setattr(threads, "MIN_SHARD_MACS", 1)
    monkeypatch.setattr(threads, "MIN_MOVED_PER_MAC", 0)
    snn.set_num_threads(2)
    yield
    snn.set_num_threads(None)


@pytest.fixture
def one_thread():
    snn.set_num_threads(1)
    yield
    snn.set_num_threads(None)


# -- kernels against the plain code ----------------------------------------------------------------
def _pair(make, x, dy):
    """The same layer twice (same weights): ``(plain result, plain layer, twin)``."""
    outs = []
    for _ in range(2):
        snn.set_seed(0)
        layer = make()
        outs.append((layer, layer.forward(x, training=True)))  # builds: same weights in both
    (a, ya), (b, yb) = outs
    np.testing.assert_array_equal(ya, yb)
    return a.backward(dy), a, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_kernel_equals_the_plain_backward(rng, dtype):
    x, dy = rng.standard_normal((8, 5)).astype(dtype), rng.standard_normal((8, 3)).astype(dtype)
    dx, plain, twin = _pair(lambda: Dense(3), x, dy)
    np.testing.assert_array_equal(kernels.dense_backward(twin, dy, True, None), dx)
    for k in plain.grads:
        np.testing.assert_array_equal(twin.grads[k], plain.grads[k])
    twin.forward(x, training=True)
    assert kernels.dense_backward(twin, dy, False, None) is None  # the lowest layer: no input gradient
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for min_direct in (0, 10**9):  # W by one GEMM with beta = 1, or SGD's update after its gradient
        for k in twin.params:
            twin.params[k][...] = plain.params[k]  # (the previous round stepped them)
        before = {k: v.copy() for k, v in twin.params.items()}
        twin.forward(x, training=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(kernels.blas, "MIN_DIRECT_SIZE", min_direct)
            np.testing.assert_allclose(kernels.dense_backward(twin, dy, True, -0.1), dx, **tol)  # dx: the old W
        for k in ("W", "b"):  # plain SGD inside backward, bias included
            np.testing.assert_allclose(twin.params[k], before[k] - 0.1 * plain.grads[k], **tol)


def test_maxout_and_conv_kernels_equal_the_plain_backward(rng):
    x, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 4))
    dx, plain, twin = _pair(lambda: Maxout(4, pieces=3, init="he_normal"), x, dy)
    np.testing.assert_array_equal(kernels.maxout_backward(twin, dy, True, None), dx)
    np.testing.assert_array_equal(twin.grads["W"], plain.grads["W"])
    x, dy = rng.standard_normal((3, 2, 7, 7)), rng.standard_normal((3, 4, 7, 7))
    dx, plain, twin = _pair(lambda: Conv2D(4, 3, padding="same"), x, dy)
    np.testing.assert_array_equal(kernels.conv_backward(twin, dy, True, None), dx)
    np.testing.assert_array_equal(twin.grads["W"], plain.grads["W"])
    np.testing.assert_allclose(twin.grads["b"], plain.grads["b"], **F64)  # bias: a product with ones
    twin.forward(x, training=True)
    assert kernels.conv_backward(twin, dy, False, None) is None


@pytest.mark.parametrize("norm, shape", [(BatchNorm, (10, 6)), (BatchNorm2D, (5, 3, 4, 4))])
def test_batch_norm_kernel_equals_the_plain_backward(rng, norm, shape):
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    dx, plain, twin = _pair(norm, x, dy)
    np.testing.assert_allclose(kernels.batchnorm_backward(twin, dy, True, None), dx, rtol=1e-12, atol=1e-12)
    for k in plain.grads:
        np.testing.assert_allclose(twin.grads[k], plain.grads[k], rtol=1e-12, atol=1e-12)
    # the forward kernel too, for C-ordered and channels-last images (sums as matrix-vector products)
    layouts = [x] if x.ndim == 2 else [x, np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)]
    for xl in layouts:
        plain, twin = norm(), norm()
        y = plain.forward(xl, training=True)
        np.testing.assert_allclose(kernels.batchnorm_forward(twin, xl, True), y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(kernels.batchnorm_backward(twin, dy, True, None), plain.backward(dy), rtol=1e-12,
                                   atol=1e-12)
        for k in plain.grads:
            np.testing.assert_allclose(twin.grads[k], plain.grads[k], rtol=1e-12, atol=1e-12)
        for k in plain.buffers:
            np.testing.assert_allclose(twin.buffers[k], plain.buffers[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm, shape, shares", [(BatchNorm, (12, 5), (5, 7)), (BatchNorm2D, (7, 3, 4, 4), (2, 5)),
                                                  (BatchNorm2D, (9, 3, 4, 4), (3, 3, 3))])
def test_batch_norm_on_a_split_batch_equals_the_plain_code_on_the_whole_batch(rng, norm, shape, shares):
    """Each thread centers its share on its own mean; one exchange combines the shares' moments (their
    means far apart here), and the backward's sums are exchanged once. Two steps in a row: the exchange
    alternates between two slots."""
    plain = norm()
    plain.build(shape[1:], np.float64)
    plain.params["gamma"][...] = rng.uniform(0.5, 2, shape[1])
    plain.params["beta"][...] = rng.standard_normal(shape[1])
    twins = [norm() for _ in shares]
    for twin in twins:
        twin.build(shape[1:], np.float64)
        for k in plain.params:
            twin.params[k][...] = plain.params[k]
    group, edges = threads.SyncGroup(len(shares)), np.cumsum((0,) + shares)
    group.samples = shape[0]
    for step in range(2):
        x, dy = rng.standard_normal(shape) * 3 + 5, rng.standard_normal(shape)
        x[:shares[0]] += 40 * (step + 1)
        if x.ndim == 4:  # channels-last, as Conv2D hands images on
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

        def share(k):
            a, b = edges[k], edges[k + 1]
            y = kernels.batchnorm_forward(twins[k], x[a:b], True, sync=(group, k))
            return y, kernels.batchnorm_backward(twins[k], dy[a:b], True, None, sync=(group, k))

        parts = threads.run([lambda k=k: share(k) for k in range(len(shares))])
        y, dx = plain.forward(x, training=True), plain.backward(dy)
        np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), y, **F64)
        np.testing.assert_allclose(np.concatenate([p[1] for p in parts]), dx, **F64)
        for k in plain.grads:  # each thread keeps its share's gradient: they add up to the batch's
            np.testing.assert_allclose(sum(t.grads[k] for t in twins), plain.grads[k], **F64)
        for k in plain.buffers:  # the first thread updates the running statistics
            np.testing.assert_allclose(twins[0].buffers[k], plain.buffers[k], **F64)


@pytest.mark.parametrize("n, c", [(1, 3), (32, 10), (500, 10), (64, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_kernel_equals_the_plain_loss(rng, n, c, dtype):
    z = (rng.standard_normal((n, c)) * 5).astype(dtype)
    z[0, 0] = 1e4  # huge logits stay finite
    y = rng.integers(0, c, n)
    loss = SoftmaxCrossEntropy()
    v1, g1 = loss(z.copy(), y)
    v2, g2 = kernels.softmax_cross_entropy(loss, z.copy(), y)
    assert g2.dtype == dtype and np.isfinite(g2).all()
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else F64
    np.testing.assert_allclose(v2, v1, **tol)
    np.testing.assert_allclose(g2, g1, **tol)


def test_relu_kernel_zero_buffer_follows_the_input():
    """The zeros (inputs of >= 1,024 values) adapt to every batch size, feature shape, dtype and
    memory layout, stay read-only, and never change a result."""
    rng = np.random.default_rng(0)
    layer = ReLU()
    fwd = engine.forward_fn(layer)
    for shape, dtype in [((64, 50), np.float32), ((7, 200), np.float32), ((90, 50), np.float32),
                         ((30, 20, 4), np.float32), ((30, 20, 4), np.float64), ((2000,), np.float64)]:
        x = rng.standard_normal(shape).astype(dtype)
        y = fwd(x, True)
        assert y.dtype == dtype and y.shape == shape
        np.testing.assert_array_equal(y, layer.forward(x))
    zeros = kernels._ZEROS[layer]
    assert not zeros.flags.writeable and zeros.shape == (2000,)
    special = np.tile([[np.nan, -np.inf, np.inf, -1.0]], (300, 1))
    y = fwd(special, False)
    assert np.isnan(y[:, 0]).all() and (y[:, 1] == 0).all() and np.isinf(y[:, 2]).all() and (y[:, 3] == 0).all()
    # the zeros follow the input's memory layout: a channels-last view (Conv2D's output) stays
    # channels-last; a strided view takes the scalar
    nhwc = rng.standard_normal((8, 10, 12, 3)).astype(np.float32)
    for x, channels_last in [(nhwc.transpose(0, 3, 1, 2), True), (nhwc.transpose(0, 3, 1, 2)[:5], True),
                             (nhwc[:, ::2], False)]:
        y = fwd(x, True)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        if channels_last:
            assert y.strides == x.strides and kernels._ZEROS[layer].strides == x.strides
    one = rng.standard_normal((8, 16, 10, 1)).astype(np.float32).transpose(0, 3, 1, 2)  # strides (640, 4, 40, 4)
    fwd(one, False)
    cached = kernels._ZEROS[layer]
    np.testing.assert_array_equal(fwd(one[:7], False), np.maximum(one[:7], 0))
    assert kernels._ZEROS[layer] is cached
    fwd(np.ones(2000), False)
    assert fwd(np.array(-3.0), False) == 0
    for x in (np.arange(-1000, 1000).reshape(2, -1), rng.random((2, 1000)) > 0.5):
        assert fwd(x, False).dtype == np.maximum(x, 0).dtype
        np.testing.assert_array_equal(fwd(x, False), np.maximum(x, 0))


@pytest.mark.parametrize("n", [1, 15, 16, 33, 600])
@pytest.mark.parametrize("c", [10, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_and_row_sum_match_numpy(n, c, dtype):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, c)).astype(dtype)
    np.testing.assert_array_equal(kernels.row_max(x), x.max(axis=1))
    np.testing.assert_allclose(kernels.row_sum(x), x.sum(axis=1), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5)
    assert kernels.row_max(x).dtype == kernels.row_sum(x).dtype == dtype
    x[n // 2, 3] = np.nan
    assert np.isnan(kernels.row_max(x)[n // 2]) and np.isnan(kernels.row_sum(x)[n // 2])
    np.testing.assert_array_equal(kernels.row_max(x[:, ::-1]), kernels.row_max(x))  # non-contiguous input


# -- whole trainings: the default path against the reference path ------------------------------------
def _data(shape=(6,), n=96, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)), rng.integers(0, classes, n)


def train_both(make, X, y, dtype="float32", epochs=3, batch_size=8, **compile_kw):
    """The same model trained on both paths; returns ``(fast model, reference model)``."""
    import copy

    models = []
    old = snn.backend.default_dtype()
    snn.set_default_dtype(dtype)
    try:
        for path in ("fast", "reference"):
            snn.set_seed(0)
            m = make()
            m.compile(**copy.deepcopy(compile_kw))
            m.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=3, engine=path)
            models.append(m)
    finally:
        snn.set_default_dtype(old)
    return models


def assert_same_weights(a, b, tol):
    for la, lb in zip(a.layers, b.layers):
        for k in la.params:
            np.testing.assert_allclose(la.params[k], lb.params[k], err_msg=f"{la.name}.{k}", **tol)
        for k in la.buffers:
            np.testing.assert_allclose(la.buffers[k], lb.buffers[k], err_msg=f"{la.name}.{k}", **tol)


def mlp(width=300):  # wide enough for the direct SGD step (>= 32k weights)
    return snn.Sequential([Dense(width, init="he_normal"), ReLU(), Dense(200, init="he_normal"), ReLU(), Dense(3)])


@pytest.mark.parametrize("optimizer", [SGD(0.05), SGD(0.05, momentum=0.9), SGD(0.05, momentum=0.9, nesterov=True),
                                       Adam(1e-3)], ids=["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("dtype, tol", [("float32", F32), ("float64", F64)])
def test_mlp_trains_to_the_same_weights_on_both_paths(one_thread, optimizer, dtype, tol):
    X, y = _data((160,))
    fast, ref = train_both(mlp, X, y, dtype, optimizer=optimizer, loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, tol)
    np.testing.assert_allclose(fast.history["loss"], ref.history["loss"], **tol)
    if type(optimizer) is SGD and optimizer.momentum == 0:
        assert engine.Plan(fast).direct  # the direct step was taken (and proven equal above)


def test_batch_norm_dropout_l2_and_max_norm_agree(one_thread):
    X, y = _data((20,))

    def make():
        return snn.Sequential([Dense(64), BatchNorm(), ReLU(), Dropout(0.3, seed=5), Dense(32, constraint=MaxNorm(0.5)),
                               ReLU(), Dense(3)])

    fast, ref = train_both(make, X, y, "float64", optimizer=Adam(1e-2), loss="softmax_cross_entropy",
                           regularizer=L2(1e-3))
    assert_same_weights(fast, ref, F64)


def test_frozen_layers_agree(one_thread):
    X, y = _data((20,))

    def make():
        m = snn.Sequential([Dense(40), ReLU(), Dense(40), ReLU(), Dense(3)])
        m.build((20,))
        m.layers[0].trainable = False
        return m

    fast, ref = train_both(make, X, y, "float32", optimizer=SGD(0.1, momentum=0.9), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F32)
    snn.set_seed(0)
    start = make().layers[0].params["W"]
    for m in (fast, ref):
        np.testing.assert_array_equal(m.layers[0].params["W"], start)  # never moved


def cnn():
    return snn.Sequential([Conv2D(4, 3, padding="same", use_bias=False), BatchNorm2D(), ReLU(), MaxPool2D(2), Flatten(), Dense(16),
                           ReLU(), Dense(3)])


def test_cnn_on_two_threads_agrees_with_the_reference(split):
    X, y = _data((1, 8, 8), n=64)
    fast, ref = train_both(cnn, X, y, "float64", optimizer=Adam(1e-2), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F64)


# -- a custom layer and a custom optimizer written to the documented contract -----------------------
class Square(Layer):
    """``y = x * x``: only ``forward(x, training)`` and ``backward(dy)``, as documented."""

    def forward(self, x, training=False):
        self._cache = x if training else None
        return x * x

    def backward(self, dy):
        return 2 * self._require_cache() * dy


class Scale(Layer):
    """``y = x * s`` with a learned vector ``s``: parameters made in ``build``, gradients in ``backward``."""

    weight_keys = ("s",)

    def build(self, input_shape, dtype):
        self.params = {"s": np.ones(input_shape, dtype)}
        self.grads = {"s": np.zeros(input_shape, dtype)}
        super().build(input_shape, dtype)

    def forward(self, x, training=False):
        self.ensure_built(x)
        self._cache = x if training else None
        return x * self.params["s"]

    def backward(self, dy):
        x = self._require_cache()
        self.grads["s"][...] = (dy * x).sum(axis=0)
        return dy * self.params["s"]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_custom_layer_works_first_middle_and_last_on_both_paths(one_thread, where, tmp_path):
    X, y = _data((6,))

    def make():
        body = {"first": [Scale(), Dense(8), Square(), Dense(3)],
                "middle": [Dense(8), Scale(), Square(), Dense(3)],
                "last": [Dense(8), ReLU(), Dense(3), Scale()]}[where]
        return snn.Sequential(body)

    fast, ref = train_both(make, X, y, "float64", optimizer=SGD(0.01, momentum=0.5), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F64)
    assert check_layer(Square(), np.random.default_rng(0).standard_normal((4, 3))).passed
    assert check_layer(Scale(), np.random.default_rng(0).standard_normal((4, 3))).passed
    from scratchnn.layers import LAYERS

    register(Square)
    register(Scale)
    try:
        fast.save(tmp_path / "m.npz")
        back = snn.load(tmp_path / "m.npz")
        np.testing.assert_array_equal(back.predict(X), fast.predict(X))
    finally:
        del LAYERS["Square"], LAYERS["Scale"]


class HalfStepSGD(snn.optimizers.Optimizer):
    """An optimizer that overrides only ``step``: ``p -= lr * g / 2``."""

    def step(self, params, grads):
        self.iterations += 1
        for k, p in params.items():
            p -= self.lr * 0.5 * grads[k]


def test_an_optimizer_overriding_only_step_trains_an_mlp_and_a_two_thread_cnn(split):
    X, y = _data((160,))
    fast, ref = train_both(mlp, X, y, "float64", optimizer=HalfStepSGD(0.05), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F64)
    assert fast.optimizer.iterations == ref.optimizer.iterations == 36
    X, y = _data((1, 8, 8), n=64)
    fast, ref = train_both(cnn, X, y, "float64", optimizer=HalfStepSGD(0.05), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F64)


def test_predict_on_both_paths_agrees(one_thread):
    X, _ = _data((1, 8, 8), n=30)
    snn.set_seed(0)
    m = cnn()
    m.build((1, 8, 8))
    np.testing.assert_array_equal(m._infer(X, fast=True), m._infer(X, fast=False))


def test_unknown_engine_is_refused():
    m = mlp().compile("sgd")
    X, y = _data((160,))
    with pytest.raises(ValueError, match="engine must be 'fast' or 'reference'"):
        m.fit(X, y, engine="turbo", verbose=0)


# -- what the review of the engine found -------------------------------------------------------------
class NewGradArray(Scale):
    """Puts a new array into ``grads`` at every backward (the contract allows it)."""

    def backward(self, dy):
        x = self._require_cache()
        self.grads["s"] = (dy * x).sum(axis=0)
        return dy * self.params["s"]


def test_a_layer_that_replaces_its_grads_array_is_stepped_with_the_new_one(one_thread):
    X, y = _data((6,))
    fast, ref = train_both(lambda: snn.Sequential([Dense(8), NewGradArray(), Dense(3)]), X, y, "float64",
                           optimizer=SGD(0.05, momentum=0.9), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F64)


class MeanCentering(Layer):
    """Subtracts the batch mean: couples the samples of a batch, so it must never be split."""

    def forward(self, x, training=False):
        self._cache = True
        return x - x.mean(axis=0)

    def backward(self, dy):
        return dy - dy.mean(axis=0)


class FrozenStatsBN(BatchNorm2D):
    """A user's batch norm variant: its own code, never the library's synchronized kernel."""

    def forward(self, x, training=False):
        return super().forward(x, training=False)

    def backward(self, dy):
        return dy * (self.params["gamma"] / np.sqrt(self.buffers["running_var"] + self.eps))[None, :, None, None]


@pytest.mark.parametrize("layer", [MeanCentering, FrozenStatsBN])
def test_batches_are_split_only_across_layers_known_to_allow_it(split, layer):
    X, y = _data((1, 8, 8), n=64)

    # a bias before mean centering has no gradient but rounding noise, which Adam divides by its own
    # noise into steps of ~1e-9 that differ between the paths (seen on an AVX-512 host): no bias there
    bias = layer is not MeanCentering

    def make():
        return snn.Sequential([Conv2D(4, 3, padding="same", use_bias=bias), layer(), ReLU(), Flatten(), Dense(3)])

    fast, ref = train_both(make, X, y, "float64", optimizer=Adam(1e-2), loss="softmax_cross_entropy")
    assert not engine.splittable(fast)
    assert_same_weights(fast, ref, F64)


class KeepsItsGradient(Layer):
    """A user's layer that keeps the input gradient it returns (allowed: only writing into dy is not)."""

    def forward(self, x, training=False):
        self._cache = True
        return x.copy()

    def backward(self, dy):
        self.kept = dy * 1.0
        return self.kept


def test_batch_norm_overwrites_only_gradients_of_the_librarys_own_layers(rng, one_thread):
    """The engine's batch norm computes its input gradient in its dy when the layer above is one of the
    library's (fresh arrays nobody keeps), never a user's layer or a user's kernel."""
    assert kernels.returns_fresh(ReLU()) and kernels.returns_fresh(Dense(3)) and kernels.returns_fresh(MaxPool2D(2))
    assert not kernels.returns_fresh(KeepsItsGradient())
    X, y = _data((6,), n=32)

    def make():
        return snn.Sequential([Dense(8), BatchNorm(), KeepsItsGradient(), Dense(3)])

    fast, ref = train_both(make, X, y, "float64", optimizer=Adam(1e-2), loss="softmax_cross_entropy")
    assert_same_weights(fast, ref, F64)
    dy = rng.standard_normal((4, 8))
    plan = engine.Plan(fast)  # batch norm's forward and backward as the engine runs them
    plan.forward[1](rng.standard_normal((4, 8)), training=True)
    fast.layers[2].forward(np.zeros((4, 8)), training=True)
    kept = fast.layers[2].backward(dy)
    plan.backward[-2](kept)
    np.testing.assert_array_equal(fast.layers[2].kept, dy)  # the user's kept gradient is intact
    saved = kernels.BACKWARD[ReLU] if ReLU in kernels.BACKWARD else None
    try:  # a kernel of the user's for a library class: its results are not the library's to overwrite
        kernels.register_kernel(ReLU, backward=lambda layer, dy, need_dx, step: layer.backward(dy))
        assert not kernels.returns_fresh(ReLU())
    finally:
        if saved is None:
            kernels.BACKWARD.pop(ReLU)
            kernels.DIRECT_KEYS.pop(ReLU)
        else:
            kernels.BACKWARD[ReLU] = saved
    assert kernels.returns_fresh(ReLU())


class _Tagged(np.ndarray):
    pass


class KeepsATaggedGradient(KeepsItsGradient):
    """Keeps the gradient it returns, as an ndarray subclass (which batch norm's kernel copies)."""

    def backward(self, dy):
        self.kept = (dy * 1.0).view(_Tagged)
        return self.kept


def test_batch_norm_never_overwrites_a_kept_gradient_of_an_array_subclass(rng, one_thread):
    m = snn.Sequential([Dense(8), BatchNorm(), KeepsATaggedGradient(), Dense(3)])
    m.compile("adam", "softmax_cross_entropy")
    m.build((6,))
    plan = engine.Plan(m)
    plan.forward[1](rng.standard_normal((4, 8)), training=True)
    m.layers[2].forward(np.zeros((4, 8)), training=True)
    dy = rng.standard_normal((4, 8))
    plan.backward[-2](m.layers[2].backward(dy))
    np.testing.assert_array_equal(np.asarray(m.layers[2].kept), dy)


def test_a_users_backward_kernel_for_batch_norm_is_used(one_thread):
    calls = []

    def mine(layer, dy, need_dx, step):
        calls.append(len(dy))
        return layer.backward(dy)

    saved = kernels.BACKWARD[BatchNorm]
    try:
        kernels.register_kernel(BatchNorm, forward=lambda layer, x, training: layer.forward(x, training), backward=mine)
        X, y = _data((6,), n=32)
        m = snn.Sequential([Dense(8), BatchNorm(), ReLU(), Dense(3)]).compile(Adam(1e-2), "softmax_cross_entropy")
        m.fit(X, y, epochs=1, batch_size=8, verbose=0)
    finally:
        kernels.FORWARD[BatchNorm], kernels.BACKWARD[BatchNorm] = kernels.batchnorm_forward, saved
    assert calls == [8, 8, 8, 8]


class FortranOrder(Layer):
    """A sample-wise layer of the user's whose output is Fortran-ordered, as ``(W @ x.T).T`` is."""

    def forward(self, x, training=False):
        self._cache = True
        return np.asfortranarray(x * 1.0)

    def backward(self, dy):
        return dy * 1.0


def test_shares_of_a_split_batch_in_different_layouts_take_the_same_batch_norm_path(split):
    """A one-sample share of a Fortran-ordered batch is C-contiguous, the others are not: every thread
    must still make the same exchanges."""
    kernels.register_kernel(FortranOrder, sample_wise=True)
    try:
        X, y = _data((6,), n=11)  # batches of 8 and 3: the 3 split as 1 + 2
        fast, ref = train_both(lambda: snn.Sequential([Dense(8), FortranOrder(), BatchNorm(), ReLU(), Dense(3)]), X, y,
                               "float64", optimizer=Adam(1e-2), loss="softmax_cross_entropy")
        assert_same_weights(fast, ref, F64)
    finally:
        kernels.SAMPLE_WISE.discard(FortranOrder)


class KeepsItsOutput(Layer):
    """A user's layer that returns (at inference too) an array it keeps."""

    def forward(self, x, training=False):
        self.kept = x * 1.0
        return self.kept

    def backward(self, dy):
        return dy * 1.0


def test_inference_applies_relu_in_place_only_to_arrays_of_its_own(rng, one_thread):
    """At inference a ReLU overwrites its input when the layer before computed it (no new array per
    layer), never the caller's input (through Flatten or Dropout) nor what a user's layer keeps."""
    from scratchnn.layers import Flatten, Dropout

    def in_place(model):
        return [getattr(f, "func", None) is kernels.relu_in_place for f in engine._inference_fns(model.layers)]

    m = snn.Sequential([Flatten(), ReLU(), Dense(8), ReLU(), Dropout(0.5), Flatten(), ReLU(), KeepsItsOutput(), ReLU(),
                        Dense(3)])
    m.compile("sgd", "softmax_cross_entropy")
    X = rng.standard_normal((40, 2, 3)).astype(np.float32)
    m.build(X.shape[1:])
    assert in_place(m) == [False, False, False, True, False, False, True, False, False, False]
    before = X.copy()
    out = m.predict_logits(X)
    np.testing.assert_array_equal(X, before)  # the caller's input is intact
    np.testing.assert_allclose(out, m._infer(X, fast=False), rtol=1e-6, atol=1e-6)  # the plain layers' result
    kept = m.layers[7].kept.copy()
    m.predict_logits(X)
    np.testing.assert_array_equal(m.layers[7].kept, kept)  # the user's layer keeps what it returned
    first = snn.Sequential([ReLU(), Dense(3)]).compile("sgd", "mse")
    first.build((5,))
    assert in_place(first) == [False, False]


def test_a_refused_step_leaves_the_weights_alone_with_plain_sgd(one_thread):
    from scratchnn.engine import blas

    snn.set_default_dtype("float64")
    try:
        snn.set_seed(0)
        m = snn.Sequential([Dense(256), ReLU(), Dense(4, regularizer=L2(1e308))]).compile(SGD(0.1), "softmax_cross_entropy")
        X, y = _data((200,), n=32)
        m.build((200,))
        assert engine.Plan(m).direct or not blas.available()
        before = {k: v.copy() for k, v in m.parameters().items()}
        with pytest.raises(snn.TrainingDivergedError):
            m.fit(X, y, epochs=1, batch_size=32, verbose=0)
        for k, v in m.parameters().items():
            np.testing.assert_array_equal(v, before[k])
    finally:
        snn.set_default_dtype("float32")


@pytest.mark.parametrize("pool", [dict(pool_size=2), dict(pool_size=3, stride=2, padding=1)], ids=["tiled", "overlapping"])
def test_relu_then_max_pool_runs_swapped_with_the_same_values_and_gradients(pool):
    """The plan runs ReLU -> MaxPool2D as MaxPool2D -> ReLU; windows of negatives, zeros and exact ties
    give the same output and input gradient as the layers in their order."""
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(3, 2, 6, 6)).astype(np.float64)  # many ties, all-negative windows
    x[0, 0] = -1.0
    conv = Conv2D(2, 1, in_channels=2, use_bias=False)  # the identity: its output is x
    conv.params["W"] = np.eye(2).reshape(2, 2, 1, 1)
    conv.grads["W"] = np.zeros((2, 2, 1, 1))
    model = snn.Sequential([conv, ReLU(), MaxPool2D(**pool), Flatten()])
    model.compile(SGD(0.1), "mse")
    model.build(x.shape[1:])
    plan = engine.Plan(model)
    assert plan.forward[1] is not model.layers[1].forward  # swapped
    out = x
    for f in plan.forward:
        out = f(out, training=True)
    dy = rng.standard_normal(out.shape)
    d = dy
    for f in plan.backward[:-1]:  # down to the gradient at the ReLU's input
        d = f(d)
    ref = snn.Sequential([ReLU(), MaxPool2D(**pool), Flatten()])
    ref.build(x.shape[1:])
    want = ref.forward(x, training=True)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(d, ref.backward(dy))


# -- the epoch's loss and accuracy, summed once per epoch (engine/record.py) --------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_kernel_records_each_samples_terms(rng, dtype):
    z = (rng.standard_normal((7, 4)) * 3).astype(dtype)
    y = rng.integers(0, 4, 7)
    loss = SoftmaxCrossEntropy()
    value, grad = kernels.softmax_cross_entropy(loss, z.copy(), y)
    s, zy = np.empty(7, dtype), np.empty(7, dtype)
    probe, grad2 = kernels.softmax_cross_entropy(loss, z.copy(), y, rows=(s, zy))
    np.testing.assert_array_equal(grad2, grad)
    per_sample = [loss(z[i:i + 1].copy(), y[i:i + 1])[0] for i in range(7)]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else F64
    np.testing.assert_allclose(np.log(s) - zy, per_sample, **tol)
    np.testing.assert_allclose(np.mean(np.log(s) - zy), value, **tol)
    assert np.isfinite(probe)


@pytest.mark.parametrize("bad, finite", [((0, 1), False),  # NaN anywhere in the row
                                         ((np.inf, 1), False), ((np.inf, 0), False),  # +inf at or off the target
                                         ((-np.inf, 0), False),  # -inf at the target: the loss is +inf
                                         ((-np.inf, 1), True)])  # -inf elsewhere: probability 0, a finite loss
def test_the_records_probe_is_finite_exactly_when_the_loss_is(bad, finite):
    value, col = bad
    z = np.zeros((3, 3))
    z[1, 1 + col] = np.nan if value == 0 else value
    y = np.array([2, 1, 0])
    s, zy = np.empty(3), np.empty(3)
    with np.errstate(invalid="ignore"):
        probe, _ = kernels.softmax_cross_entropy(SoftmaxCrossEntropy(), z, y, rows=(s, zy))
        plain = SoftmaxCrossEntropy()(z.copy(), y)[0]
    assert np.isfinite(probe) == finite == np.isfinite(plain)


class BatchLog(snn.callbacks.Callback):
    def __init__(self):
        self.rows = []

    def on_batch_end(self, batch, loss, hits, size):
        self.rows.append((batch, loss, hits, size))


def fit_logged(make, X, y, path, log, **compile_kw):
    import copy

    snn.set_default_dtype("float64")
    try:
        snn.set_seed(0)
        m = make()
        m.compile(**copy.deepcopy(compile_kw))
        m.fit(X, y, epochs=2, batch_size=8, verbose=0, seed=3, engine=path, callbacks=[log] if log else None)
        return m
    finally:
        snn.set_default_dtype("float32")


@pytest.mark.parametrize("case", ["mlp", "split cnn"])
def test_recorded_epoch_and_batch_metrics_equal_the_reference_steps(case, request):
    """The default engine sums loss and accuracy once per epoch (or per batch when a callback reads
    them): the same figures as the reference path's per-step values, penalty and a short last batch
    (100 = 12 x 8 + 4 samples) included."""
    if case == "mlp":
        request.getfixturevalue("one_thread")
        X, y = _data((6,), n=100)
        make = lambda: snn.Sequential([Dense(16, regularizer=L2(1e-2)), ReLU(), Dense(3)])  # noqa: E731
    else:
        request.getfixturevalue("split")
        X, y = _data((1, 8, 8), n=100)
        make = cnn
    kw = dict(optimizer=Adam(1e-2), loss="softmax_cross_entropy")
    ref_log, fast_log = BatchLog(), BatchLog()
    ref = fit_logged(make, X, y, "reference", ref_log, **kw)
    fast = fit_logged(make, X, y, "fast", fast_log, **kw)
    quiet = fit_logged(make, X, y, "fast", None, **kw)  # no batch callback: only the epoch's sums
    assert engine.recordable(fast, (), y.dtype)
    assert [r[0::2] for r in fast_log.rows] == [r[0::2] for r in ref_log.rows]  # batch, hits, size
    np.testing.assert_allclose([r[1] for r in fast_log.rows], [r[1] for r in ref_log.rows], **F64)
    for m in (fast, quiet):
        np.testing.assert_allclose(m.history["loss"], ref.history["loss"], **F64)
        assert m.history["accuracy"] == ref.history["accuracy"]
    assert_same_weights(quiet, ref, F64)


def test_one_hot_targets_and_other_losses_are_summed_step_by_step(one_thread):
    X, y = _data((6,), n=40)
    onehot = np.eye(3)[y]
    for target, loss in ((onehot, "softmax_cross_entropy"), (onehot, "mse")):
        fast, ref = train_both(lambda: snn.Sequential([Dense(8), ReLU(), Dense(3)]), X, target, "float64",
                               optimizer=SGD(0.1), loss=loss)
        assert not engine.recordable(fast, target.shape[1:], target.dtype)
        np.testing.assert_allclose(fast.history["loss"], ref.history["loss"], **F64)
        assert fast.history["accuracy"] == ref.history["accuracy"]


def test_only_a_batch_callback_asks_for_the_batchs_metrics():
    """fit's own progress display never asks for a batch's loss: the bar reads the epoch's running
    sums when it shows them, the lines only the epoch's logs."""
    from scratchnn.callbacks import CallbackList, History, ProgressBar

    for verbose in (0, 1, 2):
        cbs = CallbackList(None, History(), verbose=verbose)
        assert not cbs.batch_hooks and cbs.per_batch == (verbose == 1)
    assert len(CallbackList([BatchLog()], History(), verbose=0).batch_hooks) == 1
    assert len(CallbackList([ProgressBar()], History(), verbose=0).batch_hooks) == 1  # a user's own bar


class CountingRecord:
    """Wraps a runner's metrics, counting what is read."""

    def __init__(self, inner):
        self.inner, self.batches, self.epochs = inner, 0, 0

    def batch(self):
        self.batches += 1
        return self.inner.batch()

    def epoch(self):
        self.epochs += 1
        self.last = self.inner.epoch()
        return self.last


def test_the_progress_bar_shows_the_running_loss_and_reads_it_about_20_times_an_epoch(monkeypatch, capsys):
    import io

    from scratchnn.callbacks import ProgressBar

    X, y = _data((6,), n=400)  # 50 steps of 8
    counts = []
    original = ProgressBar.tick

    def tick(self, batch, size, metrics):
        if not counts or counts[-1].inner is not metrics:
            counts.append(CountingRecord(metrics))
        original(self, batch, size, counts[-1])
        shown.append(self._pbar.postfix)

    shown = []
    monkeypatch.setattr(ProgressBar, "tick", tick)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    m = snn.Sequential([Dense(8), ReLU(), Dense(3)]).compile(SGD(0.1), "softmax_cross_entropy")
    m.fit(X, y, epochs=1, batch_size=8, verbose=1)
    assert counts[0].batches == 0 and counts[0].epochs == 25  # at batches 0, 2, ..., 48 (50 // 20 = 2)
    loss, hits = counts[0].last  # the running sums after batch 48: 392 samples
    assert shown[-1] == f"acc={hits / 392:.4f}, loss={loss / 392:.4f}"
    assert abs(m.history["loss"][0] - loss / 392) < 0.05  # close to the epoch's figure, not equal


def test_a_float32_loss_that_overflows_is_refused_on_both_paths():
    """Eight samples of loss 1e38: their float32 mean overflows on the reference path, and the
    engine, which sums the epoch in float64, refuses the same step."""
    X = np.zeros((8, 2), np.float32)
    X[:, 0] = 1
    y = np.ones(8, np.int64)
    for path in ("reference", "fast"):
        m = snn.Sequential([Dense(3, use_bias=False)]).compile(SGD(0.01), "softmax_cross_entropy")
        m.build((2,))
        W = m.layers[0].params["W"]
        W[:] = 0
        W[0, 0] = 1e38
        with pytest.warns(RuntimeWarning), pytest.raises(snn.TrainingDivergedError, match="inf"):
            m.fit(X, y, epochs=1, batch_size=8, verbose=0, engine=path)
        assert W[0, 0] == np.float32(1e38) and not W[0, 1:].any()  # the step was not taken


def test_a_long_epoch_folds_its_record_and_keeps_its_memory(one_thread, monkeypatch):
    from scratchnn.engine import record

    monkeypatch.setattr(record, "CAPACITY", 20)  # 100 samples in batches of 8: folded every 2-3 batches
    X, y = _data((6,), n=100)
    make = lambda: snn.Sequential([Dense(16), ReLU(), Dense(3)])  # noqa: E731
    kw = dict(optimizer=SGD(0.1, momentum=0.9), loss="softmax_cross_entropy")
    ref_log, fast_log = BatchLog(), BatchLog()
    ref = fit_logged(make, X, y, "reference", ref_log, **kw)
    fast = fit_logged(make, X, y, "fast", fast_log, **kw)
    np.testing.assert_allclose([r[1] for r in fast_log.rows], [r[1] for r in ref_log.rows], **F64)
    assert [r[2] for r in fast_log.rows] == [r[2] for r in ref_log.rows]
    np.testing.assert_allclose(fast.history["loss"], ref.history["loss"], **F64)
    assert fast.history["accuracy"] == ref.history["accuracy"]
    eng = engine.FastEngine(fast, 8, (6,), (), y.dtype, samples=10**7)
    assert len(eng.metrics.s) == 20  # not 10 million rows
