import csv
import json
import os

import numpy as np
import pytest

from scratchnn import cli
from scratchnn.experiments import SMOKE_TEST, STUDIES, DataUnavailable, conclusion_of, run_experiment

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
    # the lesson: one sentence from the run's own numbers, labelled as a smoke test, recomputable from the JSON
    assert doc["conclusion"] == res.conclusion == res.meta["conclusion"]
    assert res.conclusion.startswith(SMOKE_TEST + ". Measured: ") and len(res.conclusion) > len(SMOKE_TEST) + 40
    assert doc["smoke_test"] is True
    assert conclusion_of(name, doc["rows"], doc) == doc["conclusion"]
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
    assert res.summary[0] in res.conclusion and res.conclusion.startswith(SMOKE_TEST)


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


# -- the conclusion machinery --------------------------------------------------------------------
def test_finish_states_the_conclusion_everywhere(tmp_path, capsys):
    """One place prints the conclusion, writes it into the JSON and under the plot, and labels quick runs."""
    from scratchnn.experiments._common import Context

    def conclude(rows, meta):
        return f"the answer is {rows[0]['x']} after {meta['epochs']} epochs."

    for budget in ("quick", "default"):
        ctx = Context("demo", tmp_path / budget, budget=budget, conclude=conclude)
        fig, ax = ctx.figure(1, 1)
        ax[0, 0].plot([1, 2], [3, 4])
        res = ctx.finish([{"x": 42}], ["a summary line"], figure=fig, title="Demo", epochs=3)
        out = capsys.readouterr().out
        doc = json.loads((tmp_path / budget / "demo.json").read_text())
        sentence = "the answer is 42 after 3 epochs."
        assert doc["conclusion"] == res.conclusion and f"demo: {res.conclusion}" in out
        assert (tmp_path / budget / "demo.png").read_bytes()[:8] == PNG
        drawn = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
        assert sentence in drawn
        if budget == "quick":
            assert res.conclusion == f"{SMOKE_TEST}. Measured: {sentence}" and doc["smoke_test"] is True
            assert SMOKE_TEST in fig._suptitle.get_text() and fig._suptitle.get_text().startswith("Demo")
            assert SMOKE_TEST in out
        else:
            assert res.conclusion == sentence and doc["smoke_test"] is False and doc["mode"] == "default"
            assert fig._suptitle.get_text() == "Demo" and SMOKE_TEST not in out


def test_budgets_are_checked(tmp_path):
    from scratchnn.experiments._common import Context

    with pytest.raises(ValueError, match="unknown budget 'huge'; available: quick, default, full"):
        run_experiment("capacity", out_dir=tmp_path, budget="huge")
    with pytest.raises(ValueError, match="contradicts"):
        run_experiment("capacity", out_dir=tmp_path, quick=True, budget="full")
    ctx = Context("demo", tmp_path, budget="full")
    assert ctx.pick(1, 2, 3) == 3 and not ctx.quick


def _optimizer_rows(acc, noise=0.004):
    rows = []
    for name, a in acc.items():
        rows.append({"optimizer": name, "lr": 0.1, "val_accuracy": a - 0.05, "best_lr_for_optimizer": False,
                     "noise_vs_sgd": noise})
        rows.append({"optimizer": name, "lr": 0.3, "val_accuracy": a, "best_lr_for_optimizer": True,
                     "noise_vs_sgd": 0.0 if name == "SGD" else noise})
    return rows


OPT_META = {"epochs": 3, "train_samples": 10000, "val_samples": 2000, "learning_rates_per_optimizer": 4}


def test_optimizers_conclusion_does_not_claim_what_the_numbers_do_not_show():
    from scratchnn.experiments.optimization import conclusion

    both = conclusion(_optimizer_rows({"SGD": 0.90, "momentum 0.9": 0.94, "Adam": 0.95}), OPT_META)
    assert both.startswith("Momentum (94.0%) and Adam (95.0%) end ahead of plain SGD (90.0%) on equal budgets")
    assert "does not" not in both and both.endswith("the best is Adam at lr 0.3 (95.0%).")
    # plain SGD ahead of momentum (the user's --quick numbers): momentum is not said to win
    sgd_wins = conclusion(_optimizer_rows({"SGD": 0.75, "momentum 0.9": 0.71, "Adam": 0.79}), OPT_META)
    assert sgd_wins.startswith("Adam (79.0%) ends ahead of plain SGD (75.0%)")
    assert "momentum 71.0% (-4.0 points, noise +-0.4 points) does not" in sgd_wins
    assert "Momentum (" not in sgd_wins and "momentum (" not in sgd_wins
    # a lead of one image in 300 is noise
    tiny = conclusion(_optimizer_rows({"SGD": 0.750, "momentum 0.9": 0.7533, "Adam": 0.7533}, noise=0.009), OPT_META)
    assert tiny.startswith("Momentum and Adam do not end ahead of plain SGD (75.0%)")


