"""scratchnn.blas.add_at_b (C += alpha A^T B through NumPy's BLAS) and the plain-SGD fit that uses it."""
import numpy as np
import pytest

import scratchnn as sn
from scratchnn.engine import blas
from scratchnn.engine.plan import Plan
from scratchnn.layers import Dense, ReLU
from scratchnn.optimizers import SGD, Adam
from scratchnn.regularizers import L1


def _operands(rng, k, m, n, dtype):
    return (rng.standard_normal((k, m)).astype(dtype), rng.standard_normal((k, n)).astype(dtype),
            rng.standard_normal((m, n)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,m,n", [(1, 7, 5), (32, 20, 9), (3, 1, 1), (64, 100, 200)])
def test_add_at_b_matches_numpy(dtype, k, m, n):
    rng = np.random.default_rng(k + m)
    a, b, c = _operands(rng, k, m, n, dtype)
    want = c.astype(np.float64) - 0.3 * (a.astype(np.float64).T @ b)
    blas.add_at_b(-0.3, a, b, c)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol)
    assert c.dtype == dtype


def test_numpy_wheel_blas_is_found():
    # NumPy's wheels bundle OpenBLAS with a CBLAS interface: the fast path must be taken here
    # (else a missing symbol would silently cost the plain-SGD speedup)
    from threadpoolctl import threadpool_info

    if not any(d.get("internal_api") == "openblas" for d in threadpool_info()):
        pytest.skip("NumPy is not linked to OpenBLAS here")
    assert blas.available(np.float32) and blas.available(np.float64)


def test_strided_rows_and_fallbacks():
    rng = np.random.default_rng(0)
    big = rng.standard_normal((10, 12)).astype(np.float32)
    a = big[:, :5]  # rows of 5 inside rows of 12: BLAS reads them through the leading dimension
    b = rng.standard_normal((10, 4)).astype(np.float32)
    c = np.zeros((5, 4), np.float32)
    blas.add_at_b(2.0, a, b, c)
    np.testing.assert_allclose(c, 2.0 * a.T @ b, rtol=1e-5, atol=1e-5)
    # not BLAS-able: transposed (column-strided) operand, mixed dtypes, an F-ordered output
    for a2, b2, c2 in [(np.asfortranarray(a), b, np.zeros((5, 4), np.float32)),
                       (a.astype(np.float64), b, np.zeros((5, 4), np.float32)),
                       (a, b, np.zeros((4, 5), np.float32).T)]:
        blas.add_at_b(2.0, a2, b2, c2)
        np.testing.assert_allclose(c2, 2.0 * a.T @ b, rtol=1e-5, atol=1e-5)


def _mlp(seed, dtype, reg=None):
    sn.set_seed(seed)
    return sn.Sequential([Dense(16, regularizer=reg), ReLU(), Dense(3)], dtype=dtype)


def test_plain_sgd_fit_steps_weights_in_backward_exactly_as_the_optimizer_would(monkeypatch):
    monkeypatch.setattr(blas, "MIN_DIRECT_SIZE", 0)  # every layer of this small net steps directly
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((96, 6)), rng.integers(0, 3, 96)
    direct = _mlp(0, np.float64).compile(SGD(0.2), "softmax_cross_entropy")
    direct.fit(X, y, epochs=3, batch_size=8, verbose=0, seed=5)
    assert not any(np.any(layer.grads.get("W", 0)) for layer in direct.layers)  # never written
    ref = _mlp(0, np.float64).compile(SGD(0.2), "softmax_cross_entropy")
    ref.fit(X, y, epochs=3, batch_size=8, verbose=0, seed=5, engine="reference")  # the optimizer's own update
    for k, p in ref.parameters().items():
        np.testing.assert_allclose(direct.parameters()[k], p, rtol=1e-10, atol=1e-12)
    assert direct.optimizer.iterations == ref.optimizer.iterations == 36
    out = direct.forward(X[:4], training=True)  # outside fit, backward fills the gradients
    direct.backward(direct.loss(out, y[:4])[1])
    assert np.abs(direct.layers[0].grads["W"]).sum() > 0


def test_direct_step_only_where_the_update_is_a_fixed_multiple_of_the_gradient_and_pays():
    sn.set_seed(0)
    model = sn.Sequential([Dense(256, regularizer=L1(1e-3)), ReLU(), Dense(256), ReLU(), Dense(3)])
    model.compile(SGD(0.1), "softmax_cross_entropy")
    model.build((300,))
    plan = Plan(model, direct=True)
    first, middle, last = model.layers[0], model.layers[2], model.layers[4]
    assert plan.direct == [middle, last]  # unregularized: stepped inside their backward
    assert f"{first.name}.W" in plan.params and f"{first.name}.b" in plan.params  # regularized: the optimizer's path
    assert not any(k.startswith((middle.name, last.name)) for k in plan.params)
    assert blas.worth_direct(middle.params["W"])  # 65,536 weights: one GEMM with beta = 1
    assert not blas.worth_direct(last.params["W"])  # 768: a ctypes call costs more than it saves (SGD's update)
    for opt in (SGD(0.1, momentum=0.9), Adam()):
        model.compile(opt, "softmax_cross_entropy")
        assert Plan(model, direct=True).direct == []

    class MySGD(SGD):  # an optimizer of one's own goes through its own step
        def step(self, params, grads):
            super().step(params, grads)

    model.compile(MySGD(0.1), "softmax_cross_entropy")
    assert Plan(model, direct=True).direct == []
