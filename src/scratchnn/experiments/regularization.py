"""Regularization against overfitting: an over-large MLP trained on 1,000 MNIST images.

The same 784-512-512-10 network (about 670,000 weights for 1,000 images) is trained with SGD and
momentum with no regularization, L2 at three strengths, L1, dropout and a max-norm constraint.
Training and validation accuracy per epoch show the generalization gap; the weight
magnitudes show what each penalty does to the weights (L1 drives many of them to zero). The
conclusion compares each variant's validation accuracy with the unregularized network's on the
same images, against the noise of that comparison (the images on which the two disagree).
"""
from __future__ import annotations

import numpy as np

from ..callbacks import Callback
from ._common import Split, ahead, fit, last, paired_noise, pct, points


class DataLoss(Callback):
    """The validation loss without the penalty (``val_loss`` includes it), once per epoch."""

    def __init__(self):
        self.values = []

    def on_epoch_end(self, epoch, logs):
        self.values.append(logs["val_loss"] - self.model.penalty())


VARIANTS = {"none": {}, "L2 1e-4": {"l2": 1e-4}, "L2 1e-3": {"l2": 1e-3}, "L2 1e-2": {"l2": 1e-2},
            "L1 1e-4": {"l1": 1e-4}, "dropout 0.5": {"dropout": 0.5}, "max-norm 1": {"max_norm": 1.0}}


def _build(width, n_classes, spec):
    from ..layers import Dense, Dropout, Flatten, ReLU
    from ..model import Sequential
    from ..regularizers import L1, L2, MaxNorm

    reg = L2(spec["l2"]) if "l2" in spec else L1(spec["l1"]) if "l1" in spec else None
    con = MaxNorm(spec["max_norm"]) if "max_norm" in spec else None
    layers = [Flatten()]
    for _ in range(2):
        layers += [Dense(width, init="he_normal", regularizer=reg, constraint=con), ReLU()]
        if "dropout" in spec:
            layers.append(Dropout(spec["dropout"]))
    layers.append(Dense(n_classes, init="he_normal", regularizer=reg, constraint=con))
    return Sequential(layers)


def weight_stats(model):
    """Mean |w|, total L2 norm, fraction |w| < 1e-3 and the largest unit norm over all Dense weights."""
    Ws = [l.params["W"] for l in model.layers if "W" in l.params]
    flat = np.concatenate([W.ravel() for W in Ws]).astype(np.float64)
    unit = max(float(np.sqrt((W.astype(np.float64) ** 2).sum(axis=0)).max()) for W in Ws)
    return {"mean_abs_weight": float(np.abs(flat).mean()), "weight_l2_norm": float(np.sqrt((flat ** 2).sum())),
            "frac_weights_below_1e-3": float(np.mean(np.abs(flat) < 1e-3)), "max_unit_norm": unit}


def run(ctx):
    from ..optimizers import SGD

    # the default budget measures the final validation accuracy on 5,000 images (the noise of a
    # difference of about one point must be well under a point); the curves use the first 1,000
    data = ctx.images(ctx.pick(300, 1000, 1000), ctx.pick(300, 5000, 1000), allow_spiral=True).flat()
    n_curve = min(len(data.X_val), 1000)
    curve_data = Split(data.X, data.y, data.X_val[:n_curve], data.y_val[:n_curve], data.name, data.n_classes)
    width = ctx.pick(128, 512, 512)
    epochs, batch = ctx.pick((4, 32), (25, 32), (30, 32))
    variants = {k: v for k, v in VARIANTS.items() if k != "L2 1e-4" or ctx.budget != "default"}
    lr = 0.01
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples ({n_curve} per epoch); "
            f"784-{width}-{width}-10 ReLU, SGD lr {lr} momentum 0.9, batch {batch}, {epochs} epochs")
    rows, hist, correct = [], {}, {}
    for label, spec in variants.items():
        ctx.seed_all()
        model = _build(width, data.n_classes, spec)
        model.compile(optimizer=SGD(lr, momentum=0.9), loss="softmax_cross_entropy")
        data_loss = DataLoss()
        h, _, diverged = fit(model, curve_data, epochs, batch, ctx.seed, callbacks=[data_loss])
        h["val_data_loss"] = data_loss.values
        hist[label] = h
        # accuracy on the whole training set in inference mode (dropout off), like the validation number
        train_acc = model.evaluate(data.X, data.y)["accuracy"]
        with np.errstate(all="ignore"):
            correct[label] = model.predict_classes(data.X_val) == data.y_val
        val_acc = float("nan") if diverged else float(correct[label].mean())
        val = h["val_accuracy"]
        rows.append({"variant": label, "train_accuracy": train_acc, "val_accuracy": val_acc,
                     "best_val_accuracy": max(val) if val else float("nan"), "val_loss": last(h, "val_data_loss"),
                     "min_val_loss": min(h["val_data_loss"]) if h["val_data_loss"] else float("nan"),
                     "gap": train_acc - val_acc,
                     # standard error of (this variant - no regularization) on the same validation images
                     "noise_vs_none": paired_noise(correct[label], correct["none"]),
                     "diverged": diverged, **weight_stats(model)})
        ctx.log(f"{label:26s} train {train_acc:.4f} val {rows[-1]['val_accuracy']:.4f} "
                f"mean|w| {rows[-1]['mean_abs_weight']:.4f} |w|<1e-3 {rows[-1]['frac_weights_below_1e-3']:.1%}")
    fig = _plot(ctx, rows, hist)
    base = rows[0]
    summary = [f"{r['variant']}: train accuracy {r['train_accuracy']:.4f}, validation {r['val_accuracy']:.4f} "
               f"(gap {r['gap']:.4f}), validation loss {r['val_loss']:.3f} (lowest {r['min_val_loss']:.3f}), "
               f"mean |w| {r['mean_abs_weight']:.4f}, "
               f"{r['frac_weights_below_1e-3']:.1%} of weights below 1e-3" for r in rows]
    best = max(rows, key=lambda r: r["val_accuracy"])
    summary.append(f"best validation accuracy: {best['variant']} {best['val_accuracy']:.4f} "
                   f"vs {base['val_accuracy']:.4f} without regularization")
    return ctx.finish(rows, summary, figure=fig, title="Regularization of an over-large MLP on a small training set",
                      dataset=data.name, train_samples=len(data.X), val_samples=len(data.X_val),
                      curve_val_samples=n_curve, width=width, epochs=epochs, batch_size=batch,
                      optimizer=f"SGD lr {lr} momentum 0.9",
                      curves={k: {m: v.get(m) for m in ("accuracy", "val_accuracy", "val_data_loss")}
                              for k, v in hist.items()})


