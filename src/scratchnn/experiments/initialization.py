"""Initialization of a deep ReLU network: zeros, small normal, Xavier, He (and a too-large normal).

At initialization, a batch is pushed through the network and the standard deviation of every
hidden layer's activations and of every weight gradient is recorded; then each network is
trained with the same optimizer and data. Zeros never break symmetry, N(0, 0.01^2) shrinks the
signal layer after layer (vanishing activations and gradients), Xavier halves the variance at
every ReLU, He keeps it constant, and N(0, 1) explodes it.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import ahead, fit, last, noise, pct, smooth

INITS = {"zeros": "zeros", "small normal (0.01)": "small_normal", "Xavier normal": "xavier_normal",
         "He normal": "he_normal", "large normal (1.0)": None}


def _large_normal(shape, fan_in, fan_out, rng, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _build(depth, width, n_classes, init):
    from ..layers import Dense, Flatten, ReLU
    from ..model import Sequential

    init = init or _large_normal
    layers = [Flatten()]
    for _ in range(depth):
        layers += [Dense(width, init=init), ReLU()]
    return Sequential(layers + [Dense(n_classes, init=init)])


def signal_stats(model, X, y):
    """Per hidden layer activation std (forward) and per Dense layer weight-gradient std (backward)."""
    from ..layers import Dense, ReLU

    out, acts = X, []
    for layer in model.layers:
        out = layer.forward(out, training=True)
        if isinstance(layer, ReLU):
            acts.append(float(out.std()))
    _, dout = model.loss(out, y)
    model.backward(dout)
    grads = [float(l.grads["W"].std()) for l in model.layers if isinstance(l, Dense)]
    return acts, grads


def run(ctx):
    from ..optimizers import SGD

    data = ctx.images(ctx.pick(600, 10000, 10000), ctx.pick(300, 2000, 2000), allow_spiral=True).flat()
    depth, width = ctx.pick((6, 64), (8, 256), (8, 256))
    epochs, batch = ctx.pick((2, 32), (5, 64), (5, 64))
    lr = 0.01
    ctx.log(f"{data.name}: {len(data.X)} training / {len(data.X_val)} validation samples; "
            f"{depth} hidden ReLU layers of {width}, SGD lr {lr} momentum 0.9, {epochs} epochs")
    rows, curves = [], {}
    for label, init in INITS.items():
        ctx.seed_all()
        model = _build(depth, width, data.n_classes, init)
        model.compile(optimizer=SGD(lr, momentum=0.9), loss="softmax_cross_entropy")
        model.build(data.X.shape[1:])
        with np.errstate(all="ignore"):
            acts, grads = signal_stats(model, data.X_val[:1000], data.y_val[:1000])
            h, losses, diverged = fit(model, data, epochs, batch, ctx.seed, batch_losses=True)
        curves[label] = losses
        rows.append({"init": label, "act_std_first": acts[0], "act_std_last": acts[-1],
                     "grad_std_first": grads[0], "grad_std_last": grads[-1],
                     "final_train_loss": last(h, "loss"), "val_accuracy": last(h, "val_accuracy"),
                     "diverged": diverged, "activation_std": acts, "gradient_std": grads})
        ctx.log(f"{label:20s} act std {acts[0]:.3g} -> {acts[-1]:.3g}, grad std {grads[0]:.3g} -> {grads[-1]:.3g}, "
                f"val acc {rows[-1]['val_accuracy']:.4f}{' DIVERGED' if diverged else ''}")
    fig = _plot(ctx, rows, curves, depth)
    summary = [f"{r['init']}: activation std layer 1 {r['act_std_first']:.3g} -> layer {depth} "
               f"{r['act_std_last']:.3g}; "
               f"weight-gradient std first {r['grad_std_first']:.3g} / last {r['grad_std_last']:.3g}; "
               + ("diverged (NaN loss)" if r["diverged"] else
                  f"after {epochs} epochs train loss {r['final_train_loss']:.3f}, val accuracy {r['val_accuracy']:.4f}")
               for r in rows]
    return ctx.finish(rows, summary, figure=fig, title="Initialization of a deep ReLU network (0 drawn at 1e-12)",
                      dataset=data.name, train_samples=len(data.X), val_samples=len(data.X_val), depth=depth,
                      width=width, epochs=epochs, batch_size=batch, optimizer=f"SGD lr {lr} momentum 0.9",
                      n_classes=data.n_classes)


def _scale(r):
    """Activation std of the last hidden layer over the first's (0 when both are 0)."""
    a, b = r["act_std_first"], r["act_std_last"]
    return b / a if a else 0.0


