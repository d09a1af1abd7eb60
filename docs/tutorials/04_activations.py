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
# # 4. Activations and their failure modes
#
# Every hidden unit computes $a = f(z)$ with $z = x \cdot w + b$, and the backward pass
# multiplies the gradient arriving at $a$ by the *local derivative* $f'(z)$ before passing it
# on. So the choice of $f$ decides how gradients travel through a deep network. This tutorial
# measures four ways that can go wrong or be put right, on MNIST digits:
#
# 1. **sigmoid saturation**: $\sigma'(z) \le 1/4$, so gradients shrink layer after layer, and
#    vanish entirely through units pushed to 0 or 1;
# 2. **non-zero-centred outputs**: a sigmoid's outputs are all positive, which ties the signs of
#    all the weight gradients of a unit in the next layer together;
# 3. **dead ReLUs**: a unit whose $z$ is negative on every input gets exactly zero gradient and
#    never recovers; a too-large learning rate kills many at once;
# 4. **the fixes**: leaky ReLU and ELU keep a gradient for $z < 0$; maxout has no flat region
#    at all.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.callbacks import Callback
from scratchnn.datasets import load_mnist, scale, train_val_split
from scratchnn.errors import TrainingDivergedError
from scratchnn.layers import ELU, Dense, LeakyReLU, Maxout, ReLU, Sigmoid, Tanh
from scratchnn.optimizers import SGD

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

N_IMAGES = 3000 if QUICK else 12000   # the first MNIST training images: 5/6 to train on, 1/6 to validate
EPOCHS = 2 if QUICK else 8            # equal budget for every activation
snn.set_seed(0)

(X_all, y_all), _ = load_mnist()
X_all = scale(X_all[:N_IMAGES]).reshape(N_IMAGES, -1)   # (N, 784) float32 in [0, 1]
(X_train, y_train), (X_val, y_val) = train_val_split(X_all, y_all[:N_IMAGES], val_size=N_IMAGES // 6, seed=0)
print(f"training on {len(X_train):,} images, validating on {len(X_val):,}")

# %% [markdown]
# ## The functions and their derivatives
#
# $$
# \sigma(z) = \frac{1}{1+e^{-z}}, \quad \tanh(z), \quad \mathrm{ReLU}(z) = \max(0, z), \quad
# \mathrm{leaky}(z) = \begin{cases} z & z > 0 \\ \alpha z & z \le 0 \end{cases}, \quad
# \mathrm{ELU}(z) = \begin{cases} z & z > 0 \\ \alpha (e^{z} - 1) & z \le 0 \end{cases}
# $$
#
# Each activation layer's `backward` returns the arriving gradient times $f'(z)$, so feeding it a
# gradient of ones draws the derivative. (Leaky ReLU is drawn with $\alpha = 0.1$ so its slope
# shows; scratchnn's default is 0.01.) Maxout has no fixed shape: a unit outputs
# $\max_k (x \cdot w_k + b_k)$ over $k$ learned linear pieces, and ReLU is the special case
# $\max(0, z)$ with one piece fixed at zero.

# %%
z = np.linspace(-5, 5, 401).reshape(-1, 1)
shapes = {"sigmoid": Sigmoid(), "tanh": Tanh(), "ReLU": ReLU(), "leaky ReLU (0.1)": LeakyReLU(0.1), "ELU": ELU()}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, layer in shapes.items():
    a = layer.forward(z, training=True)
    ax1.plot(z, a, label=name)
    ax2.plot(z, layer.backward(np.ones_like(z)), label=name)
ax1.set(xlabel="z", ylabel="f(z)", title="Activation", ylim=(-1.5, 3))
ax2.set(xlabel="z", ylabel="f'(z)", title="Local derivative (what backward multiplies by)", ylim=(-0.05, 1.1))
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"largest sigmoid derivative: {shapes['sigmoid'].backward(np.ones_like(z)).max():.4f} (at z = 0)")

# %% [markdown]
# ## 1. Sigmoid saturation: gradients shrink through the layers
#
# Backpropagating through one sigmoid layer multiplies the gradient by $\sigma'(z) \le 1/4$ and by
# the weights. With Xavier initialization the weights keep the scale, so each layer leaves roughly
# a quarter: after $L$ layers, about $4^{-L}$. We build a 6-hidden-layer network of 128 units,
# push one batch of 256 images forward and backward *at initialization*, and measure the
# root-mean-square gradient of every weight matrix. tanh ($\tanh'(0) = 1$) with Xavier weights and
# ReLU with He weights serve as the comparison.


