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
# # 8. Batch normalization
#
# A deep network is hard to train when the scale of the signal drifts from layer to layer: too
# small and every layer above sees almost nothing, too large and one step of gradient descent
# throws the weights off. Batch normalization (Ioffe & Szegedy, 2015) fixes the scale inside the
# network. For each feature $j$ of a mini-batch of $m$ samples it computes
#
# $$
# \mu_j = \frac{1}{m}\sum_{i=1}^{m} x_{ij}, \qquad
# \sigma_j^2 = \frac{1}{m}\sum_{i=1}^{m} (x_{ij} - \mu_j)^2, \qquad
# \hat x_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}}, \qquad
# y_{ij} = \gamma_j \hat x_{ij} + \beta_j ,
# $$
#
# so every feature leaves the layer with mean $\beta_j$ and standard deviation $\gamma_j$,
# whatever the weights below did; $\gamma$ and $\beta$ are learned. We compute the layer by
# hand on a few numbers, look at the difference between training (statistics of the batch) and
# inference (running statistics), check its gradient, and then let it rescue two settings under
# which a plain deep network does not train at all.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist, scale
from scratchnn.gradcheck import check_layer
from scratchnn.layers import BatchNorm, BatchNorm2D, Dense, ReLU
from scratchnn.optimizers import SGD

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("This page was built with reduced sizes (SCRATCHNN_DOCS_QUICK=1): its numbers are a smoke test, "
          "not the lesson.")
snn.set_seed(0)

# %% [markdown]
# ## Training mode: the statistics of the batch
#
# Four samples with three features on very different scales. We normalize them by hand, with
# $\gamma = (1, 2, 0.5)$ and $\beta = (0, 1, -1)$, and ask scratchnn's `BatchNorm` for the
# same thing with `training=True`.

# %%
x = np.array([[1.0, 200.0, -3.0],
              [2.0, 220.0, -1.0],
              [3.0, 180.0, -2.0],
              [6.0, 240.0, 0.0]])
gamma, beta, eps = np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0]), 1e-5
mu = x.mean(axis=0)
var = x.var(axis=0)  # the biased variance (divided by m), as in the formula
x_hat = (x - mu) / np.sqrt(var + eps)
y_hand = gamma * x_hat + beta
print("batch mean  mu      =", mu)
print("batch var   sigma^2 =", var)
print("x_hat (each column: mean 0, std 1):\n", x_hat.round(3))
print("y = gamma * x_hat + beta:\n", y_hand.round(3))

snn.set_default_dtype("float64")
bn = BatchNorm(momentum=0.9)
bn.build((3,), np.float64)
bn.params["gamma"][...] = gamma
bn.params["beta"][...] = beta
y_train = bn.forward(x, training=True)
same_train = np.allclose(y_train, y_hand)
print(f"BatchNorm.forward(x, training=True) gives the same numbers: {same_train}")

# %% [markdown]
# ## Inference mode: running statistics
#
# At test time a prediction must not depend on which other samples share its batch (a batch may
# hold a single image), so the layer uses estimates of the *population* mean and variance, kept
# as running averages during training. scratchnn follows Keras' convention for the momentum $m$:
#
# $$
# \text{running} \leftarrow m \cdot \text{running} + (1 - m) \cdot \text{batch statistic},
# $$
#
# so `momentum=0.9` keeps 90% of the old estimate at every step (PyTorch writes the same rule with
# its `momentum=0.1` on the *new* value). The running mean starts at 0, the running variance at 1,
# and the variance folded in is the unbiased one, $\frac{m}{m-1}\sigma^2$. After the one training
# step above:

# %%
m_bn = bn.momentum
expected_mean = m_bn * 0.0 + (1 - m_bn) * mu
expected_var = m_bn * 1.0 + (1 - m_bn) * var * len(x) / (len(x) - 1)
print("running_mean: by hand", expected_mean.round(4), " layer", bn.buffers["running_mean"].round(4))
print("running_var:  by hand", expected_var.round(4), " layer", bn.buffers["running_var"].round(4))
same_running = np.allclose(expected_mean, bn.buffers["running_mean"]) and \
    np.allclose(expected_var, bn.buffers["running_var"])
