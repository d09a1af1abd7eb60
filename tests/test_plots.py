import subprocess
import sys

import numpy as np
import pytest

from scratchnn import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_width=100, min_height=50):
    """The file is a readable PNG of at least the given size in pixels; returns (height, width)."""
    from matplotlib.image import imread

    assert path.exists()
    data = path.read_bytes()
    assert len(data) > 0
    assert data.startswith(PNG_SIGNATURE)
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height
    assert image[..., :3].std() > 0  # something was drawn
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was moved away
    return height, width


@pytest.fixture(autouse=True)
def _no_pyplot(monkeypatch):
    """Any `import matplotlib.pyplot` inside a plot function fails: pyplot's global state stays untouched."""
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)


def test_pyplot_guard_works():
    with pytest.raises(ImportError):
        import matplotlib.pyplot  # noqa: F401


def test_import_does_not_load_matplotlib():
    code = "import sys, scratchnn.plots; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- confusion matrix

def test_confusion_matrix_by_hand():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    expected = np.array([[1, 1, 0],
                         [0, 2, 1],
                         [1, 0, 0]])
    cm = plots.confusion_matrix(y_true, y_pred)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 6 and np.trace(cm) == 3


def test_confusion_matrix_n_classes_scores_and_one_hot():
    cm = plots.confusion_matrix([0, 1], [1, 1], n_classes=4)
    assert cm.shape == (4, 4) and cm[0, 1] == 1 and cm[1, 1] == 1 and cm.sum() == 2
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    one_hot = np.eye(2)[[1, 0, 0]]
    np.testing.assert_array_equal(plots.confusion_matrix(one_hot, scores), [[1, 1], [0, 1]])
    np.testing.assert_array_equal(plots.confusion_matrix([0.0, 1.0], [0, 1]), np.eye(2, dtype=np.int64))


@pytest.mark.parametrize("y_true, y_pred, kwargs, match", [
    ([0, 1, 2], [0, 1], {}, r"same length, received 3 and 2"),
    ([0, -1], [0, 1], {}, r"y_true must hold class ids >= 0"),
    ([0, 1.5], [0, 1], {}, r"y_true must hold integer class ids"),
    ([0, 3], [0, 1], {"n_classes": 2}, r"n_classes=2 but the labels contain class id 3"),
    (np.zeros((2, 2, 2)), [0, 1], {}, r"y_true must be class ids of shape \(N,\)"),
])
def test_confusion_matrix_bad_input(y_true, y_pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.confusion_matrix(y_true, y_pred, **kwargs)


def test_plot_confusion_matrix(tmp_path, rng):
    y_true = rng.integers(0, 5, 100)
    y_pred = np.where(rng.random(100) < 0.8, y_true, rng.integers(0, 5, 100))
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat"]
    out = plots.plot_confusion_matrix(y_true, y_pred, tmp_path / "cm.png", class_names=names, normalize=True)
    assert out == tmp_path / "cm.png"
    assert_png(out, 300, 300)


def test_plot_confusion_matrix_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="same length"):
        plots.plot_confusion_matrix([0, 1, 1], [0, 1], tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()


# ----------------------------------------------------------------------------- curves

def test_plot_history_full(tmp_path):
    history = {"loss": [1.0, 0.6, 0.4, 0.3], "accuracy": [0.6, 0.8, 0.85, 0.9],
               "val_loss": [1.1, 0.7, 0.5, 0.55], "val_accuracy": [0.55, 0.75, 0.82, 0.81]}
    h, w = assert_png(plots.plot_history(history, tmp_path / "h.png", title="MLP on MNIST"))
    assert w > h  # two panels side by side


def test_plot_history_object_without_accuracy_or_validation(tmp_path):
    class Run:
        history = {"loss": [0.9, 0.5, 0.2]}

    h, w = assert_png(plots.plot_history(Run(), tmp_path / "h.png"))
    assert w < 1.5 * h  # a single loss panel


def test_plot_history_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"no 'loss' or 'accuracy' curves.*\['lr'\]"):
        plots.plot_history({"lr": [0.1]}, tmp_path / "h.png")
    with pytest.raises(ValueError, match="history must be a dict"):
        plots.plot_history([0.5, 0.4], tmp_path / "h.png")


