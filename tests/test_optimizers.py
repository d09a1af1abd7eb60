import numpy as np
import pytest

from scratchnn import optimizers
from scratchnn.optimizers import SGD, AdaGrad, Adam, AdamW, RMSprop
from scratchnn.schedules import StepDecay

G = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]


def run(opt, p0=(1.0, 2.0)):
    p = np.array(p0)
    out = []
    for g in G:
        opt.step({"w": p}, {"w": g.copy()})
        out.append(p.copy())
    return out


def test_sgd_plain():
    out = run(SGD(lr=0.1))
    np.testing.assert_allclose(out[0], [0.9, 2.2])
    np.testing.assert_allclose(out[2], [1 - 0.1 * 0.5, 2 - 0.1 * 1.5])


def test_sgd_momentum_by_hand():
    mu, lr = 0.9, 0.1
    p, v = np.array([1.0, 2.0]), np.zeros(2)
    expected = []
    for g in G:
        v = mu * v + g
        p = p - lr * v
        expected.append(p)
    np.testing.assert_allclose(run(SGD(lr, momentum=mu)), expected)


def test_sgd_nesterov_by_hand():
    mu, lr = 0.9, 0.1
    p, v = np.array([1.0, 2.0]), np.zeros(2)
    expected = []
    for g in G:
        v = mu * v + g
        p = p - lr * (g + mu * v)
        expected.append(p)
    np.testing.assert_allclose(run(SGD(lr, momentum=mu, nesterov=True)), expected)


def test_adagrad_by_hand():
    lr, eps = 0.5, 1e-8
    p, c = np.array([1.0, 2.0]), np.zeros(2)
    expected = []
    for g in G:
        c = c + g * g
        p = p - lr * g / (np.sqrt(c) + eps)
        expected.append(p)
    np.testing.assert_allclose(run(AdaGrad(lr, eps)), expected)


def test_rmsprop_by_hand():
    lr, rho, eps = 0.01, 0.9, 1e-8
    p, c = np.array([1.0, 2.0]), np.zeros(2)
    expected = []
    for g in G:
        c = rho * c + (1 - rho) * g * g
        p = p - lr * g / (np.sqrt(c) + eps)
        expected.append(p)
    np.testing.assert_allclose(run(RMSprop(lr, rho, eps)), expected)


def test_adam_bias_correction_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p, m, v = np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)
    expected = []
    for t, g in enumerate(G, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
        expected.append(p)
    np.testing.assert_allclose(run(Adam(lr, b1, b2, eps)), expected, rtol=1e-12)
    # first step of Adam moves every coordinate by ~lr (the point of bias correction)
    np.testing.assert_allclose(np.abs(expected[0] - [1.0, 2.0]), 0.1, rtol=1e-6)


def test_adamw_decoupled_decay():
    lr, wd = 0.1, 0.5
    p = np.array([1.0, 2.0])
    a = run(AdamW(lr, weight_decay=wd))
    b = run(Adam(lr), p0=p * (1 - lr * wd))
    np.testing.assert_allclose(a[0], b[0])


def test_float32_state_stays_float32():
    p = np.ones(3, np.float32)
    opt = Adam(0.01)
    opt.step({"w": p}, {"w": np.ones(3, np.float32)})
    assert p.dtype == np.float32 and opt.state["w"]["m"].dtype == np.float32


def test_state_dict_round_trip():
    a = Adam(0.01)
    p = np.array([1.0, 2.0])
    a.step({"w": p}, {"w": np.array([0.1, 0.2])})
    b = Adam(0.01)
    b.load_state_dict(a.state_dict())
    p1, p2 = p.copy(), p.copy()
    a.step({"w": p1}, {"w": np.array([0.3, -0.1])})
    b.step({"w": p2}, {"w": np.array([0.3, -0.1])})
    np.testing.assert_array_equal(p1, p2)


def test_schedule_drives_lr():
    opt = SGD(StepDecay(0.1, drop=0.5, every=2))
    lrs = []
    for epoch in range(5):
        opt.set_epoch(epoch)
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("make,msg", [
    (lambda: SGD(lr=-1), "SGD: lr must be in"),
    (lambda: SGD(lr=float("nan")), "lr must be"),
    (lambda: SGD(0.1, momentum=1.0), "momentum must be in \\[0.0, 1.0\\)"),
    (lambda: SGD(0.1, nesterov=True), "nesterov=True needs momentum"),
    (lambda: Adam(beta1=1.2), "Adam: beta1"),
    (lambda: RMSprop(eps=0), "RMSprop: eps"),
])
def test_validation(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_get_by_name():
    assert isinstance(optimizers.get("adam"), Adam)
    mom = optimizers.get("nesterov", lr=0.05)
    assert mom.nesterov and mom.momentum == 0.9 and mom.lr == 0.05
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'; valid names: .*rmsprop"):
        optimizers.get("adamax")