y_infer = bn.forward(x, training=False)
print("the same batch in inference mode (one update is far from the population):\n", y_infer.round(2))

# %% [markdown]
# One step moved the estimates only 10% of the way. Feed the layer batches from a known
# distribution, features with means $(3, 200, -1.5)$ and standard deviations $(2, 25, 1)$, and
# watch the running mean of the second feature: the weight left on the starting value after $k$
# steps is $m^k$, so it is within 1% of the truth after $\log 0.01 / \log 0.9 \approx 44$ steps.

# %%
true_mean, true_std = np.array([3.0, 200.0, -1.5]), np.array([2.0, 25.0, 1.0])
rng = np.random.default_rng(0)
bn_pop = BatchNorm(momentum=0.9)
bn_pop.build((3,), np.float64)
trace_mean, trace_std = [], []
for step in range(80):
    bn_pop.forward(true_mean + true_std * rng.standard_normal((32, 3)), training=True)
    trace_mean.append(bn_pop.buffers["running_mean"][1])
    trace_std.append(np.sqrt(bn_pop.buffers["running_var"][1]))
steps = np.arange(1, 81)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].plot(steps, trace_mean, label="running_mean[1]")
ax[0].plot(steps, true_mean[1] * (1 - 0.9 ** steps), "--", label=r"$200\,(1 - 0.9^k)$")
ax[0].axhline(true_mean[1], color="0.6", lw=0.8)
ax[0].set(xlabel="training step k", ylabel="running mean", title="running mean of feature 1 (true 200)")
ax[0].legend()
ax[1].plot(steps, trace_std, color="tab:orange")
ax[1].axhline(true_std[1], color="0.6", lw=0.8)
ax[1].set(xlabel="training step k", ylabel="sqrt(running var)", title="running std of feature 1 (true 25)")
plt.show()
err_mean_pop = abs(trace_mean[-1] - true_mean[1]) / true_mean[1]
err_std_pop = abs(trace_std[-1] - true_std[1]) / true_std[1]
print(f"after 80 steps: running mean {trace_mean[-1]:.1f} (true 200), running std {trace_std[-1]:.1f} (true 25)")

# %% [markdown]
# The practical difference between the two modes: in training mode a sample's output depends on the
# rest of its batch, in inference mode it does not.

# %%
sample = true_mean + true_std * rng.standard_normal((1, 3))
batch_a = np.vstack([sample, true_mean + true_std * rng.standard_normal((7, 3))])
batch_b = np.vstack([sample, true_mean + 3 * true_std * rng.standard_normal((7, 3))])
train_a, train_b = bn_pop.forward(batch_a, training=True)[0], bn_pop.forward(batch_b, training=True)[0]
infer_a, infer_b = bn_pop.forward(batch_a)[0], bn_pop.forward(batch_b)[0]
print("the same sample, training mode, two batches:", train_a.round(3), train_b.round(3))
print("the same sample, inference mode, two batches:", infer_a.round(3), infer_b.round(3))
batch_dependent = not np.allclose(train_a, train_b)
batch_independent = np.allclose(infer_a, infer_b)

# %% [markdown]
# ## The backward pass, checked
#
# Every output of a feature depends on every input of that feature through $\mu_j$ and
# $\sigma_j$, so the gradient has three terms. Written with $\hat x$ alone ($m$ samples,
# one feature):
#
# $$
# \frac{\partial L}{\partial \beta} = \sum_i \frac{\partial L}{\partial y_i}, \qquad
# \frac{\partial L}{\partial \gamma} = \sum_i \frac{\partial L}{\partial y_i}\hat x_i, \qquad
# \frac{\partial L}{\partial x_i} = \frac{\gamma}{m\sqrt{\sigma^2+\epsilon}}
# \Big(m\frac{\partial L}{\partial y_i} - \frac{\partial L}{\partial \beta}
# - \hat x_i \frac{\partial L}{\partial \gamma}\Big).
# $$
#
# `check_layer` compares it with central differences in float64, for dense inputs and for images
# (`BatchNorm2D`: one mean and variance per channel, over the batch and all pixels).

