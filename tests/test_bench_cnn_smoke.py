"""The standalone CNN benchmark (benchmarks/bench_cnn.py -> benchlab.cnn_bench.main) runs end to end
on a few samples (no timing assertions)."""
import functools

import numpy as np
import pytest

from benchlab import cnn, cnn_bench, machine

pytestmark = pytest.mark.usefixtures("no_settle")


def test_flops_per_sample_is_the_issue_floor():
    assert 24e6 < cnn.flops_per_sample() < 26e6  # "about 25 MFLOP per training sample"


def test_bench_cnn_smoke(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "gemm_peak", functools.partial(machine.gemm_peak, 256, 2))  # seconds at 2048
    res = cnn_bench.main(["--threads", "1", "--rounds", "1", "--samples", "128", "--json", str(tmp_path / "r.json")])
    row = res["rows"][0]
    assert row["scratchnn"]["s_per_10k"] > 0 and row["memory"]["peak_step_mb"] > 0
    assert (tmp_path / "r.json").exists()


def test_torch_copy_has_the_same_weights():
    torch = __import__("pytest").importorskip("torch")
    wl = cnn.CNN.with_(channels=(2, 3), dense=5)
    model = wl.build_scratchnn(seed=0)
    net, _ = wl.build_torch(torch, model)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict_logits(x), ref, rtol=1e-4, atol=1e-5)


def test_cnn_bn_network_runs_and_its_torch_copy_agrees(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "gemm_peak", functools.partial(machine.gemm_peak, 256, 2))
    res = cnn_bench.main(["--network", "cnn-bn", "--threads", "1", "--rounds", "1", "--samples", "128",
                          "--json", str(tmp_path / "r.json")])
    assert res["network"] == "cnn-bn" and res["rows"][0]["scratchnn"]["s_per_10k"] > 0
    assert cnn.CNN_BN.train_flops_per_sample() > cnn.CNN.train_flops_per_sample()
    torch = pytest.importorskip("torch")
    wl = cnn.CNN_BN.toy()
    model = wl.build_scratchnn(seed=0)
    net, _ = wl.build_torch(torch, model)
    net.eval()  # running statistics at their initial values in both: the same function
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict_logits(x), ref, rtol=1e-4, atol=1e-5)


def test_cnn_bn_workload_is_the_cnn_bn_preset_without_its_augmentation():
    """The workload builds its layers itself (its toy version shrinks them); it must not drift from the preset."""
    from scratchnn.layers import RandomShift
    from scratchnn.presets import cnn_bn

    def configs(layers):
        return [(type(l).__name__, {k: v for k, v in l.get_config().items() if k not in ("name", "seed", "in_channels", "in_features")})
                for l in layers if not isinstance(l, RandomShift)]

    assert configs(cnn.CNN_BN.build_scratchnn().layers) == configs(cnn_bn((1, 28, 28), 10))
