"""Regularization against overfitting: an over-large MLP trained on 1,000 MNIST images.

The same 784-512-512-10 network (about 670,000 weights for 1,000 images) is trained with SGD and
momentum with no regularization, L2 at three strengths, L1, dropout and a max-norm constraint.
Training and validation accuracy per epoch show the generalization gap; the weight
magnitudes show what each penalty does to the weights (L1 drives many of them to zero).
"""
from __future__ import annotations

import numpy as np

from ..callbacks import Callback
from ._common import fit, last


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

    q = ctx.quick
    data = ctx.images(300 if q else 1000, 300 if q else 1000, allow_spiral=True).flat()
    width = 128 if q else 512
    epochs, batch = (4, 32) if q else (30, 32)
    lr = 0.01
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples; "
            f"784-{width}-{width}-10 ReLU, SGD lr {lr} momentum 0.9, batch {batch}, {epochs} epochs")
    rows, hist = [], {}
    for label, spec in VARIANTS.items():
        ctx.seed_all()
        model = _build(width, data.n_classes, spec)
        model.compile(optimizer=SGD(lr, momentum=0.9), loss="softmax_cross_entropy")
        data_loss = DataLoss()
        h, _, diverged = fit(model, data, epochs, batch, ctx.seed, callbacks=[data_loss])
        h["val_data_loss"] = data_loss.values
        hist[label] = h
        # accuracy on the whole training set in inference mode (dropout off), like the validation number
        train_acc = model.evaluate(data.X, data.y)["accuracy"]
        val = h["val_accuracy"]
        rows.append({"variant": label, "train_accuracy": train_acc, "val_accuracy": last(h, "val_accuracy"),
                     "best_val_accuracy": max(val) if val else float("nan"), "val_loss": last(h, "val_data_loss"),
                     "min_val_loss": min(h["val_data_loss"]) if h["val_data_loss"] else float("nan"),
                     "gap": train_acc - last(h, "val_accuracy"), "diverged": diverged, **weight_stats(model)})
        ctx.log(f"{label:26s} train {train_acc:.4f} val {rows[-1]['val_accuracy']:.4f} "
                f"mean|w| {rows[-1]['mean_abs_weight']:.4f} |w|<1e-3 {rows[-1]['frac_weights_below_1e-3']:.1%}")
    _plot(ctx, rows, hist)
    base = rows[0]
    summary = [f"{r['variant']}: train accuracy {r['train_accuracy']:.4f}, validation {r['val_accuracy']:.4f} "
               f"(gap {r['gap']:.4f}), validation loss {r['val_loss']:.3f} (lowest {r['min_val_loss']:.3f}), "
               f"mean |w| {r['mean_abs_weight']:.4f}, "
               f"{r['frac_weights_below_1e-3']:.1%} of weights below 1e-3" for r in rows]
    best = max(rows, key=lambda r: r["val_accuracy"])
    summary.append(f"best validation accuracy: {best['variant']} {best['val_accuracy']:.4f} "
                   f"vs {base['val_accuracy']:.4f} without regularization")
    return ctx.finish(rows, summary, dataset=data.name, train_samples=len(data.X), val_samples=len(data.X_val),
                      width=width, epochs=epochs, batch_size=batch, optimizer=f"SGD lr {lr} momentum 0.9",
                      curves={k: {m: v.get(m) for m in ("accuracy", "val_accuracy", "val_data_loss")}
                              for k, v in hist.items()})


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
    ctx.save_figure(fig, title="Regularization of an over-large MLP on a small training set")