# %%
checks = {}
for name, layer, shape in [("BatchNorm on (8, 5)", BatchNorm(), (8, 5)),
                           ("BatchNorm2D on (4, 3, 5, 5)", BatchNorm2D(), (4, 3, 5, 5))]:
    xc = 3.0 * rng.standard_normal(shape) + 1.0
    layer.ensure_built(xc)
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, layer.params["gamma"].shape)
    layer.params["beta"][...] = rng.standard_normal(layer.params["beta"].shape)
    checks[name] = check_layer(layer, xc)
    print(name, "-", checks[name].report)
snn.set_default_dtype("float32")

# %% [markdown]
# ## Rescuing a deep network
#
# Now a network of six hidden layers of 128 ReLU units on MNIST, trained with plain SGD, in three
# settings:
#
# - **good**: He initialization, learning rate 0.1 (the reference);
# - **bad initialization**: every weight from $N(0, 0.01^2)$; each layer multiplies the signal's
#   scale by about $0.01\sqrt{128/2} = 0.08$, so six layers shrink it by $10^{-6}$ or more;
# - **high learning rate**: He initialization with a learning rate of 1.0.
#
# Each without and with batch normalization: the BN network puts `BatchNorm` between each `Dense`
# and its `ReLU`, and drops that `Dense`'s bias, which the normalization's mean subtraction would
# cancel anyway ($\beta$ takes its role). The training set is a multiple of the batch size, so no
# epoch ends on a tiny, noisy batch.

# %%
(X_all, y_all), (X_test_all, y_test_all) = load_mnist()
batch_size = 128
n_train, n_val, n_test = (2560, 1000, 2000) if QUICK else (19968, 5000, 10000)
epochs = 2 if QUICK else 6
depth, width = (6, 64) if QUICK else (6, 128)
X_train, y_train = scale(X_all[:n_train]).reshape(n_train, -1), y_all[:n_train]
X_val, y_val = scale(X_all[-n_val:]).reshape(n_val, -1), y_all[-n_val:]
X_test, y_test = scale(X_test_all[:n_test]).reshape(n_test, -1), y_test_all[:n_test]
print(f"{n_train} training, {n_val} validation (the last of MNIST's training images), {n_test} test images; "
      f"{depth} hidden layers of {width}, SGD, batch {batch_size}, {epochs} epochs")


def build(bn, init):
    layers = []
    for _ in range(depth):
        layers += [Dense(width, init=init, use_bias=False), BatchNorm(), ReLU()] if bn else \
                  [Dense(width, init=init), ReLU()]
    return snn.Sequential(layers + [Dense(10, init=init)])


# %% [markdown]
# First, why the bad initialization fails: the standard deviation of each hidden layer's output
# for one batch, before any training. Without BN it collapses geometrically; with BN every layer's
# pre-activations are rescaled to unit variance, so each ReLU passes on a signal of the same size.

# %%
def layer_stds(model, xb):
    stds, h = [], xb
    for layer in model.layers:
        h = layer.forward(h, training=True)
        if isinstance(layer, ReLU):
            stds.append(float(h.std()))
    return stds


xb = X_train[:256]
stds = {}
for bn in (False, True):
    snn.set_seed(0)
    stds[bn] = layer_stds(build(bn, "small_normal"), xb)
fig, ax = plt.subplots(figsize=(6, 3.5))
for bn, style in ((False, "o--"), (True, "o-")):
    ax.semilogy(range(1, depth + 1), stds[bn], style, label="with BatchNorm" if bn else "plain")
ax.set(xlabel="hidden layer", ylabel="std of the ReLU output", title="signal at initialization, N(0, 0.01²) weights")
ax.legend()
plt.show()
print("plain:", " ".join(f"{s:.1e}" for s in stds[False]))
print("BN:   ", " ".join(f"{s:.1e}" for s in stds[True]))

# %% [markdown]
# Now the six runs, each from the same seed. A run whose loss becomes NaN or infinite stops with
# `TrainingDivergedError`; we record where and keep the epochs it completed.

