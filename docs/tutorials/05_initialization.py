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
# # 5. Initializing a deep network
#
# Before the first update, a network's weights are random numbers, and *which* random numbers
# decides whether a deep network can learn at all. Take one layer $a^{(l)} = \phi(z^{(l)})$,
# $z^{(l)} = a^{(l-1)} W^{(l)}$, with $n$ inputs and weights drawn independently with mean 0
# and variance $\sigma_W^2$. Each pre-activation is a sum of $n$ independent terms, so
#
# $$
# \operatorname{Var}\big(z^{(l)}\big) = n\, \sigma_W^2\, \mathbb{E}\big[(a^{(l-1)})^2\big].
# $$
#
# Every layer multiplies the signal's second moment by a factor. Below 1 the signal shrinks
# geometrically with depth and vanishes; above 1 it explodes (or, for $\tanh$, saturates). The
# backward pass obeys the same rule with the fan-out in place of the fan-in. The classic answers:
#
# - **Xavier / Glorot** (2010): $\sigma_W^2 = 2 / (n_\text{in} + n_\text{out})$, which keeps the
#   factor at 1 for a function with slope 1 at 0, such as $\tanh$;
# - **He** (2015): $\sigma_W^2 = 2 / n_\text{in}$: ReLU zeroes half of its inputs, so
#   $\mathbb{E}[a^2] = \tfrac12 \operatorname{Var}(z)$, and the 2 compensates for it.
#
# We compare them with two naive choices, **zeros** and a **small normal**
# $\mathcal{N}(0, 0.01^2)$, on a deep MLP with ReLU and with $\tanh$: first the signal at
# initialization, then a short training run per scheme.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist
from scratchnn.datasets.preprocessing import scale
from scratchnn.layers import Dense, ReLU, Tanh

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

DEPTH = 8 if QUICK else 10      # Dense layers: DEPTH - 1 hidden layers and the output layer
WIDTH = 128 if QUICK else 256   # units per hidden layer
N_TRAIN = 1000 if QUICK else 6000
EPOCHS = 2 if QUICK else 6
SCHEMES = ["zeros", "small_normal", "xavier_normal", "he_normal"]
ACTIVATIONS = {"ReLU": ReLU, "tanh": Tanh}
COLORS = {"zeros": "tab:gray", "small_normal": "tab:orange", "xavier_normal": "tab:blue", "he_normal": "tab:green"}
STYLES = {"zeros": dict(ls="--", marker="s", ms=8), "small_normal": dict(ls="-", marker="o", ms=4),
          "xavier_normal": dict(ls="-", marker="o", ms=4), "he_normal": dict(ls="-", marker="o", ms=4)}

(X_all, y_all), (X_test, y_test) = load_mnist()
X_train = scale(X_all[:N_TRAIN]).reshape(-1, 784)
y_train = y_all[:N_TRAIN]
X_val = scale(X_test[:2000]).reshape(-1, 784)
y_val = y_test[:2000]
print(f"{len(X_train)} training and {len(X_val)} validation images; an MLP of {DEPTH} Dense layers, "
      f"{DEPTH - 1} hidden layers of {WIDTH} units")


def deep_mlp(init, activation):
    """DEPTH Dense layers with the same initializer; an activation after each hidden one."""
    layers = []
    for _ in range(DEPTH - 1):
        layers += [Dense(WIDTH, init=init), ACTIVATIONS[activation]()]
    layers.append(Dense(10, init=init))
    model = snn.Sequential(layers)
    model.compile(optimizer=snn.optimizers.SGD(lr=0.01, momentum=0.9), loss="softmax_cross_entropy")
    model.build((784,))
    return model


# %% [markdown]
# ## The signal at initialization
#
# For each scheme we build the network (with the same seed, so Xavier and He draw the very same
# normal numbers and differ only by their scale), push one batch of 500 images forward in training
# mode, and record the standard deviation of each hidden layer's output $a^{(l)}$. Then the loss
# gradient goes back through the network, and we record the standard deviation of each layer's
# weight gradient $\partial L / \partial W^{(l)}$: the size of the step that layer will take.