def test_plot_scalar_curves(tmp_path):
    x = [1e-4, 1e-3, 1e-2, 1e-1]
    curves = {"SGD": (x, [0.5, 0.8, 0.9, 0.2]), "Adam": (x, [0.85, 0.95, 0.6, 0.1])}
    path = tmp_path / "run" / "nested" / "s.png"  # parent folders are created; str paths work
    out = plots.plot_scalar_curves(curves, str(path), "learning rate", "val accuracy", title="LR sweep", logx=True)
    assert out == path
    assert_png(path)
    with pytest.raises(ValueError, match=r"curves\['a'\] needs 1-D x and y of equal length.*\(3,\) and \(2,\)"):
        plots.plot_scalar_curves({"a": ([1, 2, 3], [1, 2])}, tmp_path / "bad.png", "x", "y")
    with pytest.raises(ValueError, match="log x axis"):
        plots.plot_scalar_curves({"a": ([0, 1], [1, 2])}, tmp_path / "bad.png", "x", "y", logx=True)


def test_plot_decision_boundary(tmp_path, rng):
    X = rng.standard_normal((120, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 0] > 1.0)
    seen = []

    def predict(P):
        seen.append(P.dtype)
        return np.stack([-P[:, 0] * P[:, 1], P[:, 0] * P[:, 1], P[:, 0] - 1.0], axis=1)  # scores -> argmax

    assert_png(plots.plot_decision_boundary(predict, X, y, tmp_path / "d.png", resolution=60), 300, 300)
    assert seen[0] == np.float32  # the grid keeps the data's dtype
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\).*\(120, 3\)"):
        plots.plot_decision_boundary(predict, np.zeros((120, 3)), y, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="predict_fn must return one class per grid point"):
        plots.plot_decision_boundary(lambda P: np.zeros(5, int), X, y, tmp_path / "bad.png", resolution=10)


def test_plot_hparam_scatter(tmp_path, rng):
    results = [{"lr": float(lr), "batch_size": int(bs), "optimizer": "adam", "seed": 0,
                "val_accuracy": float(rng.random()), "val_loss": float(rng.random())}
               for lr, bs in zip(10 ** rng.uniform(-5, -1, 12), rng.choice([32, 64, 128], 12))]
    results.append({"lr": 1.0, "batch_size": 32, "optimizer": "sgd", "seed": 0, "val_accuracy": float("nan")})
    h, w = assert_png(plots.plot_hparam_scatter(results, tmp_path / "hp.png"))
    assert w > 2 * h * 0.9  # two panels side by side
    # strings, constants (seed) and other metrics (val_loss) are not hyperparameter panels
    assert plots._numeric_params(results, "val_accuracy") == ["lr", "batch_size"]
    assert plots._numeric_params([{"seed": 0, "acc": 1.0}], "acc") == ["seed"]
    with pytest.raises(ValueError, match="no run in results has a numeric 'test_accuracy'"):
        plots.plot_hparam_scatter(results, tmp_path / "bad.png", metric="test_accuracy")


# ----------------------------------------------------------------------------- images

@pytest.mark.parametrize("shape, expected", [
    ((12, 28, 28), (12, 28, 28)), ((12, 1, 28, 28), (12, 28, 28)), ((12, 28, 28, 1), (12, 28, 28)),
    ((12, 16, 16, 3), (12, 16, 16, 3)), ((12, 3, 16, 16), (12, 16, 16, 3)),
])
def test_image_layouts(rng, shape, expected):
    images, rgb = plots._to_images(rng.standard_normal(shape))
    assert images.shape == expected and rgb == (len(expected) == 4)
    if rgb:  # RGB floats outside [0, 1] are rescaled per image for imshow
        assert images.min() >= 0 and images.max() <= 1


def test_mosaic_places_tiles_row_major():
    tiles = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2)
    canvas = plots._mosaic(tiles, ncols=2, pad=1, title_px=1, fill=-1.0)
    assert canvas.shape == (2 * (1 + 2 + 1) - 1, 2 * (2 + 1) - 1)
    np.testing.assert_array_equal(canvas[1:3, 0:2], tiles[0])
    np.testing.assert_array_equal(canvas[1:3, 3:5], tiles[1])
    np.testing.assert_array_equal(canvas[5:7, 0:2], tiles[2])
    assert np.all(canvas[5:7, 3:5] == -1) and np.all(canvas[0] == -1)


