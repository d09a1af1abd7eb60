"""Smoke test of benchmarks/bench_mlp.py: tiny random data, one round, result fields only (no timing asserts)."""
import importlib
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"

FAST = ("scratchnn", "numpy")  # torch's import and first step alone can take > 5 s: its own test below


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    for mod in ("common", "bench_mlp"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    return importlib.import_module("bench_mlp")


def _check_contenders(res, expected):
    assert set(res["contenders"]) == expected
    for s in res["contenders"].values():
        assert len(s["times_s"]) == 1 and s["best_s"] > 0 and s["epoch_s"] > 0 and s["gflops"] > 0
        assert s["extrapolated"] is True
        assert 0.0 <= s["val_acc"] <= 1.0


def _run_all(bench, contenders, tmp_path):
    common = bench.common
    data = common.random_data(n_train=128, n_val=64)
    expected = set(contenders)
    peak = {"gflops": 1.0}

    for wl in bench.WORKLOADS:  # plain SGD MLPs and the BatchNorm/Dropout/Adam one
        small = wl.with_(hidden=tuple(8 for _ in wl.hidden), batch=16)
        res = bench.bench_workload(small, data, threads=1, rounds=1, contenders=contenders, memory=False, peak=peak)
        _check_contenders(res, expected)
        assert set(res["ratios"]) == {f"{n}_over_scratchnn" for n in expected - {"scratchnn"}}
        assert res["flops_per_sample"] == common.mlp_train_flops_per_sample(small.sizes)

    inf = bench.bench_inference(data, threads=1, rounds=1, wl=bench.HEADLINE.with_(hidden=(8, 8)),
                                contenders=contenders, n_images={1: 4, 16: 32})
    assert set(inf["batches"]) == {"1", "16"}
    for row in inf["batches"].values():
        assert set(row) == expected and all(s["images_per_s"] > 0 for s in row.values())

    scal = bench.bench_scaling(data, threads=1, rounds=1, batches=(8, 32), widths=(8, 16), width_batch=32,
                               contenders=contenders, memory=False, peak=peak, samples=lambda axis, wl: 64)
    assert [p["value"] for p in scal["batch"]] == [8, 32] and [p["value"] for p in scal["width"]] == [8, 16]
    assert all(p["contenders"]["scratchnn"]["best_s"] > 0 for p in scal["batch"] + scal["width"])
    files = bench.plot_scaling(scal, tmp_path)
    assert [Path(f).name for f in files] == ["scaling_batch.png", "scaling_width.png"]
    assert all(Path(f).stat().st_size > 0 for f in files)


def test_bench_functions_on_tiny_data(bench, tmp_path):
    _run_all(bench, FAST, tmp_path)


@pytest.mark.slow
def test_bench_functions_with_torch(bench, tmp_path):
    pytest.importorskip("torch")
    _run_all(bench, ("scratchnn", "torch", "numpy"), tmp_path)


def test_flops_and_budget(bench):
    common = bench.common
    # 784-100-200-10: weights 78,400 + 20,000 + 2,000; 6 per weight minus 2 per first-layer weight
    assert common.mlp_train_flops_per_sample((784, 100, 200, 10)) == 6 * 100_400 - 2 * 78_400
    assert common.mlp_infer_flops_per_sample((784, 100, 200, 10)) == 2 * 100_400
    b = common.memory_budget_bytes((784, 100, 200, 10), batch=32, n_data_rows=10, optimizer="adam")
    assert b["optimizer_state"] == 2 * b["params"] and b["budget"] == 2 * b["total"]


def test_memory_worker_subprocess(bench):
    wl = bench.HEADLINE.with_(hidden=(8, 8))
    r = bench.measure_in_subprocess(wl, "scratchnn", threads=1, n_train=256, n_val=32, rounds=1, data="random",
                                    timeout=120)
    assert "error" not in r, r
    assert r["best_s"] > 0 and r["hwm_mb"] > 0 and r["peak_mb"] > 0 and r["samples"] == 256
