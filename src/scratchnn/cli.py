"""The ``scratchnn`` command: ``train``, ``evaluate``, ``predict``, ``search``, ``experiment``.

    scratchnn train --dataset mnist --model mlp --epochs 10 --out runs/mlp
    scratchnn train --resume runs/mlp           # continue an interrupted run exactly
    scratchnn evaluate runs/mlp/model.npz
    scratchnn predict runs/mlp/model.npz digit.png more.npy
    scratchnn search examples/search_mnist.toml --out runs/search
    scratchnn experiment init --out runs/init
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# -- data --------------------------------------------------------------------------------
def prepare_images(X):
    """uint8 images (N, H, W) -> float32 in [0, 1] shaped (N, 1, H, W); other data -> float32."""
    from .datasets import scale

    X = np.asarray(X)
    X = scale(X) if X.dtype == np.uint8 else X.astype(np.float32)
    if X.ndim == 3:
        X = X[:, None, :, :]
    return X


def load_data(args):
    from .datasets import load_dataset, train_val_split

    kwargs = {}
    if args.dataset in ("mnist", "fashion-mnist"):
        kwargs["progress"] = not args.quiet
    (Xtr, ytr), (Xte, yte) = load_dataset(args.dataset, data_dir=args.data_dir, **kwargs)
    Xtr, Xte = prepare_images(Xtr), prepare_images(Xte)
    if args.limit:
        Xtr, ytr = Xtr[: args.limit], ytr[: args.limit]
    val = args.val_size if args.val_size >= 1 else int(round(args.val_size * len(Xtr)))
    (Xtr, ytr), (Xval, yval) = train_val_split(Xtr, ytr, val_size=int(val), seed=args.seed)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    return (Xtr, ytr), (Xval, yval), (Xte, yte), n_classes


# -- model -------------------------------------------------------------------------------
def build(args, input_shape, n_classes, settings):
    from . import optimizers, schedules
    from .layers import Dropout
    from .model import Sequential
    from .presets import resolve
    from .regularizers import L1, L2, ElasticNet, MaxNorm

    layers, _ = resolve(args.model, input_shape, n_classes)
    if args.dropout is not None:
        drops = [l for l in layers if isinstance(l, Dropout)]
        if not drops:
            raise CLIError(f"--dropout: model {args.model!r} has no Dropout layer to set")
        for l in drops:
            l.rate = args.dropout
    model = Sequential(layers, name=os.path.basename(str(args.model)))
    lr = settings["lr"]
    sched = settings.get("schedule") or "constant"
    sched_args = dict(settings.get("schedule_args") or {})
    if sched == "cosine" and "epochs" not in sched_args:
        sched_args.setdefault("epochs", settings["epochs"])
    try:
        lr = schedules.get(sched, lr, **sched_args)
    except TypeError as e:
        raise CLIError(f"--schedule {sched}: {e}") from None
    opt_kwargs = {"lr": lr}
    if settings.get("momentum") is not None and settings["optimizer"] in ("sgd", "momentum", "nesterov"):
        opt_kwargs["momentum"] = settings["momentum"]
    optimizer = optimizers.get(settings["optimizer"], **opt_kwargs)
    reg = None
    if settings.get("l1") and settings.get("l2"):
        reg = ElasticNet(settings["l1"], settings["l2"])
    elif settings.get("l1"):
        reg = L1(settings["l1"])
    elif settings.get("l2"):
        reg = L2(settings["l2"])
    constraint = MaxNorm(settings["max_norm"]) if settings.get("max_norm") else None
    model.compile(optimizer=optimizer, loss="softmax_cross_entropy", regularizer=reg, constraint=constraint)
    model.build(input_shape)
    return model


def add_standardize(model, X, mode):
    """Put a ``Standardize`` layer adapted on the training inputs in front of ``model``."""
    from .layers import Standardize
    from .model import Sequential

    front = Standardize(axis="global" if mode == "global" else None, name="standardize")
    front.adapt(X)
    new = Sequential([front, *model.layers], name=model.name, dtype=model.dtype)
    new.optimizer, new.loss = model.optimizer, model.loss
    new.build(X.shape[1:])
    return new


SETTING_KEYS = ("optimizer", "lr", "momentum", "schedule", "schedule_args", "epochs", "batch_size",
                "l1", "l2", "max_norm", "standardize")


def parse_kv(text: str | None) -> dict:
    """``"drop=0.5,every=10"`` -> ``{"drop": 0.5, "every": 10}``."""
    out = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f"--schedule-args: expected key=value pairs separated by commas, received {item!r}")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise CLIError(f"--schedule-args: {key.strip()}={value!r} is not a number") from None
    return out


def settings_from(args, defaults):
    s = dict(defaults)
    if args.schedule is not None and args.schedule != s.get("schedule"):
        s.pop("schedule_args", None)  # the preset's arguments belong to its own schedule
    for k in SETTING_KEYS:
        v = getattr(args, k, None)
        if v is not None:
            s[k] = v
    s.setdefault("optimizer", "adam")
    s.setdefault("lr", 0.001)
    s.setdefault("epochs", 10)
    s.setdefault("batch_size", 32)
    return s


# -- outputs -----------------------------------------------------------------------------
def write_metrics(out, history: dict, test: dict | None = None):
    epochs = len(next(iter(history.values()), []))
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"epochs": history, "test": test}, f, indent=1)
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        w = csv.writer(f)
        keys = list(history)
        w.writerow(["epoch", *keys])
        for i in range(epochs):
            w.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])


def write_plots(out, model, history, X, y, quiet=False):
    from . import plots
    from .layers import Conv2D, Dense

    folder = os.path.join(out, "plots")
    os.makedirs(folder, exist_ok=True)
    pred = model.predict_classes(X)
    written = [plots.plot_history(history, os.path.join(folder, "curves.png")),
               plots.plot_confusion_matrix(y, pred, os.path.join(folder, "confusion_matrix.png"))]
    if X.ndim == 4:
        written.append(plots.plot_misclassified(X, y, pred, os.path.join(folder, "misclassified.png")))
    elif X.shape[1:] == (2,):
        written.append(plots.plot_decision_boundary(model.predict_classes, X, y,
                                                    os.path.join(folder, "decision_boundary.png")))
    first = next((l for l in model.layers if l.params), None)
    if isinstance(first, Dense) and model.input_shape is not None and len(model.input_shape) >= 2:
        shape = model.input_shape[-2:]
        written.append(plots.plot_dense_weights(first.params["W"], os.path.join(folder, "first_layer_weights.png"),
                                                image_shape=shape))
    if isinstance(first, Conv2D):
        written.append(plots.plot_conv_filters(first.params["W"], os.path.join(folder, "conv1_filters.png")))
        maps, x = [], X[:1]
        for layer in model.layers:
            x = layer.forward(x)
            if isinstance(layer, Conv2D):
                maps.append((layer.name, x[0]))
        written.append(plots.plot_feature_maps(maps, os.path.join(folder, "feature_maps.png")))
    if not quiet:
        print(f"plots: {', '.join(os.path.relpath(p, out) for p in written)}")


def metrics_writer(out, checkpoint):
    """A callback rewriting metrics.json/.csv after every epoch (so a crash loses nothing)."""
    from .callbacks import Callback

    class MetricsWriter(Callback):
        def on_epoch_end(self, epoch, logs):
            write_metrics(out, checkpoint.history())

    return MetricsWriter()


# -- commands ----------------------------------------------------------------------------
def cmd_train(args):
    from . import saving
    from .backend import set_seed
    from .callbacks import ModelCheckpoint
    from .presets import resolve

    resume = args.resume
    if resume:
        cfg_path = os.path.join(resume, "config.json")
        if not os.path.exists(cfg_path):
            raise CLIError(f"--resume {resume}: no config.json there (is it a run folder?)")
        with open(cfg_path) as f:
            cfg = json.load(f)
        epochs_override = args.epochs
        args = argparse.Namespace(**{**vars(args), **cfg["args"]})
        args.out, args.resume = resume, resume
        settings = cfg["settings"]
        if epochs_override is not None:
            settings["epochs"] = epochs_override
    out = args.out or os.path.join("runs", f"{args.dataset}-{os.path.basename(str(args.model))}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out, exist_ok=True)
    set_seed(args.seed)
    (Xtr, ytr), (Xval, yval), (Xte, yte), n_classes = load_data(args)
    ck_path = os.path.join(out, "checkpoint.npz")
    best_path = os.path.join(out, "model.npz")
    if resume:
        if not os.path.exists(ck_path):
            raise CLIError(f"--resume {resume}: no checkpoint.npz there yet (the run ended before its first epoch)")
        model, ck = saving.load_checkpoint(ck_path)
        start, prior = ck["epoch"], ck["history"]
        if not args.quiet:
            print(f"resuming {out} at epoch {start + 1}/{settings['epochs']}")
    else:
        _, defaults = resolve(args.model, Xtr.shape[1:], n_classes)
        settings = settings_from(args, defaults)
        model = build(args, Xtr.shape[1:], n_classes, settings)
        if settings.get("standardize") not in (None, "none"):
            model = add_standardize(model, Xtr, settings["standardize"])
        start, prior = 0, {}
        cfg = {"args": {k: v for k, v in vars(args).items() if k not in ("func", "out", "resume")},
               "settings": settings, "n_classes": n_classes, "input_shape": list(Xtr.shape[1:]),
               "train_samples": len(Xtr), "val_samples": len(Xval)}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        if not args.quiet:
            model.summary()
    info = {"dataset": args.dataset, "preprocess": "scale_255"}
    checkpoint = ModelCheckpoint(ck_path, prior_history=prior, info=info)
    best = ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True, prior_history=prior)
    try:
        model.fit(Xtr, ytr, epochs=settings["epochs"], batch_size=settings["batch_size"],
                  validation_data=(Xval, yval), verbose=0 if args.quiet else 1, callbacks=[checkpoint, best, metrics_writer(out, checkpoint)],
                  seed=None if resume else args.seed, initial_epoch=start)
    except KeyboardInterrupt:
        saving.save_model(model, os.path.join(out, "interrupted.npz"))
        write_metrics(out, checkpoint.history() if model.history else prior)
        print(f"\ninterrupted: the last finished epoch is saved in {ck_path}; "
              f"continue with: scratchnn train --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    history = checkpoint.history()
    final = saving.load(best_path) if os.path.exists(best_path) else model
    test = final.evaluate(Xte, yte) if len(Xte) else None
    if test is not None:
        test["epoch_chosen"] = int(np.argmax(history["val_accuracy"])) + 1
    write_metrics(out, history, test)
    if not args.no_plots:
        write_plots(out, final, history, Xte, yte, quiet=args.quiet)
    if not args.quiet and test is not None:
        print(f"test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) with the model of epoch "
              f"{test['epoch_chosen']}, chosen on validation accuracy; outputs in {out}")
    return 0


def cmd_evaluate(args):
    from . import saving
    from .datasets import load_dataset

    model = load_model_or_fail(args.model)
    name = args.dataset or saving.read_npz(args.model)[0].get("extra", {}).get("dataset") or "mnist"
    _, (Xte, yte) = load_dataset(name, data_dir=args.data_dir)
    res = model.evaluate(prepare_images(Xte), yte)
    print(json.dumps({"dataset": name, "samples": len(Xte), **res}))
    return 0


def load_image(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        img = np.load(path, allow_pickle=False)
    elif ext == ".png":
        import matplotlib.image as mpimg

        img = mpimg.imread(path)  # float in [0, 1] for PNG
        if img.ndim == 3:
            img = img[..., :3].mean(axis=-1)
    else:
        raise CLIError(f"{path}: unsupported image type {ext!r} (use .png or .npy)")
    img = np.asarray(img)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    return img.astype(np.float32)


def cmd_predict(args):
    model = load_model_or_fail(args.model)
    want = tuple(model.input_shape)
    rows = []
    for path in args.images:
        if not os.path.exists(path):
            raise CLIError(f"{path}: no such file")
        img = load_image(path)
        if args.invert:
            img = 1.0 - img
        batch = img.reshape((-1,) + want) if img.size % int(np.prod(want)) == 0 else None
        if batch is None:
            raise CLIError(f"{path}: image of shape {img.shape} does not fit the model's input {want}")
        probs = model.predict(batch)
        for i, p in enumerate(probs):
            label = f"{path}[{i}]" if len(probs) > 1 else path
            rows.append({"image": label, "class": int(p.argmax()), "probability": round(float(p.max()), 4)})
    for r in rows:
        print(f"{r['image']}\t{r['class']}\t{r['probability']:.4f}")
    return 0


def load_model_or_fail(path):
    from . import saving

    try:
        return saving.load(path)
    except saving.ModelFileError as e:
        raise CLIError(str(e)) from None


def cmd_search(args):
    from .search import load_search_config, random_search

    try:
        cfg = load_search_config(args.config)
    except (ValueError, FileNotFoundError, ImportError) as e:
        raise CLIError(str(e)) from None
    base = cfg["base"]
    if args.data_dir:
        base["data_dir"] = args.data_dir
    out = args.out or os.path.join("runs", f"search-{os.path.splitext(os.path.basename(args.config))[0]}")
    if os.path.exists(os.path.join(out, "results.json")) and not args.resume:
        raise CLIError(f"{out} already holds a search (results.json): pass --resume to continue it, "
                       "or choose another --out")
    n_trials = args.n_trials or cfg["n_trials"]
    try:
        result = random_search(cfg["space"], base, n_trials=n_trials, seed=cfg["seed"],
                               executor=args.executor or cfg["executor"], n_workers=args.workers or cfg["n_workers"],
                               scheduler=args.scheduler or cfg["scheduler"], out_dir=out, resume=True,
                               verbose=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are saved in {out}/results.json; continue with: "
              f"scratchnn search {args.config} --out {out} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, ImportError) as e:
        raise CLIError(str(e)) from None
    if result.best is None:
        print(f"all {len(result.trials)} trials failed; their errors are in {out}/results.csv", file=sys.stderr)
        return 1
    best = result.best
    print(f"best val_accuracy {best['metrics']['val_accuracy']:.4f} (trial {best['trial']}) with "
          f"{json.dumps(best['config'])}; {result.n_failed} of {len(result.trials)} trials failed; "
          f"results in {out}")
    return 0


def cmd_experiment(args):
    from .experiments import STUDIES, DataUnavailable, run_experiment

    names = list(STUDIES) if args.name == "all" else [args.name]
    root = args.out or os.path.join("runs", "experiments")
    for name in names:
        out = args.out if args.out and len(names) == 1 else os.path.join(root, name)
        try:
            result = run_experiment(name, out_dir=out, quick=args.quick, data_dir=args.data_dir, seed=args.seed,
                                    verbose=not args.quiet)
        except DataUnavailable as e:
            raise CLIError(f"{e}; pass --data-dir, set $SCRATCHNN_DATA_DIR, or try --quick") from None
        print(f"{name}: {', '.join(result.files)}")
    return 0


def cmd_bench(args):
    from .bench.suite import UsageError, parse_lists, run

    try:
        parse_lists(args)
    except UsageError as e:
        raise CLIError(str(e)) from None
    run(args)
    return 0


# -- parser ------------------------------------------------------------------------------
def make_parser():
    from .presets import PRESETS

    p = argparse.ArgumentParser(prog="scratchnn", description="Neural networks from scratch on NumPy.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a network on a data set")
    t.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, digits or spiral (default mnist)")
    t.add_argument("--data-dir", help="folder holding the data set's files (else $SCRATCHNN_DATA_DIR, the cache, "
                                      "or a download)")
    t.add_argument("--model", default="mlp", help=f"preset ({', '.join(PRESETS)}) or a .toml/.yaml model file")
    t.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw")
    t.add_argument("--lr", type=float, help="(initial) learning rate")
    t.add_argument("--momentum", type=float, help="momentum for sgd/momentum/nesterov")
    t.add_argument("--schedule", choices=["constant", "step", "exponential", "inverse_time", "cosine"])
    t.add_argument("--schedule-args", type=parse_kv, dest="schedule_args",
                   help="schedule parameters, e.g. drop=0.5,every=10 (step), rate=0.95 (exponential), "
                        "k=0.1 (inverse_time), min_lr=1e-5 (cosine)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--l1", type=float, help="L1 penalty on all weights")
    t.add_argument("--l2", type=float, help="L2 penalty on all weights")
    t.add_argument("--max-norm", type=float, help="max-norm constraint on every unit's weights")
    t.add_argument("--dropout", type=float, help="rate of the model's Dropout layers")
    t.add_argument("--standardize", choices=["feature", "global", "none"],
                   help="zero-center and scale inputs with training-set statistics, per input element "
                        "(feature) or with one mean/std (global); kept in the model file")
    t.add_argument("--val-size", type=float, default=5000, help="validation samples (or fraction) held out of "
                                                                "the training set (default 5000)")
    t.add_argument("--limit", type=int, help="use only the first N training samples (quick tries)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="output folder (default runs/DATASET-MODEL-TIME)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    t.add_argument("--no-plots", action="store_true")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="accuracy of a saved model on a test set")
    e.add_argument("model")
    e.add_argument("--dataset")
    e.add_argument("--data-dir")
    e.set_defaults(func=cmd_evaluate)
    pr = sub.add_parser("predict", help="classify PNG or NPY images with a saved model")
    pr.add_argument("model")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--invert", action="store_true", help="invert gray levels (dark digit on light paper)")
    pr.set_defaults(func=cmd_predict)
    from .experiments import STUDIES
    from .search import EXECUTORS

    se = sub.add_parser("search", help="random hyperparameter search described by a TOML/YAML file")
    se.add_argument("config", help="file with [base] training settings, a [space] of distributions, n_trials, "
                                   "seed, executor, scheduler (see scratchnn.search.load_search_config)")
    se.add_argument("--out", help="output folder (default runs/search-CONFIGNAME)")
    se.add_argument("--resume", action="store_true", help="continue the search in --out, skipping finished trials")
    se.add_argument("--n-trials", type=int, help="override the file's n_trials")
    se.add_argument("--executor", choices=EXECUTORS, help="override the file's executor (default process)")
    se.add_argument("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://host:8786")
    se.add_argument("--workers", type=int, help="parallel trials (default: the number of CPUs)")
    se.add_argument("--data-dir", help="folder holding the data set's files")
    se.add_argument("--quiet", action="store_true", help="no line per trial")
    se.set_defaults(func=cmd_search)
    ex = sub.add_parser("experiment", help="run a classic study and write its plot and table",
                        description="Studies: " + "; ".join(f"{k}: {v[1]}" for k, v in STUDIES.items()))
    ex.add_argument("name", choices=[*STUDIES, "all"])
    ex.add_argument("--out", help="output folder (default runs/experiments/NAME)")
    ex.add_argument("--quick", action="store_true", help="tiny data and budgets: seconds instead of minutes")
    ex.add_argument("--data-dir", help="folder holding the MNIST files (else $SCRATCHNN_DATA_DIR or the cache)")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--quiet", action="store_true", help="no progress lines")
    ex.set_defaults(func=cmd_experiment)
    from .bench.suite import add_arguments

    b = sub.add_parser("bench", help="speed, memory and accuracy vs PyTorch and a minimal NumPy loop on this machine",
                       description="The benchmark suite (sections workloads, cnn, inference, scaling, memmap); "
                                   "prints tables and the issue's targets, writes JSON and PNG plots. The full "
                                   "run takes ~15 min on 2 cores; --quick a few minutes.")
    add_arguments(b, os.path.join("scratchnn-bench", "bench.json"))
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    from .datasets import DatasetNotFoundError

    try:
        return args.func(args)
    except (CLIError, DatasetNotFoundError) as e:
        print(f"scratchnn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
