import numpy as np
import pytest

import scratchnn as snn
from scratchnn.datasets import load_spiral
from scratchnn.layers import Conv2D, Dense, Flatten, GlobalAvgPool2D, ReLU
from scratchnn.optimizers import SGD, Adam
from scratchnn.transfer import extract_features, freeze, new_head_model, set_trainable, unfreeze


@pytest.fixture
def pretrained():
    X, y = load_spiral(n_per_class=60, n_classes=3, seed=0)
    model = snn.Sequential([Dense(32, init="he_normal"), ReLU(), Dense(16, init="he_normal"), ReLU(), Dense(3)])
    model.compile(optimizer=Adam(0.01), loss="softmax_cross_entropy")
    model.fit(X, y, epochs=20, batch_size=32, verbose=0, seed=0)
    return model, X, y


def weights(layers):
    return {f"{l.name}.{k}": v.copy() for l in layers for k, v in l.params.items()}


def test_new_head_trains_only_the_head_and_leaves_the_frozen_base_unchanged(pretrained):
    base, X, y = pretrained
    original = weights(base.layers)
    model = new_head_model(base, [Dense(2)], n_drop=1)
    assert [l.trainable for l in model.layers] == [False, False, False, False, True]
    before = weights(model.layers)
    model.compile(optimizer=Adam(0.05), loss="softmax_cross_entropy")
    model.fit(X, (y > 0).astype(np.int64), epochs=5, batch_size=16, verbose=0, seed=0)
    after = weights(model.layers)
    head = model.layers[-1].name
    for key in before:
        if key.startswith(head + "."):
            assert not np.array_equal(before[key], after[key]), key
        else:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    # the optimizer never even saw the frozen parameters
    assert {k.split(".")[0] for k in model.optimizer.state} == {head}
    assert model.count_params(trainable_only=True) == 16 * 2 + 2
    # copy_base=True (default): the source model is untouched, and its layers are not shared
    for key, v in weights(base.layers).items():
        np.testing.assert_array_equal(v, original[key])
    assert all(a is not b for a, b in zip(model.layers, base.layers))
    assert "(frozen)" in model.summary(print_fn=None)


def test_fine_tuning_after_unfreeze_changes_the_base_but_not_the_source(pretrained):
    base, X, y = pretrained
    original = weights(base.layers)
    model = new_head_model(base, [Dense(3)], n_drop=1)
    changed = unfreeze(model, start=-3)
    assert [l.trainable for l in model.layers] == [False, False, True, True, True] and len(changed) == 3
    kept = weights(model.layers[:2])
    model.compile(optimizer=SGD(0.01), loss="softmax_cross_entropy")
    model.fit(X, y, epochs=2, batch_size=16, verbose=0, seed=0)
    np.testing.assert_array_equal(kept[f"{model.layers[0].name}.W"], model.layers[0].params["W"])
    assert not np.array_equal(original[f"{base.layers[2].name}.W"], model.layers[2].params["W"])
    np.testing.assert_array_equal(original[f"{base.layers[2].name}.W"], base.layers[2].params["W"])
    shared = new_head_model(base, [Dense(3)], n_drop=1, copy_base=False, freeze_base=False)
    assert shared.layers[0] is base.layers[0]


def test_extract_features_is_the_truncated_forward_pass(pretrained):
    base, X, _ = pretrained
    f = extract_features(base, X, n_drop=1)
    manual = X.astype(np.float32)
    for layer in base.layers[:-1]:
        manual = layer.forward(manual)
    assert f.shape == (len(X), 16)
    np.testing.assert_allclose(f, manual, rtol=1e-6)
    assert (f >= 0).all()  # the last hidden ReLU's outputs
    assert extract_features(base, X, n_drop=2).shape == (len(X), 16) and (extract_features(base, X, 2) < 0).any()


def test_freeze_and_errors():
    model = snn.Sequential([Dense(4), ReLU(), Dense(2)])
    with pytest.raises(RuntimeError, match="built"):
        extract_features(model, np.zeros((2, 3)))
    model.build((3,))
    assert len(freeze(model, stop=2)) == 2 and [l.trainable for l in model.layers] == [False, False, True]
    set_trainable(model, True)
    assert all(l.trainable for l in model.layers)
    with pytest.raises(ValueError, match="truncate: n must be in"):
        extract_features(model, np.zeros((2, 3)), n_drop=3)
    with pytest.raises(ValueError, match="head must be a non-empty list"):
        new_head_model(model, [])
    with pytest.raises(TypeError, match="Sequential"):
        freeze([Dense(2)])


def stripes(n, size, rng):
    """Noisy stripe textures filling the image: class 0 horizontal, class 1 vertical (period 2-3)."""
    y = rng.integers(0, 2, n)
    period, phase = rng.integers(2, 4, n), rng.integers(0, 4, n)
    i = np.arange(size)
    X = np.empty((n, 1, size, size), np.float32)
    for k in range(n):
        wave = ((i + phase[k]) % period[k] == 0).astype(np.float32)
        X[k, 0] = wave[:, None] if y[k] == 0 else wave[None, :]
    return X + 0.2 * rng.standard_normal(X.shape).astype(np.float32), y


def test_gap_cnn_classifies_images_of_a_size_it_was_not_trained_on():
    rng = np.random.default_rng(0)
    X, y = stripes(128, 10, rng)
    cnn = snn.Sequential([Conv2D(4, 3, padding=1), ReLU(), GlobalAvgPool2D(), Dense(2)])
    cnn.compile(optimizer=Adam(0.05), loss="softmax_cross_entropy")
    cnn.fit(X, y, epochs=8, batch_size=32, verbose=0, seed=0)
    assert cnn.evaluate(X, y)["accuracy"] > 0.95
    for size in (16, 24):  # GAP turns any feature map into one vector of 4 channel means
        Xb, yb = stripes(200, size, rng)
        assert cnn.evaluate(Xb, yb)["accuracy"] > 0.95, size
        assert extract_features(cnn, Xb, n_drop=1).shape == (200, 4)
    # a Flatten-based network cannot do this, and says so
    flat = snn.Sequential([Conv2D(2, 3, padding=1), ReLU(), Flatten(), Dense(2)])
    flat.build((1, 10, 10))
    with pytest.raises(ValueError, match="200 features"):
        flat.predict(Xb[:50, :, :16, :16])
