"""The presets' throughput benchmark (benchmarks/bench_presets.py -> benchlab.presets) runs end to end on
a few random images (no timing assertions), and its PyTorch side trains the same network with the same
augmentation."""
import numpy as np
import pytest

from benchlab import presets

pytestmark = pytest.mark.usefixtures("no_settle")


def test_bench_presets_smoke(tmp_path):
    res = presets.main(["--presets", "mlp,cnn", "--threads", "1", "--rounds", "1", "--samples", "128",
                        "--random-data", "--json", str(tmp_path / "r.json")])
    assert [r["preset"] for r in res["rows"]] == ["mlp", "cnn"]
    for row in res["rows"]:
        assert row["scratchnn"]["images_per_s"] > 0 and row["scratchnn"]["preset_minutes"] > 0
    assert (tmp_path / "r.json").exists()


def test_unknown_preset_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        presets.main(["--presets", "resnet"])
    assert e.value.code == 2 and "--presets 'resnet'" in capsys.readouterr().err


def test_the_torch_side_is_the_same_network_and_shift():
    torch = pytest.importorskip("torch")
    model, settings = presets.build_scratchnn("cnn")
    net, opt = presets.build_torch(torch, model, settings)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    net.eval()
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict_logits(x), ref, rtol=1e-4, atol=1e-5)
    shift = presets.torch_random_shift(torch, 2)
    out = shift(torch.from_numpy(x)).numpy()
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(3):  # every image is its zero-filled copy shifted by some (dy, dx) in [-2, 2]^2
        assert any(np.array_equal(out[i], padded[i, :, a:a + 28, b:b + 28]) for a in range(5) for b in range(5))


@pytest.mark.parametrize("args, flag", [(["--threads", "two"], "--threads"), (["--samples", "-5"], "--samples"),
                                        (["--rounds", "0"], "--rounds")])
def test_bad_numbers_are_one_line_errors(args, flag, capsys):
    with pytest.raises(SystemExit) as e:
        presets.main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {flag}: expected" in err and "Traceback" not in err
