"""Smoke tests of the benchmark suite (``benchlab``, in benchmarks/): tiny random data, one round, result
fields only (no timing asserts)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchnn import cli
from benchlab import common, machine, measure, memmap, report
from benchlab.cnn import CNN
from benchlab.mlp import HEADLINE, WORKLOADS

pytestmark = pytest.mark.usefixtures("no_settle")

ROOT = Path(__file__).resolve().parent.parent
FAST = ("scratchnn", "numpy")  # torch's import and first step alone can take > 5 s: its own test below
TINY_CNN = CNN.with_(channels=(4, 8), dense=16, batch=16)


def _check_contenders(res, expected):
    assert set(res["contenders"]) == expected
    for s in res["contenders"].values():
        assert len(s["times_s"]) == 1 and s["best_s"] > 0 and s["epoch_s"] > 0 and s["gflops"] > 0
        assert s["extrapolated"] is True
        assert 0.0 <= s["val_acc"] <= 1.0


def _run_all(contenders, tmp_path):
    data = common.random_data(n_train=128, n_val=64)
    expected = set(contenders)
    peak = {"gflops": 1.0}

    for wl in WORKLOADS:  # plain SGD MLPs and the BatchNorm/Dropout/Adam one
        small = wl.with_(hidden=tuple(8 for _ in wl.hidden), batch=16)
        res = measure.bench_workload(small, data, threads=1, rounds=1, contenders=contenders, memory=False, peak=peak)
        _check_contenders(res, expected)
        assert set(res["ratios"]) == {f"{n}_over_scratchnn" for n in expected - {"scratchnn"}}
        assert res["flops_per_sample"] == common.mlp_train_flops_per_sample(small.sizes)

    # the CNN has no NumPy floor: that contender is skipped, the others compared
    res = measure.bench_workload(TINY_CNN, data, threads=1, rounds=1, contenders=contenders, memory=False, peak=peak)
    _check_contenders(res, expected - {"numpy"})
    assert set(res["ratios"]) == {f"{n}_over_scratchnn" for n in expected - {"scratchnn", "numpy"}}
    assert res["workload"]["kind"] == "cnn" and res["flops_per_sample"] == TINY_CNN.train_flops_per_sample()

    for wl, names in ((HEADLINE.with_(hidden=(8, 8)), expected), (TINY_CNN, expected - {"numpy"})):
        inf = measure.bench_inference(data, threads=1, rounds=1, wl=wl, contenders=contenders, n_images={1: 4, 16: 32})
        assert inf["key"] == wl.key and set(inf["batches"]) == {"1", "16"}
        for row in inf["batches"].values():
            assert set(row) == names and all(s["images_per_s"] > 0 and s["speedup_of_scratchnn"] > 0
                                             for s in row.values())

    scal = measure.bench_scaling(data, threads=1, rounds=1, batches=(8, 32), widths=(8, 16), width_batch=32,
                                 contenders=contenders, memory=False, peak=peak, samples=lambda axis, wl: 64)
    assert [p["value"] for p in scal["batch"]] == [8, 32] and [p["value"] for p in scal["width"]] == [8, 16]
    assert all(p["contenders"]["scratchnn"]["best_s"] > 0 for p in scal["batch"] + scal["width"])
    files = report.plot_scaling(scal, tmp_path)
    assert [Path(f).name for f in files] == ["scaling_batch.png", "scaling_width.png"]
    assert all(Path(f).stat().st_size > 0 for f in files)
    report.print_scaling(scal)


def test_bench_functions_on_tiny_data(tmp_path):
    _run_all(FAST, tmp_path)


@pytest.mark.slow
def test_bench_functions_with_torch(tmp_path):
    pytest.importorskip("torch")
    _run_all(("scratchnn", "torch", "numpy"), tmp_path)


def test_flops_and_budget():
    # 784-100-200-10: weights 78,400 + 20,000 + 2,000; 6 per weight minus 2 per first-layer weight
    assert common.mlp_train_flops_per_sample((784, 100, 200, 10)) == 6 * 100_400 - 2 * 78_400
    assert common.mlp_infer_flops_per_sample((784, 100, 200, 10)) == 2 * 100_400
    b = common.memory_budget_bytes((784, 100, 200, 10), batch=32, n_data_rows=10, optimizer="adam")
    assert b["optimizer_state"] == 2 * b["params"] and b["budget"] == 2 * b["total"]
    assert 24e6 < CNN.train_flops_per_sample() < 26e6  # "about 25 MFLOP per training sample"
    assert CNN.infer_flops_per_sample() * 3 > CNN.train_flops_per_sample()
    b = CNN.memory_budget_bytes(60_000)
    assert b["params"] == 4 * sum(p.size for l in CNN.build_scratchnn().layers for p in l.params.values())
    assert b["optimizer_state"] == 2 * b["params"] and b["budget"] == 2 * b["total"]


@pytest.mark.parametrize("wl", [HEADLINE.with_(hidden=(8, 8)), TINY_CNN], ids=["mlp", "cnn"])
def test_memory_worker_subprocess(wl):
    r = measure.measure_in_subprocess(wl, "scratchnn", threads=1, n_train=256, n_val=32, rounds=1, data="random",
                                      timeout=120)
    assert "error" not in r, r
    assert r["best_s"] > 0 and r["hwm_mb"] > 0 and r["peak_mb"] > 0 and r["samples"] == 256
    assert measure.workload_from_spec({"kind": wl.kind, **__import__("dataclasses").asdict(wl)}) == wl


def test_memmap_rows(tmp_path):
    rows = memmap.bench_memmap([1, 2], tmp_path, base=300, verbose=False)
    assert [r["samples"] for r in rows] == [300, 600] and all(r["peak_anon_mb"] > 0 for r in rows)
    assert not list(tmp_path.iterdir())  # the data files are removed


def test_suite_quick(tmp_path, capsys):
    """The ``bench_mlp.py --quick`` path end to end (the scaling section is covered above)."""
    from benchlab import suite

    out = tmp_path / "b" / "bench.json"
    suite.main(["--quick", "--random-data", "--samples", "64", "--threads", "1", "--rounds", "1",
                "--contenders", "scratchnn,numpy", "--sections", "workloads,cnn,inference,memmap",
                "--no-memory", "--json", str(out)])
    text = capsys.readouterr().out
    assert "== Summary" in text and "== Targets of the issue" in text and f"wrote {out}" in text
    d = json.loads(out.read_text())
    assert {"env", "args", "gemm_peak", "workloads", "inference", "inference_cnn", "memmap", "targets"} <= set(d)
    assert [r["workload"]["key"] for r in d["workloads"]] == ["mlp_100_200", "mlp_128_64", "mlp_deep_bn", "cnn"]
    for r in d["workloads"][:3]:
        assert r["ratios"]["numpy_over_scratchnn"] > 0 and r["contenders"]["scratchnn"]["samples"] == 64
    assert set(d["workloads"][3]["contenders"]) == {"scratchnn"} and d["workloads"][3]["ratios"] == {}
    assert set(d["inference"]["batches"]) == set(d["inference_cnn"]["batches"]) == {"1", "1000"}
    assert d["inference"]["batches"]["1"]["numpy"]["speedup_of_scratchnn"] > 0
    assert d["memmap"][0]["samples"] == 64
    assert any(t["target"].startswith("784-100-200-10 b32") for t in d["targets"])
    assert d["env"]["scratchnn_path"] == str(Path(cli.__file__).resolve().parent)


def test_suite_rejects_unknown_section(capsys):
    from benchlab import suite

    with pytest.raises(SystemExit) as e:
        suite.main(["--sections", "workloads,gpu"])
    assert e.value.code == 2 and "--sections" in capsys.readouterr().err


def test_targets_read_the_headline_only():
    out = {"workloads": [{"workload": {"key": "mlp_100_200"}, "threads": 1,
                          "ratios": {"torch_over_scratchnn": 2.5, "numpy_over_scratchnn": 1.1}, "contenders": {}}],
           "inference": {"key": "mlp_100_200", "threads": 1, "batches": {"1": {"torch": {"speedup_of_scratchnn": 3.2}}}},
           "inference_cnn": {"key": "cnn", "threads": 1, "batches": {"1": {"torch": {"speedup_of_scratchnn": 0.5}}}}}
    t = report.check_targets(out)
    assert [x["pass"] for x in t] == [True, True, True]


def test_scripts_are_thin_entry_points():
    """benchmarks/*.py keep their flags: each prints its --help (one interpreter for all four)."""
    code = """
import contextlib, io, runpy, sys
for script, flag in (("bench_mlp.py", "--sections"), ("bench_cnn.py", "--samples"), ("bench_memmap.py", "--sizes"),
                     ("profile_fit.py", "--samples"), ("process_split.py", "--network")):
    sys.argv = [script, "--help"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        runpy.run_path(BENCH + "/" + script, run_name="__main__")
    assert flag in buf.getvalue(), (script, buf.getvalue())
"""
    subprocess.run([sys.executable, "-c", f"BENCH = {str(ROOT / 'benchmarks')!r}" + code], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")])})


def test_import_is_light():
    code = ("import sys, scratchnn, scratchnn.cli, benchlab.suite, benchlab.measure, "
            "benchlab.profile_fit, benchlab.memmap; scratchnn.cli.make_parser(); "
            "bad = [m for m in ('torch', 'threadpoolctl', 'matplotlib') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")])})


def test_environment_record():
    env = machine.environment(include_torch=False)
    assert env["torch"] is None and len(env["src_sha256"]) == 12 and env["cores"] >= 1


def test_profile_fit_phases(tmp_path):
    from benchlab import profile_fit

    profile_fit.main(["--samples", "256", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "p")])
    d = json.loads((tmp_path / "p.json").read_text())
    assert d["samples"] == 256 and d["scratchnn"]["wall_s"] > 0 and d["numpy"]["wall_s"] > 0
    assert "forward Dense" in d["scratchnn"]["phases_s"] and (tmp_path / "p.txt").stat().st_size > 0


def test_floor_variants_lean_loop_trains_like_the_floor():
    """benchmarks/floor_variants.py: the lean NumPy loop (preallocated, in place) computes the
    floor's updates: same weights after the same shuffled epoch."""
    from benchlab.floor import LeanNumpyRunner, compare
    from benchlab.mlp import NumpyRunner

    data = common.random_data(n_train=100, n_val=32)  # 100 = 3 full batches of 32 and one of 4
    wl = HEADLINE.with_(hidden=(8, 6))
    rng = np.random.default_rng(0)
    init = [(rng.standard_normal((a, b)).astype(np.float32) * 0.1, np.zeros(b, np.float32))
            for a, b in common.dense_shapes(wl.sizes)]
    floor, lean = NumpyRunner(wl, init, seed=3), LeanNumpyRunner(wl, init, seed=3)
    for r in (floor, lean):
        r.train_epoch(data["X_train"], data["y_train"])
    for a, b in zip(floor.Ws + floor.bs, lean.Ws + lean.bs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="plain SGD"):
        LeanNumpyRunner(WORKLOADS[2], init)
    res = compare(data, threads=1, rounds=1, wl=wl, contenders=FAST)
    assert set(res["epoch_s"]) == {"scratchnn", "numpy", "numpy_lean"} and min(res["epoch_s"].values()) > 0


def test_gemm_probe_and_peak_reference():
    assert machine.gemm_probe(64, 1) > 0
    peak = machine.gemm_peak(128, 1)
    assert peak["gflops"] > 0 and peak["probe_gflops"] > 0


class _Epochs:
    """A contender whose epochs take no time (time_rounds only needs train_epoch)."""

    def __init__(self):
        self.calls = 0

    def train_epoch(self, X, y):
        self.calls += 1
        return 0.01 * self.calls


def test_time_rounds_reads_the_host_speed_and_adds_rounds_on_a_slowed_host(monkeypatch):
    readings = iter([50.0] * 6 + [100.0] * 100)  # the first 3 rounds (2 contenders) on a host at half speed
    monkeypatch.setattr(machine, "gemm_probe", lambda: next(readings))
    runners = {"a": _Epochs(), "b": _Epochs()}
    times, loads = measure.time_rounds(runners, None, None, rounds=3, probe_ref=100.0)
    # ceil(3 / 2) = 2 rounds at full speed per contender are needed: 3 slow rounds + 2 more
    assert [len(times[k]) for k in "ab"] == [5, 5]
    assert [x["host_speed"] for x in loads["a"]] == [0.5, 0.5, 0.5, 1.0, 1.0]
    s = measure.summarize(times["a"], 10, 1, 1.0, loads["a"])
    assert s["host_speed_best"] == 0.5 and s["host_speed"][-1] == 1.0  # (these epochs slow down: best is the first)
    assert measure.slowest_host({"contenders": {"a": s}}) == 0.5
    assert measure.slowest_host({"contenders": {"a": {"host_speed_best": None}}}) is None  # unprobed: unknown
    # never more than twice the rounds; without a reference no probe runs and no round is added
    monkeypatch.setattr(machine, "gemm_probe", lambda: 10.0)
    times, _ = measure.time_rounds({"a": _Epochs()}, None, None, rounds=3, probe_ref=100.0)
    assert len(times["a"]) == 6
    monkeypatch.setattr(machine, "gemm_probe", lambda: pytest.fail("probed without a reference"))
    times, loads = measure.time_rounds({"a": _Epochs()}, None, None, rounds=2)
    assert len(times["a"]) == 2 and loads["a"][0]["host_speed"] is None


def test_until_quiet_retries_a_measurement_taken_on_a_slowed_host(monkeypatch):
    waits = []
    monkeypatch.setattr(machine, "wait_for_quiet", lambda max_wait, probe_ref=None: waits.append(probe_ref) or {})
    results = iter([0.8, 0.97, 0.5])

    def measurement():
        return {"threads": 1, "probe_ref_gflops": 42.0,
                "contenders": {"x": {"foreign_cores_best": 0.0, "host_speed_best": next(results)}}}

    r = measure.until_quiet(measurement, retries=2, max_wait=1.0)
    assert r["attempts"] == 2 and r["host_speed"] == 0.97 and waits == [42.0]
    # out of retries: the least disturbed attempt is kept and says how slow its host was
    results = iter([0.8, 0.6])
    r = measure.until_quiet(measurement, retries=1, max_wait=1.0)
    assert r["attempts"] == 2 and r["host_speed"] == 0.8


def test_time_rounds_idles_before_every_epoch(monkeypatch):
    naps = []
    monkeypatch.setattr(measure.time, "sleep", naps.append)
    measure.time_rounds({"a": _Epochs(), "b": _Epochs()}, None, None, rounds=2, settle=0.25)
    assert naps == [0.25] * 4
    naps.clear()
    monkeypatch.setattr(measure, "SETTLE_S", 0.1)  # without settle=, the module's SETTLE_S
    measure.time_rounds({"a": _Epochs()}, None, None, rounds=2)
    assert naps == [0.1, 0.1]
    # with a probe: idle, probe, idle again before each epoch (the probe's threads park too)
    naps.clear()
    monkeypatch.setattr(machine, "gemm_probe", lambda: naps.append("probe") or 50.0)
    measure.time_rounds({"a": _Epochs()}, None, None, rounds=1, probe_ref=100.0)
    assert naps == [0.1, "probe", 0.1] * 2  # (slowed host: a second round)


def test_wait_for_quiet_waits_for_the_probe_to_recover(monkeypatch):
    readings = iter([50.0, 80.0, 99.0, 99.0])
    monkeypatch.setattr(machine, "gemm_probe", lambda: next(readings))
    load = machine.wait_for_quiet(max_wait=30.0, threshold=10.0, probe=0.001, probe_ref=100.0)
    assert load["host_speed"] == 0.99
    load = machine.wait_for_quiet(max_wait=30.0, threshold=10.0, probe=0.001)  # no reference: load only
    assert "host_speed" not in load


def test_isolated_worker_records_the_host_speed():
    r = measure.measure_in_subprocess(HEADLINE.with_(hidden=(8, 8)), "numpy", threads=1, n_train=128, n_val=0,
                                      rounds=2, data="random", timeout=120, probe_ref=1e-9)
    assert "error" not in r, r
    assert len(r["host_speed"]) == 2 and r["host_speed_best"] > 1  # (a tiny reference: any reading is fast)


@pytest.mark.parametrize("tool", ["profile_fit", "floor"])
@pytest.mark.parametrize("args, flag", [(["--threads", "two"], "--threads"), (["--samples", "-5"], "--samples")])
def test_profile_and_floor_tools_refuse_bad_numbers_in_one_line(tool, args, flag, capsys):
    import importlib

    main = importlib.import_module(f"benchlab.{tool}").main
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {flag}: expected" in err and "Traceback" not in err


def test_process_split_probe_keeps_the_replicas_equal_to_one_batch_of_64():
    """benchmarks/process_split.py: the two workers' averaged gradients keep their replicas identical
    and train as one process on whole batches does (up to rounding); without the exchange they part.
    Plain SGD, whose step is proportional to the gradient (Adam's would hide a sum instead of a mean),
    over 5 steps (both exchange buffers, in turn)."""
    from benchlab import process_split as ps
    from scratchnn.optimizers import SGD

    rng = np.random.default_rng(0)
    X = rng.random((5 * ps.BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    single = ps._model("cnn").compile(SGD(0.05), "softmax_cross_entropy")
    single.fit(X, y, epochs=1, batch_size=ps.BATCH, shuffle=False, verbose=0)
    want, start = ps.flat_weights(single), ps.flat_weights(ps._model("cnn"))
    workers = ps.Workers("cnn", X, y, optimizer=lambda: SGD(0.05))
    try:
        _, w = workers.epoch("exchange", weights=True)
        _, free = workers.epoch("free", weights=True)
    finally:
        workers.close()
    np.testing.assert_array_equal(w[0], w[1])
    np.testing.assert_allclose(w[0] - start, want - start, rtol=1e-3, atol=1e-6)  # the same 5 steps, up to rounding
    assert (np.abs(free[0] - free[1]) > 1e-5).mean() > 0.1  # without the exchange the replicas part


def test_process_split_reports_a_dead_worker_instead_of_hanging():
    from benchlab import process_split as ps

    rng = np.random.default_rng(0)
    X = rng.random((2 * ps.BATCH, 1, 28, 28), dtype=np.float32)
    workers = ps.Workers("cnn", X, rng.integers(0, 10, len(X)))
    workers.procs[1].kill()
    workers.procs[1].join()
    with pytest.raises(RuntimeError, match="worker 1 died"):
        workers.epoch("exchange")
    assert not any(p.is_alive() for p in workers.procs)
