import csv
import json
import math
import os
import stat

import numpy as np
import pytest

from scratchnn import TrainingDivergedError, cli
from scratchnn.errors import InvalidArgumentError
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
    assert [t["trial"] for t in doc["trials"]] == list(range(1, 13))  # numbered from 1
    assert all(t["status"] == "ok" and t["error"] is None and t["seconds"] >= 0 for t in doc["trials"])
    assert doc["counts"] == {"ok": 12, "diverged": 0, "failed": 0} and doc["meta"]["format"] == 2
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["trial", "status", "lr"] and len(lines) == 13
    assert [line.split(",")[0] for line in lines[1:]] == [str(n) for n in range(1, 13)]
    best = json.loads((tmp_path / "best_config.json").read_text())
    assert best["config"] == res.best_config and best["trial"] == res.best["trial"]
    assert res.trials[best["trial"] - 1] is res.best
    assert (tmp_path / "val_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_diverging_trial_is_recorded_and_the_search_continues(tmp_path):
    res = random_search({"lr": LogUniform(1e-4, 1.0)}, fails_above_3e_2, n_trials=10, seed=0, executor="thread",
                        n_workers=2, out_dir=tmp_path, verbose=False)
    diverged = [r for r in res.trials if r["status"] == "diverged"]
    ok = [r for r in res.trials if r["status"] == "ok"]
    assert len(res.trials) == 10 and diverged and ok and len(diverged) + len(ok) == 10
    assert all(r["config"]["lr"] > 3e-2 for r in diverged) and all(r["config"]["lr"] <= 3e-2 for r in ok)
    assert all(r["error"].startswith("TrainingDivergedError: loss became nan") for r in diverged)
    assert all(r["diverged_at"] == {"epoch": 1, "batch": 3} for r in diverged)  # read from the message
    assert res.best["status"] == "ok" and res.n_failed == res.n_diverged == len(diverged)
    assert json.loads((tmp_path / "results.json").read_text())["counts"] == \
        {"ok": len(ok), "diverged": len(diverged), "failed": 0}
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["trial"] for row in rows] == [str(n) for n in range(1, 11)]
    assert [(row["diverged_epoch"], row["diverged_batch"]) for row in rows if row["status"] == "diverged"] == \
        [("1", "3")] * len(diverged)


def test_a_real_nan_loss_diverges_and_a_bad_setting_fails(tmp_path):
    base = {"dataset": "spiral", "model": "mlp-128-64", "epochs": 2, "batch_size": 16}
    res = random_search({"lr": Choice([0.05, 1e6]), "optimizer": Choice(["sgd", "no-such-optimizer"])}, base,
                        n_trials=8, seed=1, executor="serial", out_dir=tmp_path, verbose=False)
    by = {(r["config"]["lr"], r["config"]["optimizer"]): r for r in res.trials}
    assert by[(0.05, "sgd")]["status"] == "ok"
    nan = by[(1e6, "sgd")]
    assert nan["status"] == "diverged" and nan["error"].startswith("TrainingDivergedError: loss became nan")
    assert nan["diverged_at"] == {"epoch": 1, "batch": 3}  # the attributes Sequential.fit puts on the error
    bad = by[(0.05, "no-such-optimizer")]
    assert bad["status"] == "failed" and "unknown optimizer 'no-such-optimizer'" in bad["error"]
    assert bad["diverged_at"] is None
    assert res.n_diverged == sum(r["config"] == {"lr": 1e6, "optimizer": "sgd"} for r in res.trials)
    assert res.n_failed == res.n_diverged + sum(r["config"]["optimizer"] != "sgd" for r in res.trials)


