import json
import math
import os

import numpy as np
import pytest

from scratchnn import TrainingDivergedError, cli
from scratchnn.search import (Choice, IntUniform, LogUniform, Uniform, distribution, load_search_config,
                              random_search, sample_configs)

SPACE = {"lr": LogUniform(1e-4, 1e-1), "l2": LogUniform(1e-6, 1e-2), "batch_size": Choice([16, 32, 64]),
         "units": IntUniform(1, 3), "dropout": Uniform(0.0, 0.5)}


def quadratic(config):
    """A picklable stand-in for training: best at lr = 1e-2."""
    return {"val_accuracy": 1.0 - (math.log10(config["lr"]) + 2) ** 2 / 10, "train_accuracy": 1.0}


def fails_above_3e_2(config):
    if config["lr"] > 3e-2:
        raise TrainingDivergedError(f"loss became nan at epoch 1, batch 3 (lr {config['lr']})")
    return quadratic(config)


# -- sampling ---------------------------------------------------------------------------------

def test_same_seed_gives_the_same_configs_and_more_trials_keep_the_first():
    a, b = sample_configs(SPACE, 8, seed=3), sample_configs(SPACE, 8, seed=3)
    assert a == b
    assert sample_configs(SPACE, 8, seed=4) != a
    assert sample_configs(SPACE, 12, seed=3)[:8] == a
    assert all(type(c["batch_size"]) is int and type(c["lr"]) is float for c in a)  # plain JSON-able values


def test_loguniform_covers_every_decade_evenly():
    rng = np.random.default_rng(0)
    d = LogUniform(1e-4, 1e-1)
    x = np.array([d.sample(rng) for _ in range(6000)])
    assert x.min() >= 1e-4 and x.max() <= 1e-1
    share = np.histogram(np.log10(x), bins=[-4, -3, -2, -1])[0] / len(x)
    assert np.all(np.abs(share - 1 / 3) < 0.03), share
    # a plain uniform on the same range would put ~90% of the samples in the top decade
    u = np.array([Uniform(1e-4, 1e-1).sample(rng) for _ in range(6000)])
    assert np.mean(u > 1e-2) > 0.85 and np.mean(x > 1e-2) < 0.4


def test_int_uniform_includes_both_ends_and_choice_reaches_every_value():
    rng = np.random.default_rng(1)
    assert {IntUniform(1, 3).sample(rng) for _ in range(300)} == {1, 2, 3}
    assert {Choice(["a", "b", "c"]).sample(rng) for _ in range(300)} == {"a", "b", "c"}
    u = [Uniform(0.2, 0.3).sample(rng) for _ in range(300)]
    assert 0.2 <= min(u) and max(u) < 0.3


def test_config_file_entries_and_bad_distributions_are_reported():
    assert isinstance(distribution({"dist": "loguniform", "low": 1e-4, "high": 0.1}), LogUniform)
    assert distribution({"dist": "choice", "values": [32, 64]}).values == [32, 64]
    assert distribution(0.5) == 0.5  # a constant
    with pytest.raises(ValueError, match="0 < low < high.*low=0"):
        LogUniform(0, 1)
    with pytest.raises(ValueError, match="'lr'.*unknown dist 'gauss'"):
        distribution({"dist": "gauss", "low": 1, "high": 2}, "lr")
    with pytest.raises(ValueError, match="'lr'.*takes low and high"):
        distribution({"dist": "uniform", "lo": 1, "hi": 2}, "lr")
    with pytest.raises(ValueError, match="non-empty"):
        Choice([])
    with pytest.raises(ValueError, match="n_trials must be a positive integer, received 0"):
        sample_configs(SPACE, 0)


# -- the search -------------------------------------------------------------------------------