# %%
def hidden_stack(activation, init, depth, width=128):
    layers = []
    for _ in range(depth):
        layers += [Dense(width, init=init), activation()]
    return layers + [Dense(10)]


def gradients_at_init(activation, init, depth=6, seed=0):
    snn.set_seed(seed)
    model = snn.Sequential(hidden_stack(activation, init, depth))
    model.compile(optimizer="sgd", loss="softmax_cross_entropy")
    out = model.forward(X_train[:256], training=True)
    model.backward(model.loss(out, y_train[:256])[1])
    rms = [float(np.sqrt(np.mean(l.grads["W"] ** 2))) for l in model.layers if isinstance(l, Dense)]
    return model, rms


deep = {"sigmoid, Xavier": (Sigmoid, "xavier_normal"), "tanh, Xavier": (Tanh, "xavier_normal"),
        "ReLU, He": (ReLU, "he_normal")}
grad_rms = {name: gradients_at_init(*cfg)[1] for name, cfg in deep.items()}
for name, rms in grad_rms.items():
    print(f"{name:<16s} RMS of dL/dW, layer 1 -> 7: " + "  ".join(f"{g:.1e}" for g in rms) +
          f"   (layer 1 / layer 6: {rms[0] / rms[5]:.1e})")
shrink = grad_rms["sigmoid, Xavier"]
per_layer = np.exp(np.mean(np.log(np.array(shrink[:5]) / np.array(shrink[1:6]))))
print(f"sigmoid: each hidden layer further from the output gets {per_layer:.2f} times the gradient of the next")

# %% [markdown]
# Saturation is the other way a sigmoid blocks gradients. With weights drawn from
# $\mathcal{N}(0, 1)$ instead of Xavier's scale (variance about $1/\text{fan-in}$), $|z|$ is
# large and many sigmoid outputs sit near 0 or 1, where $\sigma'(z) \approx 0$: for that input,
# the unit passes almost no gradient down and its incoming weights learn almost nothing from it.
# We count an output as saturated when $\sigma'(z)$ is below 1% of its maximum of 1/4.


# %%
def unit_normal(shape, fan_in, fan_out, rng, dtype):   # an initializer: (shape, fans, rng, dtype) -> array
    return rng.standard_normal(shape).astype(dtype)


def sigmoid_outputs(init, which=2):
    """The outputs of the third sigmoid layer (which=2) for 256 images, at initialization."""
    model, _ = gradients_at_init(Sigmoid, init)
    out = X_train[:256]
    sigmoids = [l for l in model.layers if isinstance(l, Sigmoid)]
    for layer in model.layers:
        out = layer.forward(out)
        if layer is sigmoids[which]:
            return out


sig_xavier, sig_big = sigmoid_outputs("xavier_normal"), sigmoid_outputs(unit_normal)
saturated = {name: float(np.mean(s * (1 - s) < 0.01 * 0.25))
             for name, s in (("Xavier", sig_xavier), ("N(0, 1)", sig_big))}

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, rms in grad_rms.items():
    ax1.plot(np.arange(1, len(rms) + 1), rms, "o-", label=name)
ax1.set(yscale="log", xlabel="weight layer (1 = next to the input)", ylabel="RMS of dL/dW",
        title="Gradient size per layer at initialization")
ax1.grid(True, alpha=0.3)
ax1.legend()
ax2.hist(sig_xavier.ravel(), bins=50, range=(0, 1), alpha=0.6, label=f"Xavier: {saturated['Xavier']:.0%} saturated")
ax2.hist(sig_big.ravel(), bins=50, range=(0, 1), alpha=0.6, label=f"N(0, 1): {saturated['N(0, 1)']:.0%} saturated")
ax2.set(xlabel="sigmoid output in hidden layer 3", ylabel="count (256 images x 128 units)",
        title="Saturation: outputs piled at 0 and 1")
ax2.legend()
plt.tight_layout()
plt.show()
print("saturated = sigma'(z) below 1% of its maximum: " +
      ", ".join(f"{name} weights {frac:.1%}" for name, frac in saturated.items()))