def test_plot_image_grid(tmp_path, rng):
    images = rng.random((12, 3, 16, 16)).astype(np.float32)
    h, w = assert_png(plots.plot_image_grid(images, tmp_path / "g.png", titles=[f"#{i}" for i in range(12)],
                                            ncols=5))
    assert h > w * 0.4  # three rows of five


def test_plot_image_grid_bad_input(tmp_path, rng):
    with pytest.raises(ValueError, match=r"images must have shape \(N, H, W\).*received shape \(28, 28\)"):
        plots.plot_image_grid(rng.random((28, 28)), tmp_path / "g.png")
    with pytest.raises(ValueError, match="titles must have one entry per image, received 2 for 3"):
        plots.plot_image_grid(rng.random((3, 8, 8)), tmp_path / "g.png", titles=["a", "b"])


def test_plot_misclassified_flattened(tmp_path, rng):
    X = rng.random((40, 784)).astype(np.float32)
    y_true = rng.integers(0, 10, 40)
    y_pred = y_true.copy()
    y_pred[::3] = (y_pred[::3] + 1) % 10
    assert_png(plots.plot_misclassified(X, y_true, y_pred, tmp_path / "m.png", max_images=8))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert_png(plots.plot_misclassified(X[:, :700], y_true, y_pred, tmp_path / "m2.png", class_names=names,
                                        image_shape=(20, 35)))


def test_plot_misclassified_all_correct_and_bad_shapes(tmp_path, rng):
    X = rng.random((5, 64))
    assert_png(plots.plot_misclassified(X, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], tmp_path / "none.png"))
    with pytest.raises(ValueError, match="cannot guess the image shape of X rows with 70 features"):
        plots.plot_misclassified(rng.random((2, 70)), [0, 1], [1, 0], tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"image_shape \(8, 9\) holds 72 values but each row of X has 64"):
        plots.plot_misclassified(X, [0, 1, 0, 1, 0], [1, 0, 0, 1, 0], tmp_path / "bad.png", image_shape=(8, 9))
    with pytest.raises(ValueError, match="X and y_true must have the same length, received 5 and 2"):
        plots.plot_misclassified(X, [0, 1], [1, 0], tmp_path / "bad.png")


def test_plot_dense_weights(tmp_path, rng):
    W = rng.standard_normal((784, 100)).astype(np.float32) * 0.05
    h, w = assert_png(plots.plot_dense_weights(W, tmp_path / "w.png", max_units=64))
    assert h > 300 and w > 300
    with pytest.raises(ValueError, match=r"W must have shape \(in_features, units\), received shape \(784,\)"):
        plots.plot_dense_weights(W[:, 0], tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W\) with H \* W == in_features"):
        plots.plot_dense_weights(W[:700], tmp_path / "bad.png")


@pytest.mark.parametrize("channels", [3, 8])
def test_plot_conv_filters(tmp_path, rng, channels):
    W = rng.standard_normal((20, channels, 5, 5))
    assert_png(plots.plot_conv_filters(W, tmp_path / "f.png", max_filters=16))


def test_plot_conv_filters_wrong_ndim(tmp_path, rng):
    with pytest.raises(ValueError, match=r"W must have shape \(filters, in_channels, kh, kw\).*\(20, 5, 5\)"):
        plots.plot_conv_filters(rng.standard_normal((20, 5, 5)), tmp_path / "f.png")


def test_plot_feature_maps(tmp_path, rng):
    maps = [("conv1", rng.random((8, 28, 28))), ("conv2", rng.random((1, 32, 14, 14))), ("pool", rng.random((7, 7)))]
    h, w = assert_png(plots.plot_feature_maps(maps, tmp_path / "fm.png"))
    assert w > h  # three rows of up to 16 channels
    with pytest.raises(ValueError, match=r"feature maps of layer 'dense' must have shape \(C, H, W\).*\(10,\)"):
        plots.plot_feature_maps([("dense", np.zeros(10))], tmp_path / "bad.png")