def test_search_selects_on_validation_and_writes_the_table(tmp_path):
    res = random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, n_trials=12, seed=0, executor="serial",
                        out_dir=tmp_path, verbose=False)
    scores = [r["metrics"]["val_accuracy"] for r in res.trials]
    assert res.best["metrics"]["val_accuracy"] == max(scores)
    assert res.best_config == res.trials[int(np.argmax(scores))]["config"]
    assert {"results.csv", "results.json", "best_config.json", "val_accuracy.png"} <= set(os.listdir(tmp_path))
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [t["trial"] for t in doc["trials"]] == list(range(12))
    assert all(t["status"] == "ok" and t["error"] is None and t["seconds"] >= 0 for t in doc["trials"])
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["trial", "status", "lr"] and len(lines) == 13
    assert json.loads((tmp_path / "best_config.json").read_text())["config"] == res.best_config
    assert (tmp_path / "val_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_trial_is_recorded_and_the_search_continues(tmp_path):
    res = random_search({"lr": LogUniform(1e-4, 1.0)}, fails_above_3e_2, n_trials=10, seed=0, executor="thread",
                        n_workers=2, out_dir=tmp_path, verbose=False)
    failed = [r for r in res.trials if r["status"] == "failed"]
    ok = [r for r in res.trials if r["status"] == "ok"]
    assert len(res.trials) == 10 and failed and ok
    assert all(r["config"]["lr"] > 3e-2 for r in failed) and all(r["config"]["lr"] <= 3e-2 for r in ok)
    assert all(r["error"].startswith("TrainingDivergedError: loss became nan") for r in failed)
    assert res.best["status"] == "ok" and res.n_failed == len(failed)
    assert "TrainingDivergedError" in (tmp_path / "results.csv").read_text()


def test_a_real_nan_loss_and_a_bad_setting_fail_their_trial_only(tmp_path):
    base = {"dataset": "spiral", "model": "mlp-128-64", "epochs": 2, "batch_size": 16}
    res = random_search({"lr": Choice([0.05, 1e6]), "optimizer": Choice(["sgd", "no-such-optimizer"])}, base,
                        n_trials=8, seed=1, executor="serial", out_dir=tmp_path, verbose=False)
    by = {(r["config"]["lr"], r["config"]["optimizer"]): r for r in res.trials}
    assert by[(0.05, "sgd")]["status"] == "ok"
    assert by[(1e6, "sgd")]["error"].startswith("TrainingDivergedError")
    assert "unknown optimizer 'no-such-optimizer'" in by[(0.05, "no-such-optimizer")]["error"]


CALLS = []


def counting(config):
    CALLS.append(config["lr"])
    if len(CALLS) == 4 and config.get("interrupt"):
        raise KeyboardInterrupt
    return quadratic(config)


def test_resume_skips_finished_trials_after_an_interruption(tmp_path):
    CALLS.clear()
    space = {"lr": LogUniform(1e-4, 1.0), "interrupt": True}
    with pytest.raises(KeyboardInterrupt):
        random_search(space, counting, n_trials=6, executor="serial", out_dir=tmp_path, verbose=False)
    saved = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert [t["trial"] for t in saved] == [0, 1, 2]  # the 4th trial was interrupted
    CALLS.clear()
    space["interrupt"] = False  # the configs change, so everything runs again ...
    with pytest.warns(UserWarning, match="3 trial"):
        random_search(space, counting, n_trials=6, executor="serial", out_dir=tmp_path, verbose=False)
    assert len(CALLS) == 6
    CALLS.clear()  # ... and a resumed search with the same configs runs only the new trials
    res = random_search(space, counting, n_trials=8, executor="serial", out_dir=tmp_path, verbose=False)
    assert len(CALLS) == 2 and res.resumed == 6 and len(res.trials) == 8
    assert CALLS == [c["lr"] for c in sample_configs(space, 8)[6:]]
    CALLS.clear()
    random_search(space, counting, n_trials=8, executor="serial", out_dir=tmp_path, resume=False, verbose=False)
    assert len(CALLS) == 8


def test_failed_trials_are_finished_unless_retried(tmp_path):
    kw = dict(n_trials=6, seed=0, executor="serial", out_dir=tmp_path, verbose=False)
    first = random_search({"lr": LogUniform(1e-4, 1.0)}, fails_above_3e_2, **kw)
    assert first.n_failed > 0
    again = random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, **kw)
    assert again.resumed == 6 and again.n_failed == first.n_failed
    retried = random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, retry_failed=True, **kw)
    assert retried.n_failed == 0 and retried.resumed == 6 - first.n_failed


SPIRAL = {"dataset": "spiral", "model": "mlp-128-64", "epochs": 3, "batch_size": 16}
SPIRAL_SPACE = {"lr": LogUniform(1e-3, 3e-1), "l2": LogUniform(1e-6, 1e-2)}


def test_process_executor_matches_serial_exactly(tmp_path):
    serial = random_search(SPIRAL_SPACE, SPIRAL, n_trials=4, seed=5, executor="serial", verbose=False)
    procs = random_search(SPIRAL_SPACE, SPIRAL, n_trials=4, seed=5, executor="process", n_workers=2,
                          out_dir=tmp_path, verbose=False)
    assert [r["status"] for r in procs.trials] == ["ok"] * 4
    assert [r["metrics"] for r in procs.trials] == [r["metrics"] for r in serial.trials]
    assert 0 <= procs.best["metrics"]["val_accuracy"] <= 1


