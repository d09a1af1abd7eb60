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
# # 6. Regularization against overfitting
#
# A network with far more parameters than training examples can memorize its training set: the
# training loss goes to zero while the loss on images it has never seen stops improving. The
# distance between the two, the **generalization gap**, is what regularization tries to shrink,
# ideally by lifting the validation accuracy rather than by lowering the training accuracy.
#
# We train an over-large MLP (two hidden layers of 512 units, about 670,000 weights) on only
# 1,000 MNIST images, and compare, on the same data, the same initial weights and the same batch
# order:
#
# - **L2** (weight decay) adds $\lambda_2 \sum W^2$ to the loss, so every step also pulls each
#   weight towards 0 in proportion to its size: $\partial/\partial W = 2\lambda_2 W$;
# - **L1** adds $\lambda_1 \sum |W|$, a pull of constant size $\lambda_1 \operatorname{sign}(W)$,
#   which drives weights that the data does not need to (nearly) exactly 0;
# - **elastic net** adds both;
# - **max-norm** is a constraint, not a penalty: after every update each unit's incoming weight
#   vector is rescaled to norm at most $c$, $w_j \leftarrow w_j \min(1, c / \lVert w_j \rVert)$;
# - **dropout** zeroes each unit with probability $p$ during training (and scales the survivors by
#   $1/(1-p)$), so no unit can rely on any particular other one.
#
# The penalties apply to weights only, never to biases (`scratchnn.regularizers`, Keras'
# conventions). The strengths below were chosen in a coarse trial on *other* held-out images than
# the validation images used here, so this page does not tune on the numbers it reports.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist
from scratchnn.datasets.preprocessing import scale
from scratchnn.layers import Dense, Dropout, ReLU
from scratchnn.regularizers import L1, L2, ElasticNet, MaxNorm

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

HIDDEN = 256 if QUICK else 512
EPOCHS = 15 if QUICK else 40
N_VAL = 2000 if QUICK else 5000
SEEDS = [0, 1] if QUICK else [0, 1, 2]
N_TRAIN = 1000

(X_all, y_all), _ = load_mnist()
X_train, y_train = scale(X_all[:N_TRAIN]).reshape(-1, 784), y_all[:N_TRAIN]
X_val, y_val = scale(X_all[-N_VAL:]).reshape(-1, 784), y_all[-N_VAL:]
print(f"{N_TRAIN} training images, {N_VAL} validation images (the last ones of MNIST's training file)")

METHODS = {  # name: (penalty, constraint, dropout on inputs, dropout on hidden units)
    "none": (None, None, 0.0, 0.0),
    "L2": (L2(3e-3), None, 0.0, 0.0),
    "L1": (L1(3e-4), None, 0.0, 0.0),
    "elastic net": (ElasticNet(l1=1.5e-4, l2=1.5e-3), None, 0.0, 0.0),
    "max-norm": (None, MaxNorm(1.0), 0.0, 0.0),
    "dropout": (None, None, 0.2, 0.5),
}


def build(method, seed):
    """784-HIDDEN-HIDDEN-10. Dense layers are built at construction from the seeded global generator,
    and Dropout layers get their own seeds, so every method starts from the same weights."""
    reg, con, p_in, p_hidden = METHODS[method]
    snn.set_seed(seed)
    layers = [Dropout(p_in, seed=seed + 100)] if p_in else []
    layers += [Dense(HIDDEN, in_features=784, regularizer=reg, constraint=con), ReLU()]
    layers += [Dropout(p_hidden, seed=seed + 200)] if p_hidden else []
    layers += [Dense(HIDDEN, in_features=HIDDEN, regularizer=reg, constraint=con), ReLU()]
    layers += [Dropout(p_hidden, seed=seed + 300)] if p_hidden else []
    layers += [Dense(10, in_features=HIDDEN, regularizer=reg, constraint=con)]
    model = snn.Sequential(layers)
    model.compile(optimizer=snn.optimizers.SGD(lr=0.02, momentum=0.9), loss="softmax_cross_entropy")
    return model


