"""The README's examples must keep working."""
import re
from pathlib import Path

import numpy as np

from scratchnn import Sequential
from scratchnn.presets import layers_from_description

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

README = (Path(__file__).parent.parent / "README.md").read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


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

    section = README.split("## Presets and the accuracy they reach")[1].split("\n## ")[0]
    rows = {m for m in re.findall(r"^\| `([\w-]+)` \|", section, flags=re.M)}
    assert rows == set(PRESETS)
    assert "\n## Performance\n" in README