def test_process_executor_needs_a_picklable_train_fn():
    with pytest.raises(TypeError, match="cannot be pickled.*executor='thread'"):
        random_search(SPIRAL_SPACE, lambda c: {"val_accuracy": 1.0}, n_trials=2, executor="process")


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="executor must be one of .* received 'gpu'"):
        random_search(SPIRAL_SPACE, quadratic, n_trials=2, executor="gpu")
    with pytest.raises(ValueError, match="lr set both in the base config and in the space"):
        random_search(SPIRAL_SPACE, {**SPIRAL, "lr": 0.1}, n_trials=2)
    with pytest.raises(ValueError, match="'units'.*not training settings"):
        random_search({"units": IntUniform(1, 4)}, SPIRAL, n_trials=2)
    res = random_search({"lr": LogUniform(1e-4, 1.0)}, lambda c: {"accuracy": 1.0}, n_trials=1, executor="serial",
                        verbose=False)
    assert res.best is None and "finite 'val_accuracy'" in res.trials[0]["error"]


def test_dask_local_cluster_runs_the_trials(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = random_search(SPIRAL_SPACE, SPIRAL, n_trials=4, seed=2, executor="serial", verbose=False)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        res = random_search(SPIRAL_SPACE, SPIRAL, n_trials=4, seed=2, executor="dask", scheduler=client,
                            out_dir=tmp_path, verbose=False)
        # a scheduler address works too (the function connects and disconnects its own client)
        res2 = random_search({"lr": LogUniform(1e-4, 1.0)}, fails_above_3e_2, n_trials=4, executor="dask",
                             scheduler=cluster.scheduler_address, verbose=False)
    assert [r["metrics"] for r in res.trials] == [r["metrics"] for r in serial.trials]
    assert (tmp_path / "best_config.json").exists()
    assert len(res2.trials) == 4 and all(r["status"] == ("failed" if r["config"]["lr"] > 3e-2 else "ok")
                                         for r in res2.trials)


# -- the command -------------------------------------------------------------------------------

TOML = """
n_trials = 3
seed = 7
executor = "serial"
[base]
dataset = "spiral"
model = "mlp-128-64"
epochs = 2
[space]
lr = {dist = "loguniform", low = 1e-3, high = 1e-1}
l2 = {dist = "loguniform", low = 1e-6, high = 1e-3}
batch_size = {dist = "choice", values = [16, 32]}
"""


def test_search_command_writes_results_and_resumes(tmp_path, capsys):
    cfg = tmp_path / "search.toml"
    cfg.write_text(TOML)
    out = tmp_path / "out"
    assert cli.main(["search", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert "best val_accuracy" in capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    assert len(doc["trials"]) == 3 and doc["meta"]["seed"] == 7
    assert doc["trials"][0]["config"] == sample_configs(load_search_config(cfg)["space"], 3, seed=7)[0]
    assert cli.main(["search", str(cfg), "--out", str(out), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["search", str(cfg), "--out", str(out), "--resume", "--n-trials", "4"]) == 0
    text = capsys.readouterr().out
    assert "resuming: 3 of 4 trials" in text and text.count("trial ") == 1 + 1  # one new trial line
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 4


def test_search_config_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[space]\nlr = {dist = "loguniform", low = 0.1, high = 0.01}\n')
    assert cli.main(["search", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "space entry 'lr': LogUniform needs 0 < low < high" in capsys.readouterr().err
    bad.write_text('trials = 3\n[space]\nlr = {dist = "loguniform", low = 0.001, high = 0.01}\n')
    assert cli.main(["search", str(bad)]) == 2
    assert "unknown key(s) 'trials'" in capsys.readouterr().err


def test_yaml_search_config(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "search.yaml"
    path.write_text("n_trials: 5\nexecutor: thread\nbase: {dataset: spiral, epochs: 2}\nspace:\n"
                    "  lr: {dist: loguniform, low: 0.001, high: 0.1}\n  batch_size: {dist: choice, values: [16, 32]}\n")
    cfg = load_search_config(path)
    assert cfg["n_trials"] == 5 and cfg["executor"] == "thread" and cfg["base"] == {"dataset": "spiral", "epochs": 2}
    assert isinstance(cfg["space"]["lr"], LogUniform) and cfg["space"]["batch_size"].values == [16, 32]
