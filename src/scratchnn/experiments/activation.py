"""Activation functions: convergence speed and dead units.

A 4-hidden-layer MLP (128 units each) is trained with plain SGD, once with each activation,
at a moderate and at a high learning rate. Sigmoid and tanh get Xavier initialization, the
ReLU family He initialization. A unit is counted dead when its local derivative is below 1%
of its maximum on every validation input: a ReLU that never fires, a sigmoid or tanh saturated
on every input; leaky ReLU (slope 0.01) by this definition never dies.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import ahead, fit, last, noise, pct, smooth

ACTIVATIONS = ("sigmoid", "tanh", "ReLU", "leaky ReLU", "ELU")


def _act(name):
    from ..layers import ELU, LeakyReLU, ReLU, Sigmoid, Tanh

    return {"sigmoid": Sigmoid, "tanh": Tanh, "ReLU": ReLU, "leaky ReLU": lambda: LeakyReLU(0.01), "ELU": ELU}[name]()


def _derivative(name, z):
    """Local derivative of the activation at pre-activations ``z``, divided by its maximum."""
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-np.clip(z, -60, 60)))
        return s * (1 - s) / 0.25
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "ReLU":
        return (z > 0).astype(np.float64)
    if name == "leaky ReLU":
        return np.where(z > 0, 1.0, 0.01)
    return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))  # ELU, alpha 1


def _build(name, depth, width, n_classes):
    from ..layers import Dense, Flatten
    from ..model import Sequential

    init = "xavier_normal" if name in ("sigmoid", "tanh") else "he_normal"
    layers = [Flatten()]
    for _ in range(depth):
        layers += [Dense(width, init=init), _act(name)]
    return Sequential(layers + [Dense(n_classes, init=init)])


def dead_units(model, name, X):
    """``(dead, total)`` hidden units whose derivative is < 1% of its maximum on every row of ``X``."""
    from ..layers import Dense

    dead = total = 0
    out = X
    dense = [l for l in model.layers if isinstance(l, Dense)][:-1]
    for layer in model.layers:
        out = layer.forward(out)
        if layer in dense:
            d = _derivative(name, out.astype(np.float64))
            dead += int(np.count_nonzero((d < 0.01).all(axis=0)))
            total += out.shape[1]
    return dead, total


def run(ctx):
    from ..optimizers import SGD

    data = ctx.images(ctx.pick(600, 10000, 10000), ctx.pick(300, 2000, 2000), allow_spiral=True).flat()
    depth, width = ctx.pick((3, 64), (4, 128), (4, 128))
    epochs, batch = ctx.pick((2, 32), (5, 64), (8, 64))
    lrs = (0.05, 0.5)
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples; {depth} hidden layers "
            f"of {width}, plain SGD at lr {lrs}, batch {batch}, {epochs} epochs")
    rows, runs = [], {}
    for lr in lrs:
        for name in ACTIVATIONS:
            ctx.seed_all()
            model = _build(name, depth, width, data.n_classes)
            model.compile(optimizer=SGD(lr), loss="softmax_cross_entropy")
            h, losses, diverged = fit(model, data, epochs, batch, ctx.seed, batch_losses=True)
            runs[(name, lr)] = (h, losses)
            dead, total = dead_units(model, name, data.X_val) if not diverged else (None, None)
            va = h.get("val_accuracy", [])
            reach = next((i + 1 for i, a in enumerate(va) if a >= 0.9), None)
            rows.append({"activation": name, "lr": lr, "epoch1_val_accuracy": va[0] if va else float("nan"),
                         "val_accuracy": last(h, "val_accuracy"), "final_train_loss": last(h, "loss"),
                         "epochs_to_90pct": reach, "dead_units": dead, "hidden_units": total,
                         "dead_fraction": dead / total if total else None, "diverged": diverged})
            ctx.log(f"lr {lr:<5g} {name:10s} val acc {rows[-1]['val_accuracy']:.4f} (epoch 1: "
                    f"{rows[-1]['epoch1_val_accuracy']:.4f}) dead {dead}/{total}{' DIVERGED' if diverged else ''}")
    fig = _plot(ctx, rows, runs, lrs)
    summary = [f"lr {r['lr']:g} {r['activation']}: diverged (NaN loss)" if r["diverged"] else
               f"lr {r['lr']:g} {r['activation']}: validation accuracy {r['epoch1_val_accuracy']:.4f} after 1 epoch, "
               f"{r['val_accuracy']:.4f} after {epochs}; 90% reached at epoch {r['epochs_to_90pct'] or 'never'}; "
               f"{r['dead_units']}/{r['hidden_units']} dead units" for r in rows]
    return ctx.finish(rows, summary, figure=fig, title="Activation functions (solid: moderate lr, dashed: high lr)",
                      dataset=data.name, n_classes=data.n_classes, learning_rates=list(lrs), train_samples=len(data.X),
                      val_samples=len(data.X_val),
                      depth=depth, width=width, epochs=epochs, batch_size=batch, optimizer="SGD",
                      dead_unit_definition="derivative < 1% of its maximum on every validation input")


def _plot(ctx, rows, runs, lrs):
    fig, ax = ctx.figure(1, 3)
    for i, name in enumerate(ACTIVATIONS):
        for lr, style in zip(lrs, ("-", "--")):
            h, losses = runs[(name, lr)]
            x, y = smooth(losses, max(1, len(losses) // 60))
            ok = np.isfinite(y) & (y < 100)  # a diverging run would squash every other curve
            ax[0, 0].plot(x[ok], y[ok], style, color=f"C{i}", label=f"{name} lr {lr:g}")
            va = h.get("val_accuracy", [])
            ax[0, 1].plot(np.arange(1, len(va) + 1), va, style, color=f"C{i}", marker="o", ms=3,
                          label=f"{name} lr {lr:g}")
    ax[0, 0].set(xlabel="iteration", ylabel="training loss (smoothed)", yscale="log", title="Training loss")
    ax[0, 1].set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    w = 0.38
    x = np.arange(len(ACTIVATIONS))
    for j, lr in enumerate(lrs):
        frac = [next(r["dead_fraction"] for r in rows if r["activation"] == a and r["lr"] == lr) for a in ACTIVATIONS]
        bars = ax[0, 2].bar(x + (j - 0.5) * w, [100 * f if f is not None else 0 for f in frac], w, label=f"lr {lr:g}")
        for b, f in zip(bars, frac):
            if f is None:
                ax[0, 2].text(b.get_x() + b.get_width() / 2, 1, "diverged", rotation=90, ha="center", fontsize=7)
    ax[0, 2].set_xticks(x, ACTIVATIONS, fontsize=8)
    ax[0, 2].set(ylabel="dead hidden units (%)", title="Dead units after training")
    for a in ax[0]:
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7)
    return fig


def conclusion(rows, meta):
    """Does the ReLU family outrun sigmoid, and what does the high rate do to each activation?"""
    lo, hi = meta["learning_rates"]
    n_val, chance = meta["val_samples"], 1 / meta.get("n_classes", 10)
    by = {(r["activation"], r["lr"]): r for r in rows}

    def acc(name, lr):
        r = by[(name, lr)]
        return float("nan") if r["diverged"] or r["val_accuracy"] is None else r["val_accuracy"]

    def stuck(a):
        return not (a == a) or not ahead(a, chance, math.sqrt(chance * (1 - chance) / n_val), k=3)

    relus = [a for a in (acc(n, lo) for n in ("ReLU", "leaky ReLU", "ELU")) if a == a] or [float("nan")]
    fam = f"{pct(min(relus))}-{pct(max(relus))}" if max(relus) - min(relus) >= 0.001 else pct(max(relus))
    sig = acc("sigmoid", lo)
    s = (f"At lr {lo:g} the ReLU family reaches {fam} in {meta['epochs']} epochs while the {meta['depth']}-layer "
         "sigmoid ")
    if stuck(sig):
        s += f"network stays at chance ({pct(sig)}): its gradient fades through the layers"
    elif ahead(min(relus), sig, noise(sig, n_val)):
        s += f"network lags ({pct(sig)})"
    else:
        s += f"network keeps up ({pct(sig)}): no vanishing gradient shows"
    s += f" (tanh: {pct(acc('tanh', lo))}). At lr {hi:g}, "
    parts = []
    relu = by[("ReLU", hi)]
    if relu["diverged"]:
        parts.append("ReLU diverges")
    else:
        dead, total = relu["dead_units"], relu["hidden_units"]
        before = by[("ReLU", lo)]["dead_units"] or 0
        parts.append(f"{dead} of {total} ReLU units are dead (at lr {lo:g}: {before}) with {pct(acc('ReLU', hi))} "
                     "accuracy" if dead > before else f"no more ReLU units die ({dead} of {total})")
    leaky = by[("leaky ReLU", hi)]
    if not leaky["diverged"]:
        parts.append(f"leaky ReLU has {leaky['dead_units']} dead units")
    tanh = by[("tanh", hi)]
    if tanh["diverged"]:
        parts.append("tanh diverges")
    elif stuck(acc("tanh", hi)):
        parts.append(f"tanh saturates {tanh['dead_units']} of {tanh['hidden_units']} units and collapses to chance "
                     f"({pct(acc('tanh', hi))})")
    else:
        parts.append(f"tanh reaches {pct(acc('tanh', hi))} ({tanh['dead_units']} saturated units)")
    parts.append("ELU diverges" if by[("ELU", hi)]["diverged"] else f"ELU reaches {pct(acc('ELU', hi))}")
    return s + ", ".join(parts[:-1]) + " and " + parts[-1] + "."
