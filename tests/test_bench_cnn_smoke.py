"""The CNN benchmark runs end to end on a few samples (no timing assertions)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import bench_cnn  # noqa: E402


def test_flops_per_sample_is_the_issue_floor():
    assert 24e6 < bench_cnn.flops_per_sample() < 26e6  # "about 25 MFLOP per training sample"


def test_bench_cnn_smoke(tmp_path):
    res = bench_cnn.main(["--threads", "1", "--rounds", "1", "--samples", "128", "--json", str(tmp_path / "r.json")])
    row = res["rows"][0]
    assert row["scratchnn"]["s_per_10k"] > 0 and row["memory"]["peak_step_mb"] > 0
    assert (tmp_path / "r.json").exists()