first_weights = {m: build(m, 0).parameters()["dense_1.W"] for m in METHODS}
same_start = all(np.array_equal(w, first_weights["none"]) for w in first_weights.values())
print(f"{build('none', 0).count_params():,} parameters for {N_TRAIN} images; "
      f"every method starts from the same first-layer weights: {same_start}")


# %% [markdown]
# ## Training, and how the gap is measured
#
# Every run takes the same $E$ epochs of SGD with momentum (learning rate 0.02, momentum 0.9,
# batches of 32). At the end we evaluate both sets in inference mode (dropout off) and record
#
# - the **accuracy gap**: training accuracy minus validation accuracy;
# - the **loss gap**: validation cross-entropy minus training cross-entropy, *without* the penalty
#   term (`evaluate` adds the penalty to both, so we subtract it), which also sees over-confident
#   wrong answers that accuracy ignores.
#
# Each method runs once per seed; a seed fixes the initial weights, the batch order and the dropout
# masks, and all methods share it, so differences between methods *within* a seed are paired.

# %%
def data_metrics(model, X, y):
    res = model.evaluate(X, y)
    return res["accuracy"], res["loss"] - model.penalty()


class PenaltyLog(snn.callbacks.Callback):
    """Records the penalty at the end of each epoch, to take it out of the logged validation loss."""

    def __init__(self):
        self.values = []

    def on_epoch_end(self, epoch, logs):
        self.values.append(self.model.penalty())


results = {}  # (method, seed) -> dict
for seed in SEEDS:
    for method in METHODS:
        model = build(method, seed)
        curves = seed == SEEDS[0]  # per-epoch validation (a pass over it every epoch) for the first seed only
        penalties = PenaltyLog()
        hist = model.fit(X_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0, seed=seed,
                         validation_data=(X_val, y_val) if curves else None, callbacks=[penalties])
        if curves:
            hist.history["val_data_loss"] = list(np.subtract(hist.history["val_loss"], penalties.values))
        train_acc, train_loss = data_metrics(model, X_train, y_train)
        val_acc, val_loss = data_metrics(model, X_val, y_val)
        W1 = model.layers[[i for i, l in enumerate(model.layers) if isinstance(l, Dense)][0]].params["W"].copy()
        results[method, seed] = dict(train_acc=train_acc, val_acc=val_acc, acc_gap=train_acc - val_acc,
                                     loss_gap=val_loss - train_loss, train_loss=train_loss, val_loss=val_loss,
                                     W1=W1, history=hist.history if curves else None)
        print(f"seed {seed} {method:11s} train acc {train_acc:.4f}  val acc {val_acc:.4f}  "
              f"gap {train_acc - val_acc:+.4f}"
              f"   train loss {train_loss:.3f}  val loss {val_loss:.3f}  gap {val_loss - train_loss:+.3f}")

# %% [markdown]
# ## The gap without regularization
#
# The unregularized network fits its 1,000 images perfectly within a few epochs; after that its
# training loss keeps falling towards 0 while the validation loss stalls or creeps up: the network
# grows more and more confident, including on the validation images it gets wrong. The second
# plot shows the validation cross-entropy of every method (a small callback records the penalty
# after each epoch, so it can be taken out of the logged `val_loss`).