# %% [markdown]
# ## 2. Non-zero-centred outputs: all-positive inputs to the next layer
#
# A sigmoid's outputs lie in $(0, 1)$, so the next layer's inputs $x_i$ are all positive. For
# one sample, the gradient of unit $j$'s incoming weights is
#
# $$
# \frac{\partial L}{\partial W_{ij}} = x_i \, \delta_j, \qquad \delta_j = \frac{\partial L}{\partial z_j},
# $$
#
# and with every $x_i > 0$ all entries of that column share the sign of $\delta_j$: per sample,
# the weights into a unit can only all grow or all shrink. Reaching a weight vector that needs some
# weights up and others down takes a zig-zag of such steps. tanh's outputs are centred on zero and
# have no such constraint. We measure it on the second hidden layer of the 6-layer networks above,
# computing each sample's gradient column separately.


# %%
def per_sample_signs(activation, init, n=256):
    snn.set_seed(0)
    model = snn.Sequential(hidden_stack(activation, init, depth=6))
    model.compile(optimizer="sgd", loss="softmax_cross_entropy")
    out = model.forward(X_train[:n], training=True)
    grad = model.loss(out, y_train[:n])[1]
    for layer in reversed(model.layers[3:]):   # back to the output of the second Dense layer
        grad = layer.backward(grad)
    x = model.layers[1].forward(model.layers[0].forward(X_train[:n]))   # layer 2's inputs: layer 1's outputs
    delta = grad * n                           # per-sample dL/dz (the loss averages over the batch)
    # column j of sample s's gradient is x[s] * delta[s, j]: single-signed when all x[s] share a sign
    one_sign = np.all(x > 0, axis=1) | np.all(x < 0, axis=1)
    return x, delta, float(np.mean(x)), float(np.mean(one_sign))


