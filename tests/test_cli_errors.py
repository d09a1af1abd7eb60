"""Every mistake a user can make on the command line costs one line and exit status 2, never a traceback.

The table below holds bad flags, data files, model files, model descriptions, images and checkpoints;
each case asserts exit status 2, no traceback, and a message that names the bad value or file.
"""
import hashlib
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from scratchnn import cli, recipe
from scratchnn.datasets import write_idx
from scratchnn.layers import Dense, Flatten, ReLU
from scratchnn.model import Sequential

from helpers import write_mnist_files


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished spiral run, an MNIST-shaped model, small MNIST-layout files and a few bad files."""
    root = tmp_path_factory.mktemp("world")
    assert cli.main(["train", "--dataset", "spiral", "--epochs", "3", "--quiet", "--no-plots",
                     "--out", str(root / "run")]) == 0
    img = Sequential([Flatten(), Dense(10)])
    img.build((1, 28, 28))
    img.info = recipe.dataset_info("mnist")
    img.save(root / "mnist_model.npz")
    old = Sequential([Dense(8), ReLU(), Dense(3)])
    old.build((2,))
    old.save(root / "no_info.npz")  # as saved by code that records no data set
    write_mnist_files(root / "mnist", n_train=60, n_test=20)
    from PIL import Image

    Image.fromarray(np.zeros((56, 14), np.uint8)).save(root / "wide.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "digit.png")
    (root / "fake.png").write_text("not an image")
    (root / "notes.txt").write_text("hello")
    np.save(root / "rgb.npy", np.zeros((28, 28, 3), np.float32))
    np.save(root / "f255.npy", np.linspace(0, 255, 784, dtype=np.float32).reshape(28, 28))
    np.save(root / "i16.npy", np.linspace(-5, 300, 784).astype(np.int16).reshape(28, 28))
    assert cli.main(["train", "--dataset", "spiral", "--epochs", "2", "--quiet", "--no-plots", "--schedule", "cosine",
                     "--out", str(root / "cos")]) == 0
    np.save(root / "nan.npy", np.full((1, 28, 28), np.nan, np.float32))
    (root / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "afile").write_text("x")
    return root


def tamper(src, dst, change):
    """Copy model file ``src`` to ``dst`` with its architecture JSON changed by ``change(arch)``."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arch = json.loads(str(arrays["__scratchnn__"]))
    change(arch, arrays)
    arrays["__scratchnn__"] = np.array(json.dumps(arch))
    np.savez(dst, **arrays)
    return dst


def dense(arch):
    return next(l for l in arch["layers"] if l["class"] == "Dense")


def corrupt_idx(world, tmp, kind):
    d = tmp / "data"
    shutil.copytree(world / "mnist", d)
    f = d / "train-labels-idx1-ubyte.gz"
    if kind == "truncated":
        f.write_bytes(f.read_bytes()[:20])
    elif kind == "empty":
        f.write_bytes(b"")
    elif kind == "labels42":
        labels = np.zeros(60, np.uint8)
        labels[17] = 42
        write_idx(f, labels, gz=True)
    return d


def toml(tmp, text, name="net.toml"):
    (tmp / name).write_text(text)
    return tmp / name


SPIRAL = ["train", "--dataset", "spiral", "--epochs", "1", "--quiet", "--no-plots"]
DENSE = '[[layers]]\ntype = "Dense"\nunits = "classes"\n'

