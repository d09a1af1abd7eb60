import csv
import json
import os

import numpy as np
import pytest

from scratchnn import cli
from scratchnn.experiments import STUDIES, DataUnavailable, run_experiment

MNIST = "/work/shared/data/mnist"
DATA_DIR = MNIST if os.path.isdir(MNIST) else None
PNG = b"\x89PNG\r\n\x1a\n"
SLOW = {"numpy-vs-torch", "transfer"}  # PyTorch's import, and two CNNs


def run_quick(name, tmp_path):
    try:
        return run_experiment(name, out_dir=tmp_path / name, quick=True, data_dir=DATA_DIR, verbose=False)
    except DataUnavailable as e:  # no MNIST and no scikit-learn on this machine
        pytest.skip(str(e))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in STUDIES])
def test_quick_study_writes_its_plot_and_table(name, tmp_path):
    res = run_quick(name, tmp_path)
    out = tmp_path / name
    assert (out / f"{name}.png").read_bytes()[:8] == PNG
    with open(out / f"{name}.csv") as f:
        table = list(csv.DictReader(f))
    doc = json.loads((out / f"{name}.json").read_text())
    assert len(table) == len(res.rows) == len(doc["rows"]) > 0
    assert doc["mode"] == "quick" and doc["study"] == name and doc["summary"] == res.summary and res.summary
    extra = [str(out / "misclassified_shirts.png")] if name == "fashion" else []
    assert sorted(res.files) == sorted([str(out / f"{name}.{ext}") for ext in ("png", "csv", "json")] + extra)
    check = CHECKS.get(name)
    if check:
        check({r[next(iter(r))]: r for r in res.rows} if name != "transfer" else res.rows, res)


def check_init(rows, res):
    assert rows["zeros"]["act_std_last"] == 0 and rows["zeros"]["grad_std_first"] == 0
    small, he = rows["small normal (0.01)"], rows["He normal"]
    assert small["act_std_last"] < 1e-4 * small["act_std_first"]  # vanishing
    assert 0.3 < he["act_std_last"] / he["act_std_first"] < 3  # preserved
    big = rows["large normal (1.0)"]
    assert big["act_std_last"] > 1e3 * big["act_std_first"]  # exploding
    assert he["val_accuracy"] > rows["zeros"]["val_accuracy"]


def check_regularization(rows, res):
    assert rows["L2 1e-2"]["mean_abs_weight"] < rows["none"]["mean_abs_weight"]
    assert rows["L1 1e-4"]["frac_weights_below_1e-3"] > rows["none"]["frac_weights_below_1e-3"]
    assert rows["max-norm 1"]["max_unit_norm"] <= 1.0 + 1e-5 < rows["none"]["max_unit_norm"]


def check_fashion(rows, res):
    acc = {r["dataset"]: r["test_accuracy"] for r in res.rows if r["class"] == "all"}
    assert acc["fashion-mnist"] < acc["mnist"] and "on MNIST but" in res.summary[0]
    shirt = next(r for r in res.rows if r["dataset"] == "fashion-mnist" and r["class"] == "Shirt")
    assert shirt["test_accuracy"] < acc["fashion-mnist"]  # the hardest class, as the lesson says
    assert res.meta["conclusion"].startswith(res.summary[0])


def check_capacity(rows, res):
    by = {(r["hidden_units"], r["l2"]): r for r in res.rows}
    assert by[(100, 0.0)]["train_accuracy"] > by[(1, 0.0)]["train_accuracy"] + 0.2


def check_torch(rows, res):
    torch_rows = [r for r in res.rows if r["framework"].startswith("PyTorch")]
    if not torch_rows:
        assert any("not installed" in line for line in res.summary)
        return
    ours = [r for r in res.rows if r["framework"].startswith("scratchnn")]
    for a, b in zip(ours, torch_rows):  # same weights, batches and steps: the same network comes out
        assert b["max_weight_difference"] < 1e-4 and b["epoch1_loss_difference"] < 1e-4
        assert abs(a["final_train_loss"] - b["final_train_loss"]) < 1e-4
        assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.01


def check_transfer(rows, res):
    parts = {r["part"] for r in rows}
    assert parts == {"mlp", "gap-cnn"}
    assert all(0 <= r["target_test_accuracy"] <= 1 for r in rows)
    assert 0 < res.meta["gap_feature_norm_ratio"] < 1.5


CHECKS = {"init": check_init, "regularization": check_regularization, "capacity": check_capacity,
          "numpy-vs-torch": check_torch, "transfer": check_transfer, "fashion": check_fashion}


def test_quick_mode_without_mnist_falls_back(tmp_path, monkeypatch):
    from scratchnn.datasets import DatasetNotFoundError
    from scratchnn.experiments import _common

    downloads = []

    def no_mnist(data_dir, download):
        downloads.append(download)
        raise DatasetNotFoundError("MNIST files not found")

    def no_sklearn():
        raise ImportError("no scikit-learn")

    monkeypatch.setattr(_common, "_mnist", no_mnist)
    monkeypatch.setattr(_common, "_digits", no_sklearn)
    res = run_experiment("optimizers", out_dir=tmp_path / "o", quick=True, verbose=False)
    assert res.meta["dataset"] == "spiral" and (tmp_path / "o" / "optimizers.png").exists()
    assert downloads == [False]  # quick mode never downloads
    with pytest.raises(DataUnavailable, match="needs images.*scikit-learn"):
        run_experiment("transfer", out_dir=tmp_path / "t", quick=True, verbose=False)
    with pytest.raises(DataUnavailable, match="needs MNIST"):
        run_experiment("init", out_dir=tmp_path / "i", quick=False, verbose=False)
    assert downloads[-1] is True


def test_unknown_study_is_named():
    with pytest.raises(ValueError, match="unknown experiment 'optimisers'; available: init"):
        run_experiment("optimisers")


def test_experiment_command(tmp_path, capsys):
    assert cli.main(["experiment", "capacity", "--quick", "--quiet", "--out", str(tmp_path / "cap")]) == 0
    assert "capacity.png" in capsys.readouterr().out
    assert (tmp_path / "cap" / "capacity.png").exists()
    rows = json.loads((tmp_path / "cap" / "capacity.json").read_text())["rows"]
    assert {r["hidden_units"] for r in rows} == {1, 3, 10, 100}
    assert np.isfinite([r["val_accuracy"] for r in rows]).all()
