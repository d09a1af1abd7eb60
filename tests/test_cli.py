import json
import os
import subprocess
import sys

import numpy as np
import pytest

import scratchnn
from scratchnn import cli
from scratchnn.model import Sequential

from helpers import write_mnist_files

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def train(tmp_path, *extra, out="run"):
    args = ["train", "--dataset", "spiral", "--model", "mlp", "--epochs", "3", "--val-size", "0.2",
            "--out", str(tmp_path / out), "--quiet", *extra]
    return cli.main(args), tmp_path / out


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    code, out = train(tmp_path)
    assert code == 0
    names = set(os.listdir(out))
    assert {"config.json", "metrics.json", "metrics.csv", "model.npz", "checkpoint.npz", "plots"} <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]["val_accuracy"]) == 3 and 0 <= metrics["test"]["accuracy"] <= 1
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,loss,accuracy,val_loss")
    plots = set(os.listdir(out / "plots"))
    assert {"curves.png", "confusion_matrix.png", "decision_boundary.png"} <= plots
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["settings"]["optimizer"] == "sgd" and cfg["settings"]["batch_size"] == 32


def test_options_override_the_preset(tmp_path):
    code, out = train(tmp_path, "--optimizer", "adam", "--lr", "0.003", "--batch-size", "16", "--l2", "1e-4",
                      "--schedule", "exponential", "--no-plots")
    assert code == 0
    s = json.loads((out / "config.json").read_text())["settings"]
    assert (s["optimizer"], s["lr"], s["batch_size"], s["l2"], s["schedule"]) == ("adam", 0.003, 16, 1e-4, "exponential")
    m = scratchnn.load(out / "model.npz")
    assert type(m.layers[1].regularizer).__name__ == "L2"


def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    code, full = train(tmp_path, "--epochs", "4", "--no-plots", out="full")
    assert code == 0
    from scratchnn.engine import FastEngine

    original = FastEngine.step

    def interrupt_in_epoch_3(self, xb, yb, classify=True, epoch=0, batch=0):
        if (epoch, batch) == (2, 2):
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of the third epoch
        return original(self, xb, yb, classify, epoch, batch)

    monkeypatch.setattr(FastEngine, "step", interrupt_in_epoch_3)
    code, part = train(tmp_path, "--epochs", "4", "--no-plots", out="part")
    assert code == cli.EXIT_INTERRUPTED
    assert "--resume" in capsys.readouterr().err
    assert (part / "interrupted.npz").exists()
    monkeypatch.setattr(FastEngine, "step", original)
    assert cli.main(["train", "--resume", str(part), "--quiet", "--no-plots"]) == 0
    a = np.load(full / "checkpoint.npz")
    b = np.load(part / "checkpoint.npz")
    weights = [k for k in a.files if k.startswith("param/")]
    assert weights
    for k in weights:
        np.testing.assert_array_equal(a[k], b[k])
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((part / "metrics.json").read_text())
    assert ma["epochs"]["val_loss"] == mb["epochs"]["val_loss"]
    assert ma["test"] == mb["test"]


def test_model_file_toml(tmp_path):
    desc = tmp_path / "net.toml"
    desc.write_text('[[layers]]\ntype = "Dense"\nunits = 16\n[[layers]]\ntype = "Tanh"\n'
                    '[[layers]]\ntype = "Dense"\nunits = "classes"\n[train]\noptimizer = "adam"\nlr = 0.01\n')
    code, out = train(tmp_path, "--model", str(desc), "--no-plots")
    assert code == 0
    m = scratchnn.load(out / "model.npz")
    assert [type(l).__name__ for l in m.layers] == ["Dense", "Tanh", "Dense"]
    assert m.layers[-1].units == 3


def test_bad_model_file_names_the_layer(tmp_path, capsys):
    desc = tmp_path / "bad.toml"
    desc.write_text('[[layers]]\ntype = "Dense"\nunits = 4\n[[layers]]\ntype = "Relu"\n')
    assert train(tmp_path, "--model", str(desc))[0] == 2
    err = capsys.readouterr().err
    assert "layer 2 has unknown type 'Relu' (did you mean 'ReLU'?); valid types:" in err and "Traceback" not in err
    assert train(tmp_path, "--model", "resnet")[0] == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # no run folder for a run that never started