# %%
h = results["none", SEEDS[0]]["history"]
epochs = np.arange(1, EPOCHS + 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.plot(epochs, h["accuracy"], label="training (running, during the epoch)")
ax1.plot(epochs, h["val_accuracy"], label="validation")
ax1.set(title="no regularization: accuracy", xlabel="epoch", ylabel="accuracy")
ax1.legend()
ax2.semilogy(epochs, h["loss"], label="training")
ax2.semilogy(epochs, h["val_loss"], label="validation")
ax2.set(title="no regularization: cross-entropy", xlabel="epoch", ylabel="loss (log scale)")
ax2.legend()
fig.tight_layout()
plt.show()

# %%
fig, ax = plt.subplots(figsize=(8, 3.8))
for method in METHODS:
    ax.plot(epochs, results[method, SEEDS[0]]["history"]["val_data_loss"], label=method)
ax.set(title=f"validation cross-entropy per epoch, penalty taken out (seed {SEEDS[0]})", xlabel="epoch",
       ylabel="validation loss")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## What each method does to the weights
#
# Histograms of the first layer's weights after training (seed 0, log counts). L2 narrows the
# distribution; L1 piles weights up at 0 (above all those of the border pixels, which are 0 in
# every image, so the data never pushes back); max-norm caps each unit's weight vector as a whole,
# which the histogram shows only indirectly; dropout acts on the activations, not on the weights.

# %%
fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True)
lim = max(np.abs(results[m, SEEDS[0]]["W1"]).max() for m in METHODS)
bins = np.linspace(-lim, lim, 81)
weight_stats = {}
for ax, method in zip(axes.flat, METHODS):
    W1 = results[method, SEEDS[0]]["W1"]
    near_zero = float(np.mean(np.abs(W1) < 1e-3))
    max_norm = float(np.sqrt((W1 ** 2).sum(axis=0)).max())
    weight_stats[method] = dict(near_zero=near_zero, max_norm=max_norm, std=float(W1.std()))
    ax.hist(W1.ravel(), bins=bins, log=True, color="tab:blue")
    ax.set_title(f"{method}: std {W1.std():.3f}, |w|<1e-3: {near_zero:.0%}\nlargest unit norm {max_norm:.2f}",
                 fontsize=9)
for ax in axes[1]:
    ax.set_xlabel("first-layer weight")