# %%
settings = {"good": ("he_normal", 0.1), "bad initialization": ("small_normal", 0.1),
            "high learning rate": ("he_normal", 1.0)}
runs = {}
for label, (init, lr) in settings.items():
    for bn in (False, True):
        snn.set_seed(0)
        model = build(bn, init)
        model.compile(optimizer=SGD(lr), loss="softmax_cross_entropy")
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows before it stops
                model.fit(X_train, y_train, epochs=epochs, batch_size=batch_size, validation_data=(X_val, y_val),
                          verbose=0, seed=0)
            diverged, test_acc = None, model.evaluate(X_test, y_test)["accuracy"]
        except snn.TrainingDivergedError as e:
            diverged, test_acc = e.epoch, float("nan")
        hist = model.history.history
        runs[(label, bn)] = {"val": hist.get("val_accuracy", []), "loss": hist.get("loss", []),
                             "diverged": diverged, "test": test_acc}
        outcome = f"diverged in epoch {diverged}" if diverged else f"test accuracy {test_acc:.4f}"
        print(f"{label:19s} {'BN   ' if bn else 'plain'}  init {init:12s} lr {lr:<4g} {outcome}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, label in zip(axes, settings):
    for bn, style in ((False, "o--"), (True, "o-")):
        r = runs[(label, bn)]
        tag = f" (diverged, epoch {r['diverged']})" if r["diverged"] else ""
        ax.plot(range(1, len(r["val"]) + 1), r["val"], style, label=("BatchNorm" if bn else "plain") + tag)
    init, lr = settings[label]
    ax.set(xlabel="epoch", title=f"{label}: {init}, lr {lr:g}", ylim=(0, 1), xticks=range(1, epochs + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
axes[0].set_ylabel("validation accuracy")
plt.show()

# %% [markdown]
# Batch normalization makes each layer's output independent of the scale of its weights: multiply
# $W$ by 100 and the normalized pre-activations do not change. That is why the tiny weights do
# not matter, and also why a large learning rate hurts less: as the weights grow, the gradient with
# respect to them shrinks in proportion, which damps the steps that blow a plain network up.
#
# ## What this showed

# %%
def outcome(r):
    return f"diverged in epoch {r['diverged']}" if r["diverged"] else f"reached {r['test']:.1%} test accuracy"


def trained(r):  # clearly better than guessing one of 10 classes
    return not r["diverged"] and r["test"] > 0.5


print(f"- By hand and in scratchnn, training-mode BatchNorm normalizes with the batch's own mean and variance "
      f"({'same numbers' if same_train else 'DIFFERENT numbers'}); the running statistics follow "
      f"running = {m_bn} * running + {1 - m_bn:.1f} * batch, with the unbiased variance "
      f"({'checked' if same_running else 'NOT matching'}).")
print(f"- After 80 batches the running estimates were within {err_mean_pop:.1%} (mean) and {err_std_pop:.1%} "
      f"(std) of the population's; in training mode a sample's output "
      f"{'changed' if batch_dependent else 'did not change'} with its batch, in inference mode it "
      f"{'did not' if batch_independent else 'DID'}.")
print(f"- The gradient checks {'passed' if all(checks.values()) else 'FAILED'} with relative errors "
      f"{', '.join(f'{c.max_rel_error:.0e}' for c in checks.values())}.")
print(f"- With N(0, 0.01²) weights the plain network's signal fell to {stds[False][-1]:.0e} by hidden layer "
      f"{depth}, against {stds[True][-1]:.2f} with BatchNorm.")
for label in settings:
    plain, norm = runs[(label, False)], runs[(label, True)]
    if label == "good":
        print(f"- In the good setting the plain network {outcome(plain)} and the BN network {outcome(norm)}.")
    elif trained(norm) and not trained(plain):
        print(f"- With the {label}, the plain network {outcome(plain)}: it did not train; with BatchNorm it "
              f"{outcome(norm)}. Batch normalization rescued it.")
    else:
        print(f"- With the {label}, the plain network {outcome(plain)} and the BN network {outcome(norm)}: "
              f"this run does not show BatchNorm rescuing it.")