def test_predict_and_evaluate(tmp_path, capsys):
    _, out = train(tmp_path, "--no-plots")
    capsys.readouterr()
    np.save(tmp_path / "pts.npy", np.array([[0.1, 0.2], [-0.5, 0.3]], np.float32))
    assert cli.main(["predict", str(out / "model.npz"), str(tmp_path / "pts.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "pts.npy") + "[0]\t")
    assert cli.main(["evaluate", str(out / "model.npz"), "--json"]) == 0  # the model file records spiral
    res = json.loads(capsys.readouterr().out)
    assert res["dataset"] == "spiral" and 0 <= res["accuracy"] <= 1


def test_user_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path / "nope.npz"), "x.png"]) == 2
    assert "does not exist" in capsys.readouterr().err
    _, out = train(tmp_path, "--no-plots")
    np.save(tmp_path / "img.npy", np.zeros((5, 5), np.float32))
    assert cli.main(["predict", str(out / "model.npz"), str(tmp_path / "img.npy")]) == 2
    assert "array of shape (5, 5) does not fit the model's input: expected (2,)" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "nothing")]) == 2


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "scratchnn", "train", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--batch-size" in r.stdout and "--resume" in r.stdout


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST) and not os.environ.get("SCRATCHNN_DATA_DIR"),
                    reason="MNIST files not at hand")
def test_mnist_small_run_with_plots(tmp_path):
    data_dir = SHARED_MNIST if os.path.isdir(SHARED_MNIST) else None
    args = ["train", "--dataset", "mnist", "--model", "mlp-128-64", "--epochs", "2", "--limit", "3000", "--optimizer", "adam",
            "--lr", "0.002",
            "--val-size", "500", "--out", str(tmp_path / "m"), "--quiet"]
    if data_dir:
        args += ["--data-dir", data_dir]
    assert cli.main(args) == 0
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["test"]["accuracy"] > 0.8
    assert {"first_layer_weights.png", "misclassified.png"} <= set(os.listdir(tmp_path / "m" / "plots"))


def test_fashion_mnist_preset_code_path(tmp_path, monkeypatch):
    """The Fashion-MNIST run works end to end on small files in its folder layout."""
    write_mnist_files(tmp_path / "data" / "fashion-mnist")
    monkeypatch.setenv("SCRATCHNN_DATA_DIR", str(tmp_path / "data"))
    code = cli.main(["train", "--dataset", "fashion-mnist", "--model", "fashion-mlp", "--epochs", "1",
                     "--val-size", "50", "--out", str(tmp_path / "f"), "--quiet"])
    assert code == 0
    m = json.loads((tmp_path / "f" / "metrics.json").read_text())
    assert m["test"] is not None and len(m["epochs"]["loss"]) == 1
    assert json.loads((tmp_path / "f" / "config.json").read_text())["args"]["dataset"] == "fashion-mnist"


def test_cnn_run_plots_filters_and_feature_maps(tmp_path):
    write_mnist_files(tmp_path / "mnist", n_train=120, n_test=20)
    desc = tmp_path / "cnn.yaml"
    desc.write_text("layers:\n  - {type: Conv2D, filters: 4, kernel_size: 3, padding: same}\n  - {type: ReLU}\n"
                    "  - {type: MaxPool2D, pool_size: 2}\n  - {type: Conv2D, filters: 6, kernel_size: 3}\n"
                    "  - {type: ReLU}\n  - {type: GlobalAvgPool2D}\n  - {type: Dense, units: classes}\n"
                    "train: {optimizer: adam, lr: 0.01, batch_size: 16}\n")
    code = cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "mnist"), "--model", str(desc),
                     "--epochs", "1", "--val-size", "20", "--out", str(tmp_path / "c"), "--quiet"])
    assert code == 0
    assert {"conv1_filters.png", "feature_maps.png", "misclassified.png"} <= set(os.listdir(tmp_path / "c" / "plots"))