# %%
def probe(model, X, y):
    """Standard deviations of each hidden activation and of each Dense layer's weight gradient."""
    a, act_std = X, []
    for layer in model.layers:
        a = layer.forward(a, training=True)
        if not isinstance(layer, Dense):
            act_std.append(float(a.std()))
    loss, dout = model.loss(a, y)
    model.backward(dout)
    grad_std = [float(layer.grads["W"].std()) for layer in model.layers if isinstance(layer, Dense)]
    return np.array(act_std), np.array(grad_std), loss


X_probe, y_probe = X_train[:500], y_train[:500]
stats = {}
for act in ACTIVATIONS:
    for init in SCHEMES:
        snn.set_seed(0)
        stats[act, init] = probe(deep_mlp(init, act), X_probe, y_probe)

print(f"input std {X_probe.std():.3f}")
for (act, init), (act_std, grad_std, loss) in stats.items():
    print(f"{act:4s} {init:13s} activation std layer 1 -> {len(act_std)}: {act_std[0]:.2e} -> {act_std[-1]:.2e}; "
          f"weight-gradient std layer 1 / last: {grad_std[0]:.2e} / {grad_std[-1]:.2e}; initial loss {loss:.3f}")

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex="row")
for col, act in enumerate(ACTIVATIONS):
    for init in SCHEMES:
        act_std, grad_std, _ = stats[act, init]
        # zeros gives exactly 0 everywhere, which a log axis cannot show: it is left out of the plots
        axes[0, col].semilogy(np.arange(1, len(act_std) + 1), np.where(act_std > 0, act_std, np.nan),
                              color=COLORS[init], label=init, **STYLES[init])
        axes[1, col].semilogy(np.arange(1, len(grad_std) + 1), np.where(grad_std > 0, grad_std, np.nan),
                              color=COLORS[init], label=init, **STYLES[init])
    axes[0, col].set(title=f"{act}: std of each hidden layer's output", xlabel="hidden layer",
                     ylabel="std of activation")
    axes[1, col].set(title=f"{act}: std of dL/dW per layer", xlabel="Dense layer (1 = next to the input)",
                     ylabel="std of weight gradient")
    axes[0, col].legend(title="zeros: exactly 0, not drawn", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Reading the plots:
#
# - **small normal**: each ReLU layer multiplies the standard deviation by about
#   $0.01 \sqrt{n/2}$ ($\approx 0.11$ for 256 units), so after a few layers the signal is
#   numerically gone, and so are the weight gradients, which are products of a vanishing forward
#   signal and a vanishing backward one. With $\tanh$ (slope 1 near 0) the factor is
#   $0.01\sqrt{n}$, no better.
# - **Xavier**: with $\tanh$ the signal is kept (it decays only slowly, because $\tanh$ bends
#   below the identity); with ReLU it halves in variance at every layer, a factor
#   $1/\sqrt{2}$ in standard deviation, which over ten layers is large but not fatal.
# - **He**: with ReLU the standard deviation stays roughly flat from the first layer to the last,
#   what the derivation promised, and the weight gradients stay within a small factor of each
#   other across the layers. With $\tanh$ the doubled variance makes the signal grow until
#   $\tanh$'s flattening towards $\pm 1$ stops it: more units work in the bent part of the curve.
# - **zeros**: every activation and every weight gradient is exactly 0 (only the output bias gets
#   a gradient). Worse, all units of a layer compute the same function, receive the same gradient
#   and therefore stay identical forever: the *symmetry* problem. Random initialization is what
#   breaks the symmetry.

# %% [markdown]
# ## Which schemes learn
#
# Now each network trains for the same few epochs with SGD (learning rate 0.01, momentum 0.9,
# batches of 64) on the same images in the same order. After training we also count how many
# *distinct* units the first hidden layer holds (distinct columns of $W^{(1)}$): symmetry means
# that number stays at 1.

# %%
runs = {}
for act in ACTIVATIONS:
    for init in SCHEMES:
        snn.set_seed(1)
        model = deep_mlp(init, act)
        try:
            hist = model.fit(X_train, y_train, epochs=EPOCHS, batch_size=64, validation_data=(X_val, y_val),
                             verbose=0, seed=0)
            val_acc, losses = hist["val_accuracy"], hist["loss"]
        except snn.TrainingDivergedError as err:
            val_acc, losses = [np.nan], [np.nan]
            print(f"{act} {init}: diverged ({err})")
        W1 = model.layers[0].params["W"]
        distinct = len(np.unique(W1.round(6), axis=1).T)
        runs[act, init] = {"val_acc": val_acc, "loss": losses, "distinct": distinct}
        print(f"{act:4s} {init:13s} validation accuracy per epoch: {' '.join(f'{a:.3f}' for a in val_acc)}; "
              f"distinct first-layer units: {distinct} of {WIDTH}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, act in zip(axes, ACTIVATIONS):
    for init in SCHEMES:
        acc = runs[act, init]["val_acc"]
        ax.plot(np.arange(1, len(acc) + 1), acc, color=COLORS[init], label=init, **STYLES[init])
    ax.axhline(0.1, color="0.6", ls=":", lw=1)
    ax.set(title=f"{DEPTH}-layer {act} MLP", xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1))
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What this showed

# %%
def ratio(act, init):
    """How much the activation std changes from the first hidden layer to the last."""
    s = stats[act, init][0]
    return s[-1] / s[0] if s[0] > 0 else float("nan")


final = {k: r["val_acc"][-1] for k, r in runs.items()}
chance = np.bincount(y_val).max() / len(y_val)
print(f"- Zeros: every hidden activation and weight gradient of the ReLU network was exactly "
      f"{stats['ReLU', 'zeros'][0].max():.0f}; after training its first layer held "
      f"{runs['ReLU', 'zeros']['distinct']} distinct unit(s) of {WIDTH} (ReLU) and "
      f"{runs['tanh', 'zeros']['distinct']} (tanh), and it reached {final['ReLU', 'zeros']:.1%} / "
      f"{final['tanh', 'zeros']:.1%}, the share of the most common class being {chance:.1%}.")
for act in ACTIVATIONS:
    s = stats[act, "small_normal"][0]
    print(f"- Small normal, {act}: the activation std fell from {s[0]:.1e} to {s[-1]:.1e} over {len(s)} hidden layers "
          f"and the largest weight-gradient std was {stats[act, 'small_normal'][1].max():.1e}; "
          + (f"it did not learn ({final[act, 'small_normal']:.1%})." if final[act, "small_normal"] < 2 * chance
             else f"it still reached {final[act, 'small_normal']:.1%} in {EPOCHS} epochs."))
he_flat = 0.5 < ratio("ReLU", "he_normal") < 2
print(f"- He with ReLU kept the activation std {'flat' if he_flat else 'NOT flat'} (last/first = "
      f"{ratio('ReLU', 'he_normal'):.2f}); Xavier with ReLU shrank it by {ratio('ReLU', 'xavier_normal'):.3f}; "
      f"Xavier with tanh kept {ratio('tanh', 'xavier_normal'):.2f} of it, "
      f"He with tanh {ratio('tanh', 'he_normal'):.2f}.")
learners = [f"{init} + {act} ({final[act, init]:.1%})" for act in ACTIVATIONS for init in SCHEMES
            if final[act, init] > 2 * chance]
stuck = [f"{init} + {act} ({final[act, init]:.1%})" for act in ACTIVATIONS for init in SCHEMES
         if not final[act, init] > 2 * chance]
print(f"- After {EPOCHS} epochs, learned (over twice the {chance:.1%} of guessing the commonest class): "
      f"{', '.join(learners) or 'none'}; did not learn: {', '.join(stuck) or 'none'}.")
first = {k: r["val_acc"][0] for k, r in runs.items()}
if first["ReLU", "he_normal"] > first["ReLU", "xavier_normal"] + 0.05:
    print(f"- With ReLU, He started faster than Xavier: {first['ReLU', 'he_normal']:.1%} against "
          f"{first['ReLU', 'xavier_normal']:.1%} after the first epoch, as Xavier's shrinking signal predicts.")
else:
    print(f"- With ReLU, He and Xavier were not clearly apart after the first epoch "
          f"({first['ReLU', 'he_normal']:.1%} and {first['ReLU', 'xavier_normal']:.1%}).")
best = max(final, key=final.get)
print(f"- The best run was {best[1]} with {best[0]} at {final[best]:.1%} validation accuracy.")
