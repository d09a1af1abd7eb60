"""The ``scratchnn`` command: ``train``, ``evaluate``, ``predict``, ``search``, ``experiment``.

(The benchmark lab is not part of the installed library: ``python benchmarks/bench_mlp.py`` in a checkout.)

    scratchnn train --dataset mnist --model mlp --epochs 10 --out runs/mlp
    scratchnn train --resume runs/mlp           # continue an interrupted run exactly
    scratchnn evaluate runs/mlp/model.npz
    scratchnn predict runs/mlp/model.npz digit.png more.npy
    scratchnn search examples/search_mnist.toml --out runs/search
    scratchnn experiment init --out runs/init

The command line parses and validates flags (argparse ``choices`` and checking ``type=`` functions,
so a mistake costs one line before any work starts), calls the library, and turns every error the
library raises on purpose (``scratchnn.errors.ScratchnnError``) into one line
``scratchnn CMD: error: ...`` with exit status 2. ``--debug`` (or ``SCRATCHNN_DEBUG=1``) shows the
traceback instead; an unexpected exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

from . import recipe, runs
from .backend import set_seed
from .errors import InvalidArgumentError, MissingFileError, ScratchnnError, TrainingDivergedError, UsageError

EXIT_INTERRUPTED = 130
EXIT_USAGE = 2
#: kept for code that caught it: a command-line mistake
CLIError = UsageError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``scratchnn train: error: argument --lr: must be > 0, received '-1'``."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def setting(name):
    """An argparse ``type=`` that checks a value with the recipe's rule for setting ``name``."""
    def parse(text):
        try:
            return recipe.SETTINGS[name](text)
        except InvalidArgumentError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = name
    return parse


def count(low):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, received {text!r}")
        return v
    return parse


def parse_kv(text: str | None) -> dict:
    """``"drop=0.5,every=10"`` -> ``{"drop": 0.5, "every": 10}`` (an argparse ``type=``)."""
    out = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value pairs separated by commas, received {item!r}")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key.strip()}={value!r} is not a number") from None
    return out