def test_weights_broken_by_the_last_update_diverge_rather_than_pass(tmp_path):
    # the training loss of every batch is finite, but the last update sends the weights to infinity:
    # the validation loss is NaN while the validation accuracy (argmax of NaN) still looks like a number
    base = {"dataset": "spiral", "model": "mlp-128-64", "epochs": 1, "batch_size": 64, "optimizer": "sgd"}
    res = random_search({"lr": Choice([3e4])}, base, n_trials=1, executor="serial", out_dir=tmp_path, verbose=False)
    (trial,) = res.trials
    assert trial["status"] == "diverged" and res.best is None, trial
    assert "nan" in trial["error"] and trial["diverged_at"]["epoch"] == 1
    assert not (tmp_path / "best_config.json").exists()
    json.loads((tmp_path / "results.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN


def nan_val_loss(config):
    """The best val_accuracy, but a NaN val_loss: it diverged, and must not win."""
    if config["lr"] > 0.1:
        return {"val_accuracy": 1.0, "val_loss": float("nan")}
    if config["lr"] > 3e-2:
        return {"val_accuracy": np.float32("inf")}
    return quadratic(config)


def test_a_train_fn_returning_a_non_finite_metric_is_diverged_and_never_best(tmp_path, capsys):
    res = random_search({"lr": LogUniform(1e-4, 1.0)}, nan_val_loss, n_trials=12, seed=0, executor="serial",
                        out_dir=tmp_path)
    statuses = {r["status"]: r for r in res.trials}
    assert set(statuses) == {"ok", "diverged"} and res.n_diverged == res.n_failed > 0
    assert res.best["metrics"]["val_accuracy"] < 1.0 and res.best["status"] == "ok"
    nan = next(r for r in res.trials if r["config"]["lr"] > 0.1)
    assert nan["status"] == "diverged" and nan["error"].endswith("returned val_loss=nan: the training diverged")
    assert nan["metrics"]["val_accuracy"] == 1.0 and nan["diverged_at"] is None  # kept, for a look
    inf = next(r for r in res.trials if 3e-2 < r["config"]["lr"] <= 0.1)
    assert inf["status"] == "diverged" and "val_accuracy=inf" in inf["error"]
    doc = json.loads((tmp_path / "results.json").read_text(), parse_constant=pytest.fail)
    assert doc["trials"][nan["trial"] - 1]["metrics"]["val_loss"] is None  # NaN is not JSON: written as null
    assert json.loads((tmp_path / "best_config.json").read_text())["trial"] == res.best["trial"]
    out = capsys.readouterr().out
    assert f"trial {nan['trial']}/12 " in out and "DIVERGED TrainingDivergedError: train_fn returned" in out
    assert "trial 1/12 " in out and "trial 12/12 " in out and "trial 0/" not in out


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
    assert [t["trial"] for t in saved] == [1, 2, 3]  # the 4th trial was interrupted
    configs = sample_configs(space, 8)
    CALLS.clear()  # the same search again runs only the trials that did not finish ...
    res = random_search(space, counting, n_trials=6, executor="serial", out_dir=tmp_path, verbose=False)
    assert CALLS == [c["lr"] for c in configs[3:6]] and res.resumed == 3
    assert [r["trial"] for r in res.trials] == [1, 2, 3, 4, 5, 6]
    CALLS.clear()  # ... and more trials run only the new ones
    res = random_search(space, counting, n_trials=8, executor="serial", out_dir=tmp_path, verbose=False)
    assert CALLS == [c["lr"] for c in configs[6:]] and res.resumed == 6 and len(res.trials) == 8
    assert json.loads((tmp_path / "results.json").read_text())["meta"]["n_trials"] == 8
    CALLS.clear()
    space["interrupt"] = False  # other configs: refused, nothing runs
    with pytest.raises(InvalidArgumentError, match="space interrupt was True, now False"):
        random_search(space, counting, n_trials=8, executor="serial", out_dir=tmp_path, verbose=False)
    assert CALLS == []
    random_search(space, counting, n_trials=8, executor="serial", out_dir=tmp_path, resume=False, verbose=False)
    assert len(CALLS) == 8


def test_resume_refuses_another_search_and_names_every_difference(tmp_path):
    space = {"lr": LogUniform(1e-4, 0.1), "batch_size": Choice([16, 32])}
    kw = dict(executor="serial", out_dir=tmp_path, verbose=False)
    random_search(space, quadratic, n_trials=4, seed=0, **kw)
    before = (tmp_path / "results.json").read_text()

    def refused(space, n_trials=4, seed=0):
        with pytest.raises(InvalidArgumentError) as e:
            random_search(space, quadratic, n_trials=n_trials, seed=seed, **kw)
        assert (tmp_path / "results.json").read_text() == before  # untouched
        return str(e.value)

    msg = refused({"lr": LogUniform(1e-3, 0.1), "batch_size": Choice([16, 32])}, seed=1)
    assert msg.startswith(f"cannot resume {tmp_path}: its search differs: seed was 0, now 1; "
                          "space lr was loguniform(0.0001, 0.1), now loguniform(0.001, 0.1)")
    assert "search in another folder" in msg
    assert "n_trials was 4, now 3" in refused(space, n_trials=3)
    assert "space batch_size was choice([16, 32]), now choice([16, 64])" in \
        refused({**space, "batch_size": Choice([16, 64])})
    assert "space l2 was unset, now 0.001" in refused({**space, "l2": 1e-3})
    assert "space order was lr, batch_size, now batch_size, lr" in refused(dict(reversed(space.items())))
    # the executor may change, and n_trials may grow: only the new trials run
    res = random_search(space, quadratic, n_trials=5, seed=0, executor="thread", out_dir=tmp_path, verbose=False)
    assert res.resumed == 4 and len(res.trials) == 5


def test_resume_compares_the_base_settings_but_not_the_data_folder(tmp_path):
    base = {"dataset": "spiral", "model": "mlp-128-64", "epochs": 1, "batch_size": 32}
    space = {"lr": LogUniform(1e-3, 1e-1)}
    kw = dict(n_trials=2, executor="serial", out_dir=tmp_path, verbose=False)
    random_search(space, base, **kw)
    with pytest.raises(InvalidArgumentError, match="base epochs was 1, now 2; base optimizer was unset, now 'sgd'"):
        random_search(space, {**base, "epochs": 2, "optimizer": "sgd"}, **kw)
    with pytest.raises(InvalidArgumentError, match="it trained with base settings, now with a train_fn"):
        random_search(space, quadratic, **kw)
    res = random_search(space, {**base, "data_dir": str(tmp_path)}, **kw)  # the same data, found elsewhere
    assert res.resumed == 2


def test_resume_names_a_corrupt_or_old_results_file(tmp_path):
    kw = dict(n_trials=3, executor="serial", out_dir=tmp_path, verbose=False)
    random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, **kw)
    path = tmp_path / "results.json"
    good = json.loads(path.read_text())
    old = {"meta": {k: v for k, v in good["meta"].items() if k != "format"},  # as written before numbering from 1
           "trials": [{**t, "trial": t["trial"] - 1} for t in good["trials"]]}
    broken_record = {**good, "trials": [{**good["trials"][0], "status": "great"}]}
    fake_ok = {**good, "trials": [{**good["trials"][0], "metrics": {"val_accuracy": None}}]}
    beyond = {**good, "trials": [{**good["trials"][0], "trial": 4}]}
    for text, message in [("{not json", "not a readable search results file"),
                          (b"\xff\xfe\x00garbage", "not a readable search results file"),
                          ("[]", "not a search results file"),
                          (json.dumps(old), "written by an older scratchnn, which numbered trials from 0"),
                          (json.dumps({**good, "meta": {**good["meta"], "format": 99}}), "results format 99"),
                          (json.dumps(broken_record), "unexpected trial record"),
                          (json.dumps(fake_ok), "trial 1 is 'ok' without a finite val_accuracy"),
                          (json.dumps(beyond), "unexpected trial record")]:
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        with pytest.raises(InvalidArgumentError) as e:
            random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, **kw)
        assert str(e.value).startswith(f"cannot resume from {path}: ") and message in str(e.value), str(e.value)
    edited = {**good, "trials": [{**good["trials"][0], "config": {"lr": 0.5}}]}
    path.write_text(json.dumps(edited))
    with pytest.raises(InvalidArgumentError, match=r"trial 1 in .*results.json ran \{\"lr\": 0.5\}, but this search "
                                                   "samples"):
        random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, **kw)
    res = random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, resume=False, **kw)  # starting over is fine
    assert len(res.trials) == 3 and res.resumed == 0