def _reg_rows(none_val, best_val, noise, best_train=1.0):
    return [{"variant": "none", "train_accuracy": 1.0, "val_accuracy": none_val, "gap": 1.0 - none_val,
             "noise_vs_none": 0.0},
            {"variant": "L2 1e-3", "train_accuracy": 1.0, "val_accuracy": none_val, "gap": 1.0 - none_val,
             "noise_vs_none": 0.001},
            {"variant": "dropout 0.5", "train_accuracy": best_train, "val_accuracy": best_val,
             "gap": best_train - best_val, "noise_vs_none": noise}]


def test_regularization_conclusion_weighs_the_gain_against_the_noise():
    from scratchnn.experiments.regularization import conclusion

    meta = {"train_samples": 1000, "width": 512}
    won = conclusion(_reg_rows(0.885, 0.896, 0.003), meta)
    assert "a gap of 11.5 points; dropout 0.5 narrows it to 10.4 points and lifts validation accuracy by 1.1 " \
           "points (3.7x the noise" in won
    one_image = conclusion(_reg_rows(0.7467, 0.7500, 0.009), {"train_samples": 300, "width": 128})
    assert "no regularizer lifts validation accuracy by more than twice the noise: the best, dropout 0.5, " \
           "is +0.3 points (noise +-0.9 points)" in one_image and "narrows" not in one_image


def test_transfer_conclusion_says_when_the_cnn_did_not_learn():
    from scratchnn.experiments.transfer_study import conclusion

    rows = [{"part": "mlp", "method": m, "labels_per_class": 10, "subset": s, "target_test_accuracy": a + 0.01 * s}
            for s in range(3) for m, a in (("from scratch", 0.80), ("frozen layer 1 + new layers", 0.84),
                                           ("frozen layers 1-2 + new head", 0.70), ("+ fine-tuned end to end", 0.8))]
    cnn = {"digits 0-4, trained size": 0.2033, "digits 0-4, centered in larger image": 0.2033,
           "digits 0-4, random place in larger image": 0.2033,
           "digits 5-9, 10/class: pretrained GAP features + new head": 0.30,
           "digits 5-9, 10/class: same CNN from scratch": 0.1967}
    rows += [{"part": "gap-cnn", "method": m, "image_size": "36x36", "target_test_accuracy": a} for m, a in cnn.items()]
    meta = {"target_test_samples": 4861, "source_test_samples": 5139, "cnn_target_labels_per_class": 10}
    s = conclusion(rows, meta)
    assert "reaches 85.0% against 81.0% from scratch (+4.0 points" in s
    assert s.endswith("The GAP CNN did not learn digits 0-4 (20.3%, chance 20.0%), so its part shows nothing.")
    rows = [dict(r, target_test_accuracy=0.95) if r["method"] == "digits 0-4, trained size" else r for r in rows]
    assert "The GAP CNN learns digits 0-4 (95.0%, chance 20.0%)" in conclusion(rows, meta)


