"""Optimizers on the same network, data, initial weights, batch order and budget.

SGD, momentum, Nesterov momentum, AdaGrad, RMSprop and Adam each train the 784-128-64-10 ReLU
network at four learning rates, half a decade apart (a quick run: only the third, the best of
each at the full budget); the curves show each optimizer at its best rate (chosen on validation
accuracy), the last panel the sensitivity to the rate. The conclusion compares momentum and Adam
with plain SGD, against the noise of the validation set.
"""
from __future__ import annotations

import numpy as np

from ._common import ahead, fit, last, paired_noise, pct, points, smooth

#: name -> (optimizer name for ``optimizers.get``, learning rates)
GRID = {"SGD": ("sgd", (0.03, 0.1, 0.3, 1.0)), "momentum 0.9": ("momentum", (0.003, 0.01, 0.03, 0.1)),
        "Nesterov 0.9": ("nesterov", (0.003, 0.01, 0.03, 0.1)), "AdaGrad": ("adagrad", (0.003, 0.01, 0.03, 0.1)),
        "RMSprop": ("rmsprop", (3e-4, 1e-3, 3e-3, 1e-2)), "Adam": ("adam", (3e-4, 1e-3, 3e-3, 1e-2))}


def _build(n_classes):
    from ..layers import Dense, Flatten, ReLU
    from ..model import Sequential

    return Sequential([Flatten(), Dense(128, init="he_normal"), ReLU(), Dense(64, init="he_normal"), ReLU(),
                       Dense(n_classes)])


def run(ctx):
    from .. import optimizers

    q = ctx.quick
    data = ctx.images(ctx.pick(600, 10000, 10000), ctx.pick(300, 2000, 2000), allow_spiral=True).flat()
    epochs, batch = ctx.pick((2, 32), (3, 64), (5, 64))
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples; 784-128-64-10 ReLU, "
            f"batch {batch}, {epochs} epochs, same initial weights and batch order for every run")
    rows, runs, correct = [], {}, {}
    for label, (name, lrs) in GRID.items():
        for lr in (lrs[2:3] if q else lrs):
            ctx.seed_all()
            model = _build(data.n_classes)
            model.compile(optimizer=optimizers.get(name, lr=lr), loss="softmax_cross_entropy")
            h, losses, diverged = fit(model, data, epochs, batch, ctx.seed, batch_losses=True)
            runs[(label, lr)] = (h, losses)
            with np.errstate(all="ignore"):
                correct[(label, lr)] = model.predict_classes(data.X_val) == data.y_val
            rows.append({"optimizer": label, "lr": lr, "final_train_loss": last(h, "loss"),
                         "val_accuracy": last(h, "val_accuracy"), "epoch1_val_accuracy": h["val_accuracy"][0]
                         if h.get("val_accuracy") else float("nan"), "diverged": diverged})
            ctx.log(f"{label:13s} lr {lr:<7g} loss {rows[-1]['final_train_loss']:.4f} "
                    f"val acc {rows[-1]['val_accuracy']:.4f}")
    best = {}
    for r in rows:
        b = best.get(r["optimizer"])
        if b is None or np.nan_to_num(r["val_accuracy"], nan=-1) > np.nan_to_num(b["val_accuracy"], nan=-1):
            best[r["optimizer"]] = r
    sgd = best["SGD"]
    for r in rows:
        r["best_lr_for_optimizer"] = best[r["optimizer"]] is r
        # standard error of (this run - SGD at its best rate) on the same validation images
        r["noise_vs_sgd"] = paired_noise(correct[(r["optimizer"], r["lr"])], correct[("SGD", sgd["lr"])])
    fig = _plot(ctx, rows, runs, best)
    summary = [f"{k}: best lr {b['lr']:g} -> validation accuracy {b['val_accuracy']:.4f} after {epochs} epochs "
               f"({b['epoch1_val_accuracy']:.4f} after 1), final training loss {b['final_train_loss']:.4f}"
               for k, b in best.items()]
    return ctx.finish(rows, summary, figure=fig, title="Optimizers: same network, data, initial weights and budget",
                      dataset=data.name, train_samples=len(data.X), val_samples=len(data.X_val),
                      epochs=epochs, batch_size=batch, learning_rates_per_optimizer=1 if q else 4,
                      network="784-128-64-10 ReLU, He init")


def conclusion(rows, meta):
    """Are momentum and Adam ahead of plain SGD on the same budget (by more than twice the noise)?"""
    best = {r["optimizer"]: r for r in rows if r.get("best_lr_for_optimizer")}
    sgd = best["SGD"]
    k = meta.get("learning_rates_per_optimizer", 4)
    budget = (f"on equal budgets ({meta['epochs']} epochs of {meta['train_samples']:,} images, each optimizer at "
              + (f"its best of {k} learning rates)" if k > 1 else "one learning rate)"))
    wins, misses = [], []
    for name in ("momentum 0.9", "Adam"):
        b, short = best[name], name.split()[0]
        if ahead(b["val_accuracy"], sgd["val_accuracy"], b["noise_vs_sgd"]):
            wins.append(f"{short} ({pct(b['val_accuracy'])})")
        else:
            d = b["val_accuracy"] - sgd["val_accuracy"]
            misses.append(f"{short} {pct(b['val_accuracy'])} ({'+' if d >= 0 else '-'}{points(d)}, "
                          f"noise +-{points(b['noise_vs_sgd'])})")
    if wins:
        s = (f"{' and '.join(wins)} end{'s' if len(wins) == 1 else ''} ahead of plain SGD "
             f"({pct(sgd['val_accuracy'])}) {budget}, by more than twice the noise")
        if misses:
            s += f"; {misses[0]} does not"
        s = s[0].upper() + s[1:]
    else:
        s = (f"Momentum and Adam do not end ahead of plain SGD ({pct(sgd['val_accuracy'])}) {budget} by more than "
             f"twice the noise: {'; '.join(misses)}")
    top = max(best.values(), key=lambda r: np.nan_to_num(r["val_accuracy"], nan=-1))
    return s + f"; the best is {top['optimizer']} at lr {top['lr']:g} ({pct(top['val_accuracy'])})."


def _plot(ctx, rows, runs, best):
    fig, ax = ctx.figure(1, 3)
    for i, (label, b) in enumerate(best.items()):
        h, losses = runs[(label, b["lr"])]
        x, y = smooth(losses, max(1, len(losses) // 80))
        ax[0, 0].plot(x, y, color=f"C{i}", label=f"{label} (lr {b['lr']:g})")
        va = h.get("val_accuracy", [])
        ax[0, 1].plot(np.arange(1, len(va) + 1), va, color=f"C{i}", marker="o", ms=3, label=label)
        mine = [r for r in rows if r["optimizer"] == label]
        ax[0, 2].plot([r["lr"] for r in mine], [r["val_accuracy"] for r in mine], color=f"C{i}", marker="o",
                      label=label)
    ax[0, 0].set(xlabel="iteration", ylabel="training loss (smoothed)", yscale="log",
                 title="Training loss at each optimizer's best lr")
    ax[0, 1].set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    ax[0, 2].set(xlabel="learning rate", ylabel="final validation accuracy", xscale="log",
                 title="Sensitivity to the learning rate")
    for a in ax[0]:
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    return fig