def flag(name: str) -> str:
    """How errors name a setting on the command line: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


# -- train --------------------------------------------------------------------------------------------
TRAIN_SETTINGS = ("dataset", "model", "optimizer", "lr", "momentum", "schedule", "schedule_args", "epochs",
                  "batch_size", "l1", "l2", "max_norm", "dropout", "standardize", "val_size", "limit", "seed")


def cmd_train(args):
    if args.resume:
        return resume_run(args)
    settings = recipe.check_settings({k: getattr(args, k) for k in TRAIN_SETTINGS}, label=flag)
    settings = {**{k: recipe.DEFAULTS[k] for k in ("dataset", "model", "seed")}, **settings}
    if args.data_dir and settings["dataset"] in ("spiral", "digits"):
        raise UsageError(f"--data-dir has no effect with --dataset {settings['dataset']}: it is made in memory "
                         "(spiral) or ships with scikit-learn (digits)")
    recipe.check_data_dir(settings["dataset"], args.data_dir, "--data-dir")
    info = recipe.dataset_info(settings["dataset"])
    recipe.check_model(settings, info, label=flag)  # a bad model file costs one line, before the data loads
    out = args.out or new_run_folder(settings)
    runs.prepare_out(out, args.overwrite)
    set_seed(settings["seed"])
    try:
        data = recipe.load_data(settings["dataset"], args.data_dir, settings.get("limit"), settings.get("val_size"),
                                settings["seed"], progress=not args.quiet, label=flag)
        model, settings = recipe.build_model(settings, data.info, data.X_train, label=flag)
    except KeyboardInterrupt:
        print("\ninterrupted before training started; nothing was written: run the same command again",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    runs.create(out)
    config = {"args": {"dataset": settings["dataset"], "model": settings["model"], "data_dir": args.data_dir,
                       "limit": settings.get("limit"), "val_size": settings.get("val_size"), "seed": settings["seed"],
                       "no_plots": args.no_plots},
              "settings": settings, "info": data.info, "input_shape": list(data.X_train.shape[1:]),
              "model_description": model_description(settings["model"]),
              "train_samples": len(data.X_train), "val_samples": len(data.X_val)}
    runs.write_json(os.path.join(out, "config.json"), config)
    if not args.quiet:
        model.summary()
    return fit_run(args, out, model, data, settings, start=0, prior={})


def model_description(model) -> dict | None:
    """The layers and [train] table of a model file, kept in config.json (the file may change later)."""
    from .presets import PRESETS, _read_description

    return None if model in PRESETS else _read_description(model)


def new_run_folder(settings) -> str:
    """``runs/DATASET-MODEL-TIME``, with a suffix when two runs start in the same second."""
    base = os.path.join("runs", f"{settings['dataset']}-{os.path.splitext(os.path.basename(str(settings['model'])))[0]}-"
                                f"{time.strftime('%Y%m%d-%H%M%S')}")
    out, i = base, 1
    while os.path.exists(out):
        i += 1
        out = f"{base}-{i}"
    return out


def resume_run(args):
    from .saving import load_checkpoint

    given = [flag(k) for k in TRAIN_SETTINGS if getattr(args, k) is not None] + (["--out"] if args.out else []) \
        + (["--overwrite"] if args.overwrite else [])
    if given:
        raise UsageError(f"{', '.join(given)} cannot be given with --resume: a resumed run continues with the "
                         f"settings in {os.path.join(args.resume, 'config.json')} (only --epochs may extend it)")
    out = args.resume
    cfg = runs.read_config(out)
    settings = cfg["settings"]
    ck_path = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(ck_path):
        raise InvalidArgumentError(f"--resume {out}: no checkpoint.npz there yet (the run stopped before its first "
                                   f"epoch finished): start it again with --overwrite")
    model, ck = load_checkpoint(ck_path)
    trained_on = model.info.get("dataset")
    if trained_on is not None and trained_on != settings["dataset"]:
        raise InvalidArgumentError(f"{os.path.join(out, 'config.json')} says dataset {settings['dataset']!r}, but its "
                                   f"checkpoint was trained on {trained_on!r}: the folder was edited or mixed up")
    if args.resume_epochs is not None and args.resume_epochs != settings["epochs"]:
        if args.resume_epochs < ck["epoch"]:
            raise UsageError(f"--epochs {args.resume_epochs}: the run already finished {ck['epoch']} epochs")
        sched = model.optimizer.schedule
        if sched is not None and type(sched).__name__ == "CosineDecay" and args.resume_epochs > sched.epochs:
            raise UsageError(f"--epochs {args.resume_epochs}: the run's cosine schedule ends after epoch {sched.epochs} "
                             f"(its learning rate is {sched.min_lr:g} from there on), so more epochs would not train; "
                             f"start a new run with --epochs {args.resume_epochs} instead")
        settings["epochs"] = args.resume_epochs  # (config.json records it once the data loaded, below)
    if ck["epoch"] >= settings["epochs"]:
        print(f"{out} already finished its {ck['epoch']} epochs; pass --epochs N (more than {ck['epoch']}) to train "
              "further")
        return 0
    a = cfg["args"]
    recipe.check_data_dir(settings["dataset"], args.data_dir, "--data-dir")
    data = recipe.load_data(settings["dataset"], args.data_dir or a.get("data_dir"), a.get("limit"),
                            a.get("val_size"), settings["seed"], progress=not args.quiet, label=flag)
    if tuple(model.input_shape) != data.X_train.shape[1:]:
        raise InvalidArgumentError(f"{ck_path}: the model takes inputs of shape {tuple(model.input_shape)}, the data "
                                   f"set's are {data.X_train.shape[1:]}")
    runs.remove_stale_temp_files(out)
    if cfg["settings"] is not settings or args.resume_epochs is not None:
        cfg["settings"] = settings
        runs.write_json(os.path.join(out, "config.json"), cfg)  # the new total of epochs
    if not args.quiet:
        print(f"resuming {out} at epoch {ck['epoch'] + 1}/{settings['epochs']}")
    args.no_plots = args.no_plots or a.get("no_plots", False)
    return fit_run(args, out, model, data, settings, start=ck["epoch"], prior=ck["history"])


def fit_run(args, out, model, data, settings, start, prior):
    from . import saving
    from .callbacks import Callback, ModelCheckpoint

    model.info = dict(data.info)
    ck_path, best_path = os.path.join(out, "checkpoint.npz"), os.path.join(out, "model.npz")
    checkpoint = ModelCheckpoint(ck_path, prior_history=prior)
    best = ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True, prior_history=prior)

    class MetricsWriter(Callback):  # rewritten after every epoch, so a crash loses nothing
        def on_epoch_end(self, epoch, logs):
            runs.write_metrics(out, checkpoint.history())

    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends in TrainingDivergedError
            model.fit(data.X_train, data.y_train, epochs=settings["epochs"], batch_size=settings["batch_size"],
                      validation_data=(data.X_val, data.y_val), verbose=0 if args.quiet else 1,
                      callbacks=[checkpoint, best, MetricsWriter()], seed=None if start else settings["seed"],
                      initial_epoch=start)
    except (KeyboardInterrupt, BrokenPipeError) as e:
        saving.save_model(model, os.path.join(out, "interrupted.npz"))
        if isinstance(e, BrokenPipeError):
            silence_stdout()  # the run stops, but its files and the hint below are kept
        finished = os.path.exists(ck_path)
        hint = (f"the last finished epoch is saved in {ck_path}; continue with: scratchnn train --resume {out}"
                if finished else "no epoch had finished, so there is nothing to resume; start again with the same "
                                 "command and --overwrite")
        why = "the output pipe closed" if isinstance(e, BrokenPipeError) else "interrupted"
        print(f"\n{why}: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingDivergedError as e:
        kept = [p for p in (best_path, ck_path) if os.path.exists(p)]
        where = (f"the last good model and checkpoint are in {' and '.join(kept)}" if kept
                 else "no epoch finished, so no model was saved")
        raise TrainingDivergedError(f"{e}; {where}") from None
    history = checkpoint.history()
    final = saving.load(best_path) if os.path.exists(best_path) else model
    with np.errstate(over="ignore", invalid="ignore"):
        test = final.evaluate(data.X_test, data.y_test) if len(data.X_test) else None
    if test is not None and not np.isfinite(test["loss"]):
        raise TrainingDivergedError(f"the chosen model's test loss is {test['loss']}: its weights grew too large "
                                    f"(try a smaller --lr or penalty); its files are in {out}")
    if test is not None:
        test["epoch_chosen"] = int(np.argmax(history["val_accuracy"])) + 1
    runs.write_metrics(out, history, test)
    if not args.no_plots:
        runs.write_plots(out, final, history, data.X_test, data.y_test, quiet=args.quiet)
    if test is not None:  # (also with --quiet: the one line a run is for)
        print(f"test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) with the model of epoch "
              f"{test['epoch_chosen']}, chosen on validation accuracy; outputs in {out}")
    return 0


# -- evaluate and predict -----------------------------------------------------------------------------
def cmd_evaluate(args):
    from . import saving
    from .datasets import load_dataset

    model = saving.load(args.model)
    recorded = model.info.get("dataset")
    if args.dataset is None and recorded is None:
        raise UsageError(f"{args.model} does not record the data set it was trained on (saved by an older scratchnn "
                         "or by your own code): pass --dataset")
    name = args.dataset or recorded
    if recorded is not None and name != recorded:
        raise UsageError(f"--dataset {name}: {args.model} was trained on {recorded}")
    recipe.check_data_dir(name, args.data_dir, "--data-dir")
    (_, _), (X, y) = load_dataset(name, data_dir=args.data_dir)
    X = recipe.prepare_images(X)
    if X.shape[1:] != tuple(model.input_shape):
        raise UsageError(f"--dataset {name}: its samples have shape {X.shape[1:]}, {args.model} takes "
                         f"{tuple(model.input_shape)}")
    res = model.evaluate(X, y)
    pred = model.predict_classes(X)
    names = model.info.get("class_names") or recipe.DATASETS[name]["class_names"]
    per_class = [{"class": i, "name": names[i] if i < len(names) else str(i), "samples": int((y == i).sum()),
                  "accuracy": float((pred[y == i] == i).mean()) if (y == i).any() else None}
                 for i in range(int(max(y.max(), pred.max())) + 1)]
    report = {"model": args.model, "dataset": name, "samples": len(X), **res, "per_class": per_class}
    if args.json:
        print(runs.strict_json(report))
        return 0
    print(f"{args.model} on the {name} test set: accuracy {res['accuracy']:.4f}, loss {res['loss']:.4f} "
          f"({len(X):,} samples)")
    width = max(len(r["name"]) for r in per_class)
    print(f"  {'class':<{width}}  samples  accuracy")
    for r in per_class:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        print(f"  {r['name']:<{width}}  {r['samples']:>7}  {acc:>8}")
    return 0


def cmd_predict(args):
    from . import saving
    from .images import read_input

    model = saving.load(args.model)
    names = model.info.get("class_names")
    show_names = bool(names) and names != [str(i) for i in range(len(names))]
    classifies = getattr(model.loss, "name", None) != "mse"
    failed = 0
    for path in args.images:
        try:
            batch, note = read_input(path, tuple(model.input_shape), invert=args.invert, resize=args.resize)
        except ScratchnnError as e:
            print(f"scratchnn predict: error: {e}", file=sys.stderr)
            failed += 1
            continue
        if note:
            print(f"scratchnn predict: note: {note}", file=sys.stderr)
        probs = model.predict(batch)
        for i, p in enumerate(probs):
            label = f"{path}[{i}]" if len(probs) > 1 else path
            if not classifies:  # a regression model (MSE): its outputs as they are
                print(f"{label}\t" + "\t".join(f"{v:.6g}" for v in np.ravel(p)))
                continue
            if len(p) == 1:  # one output: the probability of class 1 (sigmoid)
                c = int(p[0] > 0.5)
                confidence = float(p[0] if c else 1 - p[0])
            else:
                c, confidence = int(p.argmax()), float(p.max())
            name = f"\t{names[c]}" if show_names and c < len(names) else ""
            print(f"{label}\t{c}\t{confidence:.4f}{name}")
    if failed:
        if len(args.images) > 1:
            print(f"scratchnn predict: error: {failed} of {len(args.images)} inputs could not be read",
                  file=sys.stderr)
        return EXIT_USAGE
    return 0


def cmd_export(args):
    from . import interop, saving
    from .interop._common import require

    fmt = args.format
    require("onnx" if fmt == "onnx" else "torch", fmt, f"scratchnn export --format {fmt}")
    out = args.output or os.path.splitext(args.model)[0] + (".onnx" if fmt == "onnx" else ".pt")
    if os.path.isdir(out):
        raise InvalidArgumentError(f"-o {out!r} is a folder; name the file to write")
    if os.path.exists(out) and not args.overwrite:
        raise InvalidArgumentError(f"-o {out!r} already exists; pass --overwrite to replace it")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise MissingFileError(f"-o {out!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InvalidArgumentError(f"-o {out!r}: the folder {folder!r} is not writable")
    if os.path.exists(out) and os.path.exists(args.model) and os.path.samefile(out, args.model):
        raise InvalidArgumentError(f"-o {out!r} is the model file itself; name another file")
    if fmt == "onnx":
        import onnx
        newest = onnx.defs.onnx_opset_version()
        if args.opset > newest:
            raise InvalidArgumentError(f"--opset {args.opset}: the installed onnx {onnx.__version__} knows opsets "
                                       f"up to {newest}")
    elif args.opset != 21:
        raise UsageError("--opset applies to --format onnx only")
    model = saving.load(args.model)
    if fmt == "onnx":
        proto = interop.to_onnx(model, out, opset=args.opset)
        print(f"wrote {out}: ONNX opset {args.opset}, {len(proto.graph.node)} operators, "
              f"input 'input' (batch, {', '.join(map(str, model.input_shape))}), "
              f"output {proto.graph.output[0].name!r}")
        check = _check_export_onnx(model, out)
    else:
        from .files import atomic_write
        from .interop import pytorch

        module = interop.to_torch(model)
        atomic_write(out, lambda f: pytorch.torch.save(module.state_dict(), f))
        print(f"wrote {out}: the state_dict of\n{module}\nrebuild it with "
              f"scratchnn.interop.to_torch(scratchnn.load({args.model!r})) and load_state_dict")
        x = _export_probe(model)
        with pytorch.torch.no_grad():
            got = module(pytorch.torch.from_numpy(x)).numpy()
        check = ("PyTorch", _relative_gap(model.predict_logits(x), got))
    if check:
        print(f"checked: {check[0]} gives scratchnn's outputs on 8 random inputs within {check[1]:.1e} (relative)")
    if model.info.get("preprocess") == "scale_255":
        print("note: the model expects pixels scaled to [0, 1]: divide raw 0-255 pixels by 255 before calling it")
    return 0


def _export_probe(model):
    return np.random.default_rng(0).random((8, *model.input_shape)).astype(model.dtype)


def _relative_gap(want, got):
    return float(np.max(np.abs(want - got)) / max(float(np.max(np.abs(want))), 1e-30))


def _check_export_onnx(model, path):
    """Run the written graph in ONNX Runtime when it is installed: ``("ONNX Runtime", gap)`` or None."""
    try:
        import onnxruntime
    except ImportError:
        return None
    x = _export_probe(model)
    try:
        got = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    except Exception as e:  # e.g. an opset newer than the installed runtime
        print(f"scratchnn export: note: ONNX Runtime {onnxruntime.__version__} could not run the graph: "
              f"{str(e).splitlines()[0][:200]}", file=sys.stderr)
        return None
    return "ONNX Runtime", _relative_gap(model.predict_logits(x), got)


# -- search and experiment ------------------------------------------------------------------------
def cmd_search(args):
    from .search import load_search_config, random_search

    cfg = load_search_config(args.config)
    base = cfg["base"]
    if args.data_dir:
        recipe.check_data_dir(base.get("dataset", "spiral"), args.data_dir, "--data-dir")
        base["data_dir"] = args.data_dir
    out = args.out or os.path.join("runs", f"search-{os.path.splitext(os.path.basename(args.config))[0]}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: is a file, not a folder")
    if os.path.exists(os.path.join(out, "results.json")) and not args.resume:
        raise UsageError(f"--out {out}: already holds a search (results.json): pass --resume to continue it, "
                         "or choose another --out")
    n_trials = args.n_trials or cfg["n_trials"]
    try:
        result = random_search(cfg["space"], base, n_trials=n_trials, seed=cfg["seed"],
                               executor=args.executor or cfg["executor"], n_workers=args.workers or cfg["n_workers"],
                               scheduler=args.scheduler or cfg["scheduler"], out_dir=out, resume=True,
                               verbose=not args.quiet)
    except KeyboardInterrupt:
        again = f" --n-trials {args.n_trials}" if args.n_trials else ""
        print(f"\ninterrupted: finished trials are saved in {out}/results.json; continue with: "
              f"scratchnn search {args.config} --out {out}{again} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.best is None:
        print(f"scratchnn search: no trial succeeded ({len(result.trials)} trials); their errors are in "
              f"{out}/results.csv", file=sys.stderr)
        return 1
    best = result.best
    print(f"best val_accuracy {best['metrics']['val_accuracy']:.4f} (trial {best['trial']}) with "
          f"{runs.strict_json(best['config'])}; {result.n_failed} of {len(result.trials)} trials failed "
          f"({result.n_diverged} diverged); results in {out}")
    return 0


def cmd_experiment(args):
    from .experiments import STUDIES, DataUnavailable, run_experiment

    names = list(STUDIES) if args.name == "all" else [args.name]
    root = args.out or os.path.join("runs", "experiments")
    if args.data_dir:  # a folder the user names must hold what the studies read (--quick too: no silent fallback)
        recipe.check_data_dir("mnist", args.data_dir, "--data-dir")
        if "fashion" in names:
            recipe.check_data_dir("fashion-mnist", args.data_dir, "--data-dir (the fashion study reads both sets)")
    outs = {name: args.out if args.out and len(names) == 1 else os.path.join(root, name) for name in names}
    for name, out in outs.items():
        if os.path.exists(out) and not os.path.isdir(out):
            raise UsageError(f"--out {out}: is a file, not a folder")
        if os.path.isdir(out) and os.listdir(out) and not args.overwrite:
            raise UsageError(f"--out {out}: already holds results ({', '.join(sorted(os.listdir(out))[:4])}); pass "
                             "--overwrite to replace them, or choose another --out")
    for name, out in outs.items():
        try:
            result = run_experiment(name, out_dir=out, data_dir=args.data_dir, seed=args.seed, verbose=not args.quiet,
                                    budget="quick" if args.quick else "full" if args.full else "default")
        except DataUnavailable as e:
            if args.quick and len(names) > 1 and not e.quick_helps:  # the smoke test of every study that can run
                print(f"{name}: skipped: it needs data files that --quick does not download (pass --data-dir or "
                      "set $SCRATCHNN_DATA_DIR)", file=sys.stderr)
                continue
            quick = "" if args.quick or not e.quick_helps else ", or try --quick"
            raise DataUnavailable(f"{str(e).rstrip('.')}; pass --data-dir or set $SCRATCHNN_DATA_DIR{quick}",
                                  e.quick_helps) from None
        if args.quiet:
            print(f"{name}: {result.conclusion}")
        print(f"{name}: {', '.join(result.files)}")
    return 0


# -- parser -------------------------------------------------------------------------------------------
def make_parser():
    from .experiments import STUDIES
    from .optimizers import OPTIMIZERS
    from .presets import PRESETS
    from .schedules import SCHEDULES
    from .search import EXECUTORS

    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error "
                                                             "(or set SCRATCHNN_DEBUG=1)")
    p = Parser(prog="scratchnn", description="Neural networks from scratch on NumPy.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train a network on a data set", parents=[common])
    t.add_argument("--dataset", type=setting("dataset"),
                   help=f"{', '.join(recipe.DATASETS)} (default mnist)")
    t.add_argument("--data-dir", help="folder holding the data set's files (else $SCRATCHNN_DATA_DIR, the cache, "
                                      "or a download)")
    t.add_argument("--model", help=f"preset ({', '.join(PRESETS)}) or a .toml/.yaml model file (default mlp)")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), help="default: the preset's, else adam")
    t.add_argument("--lr", type=setting("lr"), help="(initial) learning rate, > 0")
    t.add_argument("--momentum", type=setting("momentum"), help="momentum in [0, 1) for sgd/momentum/nesterov")
    t.add_argument("--schedule", choices=list(SCHEDULES))
    t.add_argument("--schedule-args", type=parse_kv, dest="schedule_args",
                   help="schedule parameters, e.g. drop=0.5,every=10 (step), rate=0.95 (exponential), "
                        "k=0.1 (inverse_time), min_lr=1e-5 (cosine)")
    t.add_argument("--epochs", type=setting("epochs"), help="epochs to train (>= 1); with --resume, the new total")
    t.add_argument("--batch-size", type=setting("batch_size"), help="samples per update (>= 1)")
    t.add_argument("--l1", type=setting("l1"), help="L1 penalty on all weights (>= 0)")
    t.add_argument("--l2", type=setting("l2"), help="L2 penalty on all weights (>= 0)")
    t.add_argument("--max-norm", type=setting("max_norm"), help="max-norm constraint on every unit's weights (> 0)")
    t.add_argument("--dropout", type=setting("dropout"), help="rate in [0, 1) of the model's Dropout layers")
    t.add_argument("--standardize", choices=list(recipe.STANDARDIZE),
                   help="zero-center and scale inputs with training-set statistics, per input element "
                        "(feature) or with one mean/std (global); kept in the model file")
    t.add_argument("--val-size", type=setting("val_size"),
                   help="validation samples held out of the training set: a fraction in (0, 1) or a count "
                        f"(default {recipe.DEFAULT_VAL_SIZE:,} or a tenth of the training set, whichever is smaller)")
    t.add_argument("--limit", type=setting("limit"), help="use only the first N (>= 2) training samples")
    t.add_argument("--seed", type=setting("seed"), help="seed (>= 0) of the split, weights and shuffling (default 0)")
    t.add_argument("--out", help="output folder (default runs/DATASET-MODEL-TIME)")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    t.add_argument("--no-plots", action="store_true")
    t.add_argument("--quiet", action="store_true", help="no progress bar, summary or per-epoch lines: only the result")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="accuracy of a saved model on its test set", parents=[common])
    e.add_argument("model")
    e.add_argument("--dataset", type=setting("dataset"), help="default: the data set recorded in the model file")
    e.add_argument("--data-dir")
    e.add_argument("--json", action="store_true", help="one line of strict JSON instead of a table")
    e.set_defaults(func=cmd_evaluate)
    pr = sub.add_parser("predict", help="classify PNG or NPY images with a saved model", parents=[common])
    pr.add_argument("model")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--invert", action="store_true", help="invert gray levels (dark digit on light paper)")
    pr.add_argument("--resize", action="store_true", help="scale images of another size to the model's input size")
    pr.set_defaults(func=cmd_predict)
    xp = sub.add_parser("export", help="write a saved model as ONNX or as a PyTorch state_dict", parents=[common])
    xp.add_argument("model")
    xp.add_argument("--format", choices=["onnx", "torch"], default="onnx", help="default onnx")
    xp.add_argument("-o", "--output", help="file to write (default: the model's path with .onnx or .pt)")
    xp.add_argument("--opset", type=count(13), default=21, help="ONNX opset (default 21)")
    xp.add_argument("--overwrite", action="store_true", help="replace the file already at -o")
    xp.set_defaults(func=cmd_export)
    se = sub.add_parser("search", help="random hyperparameter search described by a TOML/YAML file", parents=[common])
    se.add_argument("config", help="file with [base] training settings, a [space] of distributions, n_trials, "
                                   "seed, executor, scheduler (see scratchnn.search.load_search_config)")
    se.add_argument("--out", help="output folder (default runs/search-CONFIGNAME)")
    se.add_argument("--resume", action="store_true", help="continue the search in --out, skipping finished trials")
    se.add_argument("--n-trials", type=count(1), help="override the file's n_trials")
    se.add_argument("--executor", choices=EXECUTORS, help="override the file's executor (default process)")
    se.add_argument("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://host:8786")
    se.add_argument("--workers", type=count(1), help="parallel trials (default: the number of CPUs)")
    se.add_argument("--data-dir", help="folder holding the data set's files")
    se.add_argument("--quiet", action="store_true", help="no line per trial")
    se.set_defaults(func=cmd_search)
    ex = sub.add_parser("experiment", help="run a classic study and write its plot and table", parents=[common],
                        description="Studies: " + "; ".join(f"{k}: {v[1]}" for k, v in STUDIES.items()))
    ex.add_argument("name", choices=[*STUDIES, "all"])
    ex.add_argument("--out", help="output folder (default runs/experiments/NAME)")
    size = ex.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="smoke test: tiny data, seconds per study; its numbers do not show the lessons")
    size.add_argument("--full", action="store_true",
                      help="the larger budgets of the tables in examples/README.md")
    ex.add_argument("--overwrite", action="store_true", help="replace the results already in the output folder")
    ex.add_argument("--data-dir", help="folder holding the MNIST files (else $SCRATCHNN_DATA_DIR or the cache)")
    ex.add_argument("--seed", type=setting("seed"), default=0)
    ex.add_argument("--quiet", action="store_true", help="no progress lines")
    ex.set_defaults(func=cmd_experiment)
    p.commands = sub.choices
    return p


def _user_path_error(e: OSError) -> bool:
    """An OSError about a file the user named (missing, unreadable, a folder, disk full)."""
    return e.filename is not None or isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the command's own parser: "scratchnn train: error: unrecognized arguments"
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help (0) or a flag argparse refused (2, message already printed)
        return e.code
    if args.command == "train":  # --epochs means "the new total" with --resume, a setting otherwise
        args.resume_epochs = args.epochs if args.resume else None
        if args.resume:
            args.epochs = None
    debug = args.debug or os.environ.get("SCRATCHNN_DEBUG", "") not in ("", "0")
    prog = f"scratchnn {args.command}"
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader of our output went away (| head): stop quietly, as other tools do
        silence_stdout()
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ScratchnnError, OSError, MemoryError) as e:
        if isinstance(e, OSError) and not isinstance(e, ScratchnnError) and not _user_path_error(e):
            raise
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe(e)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print(f"{prog}: this is a bug in scratchnn, not something you did wrong: please report it with the command "
              "you ran and the traceback above", file=sys.stderr)
        return 1


def silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush cannot fail on a closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def describe(e: BaseException) -> str:
    """One line for an error: the library's message, or what went wrong with which file."""
    if isinstance(e, MemoryError):
        return "out of memory: try a smaller --batch-size or a smaller model"
    if isinstance(e, OSError) and not isinstance(e, ScratchnnError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