# (id, argv builder (world, tmp) -> argv, a piece of the expected message)
CASES = [
    # flags
    ("dataset-typo", lambda w, t: ["train", "--dataset", "mnsit"], "unknown data set 'mnsit'"),
    ("optimizer-typo", lambda w, t: ["train", "--optimizer", "adamm"], "invalid choice: 'adamm'"),
    ("lr-negative", lambda w, t: ["train", "--lr", "-1"], "--lr: must be > 0, received '-1'"),
    ("lr-nan", lambda w, t: ["train", "--lr", "nan"], "--lr: must be a finite number"),
    ("lr-text", lambda w, t: ["train", "--lr", "fast"], "--lr: expected a number, received 'fast'"),
    ("batch-zero", lambda w, t: ["train", "--batch-size", "0"], "--batch-size: must be >= 1"),
    ("batch-fraction", lambda w, t: ["train", "--batch-size", "2.5"], "--batch-size: expected an integer"),
    ("epochs-zero", lambda w, t: ["train", "--epochs", "0"], "--epochs: must be >= 1"),
    ("momentum-one", lambda w, t: ["train", "--momentum", "1"], "--momentum: must be in [0, 1)"),
    ("l2-negative", lambda w, t: ["train", "--l2=-1e-4"], "--l2: must be >= 0"),
    ("l1-inf", lambda w, t: ["train", "--l1", "inf"], "--l1: must be a finite number"),
    ("max-norm-zero", lambda w, t: ["train", "--max-norm", "0"], "--max-norm: must be > 0"),
    ("dropout-1.5", lambda w, t: ["train", "--dropout", "1.5"], "--dropout: must be in [0, 1), received '1.5'"),
    ("dropout-negative", lambda w, t: ["train", "--dropout", "-0.1"], "--dropout: must be in [0, 1)"),
    ("val-size-zero", lambda w, t: ["train", "--val-size", "0"], "--val-size: must be a fraction in (0, 1)"),
    ("val-size-1.5", lambda w, t: ["train", "--val-size", "1.5"], "--val-size: must be a fraction in (0, 1)"),
    ("val-size-too-big", lambda w, t: [*SPIRAL, "--val-size", "5000"], "5000 validation samples out of 240"),
    ("limit-one", lambda w, t: ["train", "--limit", "1"], "--limit: must be >= 2"),
    ("seed-negative", lambda w, t: ["train", "--seed", "-1"], "--seed: must be >= 0"),
    ("schedule-args-no-value", lambda w, t: ["train", "--schedule-args", "drop"], "received 'drop'"),
    ("schedule-args-text", lambda w, t: ["train", "--schedule-args", "drop=x"], "drop='x' is not a number"),
    ("schedule-typo", lambda w, t: ["train", "--schedule", "cosinus"], "invalid choice: 'cosinus'"),
    ("schedule-arg-unknown", lambda w, t: [*SPIRAL, "--schedule", "step", "--schedule-args", "foo=1"],
     "the step schedule takes drop, every; received foo"),
    ("momentum-with-adam", lambda w, t: [*SPIRAL, "--optimizer", "adam", "--momentum", "0.9"],
     "--momentum has no effect with optimizer 'adam'"),
    ("schedule-args-constant", lambda w, t: [*SPIRAL, "--schedule", "constant", "--schedule-args", "rate=0.9"],
     "no effect with the constant schedule"),
    ("dropout-without-layer", lambda w, t: [*SPIRAL, "--model", "mlp-128-64", "--dropout", "0.2"],
     "has no Dropout layer"),
    ("data-dir-for-spiral", lambda w, t: [*SPIRAL, "--data-dir", t], "--data-dir has no effect with --dataset spiral"),
    ("unknown-preset", lambda w, t: [*SPIRAL, "--model", "resnet"], "unknown model 'resnet'"),
    ("model-file-missing", lambda w, t: [*SPIRAL, "--model", t / "nofile.toml"], "nofile.toml' does not exist"),
    ("cnn-on-spiral", lambda w, t: [*SPIRAL, "--model", "cnn"], "model 'cnn' does not fit spiral (inputs of shape (2,))"),
    ("data-dir-missing", lambda w, t: ["train", "--dataset", "mnist", "--data-dir", t / "nowhere"],
     "--data-dir " + "{t}/nowhere: no such folder"),
    ("data-dir-without-files", lambda w, t: ["train", "--dataset", "mnist", "--data-dir", t],
     "no mnist files there"),
    ("schedule-arg-typo", lambda w, t: [*SPIRAL, "--schedule", "step", "--schedule-args", "drop=0.5,evry=5"],
     "the step schedule takes drop, every; received evry"),
    ("cosine-min-lr", lambda w, t: [*SPIRAL, "--schedule", "cosine", "--schedule-args", "min_lr=1"],
     "--schedule-args (schedule cosine, lr 0.1)"),
    ("toml-too-many-outputs", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Dense"\nunits = 5\n')],
     "ends with outputs of shape (5,), but spiral has 3 classes"),
    ("toml-final-softmax", lambda w, t: [*SPIRAL, "--model", toml(t, DENSE + '[[layers]]\ntype = "Softmax"\n')],
     "ends with a Softmax layer"),
    ("toml-train-typo", lambda w, t: [*SPIRAL, "--model", toml(t, DENSE + '[train]\noptimzer = "adam"\n')],
     "net.toml [train] optimzer: unknown setting 'optimzer'"),
    ("out-below-a-file", lambda w, t: [*SPIRAL, "--out", w / "afile" / "sub"], "afile is a file, not a folder"),
    ("search-config-folder", lambda w, t: ["search", w / "run"], "search config"),
    ("experiment-out-file", lambda w, t: ["experiment", "capacity", "--quick", "--out", w / "afile"], "is a file"),
    ("experiment-out-taken", lambda w, t: ["experiment", "capacity", "--quick", "--out", w / "run"],
     "already holds results"),
    ("predict-float-255", lambda w, t: ["predict", w / "mnist_model.npz", w / "f255.npy"],
     "float values from 0 to 255"),
    ("predict-int-pixels", lambda w, t: ["predict", w / "mnist_model.npz", w / "i16.npy"], "integer values from -5 to 300"),
    ("resume-extends-cosine", lambda w, t: ["train", "--resume", w / "cos", "--epochs", "4"], "cosine schedule ends"),
    ("resume-edited-dataset", lambda w, t: ["train", "--resume", edit_config(w, t, "dataset", "digits")],
     "checkpoint was trained on 'spiral'"),
    ("unknown-flag", lambda w, t: ["train", "--epochs", "3", "--bogus"], "train: error: unrecognized arguments: --bogus"),
    # run folders and --resume
    ("resume-with-lr", lambda w, t: ["train", "--resume", w / "run", "--lr", "0.1"], "--lr cannot be given with --resume"),
    ("resume-nowhere", lambda w, t: ["train", "--resume", t / "nowhere"], "no such run folder"),
    ("resume-fewer-epochs", lambda w, t: ["train", "--resume", w / "run", "--epochs", "1"], "already finished 3 epochs"),
    ("out-is-a-file", lambda w, t: [*SPIRAL, "--out", w / "afile"], "afile: is a file"),
    ("out-holds-a-run", lambda w, t: [*SPIRAL, "--out", w / "run"], "already holds a run"),
    # model descriptions
    ("toml-unit-typo", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Dense"\nunit = 256\n')],
     "unknown argument(s) 'unit'"),
    ("toml-Relu", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Relu"\n' + DENSE)],
     "did you mean 'ReLU'"),
    ("toml-syntax", lambda w, t: [*SPIRAL, "--model", toml(t, "[[layers\n")], "net.toml: invalid TOML"),
    ("yaml-syntax", lambda w, t: [*SPIRAL, "--model", toml(t, "layers: [1, 2", "net.yaml")], "net.yaml: invalid YAML"),
    ("toml-huge", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Dense"\nunits = 1000000000\n' + DENSE)],
     "would need about"),
    ("toml-train-lr", lambda w, t: [*SPIRAL, "--model", toml(t, DENSE + "[train]\nlr = -3\n")],
     "[train] lr: must be > 0"),
    ("toml-train-unknown", lambda w, t: [*SPIRAL, "--model", toml(t, DENSE + '[train]\nloss = "mse"\n')],
     "unknown setting 'loss'"),
    ("toml-layers-not-list", lambda w, t: [*SPIRAL, "--model", toml(t, "layers = 3\n")], "non-empty list 'layers'"),
    ("toml-unknown-key", lambda w, t: [*SPIRAL, "--model", toml(t, "optimiser = 1\n" + DENSE)], "unknown key(s) 'optimiser'"),
    ("toml-bad-rate", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Dropout"\nrate = "x"\n' + DENSE)],
     "layer 1 (Dropout)"),
    ("toml-bad-name", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Dense"\nunits = 3\nname = 5\n')],
     "name must be a non-empty string"),
    ("out-holds-own-files", lambda w, t: [*SPIRAL, "--out", own_files(t)], "already holds a run (config.json, metrics.csv)"),
    ("limit-too-small", lambda w, t: [*SPIRAL, "--limit", "5"], "5 training samples are too few"),
    ("predict-empty-npy", lambda w, t: ["predict", w / "mnist_model.npz", (t / "e.npy", np.save(t / "e.npy", np.zeros((0, 28, 28))))[0]],
     "holds no samples"),
    ("toml-units-zero", lambda w, t: [*SPIRAL, "--model", toml(t, '[[layers]]\ntype = "Dense"\nunits = 0\n')],
     "units must be a positive integer"),
    ("toml-binary", lambda w, t: [*SPIRAL, "--model", (t / "b.toml", (t / "b.toml").write_bytes(b"\xff\xfe\x00"))[0]],
     "not a text file"),
    ("model-txt", lambda w, t: [*SPIRAL, "--model", w / "notes.txt"], "use a .toml, .yaml or .yml file"),
    # data files
    ("idx-truncated", lambda w, t: ["train", "--dataset", "mnist", "--data-dir", corrupt_idx(w, t, "truncated"),
                                    "--epochs", "1", "--quiet"], "train-labels-idx1-ubyte"),
    ("idx-empty", lambda w, t: ["train", "--dataset", "mnist", "--data-dir", corrupt_idx(w, t, "empty"),
                                "--epochs", "1", "--quiet"], "train-labels-idx1-ubyte"),
    ("labels-42", lambda w, t: ["train", "--dataset", "mnist", "--data-dir", corrupt_idx(w, t, "labels42"),
                                "--epochs", "1", "--quiet"], "42"),
    # model files
    ("evaluate-missing", lambda w, t: ["evaluate", t / "missing.npz"], "does not exist"),
    ("evaluate-png", lambda w, t: ["evaluate", w / "digit.png"], "not a scratchnn model file"),
    ("evaluate-folder", lambda w, t: ["evaluate", w / "run"], "is a directory"),
    ("evaluate-truncated", lambda w, t: ["evaluate", (t / "m.npz", (t / "m.npz").write_bytes(
        (w / "run" / "model.npz").read_bytes()[:500]))[0]], "m.npz"),
    ("evaluate-plain-npz", lambda w, t: ["evaluate", (t / "p.npz", np.savez(t / "p.npz", a=np.zeros(2)))[0]],
     "not a scratchnn model"),
    ("model-unknown-class", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                          lambda a, _: a["layers"][0].update({"class": "Linear"}))],
     "unknown class 'Linear'"),
    ("model-private-class", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                          lambda a, _: a["layers"][0].update({"class": "_Pool2D"}))],
     "unknown class '_Pool2D'"),
    ("model-huge", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                 lambda a, _: dense(a)["config"].update({"units": 10 ** 9}))],
     "would need about"),
    ("model-nan-weights", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                        lambda a, arr: arr[next(k for k in arr if k.startswith("param/"))].fill(np.nan))],
     "NaN or infinite"),
    ("model-dtype", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                  lambda a, _: a.update({"dtype": "int8"}))], "dtype must be a float type"),
    ("model-malformed-dtype", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                            lambda a, _: a.update({"dtype": "f4, i4)"}))], "dtype must be a float type"),
    ("model-bad-json", lambda w, t: ["evaluate", (t / "j.npz", np.savez(t / "j.npz", __scratchnn__=np.array("{oops")))[0]],
     "not valid JSON"),
    ("model-bad-arg", lambda w, t: ["evaluate", tamper(w / "run" / "model.npz", t / "m.npz",
                                    lambda a, _: dense(a)["config"].update({"unit": 3}))],
     "unknown argument(s) 'unit'"),
    ("evaluate-wrong-dataset", lambda w, t: ["evaluate", w / "run" / "model.npz", "--dataset", "digits"],
     "was trained on spiral"),
    ("evaluate-unrecorded", lambda w, t: ["evaluate", w / "no_info.npz"], "does not record the data set"),
    # predict
    ("predict-missing-image", lambda w, t: ["predict", w / "mnist_model.npz", t / "nope.png"], "nope.png: no such file"),
    ("predict-fake-png", lambda w, t: ["predict", w / "mnist_model.npz", w / "fake.png"], "fake.png: not a readable image"),
    ("predict-wide-png", lambda w, t: ["predict", w / "mnist_model.npz", w / "wide.png"], "14x56 pixels"),
    ("predict-rgb-npy", lambda w, t: ["predict", w / "mnist_model.npz", w / "rgb.npy"], "array of shape (28, 28, 3)"),
    ("predict-nan-npy", lambda w, t: ["predict", w / "mnist_model.npz", w / "nan.npy"], "NaN"),
    ("predict-bad-npy", lambda w, t: ["predict", w / "mnist_model.npz", w / "bad.npy"], "bad.npy: not a readable .npy"),
    ("predict-txt", lambda w, t: ["predict", w / "mnist_model.npz", w / "notes.txt"], "unsupported file type '.txt'"),
    ("predict-png-to-spiral", lambda w, t: ["predict", w / "run" / "model.npz", w / "digit.png"], "not grey images"),
    ("predict-folder", lambda w, t: ["predict", w / "mnist_model.npz", w / "run"], "is a directory"),
    # checkpoints and run configuration
    ("resume-corrupt-checkpoint", lambda w, t: ["train", "--resume", copy_run(w, t, "checkpoint.npz", b"PK\x03\x04junk")],
     "checkpoint.npz"),
    ("resume-corrupt-config", lambda w, t: ["train", "--resume", copy_run(w, t, "config.json", b"{not json")],
     "config.json: not valid JSON"),
    ("resume-no-checkpoint", lambda w, t: ["train", "--resume", copy_run(w, t, "checkpoint.npz", None)],
     "no checkpoint.npz there yet"),
    # search and experiment
    ("search-missing", lambda w, t: ["search", t / "nope.toml"], "nope.toml"),
    ("search-no-space", lambda w, t: ["search", toml(t, "n_trials = 2\n", "s.toml")], "needs a non-empty [space]"),
    ("search-zero-trials", lambda w, t: ["search", t / "s.toml", "--n-trials", "0"], "--n-trials: must be >= 1"),
    ("experiment-typo", lambda w, t: ["experiment", "inti"], "invalid choice: 'inti'"),
]


