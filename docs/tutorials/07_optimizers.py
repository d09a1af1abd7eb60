# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Optimizers and learning-rate schedules
#
# Backpropagation gives the gradient $g_t = \nabla_\theta L$ of one mini-batch; the optimizer
# decides what step to take with it. All of `scratchnn.optimizers` fit in a few lines:
#
# | optimizer | state | update |
# | --- | --- | --- |
# | SGD | none | $\theta \leftarrow \theta - \eta\, g$ |
# | momentum | velocity $v$ | $v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta v$ |
# | Nesterov | velocity $v$ | $v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta (g + \mu v)$ |
# | AdaGrad | sum of squares $G$ | $G \leftarrow G + g^2,\quad \theta \leftarrow \theta - \eta\, g / (\sqrt{G} + \epsilon)$ |
# | RMSprop | mean square $E$ | $E \leftarrow \rho E + (1-\rho) g^2,\quad \theta \leftarrow \theta - \eta\, g / (\sqrt{E} + \epsilon)$ |
# | Adam | $m$, $v$ | $m \leftarrow \beta_1 m + (1-\beta_1) g,\ v \leftarrow \beta_2 v + (1-\beta_2) g^2,\ \theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$ |
#
# ($\hat m, \hat v$: Adam's bias-corrected averages.) Momentum accumulates gradients that keep
# pointing the same way: with a steady gradient its step grows to $\eta g / (1 - \mu)$, ten
# times plain SGD's for $\mu = 0.9$, while components that flip sign cancel out. The adaptive
# methods divide each parameter's step by a running size of its own gradients, so rarely-updated
# weights and steep directions get steps of comparable size.
#
# We train the same MLP from the same initial weights on the same batches with each of them, then
# sweep the learning rate, then decay it with the schedules of `scratchnn.schedules`.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist
from scratchnn.datasets.preprocessing import scale
from scratchnn.layers import Dense, ReLU
from scratchnn.optimizers import SGD, AdaGrad, Adam, RMSprop
from scratchnn.schedules import Constant, CosineDecay, ExponentialDecay, InverseTimeDecay, StepDecay

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

N_TRAIN = 2000 if QUICK else 5000
N_VAL = 1000 if QUICK else 2000
EPOCHS = 3 if QUICK else 10          # the budget of the optimizer comparison
SEEDS = [0, 1] if QUICK else [0, 1, 2]
SWEEP_EPOCHS = 1 if QUICK else 3
SCHEDULE_EPOCHS = 4 if QUICK else 12
BATCH = 64

(X_all, y_all), _ = load_mnist()
X_train, y_train = scale(X_all[:N_TRAIN]).reshape(-1, 784), y_all[:N_TRAIN]
X_val, y_val = scale(X_all[-N_VAL:]).reshape(-1, 784), y_all[-N_VAL:]
steps_per_epoch = int(np.ceil(N_TRAIN / BATCH))
print(f"{N_TRAIN} training images ({steps_per_epoch} batches of {BATCH} per epoch), {N_VAL} validation images")


def mlp(seed):
    """784-256-256-10; the seed fixes the initial weights, so every optimizer starts from the same ones."""
    snn.set_seed(seed)
    model = snn.Sequential([Dense(256), ReLU(), Dense(256), ReLU(), Dense(10)])
    model.build((784,))
    return model