centring = {name: per_sample_signs(*deep[name]) for name in ("sigmoid, Xavier", "tanh, Xavier")}
for name, (x, delta, mean_x, one_sign) in centring.items():
    print(f"{name:<16s} mean input to layer 2: {mean_x:+.3f}; samples whose weight-gradient columns are "
          f"single-signed: {one_sign:.0%}")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, (x, delta, mean_x, one_sign)) in zip(axes, centring.items()):
    g = np.stack([x[:, 0] * delta[:, 0], x[:, 1] * delta[:, 0]], axis=1)
    g /= np.abs(g).max()
    ax.scatter(g[:, 0], g[:, 1], s=10, alpha=0.7)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set(xlabel="dL/dW[0, 0] (scaled)", ylabel="dL/dW[1, 0] (scaled)", aspect="equal",
           title=f"inputs from {name.split(',')[0]}: per-sample gradients", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
plt.tight_layout()
plt.show()

# %% [markdown]
# Each dot is one image's gradient for two weights into the same unit. After a sigmoid layer they
# fall only in the (+, +) and (−, −) quadrants; after tanh, anywhere.
#
# ## 3. Equal budgets: training curves per activation
#
# Now train a 3-hidden-layer network of 128 units with each activation for the same number of
# updates: plain SGD, learning rate 0.05, batches of 64. Sigmoid and tanh get Xavier
# initialization, the ReLU family He initialization. The maxout network has 128 units of 2 pieces
# per layer, so twice the weights and multiply-adds: equal updates, not equal compute. A callback
# records the loss of every batch.


# %%
class BatchLosses(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, loss, hits, size):
        self.losses.append(loss)


ACT = {"sigmoid": Sigmoid, "tanh": Tanh, "ReLU": ReLU, "leaky ReLU": lambda: LeakyReLU(0.01), "ELU": ELU}


def activation_network(name, depth=3, width=128):
    if name == "maxout":
        return snn.Sequential([Maxout(width, pieces=2) for _ in range(depth)] + [Dense(10)])
    return snn.Sequential(hidden_stack(ACT[name], "xavier_normal" if name in ("sigmoid", "tanh") else "he_normal",
                                       depth, width))


def local_derivative(name, z):
    """f'(z) / max f': what the activation layer's backward multiplies the arriving gradient by (as drawn above)."""
    layer = ACT[name]()
    layer.forward(z, training=True)
    return layer.backward(np.ones_like(z)) / (0.25 if name == "sigmoid" else 1.0)


def unit_census(model, name, X):
    """Per hidden layer: (units never positive, units passing < 1% of the max gradient on every input).
    For maxout: (pieces that never win, units passing no gradient: 0 by construction)."""
    rows, out = [], X
    for layer in model.layers[:-1]:
        if isinstance(layer, Maxout):
            pieces = Dense.forward(layer, out).reshape(len(out), layer.maxout_units, layer.pieces)
            wins = np.zeros((layer.maxout_units, layer.pieces), bool)
            for k in range(layer.pieces):
                wins[:, k] = (pieces.argmax(axis=2) == k).any(axis=0)
            rows.append(((~wins).sum(), 0, layer.maxout_units * layer.pieces))
        elif isinstance(layer, Dense):
            z = layer.forward(out).astype(np.float64)
            rows.append((int((z <= 0).all(axis=0).sum()), int((local_derivative(name, z) < 0.01).all(axis=0).sum()),
                         z.shape[1]))
        out = layer.forward(out)
    return rows


ACTIVATIONS = ("sigmoid", "tanh", "ReLU", "leaky ReLU", "ELU", "maxout")
runs = {}
for name in ACTIVATIONS:
    snn.set_seed(0)
    model = activation_network(name)
    model.compile(optimizer=SGD(lr=0.05), loss="softmax_cross_entropy")
    recorder = BatchLosses()
    t0 = time.perf_counter()
    try:
        history = model.fit(X_train, y_train, epochs=EPOCHS, batch_size=64, validation_data=(X_val, y_val),
                            verbose=0, seed=0, callbacks=[recorder])
        val = history.history["val_accuracy"]
    except TrainingDivergedError:
        val = None
    runs[name] = {"losses": recorder.losses, "val": val, "seconds": time.perf_counter() - t0,
                  "params": model.count_params(), "census": unit_census(model, name, X_train) if val else None}
    r = runs[name]
    print(f"{name:<11s} {r['params']:>7,} weights, {r['seconds']:5.1f} s: " +
          (f"validation accuracy {val[0]:.3f} after epoch 1, {val[-1]:.3f} after {EPOCHS}" if val else "diverged"))

# %% [markdown]
# The left panel shows every batch's loss (smoothed), the right one the validation error after each
# epoch on a log scale. The sigmoid network is the one that section 1 predicts to struggle: its
# lowest layers receive gradients thousands of times smaller than its top layer.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
window = 20
for i, name in enumerate(ACTIVATIONS):
    losses = np.asarray(runs[name]["losses"])
    if len(losses) >= window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax1.plot(np.arange(window, len(losses) + 1), smooth, color=f"C{i}", label=name)
    if runs[name]["val"]:
        ax2.plot(np.arange(1, EPOCHS + 1), 1 - np.asarray(runs[name]["val"]), "o-", ms=4, color=f"C{i}", label=name)
ax1.set(xlabel="update", ylabel=f"training loss (mean of {window} batches)", yscale="log",
        title="Training loss, equal number of updates")
ax2.set(xlabel="epoch", ylabel="validation error (1 - accuracy)", yscale="log", title="Validation error")
ax2.xaxis.get_major_locator().set_params(integer=True)
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

print("After training, hidden units per layer (of 128) that pass less than 1% of their largest gradient on every "
      "training image (dead or saturated), and, for the ReLU family, units never positive:")
for name in ACTIVATIONS:
    census = runs[name]["census"]
    if census is None:
        print(f"  {name:<11s} diverged")
    elif name == "maxout":
        print(f"  {name:<11s} no gradient: 0, 0, 0 (the winning piece always passes it); pieces that never win: " +
              ", ".join(f"{a}/{n}" for a, _, n in census))
    else:
        line = f"  {name:<11s} no gradient: " + ", ".join(str(b) for _, b, _ in census)
        if name in ("ReLU", "leaky ReLU", "ELU"):
            line += "; never positive: " + ", ".join(str(a) for a, _, _ in census)
        print(line)

# %% [markdown]
# ## 4. Dead ReLUs after a too-large learning rate
#
# A ReLU unit whose $z$ is negative on *every* input outputs 0 and has $f'(z) = 0$ everywhere,
# so its incoming weights and bias receive exactly zero gradient: no later update can bring it
# back. (In a deeper layer, changes below can still move its inputs; a first-layer unit sees the
# fixed pixels, so for it death is final.) One step with a huge learning rate is enough: with
# all-positive pixel inputs, a large step can push all of a unit's weights down at once (section 2).
#
# We train a one-hidden-layer network (784-256-10, He initialization) for 50 updates at learning
# rate 2.0, forty times the rate above, and count the hidden units that fire on no training image.

# %%
snn.set_seed(0)
BURST_LR, BURST_STEPS, CALM_LR, CALM_EPOCHS = 2.0, 50, 0.05, (2 if QUICK else 4)
burnt = snn.Sequential(hidden_stack(ReLU, "he_normal", depth=1, width=256))
burnt.compile(optimizer=SGD(lr=BURST_LR), loss="softmax_cross_entropy")
fresh_dead = unit_census(snn.Sequential(hidden_stack(ReLU, "he_normal", depth=1, width=256)), "ReLU", X_train)[0][0]
n_burst = min(BURST_STEPS * 64, len(X_train))
with np.errstate(over="ignore", invalid="ignore"):
    burnt.fit(X_train[:n_burst], y_train[:n_burst], epochs=1, batch_size=64, verbose=0, seed=0)
dead_before = burnt.layers[0].forward(X_train).max(axis=0) <= 0
burnt_acc = burnt.evaluate(X_val, y_val)["accuracy"]
print(f"dead units at initialization: {fresh_dead}/256; after {n_burst // 64} updates at lr {BURST_LR}: "
      f"{dead_before.sum()}/256 ({dead_before.mean():.0%}); validation accuracy {burnt_acc:.3f}")

# %% [markdown]
# ## 5. Leaky ReLU and ELU as fixes
#
# Leaky ReLU keeps a slope $\alpha$ for $z < 0$ and ELU a slope $\alpha e^{z}$, so a unit that
# never fires still receives a gradient and can be pulled back. To compare fairly we start every
# variant from *the same damaged weights*: copy them into networks whose activation is ReLU
# (the control), leaky ReLU ($\alpha = 0.01$ and $0.1$) or ELU, and continue training each
# at the normal learning rate 0.05 on the same batches. Then we check, for the units that were
# dead after the burst, whether their weights moved and whether they fire again.
#
# Expect the weights to move but the revival to be slow: on the negative side the gradient is
# $\alpha$ times (leaky) or $e^{z}$ times (ELU, tiny for very negative $z$: ELU saturates
# there like a sigmoid) what it would be on the positive side. These activations stop a unit from
# being frozen for good; they do not quickly undo the burst. The cure for the cause is a learning
# rate that does not kill the units in the first place.

# %%
FIXES = {"ReLU": ReLU, "leaky ReLU 0.01": lambda: LeakyReLU(0.01), "leaky ReLU 0.1": lambda: LeakyReLU(0.1),
         "ELU": ELU}
revival = {}
for name, act in FIXES.items():
    model = snn.Sequential(hidden_stack(act, "he_normal", depth=1, width=256))
    model.build((784,))
    for new, old in zip(model.layers, burnt.layers):
        for key in new.params:
            new.params[key][...] = old.params[key]
    W0 = model.layers[0].params["W"][:, dead_before].copy()
    model.compile(optimizer=SGD(lr=CALM_LR), loss="softmax_cross_entropy")
    try:
        history = model.fit(X_train, y_train, epochs=CALM_EPOCHS, batch_size=64, validation_data=(X_val, y_val),
                            verbose=0, seed=1)
        fires = model.layers[0].forward(X_train).max(axis=0) > 0
        moved = float(np.abs(model.layers[0].params["W"][:, dead_before] - W0).max()) if dead_before.any() else 0.0
        revival[name] = {"revived": int((fires & dead_before).sum()), "still": int((~fires & dead_before).sum()),
                         "moved": moved, "val": history.history["val_accuracy"]}
    except TrainingDivergedError:
        revival[name] = None
    r = revival[name]
    print(f"{name:<16s} " + ("diverged" if r is None else
          f"of the {dead_before.sum()} dead units {r['revived']} fire again, {r['still']} do not; largest change of "
          f"their incoming weights {r['moved']:.1e}; validation accuracy {r['val'][-1]:.3f}"))

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
names = [n for n in FIXES if revival[n] is not None]
n_dead = max(int(dead_before.sum()), 1)
ax1.bar(names, [100 * revival[n]["revived"] / n_dead for n in names], color=[f"C{i}" for i in range(len(names))])
ax1.set(ylabel="% of the dead units firing again", title=f"Revived after {CALM_EPOCHS} epochs at lr {CALM_LR}")
ax1.tick_params(axis="x", labelsize=8)
for i, n in enumerate(names):
    ax2.plot(np.arange(1, CALM_EPOCHS + 1), revival[n]["val"], "o-", color=f"C{i}", label=n)
ax2.axhline(burnt_acc, color="0.5", ls="--", lw=0.8, label="right after the burst")
ax2.set(xlabel="epoch after the burst", ylabel="validation accuracy", title="Recovery from the same damaged weights")
ax2.xaxis.get_major_locator().set_params(integer=True)
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What this showed

# %%
sig_rms = grad_rms["sigmoid, Xavier"]
relu_rms = grad_rms["ReLU, He"]
print(f"- At initialization, a 6-layer sigmoid network's first weight layer got {sig_rms[0] / sig_rms[5]:.1e} times the "
      f"gradient of its sixth (about {per_layer:.2f} per layer, near the 1/4 bound of sigma'); the ReLU network "
      f"kept {relu_rms[0] / relu_rms[5]:.2f} of it. With N(0, 1) weights {saturated['N(0, 1)']:.0%} of the sigmoid "
      f"outputs were saturated (Xavier: {saturated['Xavier']:.0%}).")
s_one, t_one = centring["sigmoid, Xavier"][3], centring["tanh, Xavier"][3]
print(f"- After a sigmoid layer (mean output {centring['sigmoid, Xavier'][2]:.2f}) {s_one:.0%} of the samples' "
      f"weight-gradient columns had a single sign; after tanh (mean {centring['tanh, Xavier'][2]:+.2f}) {t_one:.0%}.")
final = {n: r["val"][-1] for n, r in runs.items() if r["val"]}
ranked = sorted(final, key=final.get, reverse=True)
print(f"- With {EPOCHS} epochs of SGD at lr 0.05 each, validation accuracy ranked " +
      ", ".join(f"{n} {final[n]:.3f}" for n in ranked) + "." +
      (f" Sigmoid trailed tanh by {100 * (final['tanh'] - final['sigmoid']):.1f} percentage points." if final.get("tanh", 0) > final.get("sigmoid", 1)
       else " Sigmoid did not trail tanh in this run."))
if "maxout" in final:
    print(f"- Maxout {'led' if ranked[0] == 'maxout' else 'did not lead'}, with twice the weights of the others "
          f"({runs['maxout']['params']:,} against {runs['ReLU']['params']:,}) and {runs['maxout']['seconds']:.1f} s "
          f"of training against ReLU's {runs['ReLU']['seconds']:.1f} s; by construction none of its units passes "
          f"zero gradient.")
print(f"- {n_burst // 64} updates at lr {BURST_LR} left {dead_before.sum()} of 256 first-layer ReLU units dead "
      f"(none at initialization: {fresh_dead}).")
relu_r = revival["ReLU"]
if relu_r is not None and dead_before.any():
    print(f"- Continuing with ReLU, their weights changed by {relu_r['moved']:.1e} and {relu_r['revived']} came back: "
          + ("dead ReLUs stay dead." if relu_r["revived"] == 0 and relu_r["moved"] == 0 else
             "some came back or moved in this run."))
for name in ("leaky ReLU 0.01", "leaky ReLU 0.1", "ELU"):
    r = revival[name]
    if r is None:
        print(f"- Starting from the same weights, {name} diverged.")
    elif dead_before.any():
        relu_acc = relu_r["val"][-1] if relu_r else float("nan")
        moved = "kept learning" if r["moved"] > 0 else "did not move"
        print(f"- With {name} from the same weights, the dead units' weights {moved} (by up to {r['moved']:.1e}) and "
              f"{r['revived']} of {dead_before.sum()} ({r['revived'] / dead_before.sum():.0%}) fired again within "
              f"{CALM_EPOCHS} epochs; validation accuracy {r['val'][-1]:.3f}, "
              f"{'above' if r['val'][-1] > relu_acc else 'not above'} ReLU's {relu_acc:.3f}.")