def own_files(tmp):
    d = tmp / "mine"
    d.mkdir()
    (d / "config.json").write_text('{"mine": 1}')
    (d / "metrics.csv").write_text("a,b\n")
    return d


def edit_config(world, tmp, key, value):
    run_dir = tmp / "edited"
    shutil.copytree(world / "run", run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["settings"][key] = value
    (run_dir / "config.json").write_text(json.dumps(cfg))
    return run_dir


def copy_run(world, tmp, name, content):
    run_dir = tmp / "copy"
    shutil.copytree(world / "run", run_dir)
    if content is None:
        (run_dir / name).unlink()
    else:
        (run_dir / name).write_bytes(content)
    return run_dir


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("make_argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_costs_one_line(world, tmp_path, capsys, monkeypatch, make_argv, expected):
    monkeypatch.chdir(tmp_path)  # a command that wrongly started would write its run folder here
    argv = make_argv(world, tmp_path)
    expected = expected.replace("{t}", str(tmp_path))
    code, out, err = run(argv, capsys)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in out + err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("scratchnn "), err
    assert expected in lines[0], err
    assert not os.path.exists(tmp_path / "runs")  # no run folder left by a refused command


def test_a_run_that_never_finished_an_epoch_can_be_started_again(tmp_path, capsys):
    args = [*SPIRAL, "--optimizer", "sgd", "--lr", "1e6", "--out", tmp_path / "r"]
    assert run(args, capsys)[0] == 2  # diverges in epoch 1: nothing trained
    assert sorted(os.listdir(tmp_path / "r")) == ["config.json"]
    assert run([*SPIRAL, "--out", tmp_path / "r"], capsys)[0] == 0  # the same folder, no --overwrite needed


def test_resume_with_more_epochs_trains_them_and_records_it(tmp_path, capsys):
    assert run([*SPIRAL, "--epochs", "2", "--schedule", "step", "--out", tmp_path / "r"], capsys)[0] == 0
    assert run(["train", "--resume", tmp_path / "r", "--epochs", "3", "--quiet", "--no-plots"], capsys)[0] == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["settings"]["epochs"] == 3
    assert len(json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs"]["loss"]) == 3


def test_a_closed_pipe_stops_quietly(world, monkeypatch, capsys):
    def closed(*a, **k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "silence_stdout", lambda: None)
    monkeypatch.setattr(cli, "cmd_evaluate", closed)
    monkeypatch.setattr(cli, "make_parser", lambda p=cli.make_parser: _with(p(), "evaluate", cli.cmd_evaluate))
    code, out, err = run(["evaluate", world / "run" / "model.npz"], capsys)
    assert code == 1 and "Traceback" not in err


def test_quiet_prints_only_the_result(tmp_path, capsys):
    code, out, err = run([*SPIRAL, "--out", tmp_path / "r"], capsys)
    assert code == 0 and out.strip().startswith("test accuracy") and len(out.strip().splitlines()) == 1


def test_config_keeps_the_model_description(tmp_path, capsys):
    desc = toml(tmp_path, DENSE)
    assert run([*SPIRAL, "--model", desc, "--out", tmp_path / "r"], capsys)[0] == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["model_description"]["layers"][0]["units"] == "classes"


def test_predict_scales_integer_pixels(world, tmp_path, capsys):
    np.save(tmp_path / "px.npy", np.full((2, 28, 28), 200, np.int64))
    code, out, _ = run(["predict", world / "mnist_model.npz", tmp_path / "px.npy"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_model_file_with_wrong_class_names_or_int_weights(world, tmp_path, capsys):
    bad = tamper(world / "run" / "model.npz", tmp_path / "n.npz", lambda a, _: a["info"].update({"class_names": ["x"]}))
    code, _, err = run(["evaluate", bad], capsys)
    assert code == 2 and "class_names must be 3 names" in err
    ints = tamper(world / "run" / "model.npz", tmp_path / "i.npz",
                  lambda a, arr: arr.update({k: arr[k].astype(np.int8) for k in list(arr) if k.startswith("param/")}))
    code, _, err = run(["evaluate", ints], capsys)
    assert code == 2 and "expected a float array" in err


def digest(folder):
    return {p: hashlib.sha256((folder / p).read_bytes()).hexdigest()
            for p in sorted(os.listdir(folder)) if (folder / p).is_file()}


def test_refused_out_leaves_the_old_run_byte_for_byte(tmp_path, capsys):
    assert cli.main([*SPIRAL, "--out", str(tmp_path / "r")]) == 0
    before = digest(tmp_path / "r")
    code, _, err = run([*SPIRAL, "--epochs", "2", "--out", tmp_path / "r"], capsys)
    assert code == 2 and "--overwrite" in err
    assert digest(tmp_path / "r") == before
    assert cli.main([*SPIRAL, "--epochs", "2", "--out", str(tmp_path / "r"), "--overwrite"]) == 0
    after = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert len(after["epochs"]["loss"]) == 2


def test_an_interrupted_save_leaves_the_previous_files_loadable(tmp_path, monkeypatch):
    import scratchnn
    from scratchnn import saving

    assert cli.main([*SPIRAL, "--out", str(tmp_path / "r")]) == 0
    before = digest(tmp_path / "r")

    def killed(f, **arrays):  # half a file written, then the process is "killed"
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(saving.np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        scratchnn.load(tmp_path / "r" / "model.npz").save(tmp_path / "r" / "model.npz")
    monkeypatch.undo()
    assert digest(tmp_path / "r") == before  # no temp file left, the model unchanged
    scratchnn.load(tmp_path / "r" / "model.npz")
    # a temp file left by a process killed outright is ignored, then cleaned by the next run there
    (tmp_path / "r" / ".tmp-abc.npz").write_bytes(b"partial")
    assert cli.main(["train", "--resume", str(tmp_path / "r"), "--epochs", "2", "--quiet", "--no-plots"]) == 0
    assert not (tmp_path / "r" / ".tmp-abc.npz").exists()


def test_metrics_replace_a_symlink_and_follow_the_umask(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("keep me")
    (tmp_path / "r").mkdir()
    os.symlink(target, tmp_path / "r" / "metrics.json")
    old = os.umask(0o027)
    try:
        assert cli.main([*SPIRAL, "--out", str(tmp_path / "r"), "--overwrite"]) == 0
    finally:
        os.umask(old)
    assert target.read_text() == "keep me"
    m = tmp_path / "r" / "metrics.json"
    assert not m.is_symlink() and json.loads(m.read_text())["test"] is not None
    assert oct(m.stat().st_mode & 0o777) == oct(0o640)


def test_diverged_run_says_what_is_kept(tmp_path, capsys):
    code, _, err = run([*SPIRAL, "--epochs", "5", "--optimizer", "sgd", "--lr", "1e4", "--out", tmp_path / "r"], capsys)
    assert code == 2 and "Traceback" not in err and "RuntimeWarning" not in err
    assert "loss became" in err and ("no epoch finished" in err or "model.npz" in err)


def test_ctrl_c_during_data_loading_writes_nothing(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "load_data", interrupted)
    code, _, err = run([*SPIRAL, "--out", tmp_path / "r"], capsys)
    assert code == cli.EXIT_INTERRUPTED and "nothing was written" in err
    assert not (tmp_path / "r").exists()


def test_ctrl_c_in_the_first_epoch_gives_a_hint_that_works(tmp_path, capsys, monkeypatch):
    from scratchnn.engine import FastEngine

    monkeypatch.setattr(FastEngine, "step", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run([*SPIRAL, "--out", tmp_path / "r"], capsys)
    assert code == cli.EXIT_INTERRUPTED and "--overwrite" in err
    monkeypatch.undo()
    assert cli.main([*SPIRAL, "--out", str(tmp_path / "r"), "--overwrite"]) == 0


def test_debug_shows_the_traceback(world, capsys, monkeypatch):
    code, _, err = run(["evaluate", world / "digit.png", "--debug"], capsys)
    assert code == 2 and "Traceback" in err
    monkeypatch.setenv("SCRATCHNN_DEBUG", "1")
    code, _, err = run(["evaluate", world / "digit.png"], capsys)
    assert code == 2 and "Traceback" in err


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(world, capsys, monkeypatch):
    monkeypatch.setattr(cli, "cmd_evaluate", lambda args: {}["oops"])
    parser = cli.make_parser
    monkeypatch.setattr(cli, "make_parser", lambda: _with(parser(), "evaluate", cli.cmd_evaluate))
    code, _, err = run(["evaluate", world / "run" / "model.npz"], capsys)
    assert code == 1 and "Traceback" in err and "KeyError" in err and "please report it" in err


def _with(parser, command, func):
    parser.commands[command].set_defaults(func=func)
    return parser


def test_predict_reports_a_bad_file_without_hiding_the_good_ones(world, capsys):
    code, out, err = run(["predict", world / "mnist_model.npz", world / "digit.png", world / "fake.png",
                          world / "digit.png"], capsys)
    assert code == 2
    assert len(out.strip().splitlines()) == 2
    assert "fake.png: not a readable image" in err and "1 of 3 inputs" in err


def test_predict_resize_grey_and_invert_hint(world, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.full((28, 28, 3), 240, np.uint8)).save(tmp_path / "paper.png")  # colour, light
    code, out, err = run(["predict", world / "mnist_model.npz", tmp_path / "paper.png", world / "wide.png",
                          "--resize"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2
    assert "light background" in err and "--invert" in err
    code, out, err = run(["predict", world / "mnist_model.npz", tmp_path / "paper.png", "--invert"], capsys)
    assert code == 0 and "light background" not in err


def test_evaluate_table_and_strict_json(world, capsys):
    code, out, _ = run(["evaluate", world / "run" / "model.npz"], capsys)
    assert code == 0 and "accuracy" in out and "arm 0" in out
    code, out, _ = run(["evaluate", world / "run" / "model.npz", "--json"], capsys)
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert doc["dataset"] == "spiral" and len(doc["per_class"]) == 3


def test_model_files_record_what_they_were_trained_on(world):
    import scratchnn

    m = scratchnn.load(world / "run" / "model.npz")
    assert m.info["dataset"] == "spiral" and m.info["input_shape"] == [2]
    assert m.info["class_names"] == ["arm 0", "arm 1", "arm 2"]
    with zipfile.ZipFile(world / "run" / "checkpoint.npz") as z:
        assert "__scratchnn__.npy" in z.namelist()


def test_a_refused_resume_leaves_config_json_alone(world, tmp_path, capsys):
    run_dir = tmp_path / "r"
    shutil.copytree(world / "run", run_dir)
    before = (run_dir / "config.json").read_bytes()
    code, _, err = run(["train", "--resume", run_dir, "--epochs", "5", "--data-dir", tmp_path / "nowhere"], capsys)
    assert code == 2 and "no such folder" in err
    assert (run_dir / "config.json").read_bytes() == before


def test_predict_one_output_and_regression_models(tmp_path, capsys):
    from scratchnn.layers import Dense

    for loss, expect in (("binary_cross_entropy", "\t1\t"), ("mse", "\t")):
        m = Sequential([Dense(1, in_features=2)]).compile("sgd", loss)
        m.build((2,))
        m.layers[0].params["W"][...] = 5.0
        m.save(tmp_path / f"{loss}.npz")
        np.save(tmp_path / "x.npy", np.ones((1, 2), np.float32))
        code, out, _ = run(["predict", tmp_path / f"{loss}.npz", tmp_path / "x.npy"], capsys)
        assert code == 0 and expect in out
    assert out.strip().endswith("10")  # the regression model's raw output, 5 + 5