def conclusion(rows, meta):
    """Does a regularizer narrow the overfitting gap by lifting validation accuracy by more than the noise?"""
    base = next(r for r in rows if r["variant"] == "none")
    others = [r for r in rows if r["variant"] != "none" and r["val_accuracy"] is not None]
    best = max(others, key=lambda r: (r["val_accuracy"], -r["gap"]))
    n = meta["train_samples"]
    if base["gap"] is None or base["gap"] < 0.03:
        return (f"Without regularization the {meta['width']}-unit network does not overfit its {n:,} training samples "
                f"here (training accuracy {pct(base['train_accuracy'])}, validation {pct(base['val_accuracy'])}), so "
                f"there is no gap for regularization to narrow; the best variant, {best['variant']}, validates at "
                f"{pct(best['val_accuracy'])}.")
    s = (f"Without regularization the {meta['width']}-unit network fits its {n:,} training images "
         f"({pct(base['train_accuracy'])}) but reaches {pct(base['val_accuracy'])} on validation images, "
         f"a gap of {points(base['gap'])}; ")
    d = best["val_accuracy"] - base["val_accuracy"]
    if ahead(best["val_accuracy"], base["val_accuracy"], best["noise_vs_none"]) and best["gap"] < base["gap"]:
        also = [r["variant"] for r in others if r is not best and r["gap"] < base["gap"]
                and ahead(r["val_accuracy"], base["val_accuracy"], r["noise_vs_none"])]
        s += (f"{best['variant']} narrows it to {points(best['gap'])} and lifts validation accuracy by {points(d)} "
              f"({d / best['noise_vs_none']:.1f}x the noise of +-{points(best['noise_vs_none'])})")
        s += f"; {', '.join(also)} also beat{'s' if len(also) == 1 else ''} the noise." if also else \
            "; no other variant beats the noise."
    else:
        s += (f"no regularizer lifts validation accuracy by more than twice the noise: the best, {best['variant']}, "
              f"is {'+' if d >= 0 else '-'}{points(d)} (noise +-{points(best['noise_vs_none'])}), with a gap of "
              f"{points(best['gap'])}.")
    return s


def _plot(ctx, rows, hist):
    fig, ax = ctx.figure(1, 4, width=4.4)
    colors = [f"C{i}" for i in range(10)]
    for i, r in enumerate(rows):
        h = hist[r["variant"]]
        for a, key in zip(ax[0], ("accuracy", "val_accuracy", "val_data_loss")):
            v = h.get(key, [])
            a.plot(np.arange(1, len(v) + 1), v, color=colors[i % 10], label=r["variant"])
    ax[0, 0].set(xlabel="epoch", ylabel="accuracy (running, training mode)", title="Training accuracy")
    ax[0, 1].set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
    ax[0, 2].set(xlabel="epoch", ylabel="cross-entropy (penalty excluded)", title="Validation loss")
    names = [r["variant"] for r in rows]
    y = np.arange(len(rows))
    ax[0, 3].barh(y, [r["mean_abs_weight"] for r in rows], color=colors[: len(rows)])
    for yi, r in zip(y, rows):
        ax[0, 3].text(r["mean_abs_weight"], yi, f" {r['frac_weights_below_1e-3']:.0%} < 1e-3", va="center", fontsize=7)
    ax[0, 3].set_yticks(y, names, fontsize=7)
    ax[0, 3].invert_yaxis()
    ax[0, 3].set(xlabel="mean |w| after training", title="Weight magnitude")
    for a in ax[0, :3]:
        a.legend(fontsize=7)
    for a in ax[0]:
        a.grid(True, alpha=0.3)
    return fig
