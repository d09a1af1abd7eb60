"""Batch normalization: with and without, at three learning rates, with good and bad initialization.

A 4-hidden-layer MLP of 256 units is trained with plain SGD; the BN variant puts
``Dense(use_bias=False) -> BatchNorm -> ReLU`` where the plain one has ``Dense -> ReLU``. "Bad"
initialization is N(0, 0.01^2), which makes the plain network's signal vanish; BN rescales every
layer's pre-activations and trains anyway, and tolerates much larger learning rates.
"""
from __future__ import annotations

import numpy as np

from ._common import ahead, fit, last, paired_noise, pct

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

    data = ctx.images(ctx.pick(600, 10000, 10000), ctx.pick(300, 2000, 2000), allow_spiral=True).flat()
    depth, width = ctx.pick((3, 64), (4, 256), (4, 256))
    epochs, batch = ctx.pick((2, 32), (3, 64), (5, 64))
    lrs = (0.1, 1.0) if ctx.quick else LRS
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples; {depth} hidden layers of "
            f"{width}, plain SGD, batch {batch}, {epochs} epochs")
    rows, hist, correct = [], {}, {}
    for init_label, init in INITS.items():
        for bn in (False, True):
            for lr in lrs:
                ctx.seed_all()
                model = _build(bn, init, depth, width, data.n_classes)
                model.compile(optimizer=SGD(lr), loss="softmax_cross_entropy")
                h, _, diverged = fit(model, data, epochs, batch, ctx.seed)
                hist[(init_label, bn, lr)] = h
                with np.errstate(all="ignore"):
                    correct[(init_label, bn, lr)] = model.predict_classes(data.X_val) == data.y_val
                va = h.get("val_accuracy", [])
                rows.append({"init": init_label, "batchnorm": bn, "lr": lr,
                             "epoch1_val_accuracy": va[0] if va else float("nan"),
                             "val_accuracy": float("nan") if diverged else last(h, "val_accuracy"),
                             "final_train_loss": float("nan") if diverged else last(h, "loss"), "diverged": diverged})
                ctx.log(f"{init_label:20s} BN {'yes' if bn else 'no ':3s} lr {lr:<5g} val acc "
                        f"{rows[-1]['val_accuracy']:.4f}{' DIVERGED' if diverged else ''}")
    for init_label in INITS:  # noise of (each run - the plain network at its best rate) on the same images
        plain = [r for r in rows if r["init"] == init_label and not r["batchnorm"]]
        ref = max(plain, key=lambda r: np.nan_to_num(r["val_accuracy"], nan=-1))
        for r in rows:
            if r["init"] == init_label:
                r["noise_vs_best_plain"] = paired_noise(correct[(init_label, r["batchnorm"], r["lr"])],
                                                        correct[(init_label, False, ref["lr"])])
    fig = _plot(ctx, rows, hist, lrs)
    summary = []
    for init_label in INITS:
        for bn in (False, True):
            parts = [f"lr {r['lr']:g}: " + ("diverged" if r["diverged"] else f"{r['val_accuracy']:.4f}")
                     for r in rows if r["init"] == init_label and r["batchnorm"] == bn]
            summary.append(f"{init_label}, {'with' if bn else 'without'} BN, validation accuracy after {epochs} "
                           "epochs: "
                           + ", ".join(parts))
    return ctx.finish(rows, summary, figure=fig, title="Batch normalization (solid) against none (dashed)",
                      n_classes=data.n_classes, dataset=data.name, train_samples=len(data.X),
                      val_samples=len(data.X_val),
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
    return fig


def conclusion(rows, meta):
    """Does batch norm rescue the bad initialization and survive the largest learning rate?"""
    n_val, chance = meta["val_samples"], 1 / meta.get("n_classes", 10)

    def acc(r):
        return float("nan") if r["diverged"] or r["val_accuracy"] is None else r["val_accuracy"]

    def best(init, bn):
        rs = [r for r in rows if r["init"] == init and r["batchnorm"] == bn]
        return max(rs, key=lambda r: np.nan_to_num(acc(r), nan=-1))

    def learned(a):
        return a == a and ahead(a, chance, np.sqrt(chance * (1 - chance) / n_val), k=3)

    plain, bn = best("small normal (0.01)", False), best("small normal (0.01)", True)
    if not learned(acc(plain)) and learned(acc(bn)):
        s = (f"With N(0, 0.01^2) initialization the plain network stays at chance at every rate "
             f"(at best {pct(acc(plain))}) while batch norm trains it to {pct(acc(bn))} (lr {bn['lr']:g})")
    elif learned(acc(plain)):
        s = (f"With N(0, 0.01^2) initialization the plain network learns too here ({pct(acc(plain))}; with batch "
             f"norm {pct(acc(bn))})")
    else:
        s = f"With N(0, 0.01^2) initialization neither network learns ({pct(acc(plain))}, {pct(acc(bn))} with BN)"
    top = max(r["lr"] for r in rows)
    p = next(r for r in rows if r["init"] == "He normal" and not r["batchnorm"] and r["lr"] == top)
    b = next(r for r in rows if r["init"] == "He normal" and r["batchnorm"] and r["lr"] == top)
    def outcome(r):
        if r["diverged"]:
            return "diverges"
        return f"reaches {pct(acc(r))}" if learned(acc(r)) else f"is stuck at chance ({pct(acc(r))})"

    s += f"; at lr {top:g} the plain He network {outcome(p)} and the BN one {outcome(b)}"
    hp, hb = best("He normal", False), best("He normal", True)
    se = hb["noise_vs_best_plain"]
    at = f"({pct(acc(hb))} at lr {hb['lr']:g} against {pct(acc(hp))} at lr {hp['lr']:g}, noise +-{100 * se:.1f} points)"
    if ahead(acc(hb), acc(hp), se):
        s += f"; with He initialization too, batch norm is ahead at the best rates {at}."
    elif ahead(acc(hp), acc(hb), se):
        s += f"; with He initialization, though, batch norm is behind at the best rates {at}."
    else:
        s += f"; with He initialization, batch norm and the plain network are level at the best rates {at}."
    return s