def test_failed_and_diverged_trials_are_finished_unless_retried(tmp_path):
    kw = dict(n_trials=6, seed=0, executor="serial", out_dir=tmp_path, verbose=False)
    first = random_search({"lr": LogUniform(1e-4, 1.0)}, fails_above_3e_2, **kw)
    assert first.n_failed == first.n_diverged > 0
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
    assert len(res2.trials) == 4 and all(r["status"] == ("diverged" if r["config"]["lr"] > 3e-2 else "ok")
                                         for r in res2.trials)


# -- the files ---------------------------------------------------------------------------------

@pytest.mark.skipif(os.name == "nt", reason="POSIX symlinks and permission bits")
def test_results_replace_a_symlink_and_get_the_permissions_of_the_umask(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").symlink_to(target)
    (out / ".tmp-killed.json").write_text("half a file")  # left by a write that was killed
    mask = os.umask(0o027)
    try:
        random_search({"lr": LogUniform(1e-4, 1.0)}, quadratic, n_trials=3, executor="serial", out_dir=out,
                      resume=False, verbose=False)
    finally:
        os.umask(mask)
    assert target.read_text() == "precious"  # the link was replaced, not written through
    assert not (out / "results.json").is_symlink() and len(json.loads((out / "results.json").read_text())["trials"]) == 3
    assert sorted(os.listdir(out)) == ["best_config.json", "results.csv", "results.json", "val_accuracy.png"]
    for name in ("best_config.json", "results.csv", "results.json"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o640, name  # 0o666 & ~umask, not mkstemp's 0o600


def test_a_failed_write_keeps_the_previous_results_and_no_temporary_file(tmp_path, monkeypatch):
    space = {"lr": LogUniform(1e-4, 1.0)}
    random_search(space, quadratic, n_trials=2, executor="serial", out_dir=tmp_path, verbose=False)
    files = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}

    def disk_full(src, dst):
        raise OSError(28, "No space left on device", dst)

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        random_search(space, quadratic, n_trials=3, executor="serial", out_dir=tmp_path, verbose=False)
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == files


def always_diverges(config):
    raise TrainingDivergedError("loss became inf")


def test_a_search_without_an_ok_trial_removes_the_best_config_of_an_earlier_one(tmp_path):
    space = {"lr": LogUniform(1e-4, 1.0)}
    random_search(space, quadratic, n_trials=3, executor="serial", out_dir=tmp_path, verbose=False)
    assert (tmp_path / "best_config.json").exists() and (tmp_path / "val_accuracy.png").exists()
    res = random_search(space, always_diverges, n_trials=3, executor="serial", out_dir=tmp_path, resume=False,
                        verbose=False)
    assert res.best is None and res.n_diverged == 3 and [r["diverged_at"] for r in res.trials] == [None] * 3
    assert sorted(os.listdir(tmp_path)) == ["results.csv", "results.json"]


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
    assert "trial 4/4 [4 done]" in text  # numbered from 1, like the files
    doc = json.loads((out / "results.json").read_text())
    assert [t["trial"] for t in doc["trials"]] == [1, 2, 3, 4]
    best = json.loads((out / "best_config.json").read_text())
    assert f"(trial {best['trial']})" in text.splitlines()[-1]  # the summary names the same trial
    assert doc["trials"][best["trial"] - 1]["config"] == best["config"]


def test_search_command_refuses_to_resume_a_changed_search(tmp_path, capsys):
    cfg = tmp_path / "search.toml"
    cfg.write_text(TOML)
    out = tmp_path / "out"
    assert cli.main(["search", str(cfg), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    cfg.write_text(TOML.replace("seed = 7", "seed = 8").replace("epochs = 2", "epochs = 1"))
    assert cli.main(["search", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"scratchnn search: error: cannot resume {out}: its search "
                                                   "differs: seed was 7, now 8; base epochs was 2, now 1")
    (out / "results.json").write_text("{")
    assert cli.main(["search", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot resume from {out / 'results.json'}: not a readable" in err


def test_search_config_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[space]\nlr = {dist = "loguniform", low = 0.1, high = 0.01}\n')
    assert cli.main(["search", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "space entry 'lr': LogUniform needs 0 < low < high" in capsys.readouterr().err
    bad.write_text('trials = 3\n[space]\nlr = {dist = "loguniform", low = 0.001, high = 0.01}\n')
    assert cli.main(["search", str(bad)]) == 2
    assert "unknown key(s) 'trials'" in capsys.readouterr().err
    space = '[space]\nlr = {dist = "loguniform", low = 0.001, high = 0.01}\n'
    for head, message in [('n_trials = "abc"', "n_trials must be an integer >= 1, received 'abc'"),
                          ("n_trials = 2.5", "n_trials must be an integer >= 1, received 2.5"),
                          ("seed = -1", "seed must be an integer >= 0, received -1"),
                          ("n_workers = true", "n_workers must be an integer >= 1, received True"),
                          ('base = "spiral"', "[base] must be a table")]:
        bad.write_text(f"{head}\n{space}")
        assert cli.main(["search", str(bad), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{bad}: {message}" in err, err


def test_yaml_search_config(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "search.yaml"
    path.write_text("n_trials: 5\nexecutor: thread\nbase: {dataset: spiral, epochs: 2}\nspace:\n"
                    "  lr: {dist: loguniform, low: 0.001, high: 0.1}\n  batch_size: {dist: choice, values: [16, 32]}\n")
    cfg = load_search_config(path)
    assert cfg["n_trials"] == 5 and cfg["executor"] == "thread" and cfg["base"] == {"dataset": "spiral", "epochs": 2}
    assert isinstance(cfg["space"]["lr"], LogUniform) and cfg["space"]["batch_size"].values == [16, 32]