class BatchLosses(snn.callbacks.Callback):
    """Keeps the loss of every mini-batch (History keeps only the epoch means)."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, loss, hits, size):
        self.losses.append(loss)


# %% [markdown]
# ## Six optimizers on an equal budget
#
# Every run gets the same budget: $E$ epochs, i.e. the same number of updates on the same
# batches in the same order (`fit(seed=...)` fixes the shuffling). The SGD family shares one
# learning rate, $\eta = 0.01$, so the effect of momentum is not confused with a larger step;
# the adaptive methods use their usual defaults (AdaGrad 0.01, RMSprop and Adam 0.001). We repeat
# everything for a few seeds (new initial weights and batch order, shared by all optimizers).

# %%
OPTIMIZERS = {
    "SGD": lambda: SGD(lr=0.01),
    "momentum": lambda: SGD(lr=0.01, momentum=0.9),
    "Nesterov": lambda: SGD(lr=0.01, momentum=0.9, nesterov=True),
    "AdaGrad": lambda: AdaGrad(lr=0.01),
    "RMSprop": lambda: RMSprop(lr=0.001),
    "Adam": lambda: Adam(lr=0.001),
}

runs = {}
for seed in SEEDS:
    for name, make in OPTIMIZERS.items():
        model = mlp(seed)
        model.compile(optimizer=make(), loss="softmax_cross_entropy")
        batches = BatchLosses()
        hist = model.fit(X_train, y_train, epochs=EPOCHS, batch_size=BATCH, validation_data=(X_val, y_val),
                         verbose=0, seed=seed, callbacks=[batches])
        runs[name, seed] = {"batch_loss": np.array(batches.losses), **hist.history}
    print(f"seed {seed}: " + "  ".join(f"{n} {runs[n, seed]['loss'][-1]:.3f}/{runs[n, seed]['val_accuracy'][-1]:.3f}"
                                       for n in OPTIMIZERS) + "   (last epoch's training loss / validation accuracy)")

# %%
def smooth(x, k=20):
    """Moving average over k batches (the per-batch loss is noisy)."""
    k = min(k, len(x))
    return np.convolve(x, np.ones(k) / k, mode="valid")


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for name in OPTIMIZERS:
    curve = smooth(runs[name, SEEDS[0]]["batch_loss"])
    ax1.semilogy(np.arange(len(curve)) + 1, curve, label=name)
    mean_acc = np.mean([runs[name, s]["val_accuracy"] for s in SEEDS], axis=0)
    ax2.plot(np.arange(1, EPOCHS + 1), mean_acc, "o-", label=name)
ax1.set(title=f"training loss per update (seed {SEEDS[0]}, 20-batch moving average)", xlabel="update",
        ylabel="loss (log scale)")
ax2.set(title=f"validation accuracy (mean of {len(SEEDS)} seeds)", xlabel="epoch", ylabel="accuracy")
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# "Ahead at an equal budget" should hold wherever we stop, not only at one chosen epoch. We check,
# for every seed and for budgets of 1 epoch, about a third of the run and the whole run, whether
# momentum and Adam have a lower mean training loss over that epoch than plain SGD.

# %%
budgets = sorted({1, max(1, EPOCHS // 3), EPOCHS})
ahead = {}
for name in ["momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]:
    wins = [runs[name, s]["loss"][b - 1] < runs["SGD", s]["loss"][b - 1] for s in SEEDS for b in budgets]
    ahead[name] = (sum(wins), len(wins))
for b in budgets:
    row = "  ".join(f"{n} {np.mean([runs[n, s]['loss'][b - 1] for s in SEEDS]):.3f}" for n in OPTIMIZERS)
    print(f"budget {b:2d} epoch(s) = {b * steps_per_epoch:4d} updates, mean training loss: {row}")
for name, (won, total) in ahead.items():
    print(f"{name} below SGD in {won} of {total} (seed, budget) pairs")

# %% [markdown]
# ## The learning rate: too small, right, divergent
#
# The learning rate matters more than the choice of optimizer. We sweep it on a log scale for SGD
# and Adam, each run from the same weights for a short budget, and plot the mean training loss
# of the last epoch. Too small a rate barely moves from the initial loss
# $\ln 10 \approx 2.30$; too large a rate overshoots: the loss explodes (scratchnn stops with a
# `TrainingDivergedError` once it stops being finite) or the ReLUs die and the network is left
# guessing. The overflow warnings of those runs are silenced with `np.errstate`.

# %%
SWEEPS = {"SGD": (SGD, np.logspace(-4, 1, 11)), "Adam": (Adam, np.logspace(-5, 0, 11))}
sweep = {}
for name, (cls, lrs) in SWEEPS.items():
    for lr in lrs:
        model = mlp(SEEDS[0])
        model.compile(optimizer=cls(lr=float(lr)), loss="softmax_cross_entropy")
        try:
            with np.errstate(all="ignore"):
                hist = model.fit(X_train, y_train, epochs=SWEEP_EPOCHS, batch_size=BATCH, verbose=0, seed=SEEDS[0])
            sweep[name, lr] = hist["loss"][-1]
        except snn.TrainingDivergedError:
            sweep[name, lr] = np.inf
    print(f"{name}: " + "  ".join(f"{lr:.0e}: {sweep[name, lr]:.3g}" for lr in lrs))

# %%
INITIAL = np.log(10)


def regions(name):
    """The best rate, the rates that barely learned (loss still above 1) below it, and the failed ones above it."""
    lrs = SWEEPS[name][1]
    losses = np.array([sweep[name, lr] for lr in lrs])
    best = int(np.argmin(losses))
    too_small = [lr for lr, l in zip(lrs[:best], losses[:best]) if l > 1.0]
    diverged = [lr for lr, l in zip(lrs[best + 1:], losses[best + 1:]) if not l < INITIAL]
    return lrs[best], losses[best], too_small, diverged


fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, name in zip(axes, SWEEPS):
    lrs = SWEEPS[name][1]
    losses = np.array([sweep[name, lr] for lr in lrs])
    shown = np.minimum(losses, 30.0)  # diverged runs (inf) and exploded ones drawn at the top
    ax.loglog(lrs, shown, "o-", color="tab:blue")
    bad = ~(losses < INITIAL)
    ax.loglog(lrs[bad], shown[bad], "x", color="tab:red", ms=12, mew=2,
              label="failed (loss ≥ ln 10 or not finite; drawn at 30 if above)")
    best_lr, best_loss, too_small, diverged = regions(name)
    ax.axhline(INITIAL, color="0.5", ls=":", label="initial loss ln 10")
    ax.axvline(best_lr, color="tab:green", ls="--", label=f"best: {best_lr:.0e}")
    if too_small:
        ax.axvspan(lrs[0] / 1.5, max(too_small) * 1.5, color="tab:orange", alpha=0.15, label="too small (loss > 1)")
    ax.set(title=f"{name}: training loss after {SWEEP_EPOCHS} epoch(s)", xlabel="learning rate (log scale)",
           ylabel="last epoch's mean training loss")
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Learning-rate schedules
#
# A rate large enough for fast early progress is too large for the end: the steps keep bouncing
# around a minimum instead of settling into it. A schedule $\eta(t)$ lowers the rate as epochs
# pass; `Sequential.fit` evaluates it at the start of every epoch $t$:
#
# - `StepDecay`: $\eta_0\, d^{\lfloor t / k \rfloor}$, drop by a factor $d$ every $k$ epochs;
# - `ExponentialDecay`: $\eta_0\, r^t$;
# - `InverseTimeDecay`: $\eta_0 / (1 + k t)$;
# - `CosineDecay`: $\eta_\text{min} + \tfrac12(\eta_0 - \eta_\text{min})(1 + \cos(\pi t / T))$.
#
# We use Adam at $\eta_0 = 0.01$, ten times its default, which the sweep above shows to be fast
# at first, and train the same network with each schedule.

# %%
LR0 = 0.01
SCHEDULES = {
    "constant": Constant(LR0),
    "step": StepDecay(LR0, drop=0.5, every=max(1, SCHEDULE_EPOCHS // 4)),
    "exponential": ExponentialDecay(LR0, rate=0.8),
    "inverse time": InverseTimeDecay(LR0, k=0.5),
    "cosine": CosineDecay(LR0, epochs=SCHEDULE_EPOCHS),
}
fig, ax = plt.subplots(figsize=(8, 3.8))
for name, schedule in SCHEDULES.items():
    ax.plot(range(SCHEDULE_EPOCHS), [schedule(t) for t in range(SCHEDULE_EPOCHS)], "o-", label=f"{name}: {schedule!r}")
ax.set(title="learning rate per epoch", xlabel="epoch", ylabel="learning rate", yscale="log")
ax.legend(fontsize=7)
plt.show()

# %%
sched_runs = {}
for name, schedule in SCHEDULES.items():
    model = mlp(SEEDS[0])
    model.compile(optimizer=Adam(lr=schedule), loss="softmax_cross_entropy")
    hist = model.fit(X_train, y_train, epochs=SCHEDULE_EPOCHS, batch_size=BATCH, validation_data=(X_val, y_val),
                     verbose=0, seed=SEEDS[0])
    sched_runs[name] = {**hist.history, "final_lr": model.optimizer.lr}
    print(f"{name:12s} last epoch: training loss {hist['loss'][-1]:.4f}, validation loss {hist['val_loss'][-1]:.3f}, "
          f"validation accuracy {hist['val_accuracy'][-1]:.2%} (lr at the last epoch {model.optimizer.lr:.1e})")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for name, h in sched_runs.items():
    ax1.semilogy(range(1, SCHEDULE_EPOCHS + 1), h["loss"], "o-", label=name)
    ax2.plot(range(1, SCHEDULE_EPOCHS + 1), h["val_accuracy"], "o-", label=name)
ax1.set(title=f"Adam, lr0 = {LR0}: training loss", xlabel="epoch", ylabel="mean training loss (log scale)")
ax2.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What this showed

# %%
final = {n: np.mean([runs[n, s]["loss"][-1] for s in SEEDS]) for n in OPTIMIZERS}
final_acc = {n: np.mean([runs[n, s]["val_accuracy"][-1] for s in SEEDS]) for n in OPTIMIZERS}
for name in ["momentum", "Adam"]:
    won, total = ahead[name]
    if won == total:
        print(f"- {name} was ahead of plain SGD at every budget and seed ({won} of {total}): after {EPOCHS} epochs "
              f"a mean training loss of {final[name]:.3f} against {final['SGD']:.3f}, and {final_acc[name]:.1%} "
              f"validation accuracy against {final_acc['SGD']:.1%}.")
    else:
        print(f"- {name} was ahead of plain SGD in only {won} of {total} (seed, budget) pairs (training loss after "
              f"{EPOCHS} epochs {final[name]:.3f} against {final['SGD']:.3f}), so this run does not show it robustly.")
order = sorted(OPTIMIZERS, key=final.get)
print(f"- Ranked by training loss after {EPOCHS * steps_per_epoch} updates: "
      + ", ".join(f"{n} ({final[n]:.3f})" for n in order) + ".")
for name in SWEEPS:
    best_lr, best_loss, too_small, diverged = regions(name)
    small = (f"rates up to {max(too_small):.0e} were too small (loss still above 1)" if too_small
             else "no rate in the sweep was too small by that measure")
    big = (f"from {min(diverged):.0e} on training failed (loss at or above the initial {INITIAL:.2f}, or not finite)"
           if diverged else "no rate in the sweep diverged")
    print(f"- {name}: the best rate of the sweep was {best_lr:.0e} (loss {best_loss:.3f} after {SWEEP_EPOCHS} "
          f"epoch(s)); {small}; {big}.")
sgd_best_lr, sgd_best_loss = regions("SGD")[:2]
mom_same = runs["momentum", SEEDS[0]]["loss"][SWEEP_EPOCHS - 1]
if sgd_best_loss < mom_same:
    print(f"- The comparison holds at a shared rate of 0.01: tuned to the sweep's best rate {sgd_best_lr:.0e}, "
          f"plain SGD reached {sgd_best_loss:.3f} after {SWEEP_EPOCHS} epoch(s), below momentum's {mom_same:.3f} "
          f"at 0.01 on the same batches: much of what momentum buys is the larger effective step eta/(1 - mu).")
else:
    print(f"- Even at the sweep's best rate {sgd_best_lr:.0e}, plain SGD reached only {sgd_best_loss:.3f} after "
          f"{SWEEP_EPOCHS} epoch(s), against momentum's {mom_same:.3f} at 0.01 on the same batches.")
const = sched_runs["constant"]
better = [n for n in SCHEDULES if n != "constant" and sched_runs[n]["loss"][-1] < const["loss"][-1]]
if better:
    print(f"- With Adam at lr0 = {LR0}, decaying the rate ended with a lower training loss than keeping it constant "
          f"for {', '.join(better)} ({', '.join(format(sched_runs[n]['loss'][-1], '.4f') for n in better)} against "
          f"{const['loss'][-1]:.4f}).")
else:
    print(f"- With Adam at lr0 = {LR0}, no schedule ended with a lower training loss than the constant rate "
          f"({const['loss'][-1]:.4f}) in {SCHEDULE_EPOCHS} epochs.")
best_sched = max(sched_runs, key=lambda n: sched_runs[n]["val_accuracy"][-1])
noise = np.sqrt(const["val_accuracy"][-1] * (1 - const["val_accuracy"][-1]) / N_VAL)  # binomial SE of one accuracy
print("- Validation accuracy at the end: "
      + ", ".join(f"{n} {h['val_accuracy'][-1]:.2%}" for n, h in sched_runs.items())
      + f"; the best was {best_sched}"
      + (f", {sched_runs[best_sched]['val_accuracy'][-1] - const['val_accuracy'][-1]:.2%} above the constant rate "
         f"({(sched_runs[best_sched]['val_accuracy'][-1] - const['val_accuracy'][-1]) * N_VAL:.0f} of {N_VAL} images; "
         f"one seed only, against a binomial standard error of about {noise * N_VAL:.0f} images per accuracy)."
         if best_sched != "constant" else "."))