def conclusion(rows, meta):
    """Which initializations keep the signal through the depth, and which of them train?"""
    by = {r["init"]: r for r in rows}
    he, xavier, small, big, zeros = (by[k] for k in ("He normal", "Xavier normal", "small normal (0.01)",
                                                      "large normal (1.0)", "zeros"))
    depth, n_val = meta["depth"], meta.get("val_samples", 0)
    chance = 1 / meta.get("n_classes", 10)
    parts = []
    g = _scale(he)
    parts.append(f"He initialization {'keeps' if 1 / 3 < g < 3 else 'does not keep'} the activation scale through "
                 f"{depth} ReLU layers (x{g:.2g}), Xavier loses a factor {1 / max(_scale(xavier), 1e-300):.2g}")
    g = _scale(small)
    parts.append(f"N(0, 0.01^2) shrinks it {1 / g:.1e}-fold" if 0 < g < 1e-2 else
                 f"N(0, 0.01^2) does not make it vanish (x{g:.2g})")
    g = _scale(big)
    parts.append((f"N(0, 1) blows it up {g:.1e}-fold" if g > 1e2 else f"N(0, 1) does not make it explode (x{g:.2g})")
                 + (" and diverges" if big["diverged"] else ""))
    s = "; ".join(parts) + ". "

    def stuck(r):
        return not r["diverged"] and r["val_accuracy"] is not None and \
            not ahead(r["val_accuracy"], chance, 3 * math.sqrt(chance * (1 - chance) / max(n_val, 1)), k=1)

    learned = [r for r in rows if not r["diverged"] and r["val_accuracy"] is not None and not stuck(r)]
    best = max(learned, key=lambda r: r["val_accuracy"]) if learned else None
    s += f"After {meta['epochs']} epochs "
    if best is None:
        s += "no network learned."
        return s
    runner = max((r for r in learned if r is not best), key=lambda r: r["val_accuracy"], default=None)
    s += f"{best['init']} validates best ({pct(best['val_accuracy'])}"
    if runner is not None:
        clear = ahead(best["val_accuracy"], runner["val_accuracy"], noise(best["val_accuracy"], n_val))
        s += f"; {runner['init']} {pct(runner['val_accuracy'])}{'' if clear else ', within the noise'}"
    s += ")"
    at_chance = [r["init"] for r in rows if stuck(r)]
    if at_chance:
        s += f", while {' and '.join(at_chance)} stay{'s' if len(at_chance) == 1 else ''} at chance"
        if zeros["init"] in at_chance and zeros["grad_std_first"] == 0:
            s += " (zeros never break the symmetry)"
    return s + "."


def _plot(ctx, rows, curves, depth):
    fig, ax = ctx.figure(1, 3)
    for r in rows:
        label, losses = r["init"], np.asarray(curves[r["init"]], dtype=np.float64)
        x, y = smooth(losses, max(1, len(losses) // 60))
        ok = np.isfinite(y) & (y < 50)
        ax[0, 0].plot(x[ok], y[ok], label=label + (" (diverged)" if r["diverged"] else ""))
        ax[0, 1].plot(np.arange(1, depth + 1), np.maximum(r["activation_std"], 1e-12), marker="o", label=label)
        ax[0, 2].plot(np.arange(1, depth + 2), np.maximum(r["gradient_std"], 1e-12), marker="o", label=label)
    ax[0, 0].set(xlabel="iteration", ylabel="training loss (smoothed)", title="Training loss")
    ax[0, 1].set(xlabel="hidden layer", ylabel="std of activations", yscale="log",
                 title="Forward signal at initialization")
    ax[0, 2].set(xlabel="Dense layer", ylabel="std of dL/dW", yscale="log",
                 title="Backward signal at initialization")
    for a in ax[0]:
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7)
    return fig