def test_numpy_vs_torch_without_pytorch_says_nothing_was_compared(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    res = run_quick("numpy-vs-torch", tmp_path)
    assert res.meta["torch_available"] is False
    assert "PyTorch is not installed (pip install torch), so nothing was compared" in res.conclusion
    assert "against PyTorch" not in res.conclusion


def test_experiment_command_prints_the_conclusion(tmp_path, capsys):
    assert cli.main(["experiment", "capacity", "--quick", "--out", str(tmp_path / "cap")]) == 0
    out = capsys.readouterr().out
    assert f"capacity: {SMOKE_TEST}. Measured: More hidden units" in out
    doc = json.loads((tmp_path / "cap" / "capacity.json").read_text())
    assert doc["conclusion"] in out


def test_experiment_command_quiet_still_states_the_conclusion_and_budgets_exclude_each_other(tmp_path, capsys):
    assert cli.main(["experiment", "capacity", "--quick", "--quiet", "--out", str(tmp_path / "cap")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"capacity: {SMOKE_TEST}. Measured: ")
    assert cli.main(["experiment", "capacity", "--quick", "--full"]) == 2
    assert "argument --full: not allowed with argument --quick" in capsys.readouterr().err


def test_fashion_quick_never_downloads_and_the_cli_does_not_suggest_quick(tmp_path, monkeypatch, capsys):
    """The fashion study has no stand-in data set: its smoke test reads local files only, and the error
    tells the user to point at the files, not to try the --quick they passed (or that would not help)."""
    from scratchnn import cli, recipe
    from scratchnn.datasets import DatasetNotFoundError

    downloads = []

    def local_only(name, data_dir=None, **kwargs):
        downloads.append(kwargs.get("download", True))
        raise DatasetNotFoundError(f"{name} files not found")

    monkeypatch.setattr(recipe, "load_data", local_only)
    with pytest.raises(DataUnavailable, match=r"MNIST and Fashion-MNIST, even with --quick") as e:
        run_experiment("fashion", out_dir=tmp_path / "f", quick=True, verbose=False)
    assert downloads == [False] and not e.value.quick_helps
    for flags in (["--quick"], []):
        assert cli.main(["experiment", "fashion", "--out", str(tmp_path / f"cli{len(flags)}"), "--quiet", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "pass --data-dir or set $SCRATCHNN_DATA_DIR" in err and "--quick" not in err.split(";")[-1]
    assert downloads[1:] == [False, True]  # a full run may download


def test_a_study_with_a_quick_fallback_suggests_it(tmp_path, monkeypatch, capsys):
    from scratchnn import cli
    from scratchnn.datasets import DatasetNotFoundError
    from scratchnn.experiments import _common

    def no_mnist(data_dir, download):
        raise DatasetNotFoundError("MNIST files not found")

    monkeypatch.setattr(_common, "_mnist", no_mnist)
    assert cli.main(["experiment", "init", "--out", str(tmp_path / "i"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("scratchnn experiment: error: the init study needs MNIST: MNIST files not found; "
                   "pass --data-dir or set $SCRATCHNN_DATA_DIR, or try --quick"), err


def test_all_quick_skips_the_fashion_study_without_its_files_and_runs_the_rest(tmp_path, monkeypatch, capsys):
    """`experiment all --quick` is the smoke test of every study that can run here: the fashion study,
    which has no stand-in data and does not download in --quick, is skipped with one line, not a failure
    after the others ran. Asked for by name, it stays an error."""
    from scratchnn import cli, experiments, recipe
    from scratchnn.datasets import DatasetNotFoundError

    def local_only(name, data_dir=None, **kwargs):
        raise DatasetNotFoundError(f"{name} files not found")

    monkeypatch.setattr(recipe, "load_data", local_only)
    monkeypatch.setattr(experiments, "STUDIES", {k: experiments.STUDIES[k] for k in ("capacity", "fashion")})
    assert cli.main(["experiment", "all", "--quick", "--quiet", "--out", str(tmp_path / "all")]) == 0
    out, err = capsys.readouterr()
    assert "capacity: " in out and (tmp_path / "all" / "capacity" / "capacity.png").exists()
    assert err.strip() == ("fashion: skipped: it needs data files that --quick does not download (pass --data-dir "
                           "or set $SCRATCHNN_DATA_DIR)")
    assert cli.main(["experiment", "fashion", "--quick", "--quiet", "--out", str(tmp_path / "f")]) == 2


def test_a_named_data_folder_is_checked_for_what_the_studies_read(tmp_path, capsys):
    """--data-dir must hold the files, with --quick too (no quiet fallback to the 8x8 digits), and for the
    fashion study Fashion-MNIST's as well as MNIST's."""
    from helpers import write_mnist_files
    from scratchnn import cli

    for args, says in ((["init", "--quick", "--data-dir", str(tmp_path / "nope")], "no such folder"),
                       (["init", "--quick", "--data-dir", str(tmp_path)], "no mnist files there")):
        assert cli.main(["experiment", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and says in err, err
    write_mnist_files(tmp_path / "d" / "mnist")
    assert cli.main(["experiment", "fashion", "--quick", "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--data-dir (the fashion study reads both sets)" in err and "no fashion-mnist files there" in err, err
