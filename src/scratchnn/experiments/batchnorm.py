"""Batch normalization: with and without, at three learning rates, with good and bad initialization.

A 4-hidden-layer MLP of 256 units is trained with plain SGD; the BN variant puts
``Dense(use_bias=False) -> BatchNorm -> ReLU`` where the plain one has ``Dense -> ReLU``. "Bad"
initialization is N(0, 0.01^2), which makes the plain network's signal vanish; BN rescales every
layer's pre-activations and trains anyway, and tolerates much larger learning rates.
"""
from __future__ import annotations

import numpy as np

from ._common import fit, last

INITS = {"He normal": "he_normal", "small normal (0.01)": "small_normal"}
LRS = (0.01, 0.1, 1.0)


def _build(bn, init, depth, width, n_classes):
    from ..layers import BatchNorm, Dense, Flatten, ReLU
    from ..model import Sequential

    layers = [Flatten()]
    for _ in range(depth):
        layers += [Dense(width, init=init, use_bias=False), BatchNorm(), ReLU()] if bn else \
                  [Dense(width, init=init), ReLU()]
    return Sequential(layers + [Dense(n_classes, init=init)])


def run(ctx):
    from ..optimizers import SGD

    q = ctx.quick
    data = ctx.images(600 if q else 10000, 300 if q else 2000, allow_spiral=True).flat()
    depth, width = (3, 64) if q else (4, 256)
    epochs, batch = (2, 32) if q else (5, 64)
    lrs = (0.1, 1.0) if q else LRS
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples; {depth} hidden layers of "
            f"{width}, plain SGD, batch {batch}, {epochs} epochs")
    rows, hist = [], {}
    for init_label, init in INITS.items():
        for bn in (False, True):
            for lr in lrs:
                ctx.seed_all()
                model = _build(bn, init, depth, width, data.n_classes)
                model.compile(optimizer=SGD(lr), loss="softmax_cross_entropy")
                h, _, diverged = fit(model, data, epochs, batch, ctx.seed)
                hist[(init_label, bn, lr)] = h
                va = h.get("val_accuracy", [])
                rows.append({"init": init_label, "batchnorm": bn, "lr": lr,
                             "epoch1_val_accuracy": va[0] if va else float("nan"),
                             "val_accuracy": float("nan") if diverged else last(h, "val_accuracy"),
                             "final_train_loss": float("nan") if diverged else last(h, "loss"), "diverged": diverged})
                ctx.log(f"{init_label:20s} BN {'yes' if bn else 'no ':3s} lr {lr:<5g} val acc "
                        f"{rows[-1]['val_accuracy']:.4f}{' DIVERGED' if diverged else ''}")
    _plot(ctx, rows, hist, lrs)
    summary = []
    for init_label in INITS:
        for bn in (False, True):
            parts = [f"lr {r['lr']:g}: " + ("diverged" if r["diverged"] else f"{r['val_accuracy']:.4f}")
                     for r in rows if r["init"] == init_label and r["batchnorm"] == bn]
            summary.append(f"{init_label}, {'with' if bn else 'without'} BN, validation accuracy after {epochs} "
                           "epochs: "
                           + ", ".join(parts))
    return ctx.finish(rows, summary, dataset=data.name, train_samples=len(data.X), val_samples=len(data.X_val),
                      depth=depth, width=width, epochs=epochs, batch_size=batch, optimizer="SGD")


def _plot(ctx, rows, hist, lrs):
    fig, ax = ctx.figure(1, len(INITS))
    for a, init_label in zip(ax[0], INITS):
        for i, lr in enumerate(lrs):
            for bn, style in ((True, "-"), (False, "--")):
                h = hist[(init_label, bn, lr)]
                r = next(r for r in rows if r["init"] == init_label and r["batchnorm"] == bn and r["lr"] == lr)
                va = h.get("val_accuracy", [])
                tag = " (diverged)" if r["diverged"] else ""
                a.plot(np.arange(1, len(va) + 1), va, style, color=f"C{i}", marker="o", ms=3,
                       label=f"lr {lr:g}, {'BN' if bn else 'no BN'}{tag}")
        a.set(xlabel="epoch", ylabel="validation accuracy", title=f"{init_label} initialization", ylim=(0, 1))
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7)
    ctx.save_figure(fig, title="Batch normalization (solid) against none (dashed)")
