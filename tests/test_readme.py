"""Every command the README shows runs as shown (with smaller budgets), so a documented command cannot crash.

The commands are read from the README's ``bash`` blocks and run in order in one empty folder (a later
command may use an earlier one's run folder). Budgets shrink through arguments appended after the
README's own (argparse keeps the last value): one epoch on 600 training images, two search trials,
the benchmark suite on 64 random images. ``pip install`` is what ``.ci/run`` does before the tests, and
``python -m pytest`` is this test suite; both are checked for presence only. Commands that read MNIST
need ``$SCRATCHNN_DATA_DIR`` (CI points it at the real files) and skip with a reason without it.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchnn import Sequential, cli
from scratchnn.presets import layers_from_description

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

TEXT = README.read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", TEXT, flags=re.S)


REDUCE = {
    "train": ["--epochs", "1", "--limit", "600"],
    "search": ["--n-trials", "2", "--executor", "serial"],
    "experiment": ["--quick"],
    "bench": ["--random-data", "--samples", "64", "--threads", "1", "--rounds", "1", "--contenders", "scratchnn,numpy",
              "--sections", "workloads", "--no-memory", "--max-wait", "0", "--json", "bench/bench.json"],
    "bench_mlp.py": ["--quick", "--random-data", "--samples", "64", "--threads", "1", "--rounds", "1",
                     "--contenders", "scratchnn,numpy", "--sections", "workloads", "--no-memory", "--max-wait", "0",
                     "--scaling-threads", "1", "--json", "bench/mlp.json"],
    "bench_cnn.py": ["--threads", "1", "--samples", "64", "--rounds", "1", "--json", "bench/cnn.json"],
    "bench_memmap.py": ["--sizes", "1", "--json", "bench/memmap.json"],
    "bench_presets.py": ["--threads", "1", "--samples", "64", "--rounds", "1", "--presets", "mlp,cnn",
                         "--json", "bench/presets.json"],
}


def readme_commands():
    """``(command line, [argv of each && part])`` for every command in the README's bash blocks."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                out.append((line, [shlex.split(part) for part in line.split("&&")]))
    return out


def test_the_readme_shows_the_quickstart_and_the_test_command():
    cmds = [line for line, _ in readme_commands()]
    assert cmds[0].startswith('pip install -e ".[test]" && scratchnn train')
    assert "python -m pytest" in cmds


def test_every_readme_command_runs(tmp_path, monkeypatch, capsys):
    if not os.environ.get("SCRATCHNN_DATA_DIR"):
        pytest.skip("SCRATCHNN_DATA_DIR is not set: the README's MNIST commands need the files")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bench").mkdir()
    (tmp_path / "net.toml").write_text(blocks("toml")[0])  # the README's model file, used by its --model net.toml
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save("digit.png")
    np.save("more.npy", np.zeros((2, 28, 28), np.float32))
    ran = []
    for line, parts in readme_commands():
        for argv in parts:
            if argv[:2] == ["pip", "install"] or argv[:3] == ["python", "-m", "pytest"]:
                continue  # .ci/run installs the project this way, and this is the test suite
            if argv[0] == "env":  # env -u NAME -u NAME ... COMMAND
                argv = argv[1:]
                while argv[0] == "-u":
                    argv = argv[2:]
            if argv[0] == "scratchnn":
                args = argv[1:] + (REDUCE.get(argv[1], []) if "--resume" not in argv else [])
                code = cli.main(args)
                captured = capsys.readouterr()
                assert code == 0, (line, captured.err[-2000:])
                assert "Traceback" not in captured.err
            else:
                assert argv[0] == "python" and argv[1].startswith("benchmarks/"), line
                argv = [sys.executable, str(ROOT / argv[1]), *argv[2:], *REDUCE[Path(argv[1]).name]]
                r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
                assert r.returncode == 0, (line, r.stderr[-2000:])
            ran.append(line)
    assert len(ran) >= 12


def test_model_file_example_builds_and_trains():
    desc = tomllib.loads(blocks("toml")[0])
    model = Sequential(layers_from_description(desc, n_classes=10))
    model.compile(desc["train"]["optimizer"], "cross_entropy")
    X = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    hist = model.fit(X, np.arange(64) % 10, epochs=1, batch_size=desc["train"]["batch_size"], verbose=0)
    assert np.isfinite(hist["loss"][0])


def test_fifteen_line_example_runs(tmp_path, monkeypatch):
    code = next(b for b in blocks("python") if "Sequential" in b and "fit" in b)
    assert len(code.strip().splitlines()) <= 16
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README example", "exec"), scope)
    assert scope["model"].evaluate(scope["X_val"], scope["y_val"])["accuracy"] > 0.95
    assert (tmp_path / "spiral.npz").exists()


def test_every_preset_has_its_row_in_the_accuracy_table():
    """The presets table (measured accuracies) is README content a careless edit once deleted."""
    from scratchnn.presets import PRESETS

    section = TEXT.split("## Presets and the accuracy they reach")[1].split("\n## ")[0]
    rows = {m for m in re.findall(r"^\| `([\w-]+)` \|", section, flags=re.M)}
    assert rows == set(PRESETS)
    assert "\n## Performance\n" in TEXT


def test_custom_layer_and_optimizer_examples_run(tmp_path, monkeypatch, capsys):
    """The README's worked layer passes its gradient check, and both examples train on both paths."""
    from scratchnn.layers import LAYERS

    monkeypatch.chdir(tmp_path)
    layer_code = next(b for b in blocks("python") if "class Scale(Layer)" in b)
    opt_code = next(b for b in blocks("python") if "class SignSGD(Optimizer)" in b)
    scope = {}
    try:
        exec(compile(layer_code, "README layer", "exec"), scope)
        assert "gradient check passed" in capsys.readouterr().out
        exec(compile(opt_code, "README optimizer", "exec"), scope)
        from scratchnn.layers import Dense

        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
        for path in ("fast", "reference"):
            model = Sequential([scope["Scale"](), Dense(3)]).compile(scope["SignSGD"](0.01), "softmax_cross_entropy")
            hist = model.fit(X, y, epochs=3, batch_size=16, verbose=0, engine=path)
            assert hist["loss"][-1] < hist["loss"][0]
            model.save(tmp_path / "m.npz")
            import scratchnn

            assert isinstance(scratchnn.load(tmp_path / "m.npz").layers[0], scope["Scale"])
    finally:
        LAYERS.pop("Scale", None)


def test_interop_example_runs(tmp_path, monkeypatch, capsys):
    """The README's export/import example, on an untrained model of the cnn preset saved where it looks."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from scratchnn.presets import resolve

    monkeypatch.chdir(tmp_path)
    layers, _ = resolve("cnn", (1, 28, 28), 10)
    model = Sequential(layers)
    model.build((1, 28, 28))
    (tmp_path / "runs" / "cnn").mkdir(parents=True)
    model.save(tmp_path / "runs" / "cnn" / "model.npz")
    code = next(b for b in blocks("python") if "interop.to_onnx" in b)
    exec(compile(code, "README interop example", "exec"), {})
    gap, names = capsys.readouterr().out.split(" ", 1)
    assert float(gap) < 1e-4 and "RandomShift" not in names
