"""Capacity: networks as universal approximators, on the 2-D spiral.

One hidden ReLU layer of 1, 3, 10 or 100 units, trained without and with L2 regularization of
two strengths; each network's decision regions are drawn over the plane. One unit draws a
single cut, three a few straight pieces, ten begin to follow the arms, a hundred fit them
(and the noise, unless the penalty smooths the boundary).
"""
from __future__ import annotations

import numpy as np

from ._common import pct

UNITS = (1, 3, 10, 100)
L2S = (0.0, 1e-3, 1e-2)


def _build(units, l2, n_classes):
    from ..layers import Dense, ReLU
    from ..model import Sequential
    from ..regularizers import L2

    reg = L2(l2) if l2 else None
    return Sequential([Dense(units, init="he_normal", regularizer=reg), ReLU(), Dense(n_classes, regularizer=reg)])


def run(ctx):
    from ..datasets import load_spiral, train_val_split
    from ..optimizers import Adam

    X, y = load_spiral(n_per_class=ctx.pick(100, 200, 200), n_classes=3, noise=0.25, seed=ctx.seed)
    (Xtr, ytr), (Xv, yv) = train_val_split(X, y, val_size=0.3, seed=ctx.seed, stratify=True)
    epochs, batch, lr = ctx.pick(40, 400, 400), 32, 0.01
    l2s = (0.0, 1e-2) if ctx.quick else L2S
    ctx.log(f"spiral: {len(Xtr)} training / {len(Xv)} validation points, 3 classes; Adam lr {lr}, "
            f"batch {batch}, {epochs} epochs")
    rows, models = [], {}
    for l2 in l2s:
        for units in UNITS:
            ctx.seed_all()
            model = _build(units, l2, 3)
            model.compile(optimizer=Adam(lr), loss="softmax_cross_entropy")
            model.fit(Xtr, ytr, epochs=epochs, batch_size=batch, verbose=0, seed=ctx.seed)
            train_acc = model.evaluate(Xtr, ytr)["accuracy"]
            val_acc = model.evaluate(Xv, yv)["accuracy"]
            models[(units, l2)] = model
            rows.append({"hidden_units": units, "l2": l2, "params": model.count_params(),
                         "train_accuracy": train_acc, "val_accuracy": val_acc})
            ctx.log(f"{units:3d} units L2 {l2:<6g} train {train_acc:.4f} val {val_acc:.4f}")
    fig = _plot(ctx, rows, models, (Xtr, ytr), l2s)
    summary = [f"{r['hidden_units']} hidden unit(s), L2 {r['l2']:g}: train accuracy {r['train_accuracy']:.4f}, "
               f"validation {r['val_accuracy']:.4f}" for r in rows]
    return ctx.finish(rows, summary, figure=fig, title="Decision regions of one hidden ReLU layer on the spiral",
                      dataset="spiral", train_samples=len(Xtr), val_samples=len(Xv),
                      epochs=epochs, batch_size=batch, optimizer=f"Adam lr {lr}")


def _plot(ctx, rows, models, train, l2s):
    import matplotlib

    X, y = train
    lo, hi = X.min(axis=0) - 0.15, X.max(axis=0) + 0.15
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype(np.float32)
    colors = matplotlib.colormaps["tab10"].colors[:3]
    fig, ax = ctx.figure(len(l2s), len(UNITS), width=3.3, height=3.3)
    for i, l2 in enumerate(l2s):
        for j, units in enumerate(UNITS):
            a = ax[i, j]
            Z = models[(units, l2)].predict_classes(grid).reshape(xx.shape)
            a.contourf(xx, yy, Z, levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.3)
            a.scatter(X[:, 0], X[:, 1], c=np.asarray(colors)[y], s=6, edgecolors="black", linewidths=0.2)
            r = next(r for r in rows if r["hidden_units"] == units and r["l2"] == l2)
            a.set_title(f"{units} unit{'s' if units > 1 else ''}, L2 {l2:g}\n"
                        f"train {r['train_accuracy']:.2f} / val {r['val_accuracy']:.2f}", fontsize=9)
            a.set_xticks([])
            a.set_yticks([])
    return fig


def conclusion(rows, meta):
    """Do more hidden units fit the spiral better, and what does the strongest penalty do?"""
    by = {(r["hidden_units"], r["l2"]): r for r in rows}
    small, large = min(UNITS), max(UNITS)
    fits = (" / ".join(pct(by[(u, 0.0)]["train_accuracy"]) for u in UNITS) + " with "
            + " / ".join(str(u) for u in UNITS) + " units")
    a, b = by[(small, 0.0)], by[(large, 0.0)]
    if b["train_accuracy"] > a["train_accuracy"] + 0.1:
        s = (f"More hidden units fit the 3-arm spiral better (training accuracy {fits}) and generalize "
             f"too (validation {pct(a['val_accuracy'])} with {small} unit, "
             f"{pct(b['val_accuracy'])} with {large})" if b["val_accuracy"] > a["val_accuracy"] + 0.05 else
             f"More hidden units fit the 3-arm spiral better (training accuracy {fits}) but do not "
             f"generalize better (validation {pct(a['val_accuracy'])} with {small} unit, {pct(b['val_accuracy'])} "
             f"with {large})")
    else:
        s = f"More hidden units do not fit the spiral better here (training accuracy {fits})"
    l2 = max(r["l2"] for r in rows)
    c = by[(large, l2)]
    if c["train_accuracy"] < b["train_accuracy"] - 0.05:
        s += (f"; L2 {l2:g} flattens the boundary of the {large}-unit network back to "
              f"{pct(c['train_accuracy'])} training accuracy.")
    else:
        s += f"; L2 {l2:g} leaves the {large}-unit network's fit nearly intact ({pct(c['train_accuracy'])})."
    return s