for ax in axes[:, 0]:
    ax.set_ylabel("count (log)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The gap each method leaves, against the noise
#
# A difference between two methods means something only if it is larger than what changing the
# seed alone does. For each method and seed we take the *paired* narrowing
# $d_s = \text{gap}_\text{none}(s) - \text{gap}_\text{method}(s)$, its mean $\bar d$ and its
# standard error $\text{SE} = \text{sd}(d_s)/\sqrt{S}$ over the $S$ seeds, and call a method's
# narrowing real when $\bar d > 2\,\text{SE}$ and every seed agrees on its sign. For scale: one
# validation image is $1/N_\text{val}$ of accuracy, and the binomial standard error of a single
# accuracy near 90% is $\sqrt{0.9 \cdot 0.1 / N_\text{val}}$.

# %%
def paired(method, key):
    """Mean and standard error over seeds of none's value minus the method's, and whether it is
    positive beyond the noise (mean > 2 SE, every seed positive)."""
    d = np.array([results["none", s][key] - results[method, s][key] for s in SEEDS])
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("inf")
    return d.mean(), se, bool(d.mean() > 2 * se and np.all(d > 0))


def mean_over_seeds(method, key):
    return float(np.mean([results[method, s][key] for s in SEEDS]))


summary = {}
for method in METHODS:
    summary[method] = {k: mean_over_seeds(method, k) for k in ("train_acc", "val_acc", "acc_gap", "loss_gap")}
    for key in ("acc_gap", "loss_gap", "val_acc"):
        summary[method][key + "_d"] = paired(method, key)
binom_se = np.sqrt(0.9 * 0.1 / N_VAL)
print(f"{len(SEEDS)} seeds; one validation image = {1 / N_VAL:.2%} of accuracy; binomial SE of one accuracy near 90%: "
      f"{binom_se:.2%} ({binom_se * N_VAL:.0f} images)")
for method, s in summary.items():
    d, se, real = s["acc_gap_d"]
    dl, sel, reall = s["loss_gap_d"]
    print(f"{method:11s} val acc {s['val_acc']:.2%}  acc gap {s['acc_gap']:+.2%} (narrowed {d:+.2%} ± {se:.2%}, "
          f"{d * N_VAL:+.0f} images{', real' if real else ''})  loss gap {s['loss_gap']:.3f} "
          f"(narrowed {dl:+.3f} ± {sel:.3f}{', real' if reall else ''})")

# %%
names = list(METHODS)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, key, title in [(axes[0], "acc_gap", "accuracy gap (train − validation)"),
                       (axes[1], "loss_gap", "loss gap (validation − train, no penalty)")]:
    means = [summary[m][key] for m in names]
    ax.bar(names, means, color=["0.5"] + ["tab:blue"] * (len(names) - 1), alpha=0.6)
    for i, m in enumerate(names):
        ax.plot([i] * len(SEEDS), [results[m, s][key] for s in SEEDS], "k.", ms=8)
    ax.set(title=f"{title}; dots: one per seed", ylabel=key.replace("_", " "))
    ax.tick_params(axis="x", rotation=20)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What this showed

# %%
base = summary["none"]
print(f"- Without regularization the network reached {base['train_acc']:.1%} training and {base['val_acc']:.1%} "
      f"validation accuracy (mean of {len(SEEDS)} seeds): an accuracy gap of {base['acc_gap']:.1%} "
      f"({base['acc_gap'] * N_VAL:.0f} of {N_VAL} validation images) and a loss gap of {base['loss_gap']:.3f}.")
for method in names[1:]:
    s = summary[method]
    d, se, real = s["acc_gap_d"]
    dl, sel, reall = s["loss_gap_d"]
    dv, sev, _ = s["val_acc_d"]  # none minus method: negative when the method is better
    seeds_up = sum(results[method, k]["val_acc"] > results["none", k]["val_acc"] for k in SEEDS)
    if real:
        acc_part = f"narrowed the accuracy gap by {d:.2%} ({d * N_VAL:.0f} images), more than the noise (SE {se:.2%})"
    elif d >= 0.5 / N_VAL:
        acc_part = f"narrowed the accuracy gap by only {d:.2%} ({d * N_VAL:.0f} images), within the noise (SE {se:.2%})"
    elif d > -0.5 / N_VAL:
        acc_part = f"left the accuracy gap unchanged (SE {se:.2%})"
    else:
        within = ", within the noise" if -d <= 2 * se else ""
        acc_part = f"did not narrow the accuracy gap ({-d:.2%} wider{within}; SE {se:.2%})"
    if -dv > 2 * sev and seeds_up == len(SEEDS):
        val_part = f"and raised validation accuracy to {s['val_acc']:.1%}"
    elif dv > 2 * sev and seeds_up == 0 and real:
        val_part = (f"but lowered validation accuracy to {s['val_acc']:.1%}, so it narrowed the gap by fitting the "
                    f"training set less, not by generalizing better")
    elif dv > 2 * sev and seeds_up == 0:
        val_part = f"and lowered validation accuracy to {s['val_acc']:.1%}"
    else:
        val_part = f"with validation accuracy {s['val_acc']:.1%}, not different beyond the noise"
    loss_part = (f"the loss gap fell by {dl:.3f} (SE {sel:.3f}), more than the noise" if reall
                 else f"the loss gap changed by {-dl:+.3f}, not beyond the noise (SE {sel:.3f})")
    print(f"- {method}: {acc_part}, {val_part}; {loss_part}.")
real_acc = [m for m in names[1:] if summary[m]["acc_gap_d"][2]]
real_loss = [m for m in names[1:] if summary[m]["loss_gap_d"][2]]
print(f"- Narrowed the accuracy gap by more than the noise: {', '.join(real_acc) or 'no method'}; "
      f"narrowed the loss gap by more than the noise: {', '.join(real_loss) or 'no method'}.")
print(f"- In the weights: L1 left {weight_stats['L1']['near_zero']:.0%} of the first-layer weights below 1e-3 in size "
      f"(no regularization: {weight_stats['none']['near_zero']:.0%}); L2 shrank their std from "
      f"{weight_stats['none']['std']:.3f} to {weight_stats['L2']['std']:.3f}; max-norm kept the largest unit norm at "
      f"{weight_stats['max-norm']['max_norm']:.2f} (no regularization: {weight_stats['none']['max_norm']:.2f}).")
