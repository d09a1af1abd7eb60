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
# # 12. Your own layer and optimizer
#
# Everything in scratchnn that trains a network (the training loop, the fast engine, optimizers,
# regularizers, gradient checks, saving and loading) talks to a layer through one small contract:
#
# - `build(input_shape, dtype)` creates the parameters, as arrays in `layer.params`, and a
#   gradient array of the same shape under the same key in `layer.grads`. It runs on the first
#   forward pass, with the shape of one sample (no batch axis);
# - `y = forward(x, training)` computes the output and, when `training=True`, keeps on `self`
#   exactly what the backward pass will need;
# - `dx = backward(dy)` receives $\partial L / \partial y$, fills `grads[k]` with
#   $\partial L / \partial\,$`params[k]` and returns $\partial L / \partial x$, as a new array:
#   it never writes into `dy`;
# - `get_config()` returns the constructor's arguments, so that a saved model can be rebuilt.
#
# An optimizer only sees `{name: parameter}` and `{name: gradient}` dicts. We write one of each
# that the library does not have, check the layer's gradients, train, save and load a model that
# uses them, and check that both ways `fit` can run a step compute the same thing with them.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist, scale
from scratchnn.errors import InvalidArgumentError
from scratchnn.functional import sigmoid
from scratchnn.gradcheck import check_layer
from scratchnn.layers import Dense, Flatten, Layer, register
from scratchnn.optimizers import Adam, Optimizer
from scratchnn.saving import read_npz

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

N_TRAIN, EPOCHS = (3000, 2) if QUICK else (12000, 5)
N_ENGINE, ENGINE_EPOCHS = (1000, 2) if QUICK else (3000, 5)   # the engine comparison (float64)
N_VAL = 2000

# %% [markdown]
# ## The layer: Swish with a learnable $\beta$
#
# Swish (Ramachandran et al. 2017) is $y = x\,\sigma(\beta x)$ with $\sigma(t) = 1/(1+e^{-t})$.
# With $\beta = 1$ it is the SiLU; as $\beta \to 0$ it tends to the line $x/2$ and as
# $\beta \to \infty$ to the ReLU. We let the network learn $\beta$: one value per feature (per
# channel for images), so each unit picks its own shape. With $s = \sigma(\beta x)$ and
# $\sigma' = \sigma(1-\sigma)$, the chain rule gives, element by element,
#
# $$
# \frac{\partial y}{\partial x} = s + \beta x\, s(1 - s), \qquad
# \frac{\partial y}{\partial \beta} = x^2 s(1 - s).
# $$
#
# The backward pass multiplies each by the arriving gradient $\partial L/\partial y$; for
# $\beta$, which every sample (and every pixel of a channel) shares, it then *sums* over those
# axes: a parameter used many times collects the gradient of every use. The forward pass keeps
# $x$ and $s$ for that. Two more details: `weight_keys` stays empty, so an L2 penalty set in
# `compile(regularizer=...)` leaves $\beta$ alone (as it does biases), and `@register` records
# the class under its name, which is what a saved model file refers to. (A name can be taken only
# once: running this cell again in a notebook defines a *new* class, which `register` refuses
# unless told `@register(replace=True)`.)

# %%
@register
class Swish(Layer):
    """y = x * sigmoid(beta * x), with one learnable beta per feature (per channel for images).

    Args:
        beta_init: the starting value of every beta (1.0: the SiLU).
    """

    def __init__(self, beta_init=1.0, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.beta_init = float(beta_init)

    def param_shapes(self, input_shape):
        # (features,) for (N, features) inputs; (channels, 1, 1) for (N, channels, height, width)
        return {"beta": (input_shape[0],) + (1,) * (len(input_shape) - 1)}

    def build(self, input_shape, dtype):
        shape = self.param_shapes(input_shape)["beta"]
        self.params = {"beta": np.full(shape, self.beta_init, dtype=dtype)}
        self.grads = {"beta": np.zeros(shape, dtype=dtype)}
        super().build(input_shape, dtype)

    def get_config(self):
        return {"beta_init": self.beta_init, **super().get_config()}

    def forward(self, x, training=False):
        self.ensure_built(x)
        s = sigmoid(self.params["beta"] * x)
        self._cache = (x, s) if training else None
        return x * s

    def backward(self, dy):
        x, s = self._require_cache()
        beta = self.params["beta"]
        ds = s * (1 - s)                                  # sigma'(beta x)
        shared = (0,) + tuple(range(2, x.ndim))           # the axes beta is shared over
        self.grads["beta"][...] = (dy * x * x * ds).sum(axis=shared).reshape(beta.shape)
        return dy * (s + beta * x * ds)                   # a new array: dy is left untouched


t = np.linspace(-5, 5, 201)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for b in (0.1, 0.5, 1.0, 2.0, 10.0):
    layer = Swish(beta_init=b)
    ax.plot(t, layer.forward(t[:, None])[:, 0], label=f"beta = {b}")
ax.set(xlabel="x", ylabel="Swish(x)", title="x * sigmoid(beta x): from x/2 to the ReLU")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Gradient check in float64
#
# `check_layer` converts the layer to float64, perturbs every input element and every $\beta$
# by $\pm 10^{-6}$, and compares the central differences of $\sum y \odot g$ (for a random
# $g$) with what `backward` returned. We check a batch of feature vectors and a batch of
# images, with $\beta$s drawn at random so that a mix-up between units would show. A gradient
# check that cannot fail proves nothing, so the *negative control* is a Swish whose backward
# forgets that $s$ depends on $x$ (it returns $s$ alone as $\partial y/\partial x$):
# it must fail.

# %%
rng = np.random.default_rng(0)


def checked(layer, shape):
    x = rng.normal(size=shape)                                 # float64 inputs
    layer.ensure_built(x)                                      # built in float64
    layer.params["beta"][...] = rng.uniform(0.3, 3.0, layer.params["beta"].shape)
    return check_layer(layer, x)


class SwishForgetsTheChainRule(Swish):
    def backward(self, dy):
        x, s = self._require_cache()
        ds = s * (1 - s)
        self.grads["beta"][...] = (dy * x * x * ds).sum(axis=(0,) + tuple(range(2, x.ndim))).reshape(
            self.params["beta"].shape)
        return dy * s                                          # wrong: drops beta x s (1 - s)


checks = {"Swish on (8, 6) features": checked(Swish(), (8, 6)),
          "Swish on (3, 4, 5, 5) images": checked(Swish(), (3, 4, 5, 5)),
          "wrong backward (negative control)": checked(SwishForgetsTheChainRule(), (8, 6))}
for what, result in checks.items():
    print(f"{what}: {result.report}")

# %% [markdown]
# ## Use it in a model, train, save, load
#
# The layer goes into a `Sequential` like any other. We train an MLP 784-128-64-10 with Swish
# after each hidden layer on MNIST and look at the $\beta$s it learned.

# %%
(X_all, y_all), _ = load_mnist()
X_all = scale(X_all)
order = np.random.default_rng(0).permutation(len(X_all))
X, y = X_all[order[:N_TRAIN]], y_all[order[:N_TRAIN]]
X_val, y_val = X_all[order[-N_VAL:]], y_all[order[-N_VAL:]]


def swish_mlp(dtype=None):
    return snn.Sequential([Flatten(), Dense(128, init="he_normal"), Swish(), Dense(64, init="he_normal"), Swish(),
                           Dense(10)], dtype=dtype)


snn.set_seed(0)
model = swish_mlp()
model.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
history = model.fit(X, y, epochs=EPOCHS, batch_size=64, validation_data=(X_val, y_val), verbose=0, seed=0)
val_acc = history.history["val_accuracy"][-1]
betas = {layer.name: layer.params["beta"].ravel() for layer in model.layers if isinstance(layer, Swish)}
print(f"{N_TRAIN} training images, {EPOCHS} epochs: validation accuracy {val_acc:.4f}")
for name, b in betas.items():
    print(f"{name}: {b.size} betas, started at 1.0, now {b.min():.2f} to {b.max():.2f} (mean {b.mean():.2f})")

fig, ax = plt.subplots(figsize=(5.5, 3.3))
ax.hist(list(betas.values()), bins=30, label=list(betas.keys()))
ax.axvline(1.0, color="k", ls="--", lw=1, label="initial value")
ax.set(xlabel="learned beta", ylabel="units", title="The betas each Swish unit learned")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# `model.save` writes the architecture as JSON (each layer by its registered class name and its
# `get_config()`) and every `params` array into one `.npz` file; `snn.load` looks the name up
# among the registered classes, calls `Swish(**config)`, builds the model and fills in the
# arrays. The loaded model must predict exactly what the trained one does. A subclass that was
# never registered is refused at save time with a message that says what to do, instead of
# producing a file that nothing could load.

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "swish_mlp.npz")
    model.save(path)
    loaded = snn.load(path)
    arch, arrays = read_npz(path)
    print("the saved Swish layer:", arch["layers"][2])
    print("its arrays:", {k: v.shape for k, v in arrays.items() if "swish" in k})

    class Unregistered(Swish):
        pass

    try:
        never = snn.Sequential([Dense(10), Unregistered()])
        never.build((784,))
        never.save(os.path.join(tmp, "never.npz"))
        save_refused = "no error"
    except InvalidArgumentError as e:
        save_refused = str(e)
same_predictions = np.array_equal(model.predict_logits(X_val), loaded.predict_logits(X_val))
print(f"loaded model predicts exactly as the trained one: {same_predictions}")
print(f"saving a model with an unregistered layer: {save_refused}")

# %% [markdown]
# ## The optimizer: Lion
#
# An optimizer subclasses `Optimizer` and overrides `update(key, p, g)`: update one parameter
# array `p` *in place* from its gradient `g`. `key` names the parameter (`"dense_1.W"`) and
# `self._slot(key, name, p)` returns a state array for it, created as zeros of `p`'s shape and
# dtype the first time it is asked for, kept in `self.state` (so `state_dict()` saves it in a
# checkpoint with nothing more to write). `self.iterations` counts the steps; the base class
# turns a `Schedule` given as `lr` into `self.lr` at every epoch. One more rule: the gradient
# arrays are the optimizer's scratch space (the next backward pass refills them), so `update` may
# overwrite `g`, as the library's optimizers do to avoid temporaries.
#
# Lion (Chen et al. 2023, found by a program search) keeps one momentum $m$ and steps by the
# *sign* of an interpolation between it and the gradient, so every weight moves by exactly
# $\eta$ (plus decoupled weight decay $\lambda$):
#
# $$
# c = \beta_1 m + (1-\beta_1) g, \qquad
# p \leftarrow p - \eta\,\big(\operatorname{sign}(c) + \lambda p\big), \qquad
# m \leftarrow \beta_2 m + (1-\beta_2) g .
# $$
#
# Since every step has the same size per weight, its learning rate is usually 3-10x smaller than
# Adam's.

# %%
class Lion(Optimizer):
    """Lion: p -= lr * (sign(b1 m + (1 - b1) g) + weight_decay * p); m = b2 m + (1 - b2) g."""

    def __init__(self, lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
        super().__init__(lr)
        for name, v in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= v < 1.0:
                raise InvalidArgumentError(f"Lion: {name} must be in [0, 1), received {v!r}")
        self.beta1, self.beta2, self.weight_decay = float(beta1), float(beta2), float(weight_decay)

    def update(self, key, p, g):
        t = p.dtype.type                              # keep float32 parameters float32
        m = self._slot(key, "m", p)
        c = t(self.beta1) * m + t(1 - self.beta1) * g
        m *= t(self.beta2)                            # the momentum for the next step
        m += t(1 - self.beta2) * g
        if self.weight_decay:
            p *= t(1 - self.lr * self.weight_decay)
        np.sign(c, out=c)
        c *= t(self.lr)
        p -= c


# %% [markdown]
# ## One step, two ways: the reference step and the engine
#
# `fit(..., engine="reference")` runs each update as `Sequential.train_step` reads: every
# layer's `forward`, the loss, every `backward`, `optimizer.step(params, grads)`. The default
# engine runs the same update faster (its own kernels for `Dense` and the loss, no input
# gradient for the lowest layer that trains, reused batch buffers), and calls our optimizer's
# `step` and our layer's plain `forward`/`backward` like any other. Trained from the same initial
# weights on the same batches, in float64, the two must end with the same weights up to
# rounding. Adam, on the same model, is there for reference.

# %%
Xe, ye = X[:N_ENGINE], y[:N_ENGINE]
runs = {}
for label, opt, engine in (("Lion, reference step", lambda: Lion(3e-4), "reference"),
                           ("Lion, default engine", lambda: Lion(3e-4), "fast"),
                           ("Adam, default engine", lambda: Adam(1e-3), "fast")):
    snn.set_seed(1)
    m = swish_mlp(dtype="float64")
    m.compile(optimizer=opt(), loss="softmax_cross_entropy")
    h = m.fit(Xe, ye, epochs=ENGINE_EPOCHS, batch_size=32, verbose=0, seed=1, engine=engine)
    runs[label] = (m, h.history["loss"], m.evaluate(X_val, y_val)["accuracy"])

ref, fast = runs["Lion, reference step"][0], runs["Lion, default engine"][0]
param_diff = max(np.abs(ref.parameters()[k] - fast.parameters()[k]).max() for k in ref.parameters())
param_size = max(np.abs(p).max() for p in ref.parameters().values())
for label, (_, losses, acc) in runs.items():
    print(f"{label}: training loss per epoch {', '.join(f'{v:.4f}' for v in losses)}; validation accuracy {acc:.4f}")
print(f"largest difference between the two Lion runs' parameters: {param_diff:.1e} "
      f"(largest parameter magnitude {param_size:.2f})")
print(f"the optimizer state went along: {len(ref.optimizer.state)} parameters with a momentum slot; "
      f"state_dict has {len(ref.optimizer.state_dict())} entries")

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for (label, (_, losses, _)), style in zip(runs.items(), ("-o", "--x", "-s")):
    ax.plot(range(1, len(losses) + 1), losses, style, label=label)
ax.set(xlabel="epoch", ylabel="mean training loss", title="Lion on both engines (float64), and Adam")
ax.set_xticks(range(1, ENGINE_EPOCHS + 1))
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# In float64 the two paths gave the same numbers. In float32, the training default, they add up
# the same products in different orders, so their gradients differ in the last bits. For Adam that
# stays a rounding-level difference in the weights. Lion's sign turns it into a whole step
# wherever $c$ is near zero: a rounding difference on either side of zero becomes a difference
# of $2\eta$, after which the two runs see slightly different weights and drift further apart.
# Neither run is wrong; this is why an equality test of two training paths is best made in
# float64 (the engine's tests also compare float32 runs, with a tolerance, on the library's
# optimizers). Counting how many weights differ, and by how many steps $\eta$:

# %%
f32 = {}
for name, opt in (("Lion", lambda: Lion(3e-4)), ("Adam", lambda: Adam(1e-3))):
    pair = {}
    for engine in ("reference", "fast"):
        snn.set_seed(1)
        m = swish_mlp()                                   # float32
        m.compile(optimizer=opt(), loss="softmax_cross_entropy")
        m.fit(Xe, ye, epochs=ENGINE_EPOCHS, batch_size=32, verbose=0, seed=1, engine=engine)
        pair[engine] = m.parameters()
    diffs = [np.abs(pair["reference"][k] - pair["fast"][k]) for k in pair["reference"]]
    f32[name] = (max(d.max() for d in diffs), sum((d > 0).sum() for d in diffs) / sum(d.size for d in diffs))
for name, (largest, frac) in f32.items():
    print(f"float32, {name}: {frac:.3%} of the parameters differ between the two paths, by at most {largest:.1e}"
          + (f" ({largest / 3e-4:.1f} Lion steps)" if name == "Lion" else ""))


# %% [markdown]
# ## A kernel of your own for the engine
#
# The engine looks up a *kernel* for each layer by its exact class and falls back to the layer's
# own `forward`/`backward` when there is none, which is why Swish needed nothing so far.
# `scratchnn.engine.register_kernel(cls, forward=..., backward=..., direct_keys=..., sample_wise=...)`
# plugs one in:
#
# - `forward(layer, x, training) -> y` must compute what `layer.forward` computes;
# - `backward(layer, dy, need_dx, step) -> dx or None`: `need_dx` is False for the lowest layer
#   that trains, whose input gradient nobody needs; `step` is only set for the parameters named in
#   `direct_keys` under plain SGD, when the kernel may add the update into the weights itself (the
#   `Dense` kernel does it in one BLAS call). A backward kernel must fill `layer.grads[k]` *in
#   place*: the engine holds on to those arrays for the whole epoch;
# - `sample_wise=True` declares that the layer treats each sample independently (no batch
#   statistics), so the engine may split a convolutional network's batches across threads when
#   it contains this layer. A model with a layer not known to be sample-wise is never split.
#
# A useful and simple kernel for Swish is a backward that skips $\partial L/\partial x$ when
# nobody needs it. That happens when Swish is the lowest layer that trains, as when a pretrained
# layer below it is frozen (tutorial 11). The kernel counts its calls so that we can see the
# engine use it; the reference step, which never uses kernels, is the yardstick again.

# %%
from scratchnn.engine import register_kernel  # noqa: E402

kernel_calls = {"need_dx": 0, "no_dx": 0}


def swish_backward(layer, dy, need_dx, step):
    x, s = layer._require_cache()
    beta = layer.params["beta"]
    ds = s * (1 - s)
    layer.grads["beta"][...] = (dy * x * x * ds).sum(axis=(0,) + tuple(range(2, x.ndim))).reshape(beta.shape)
    kernel_calls["need_dx" if need_dx else "no_dx"] += 1
    return dy * (s + beta * x * ds) if need_dx else None


register_kernel(Swish, backward=swish_backward, sample_wise=True)

frozen_runs = {}
for engine in ("reference", "fast"):
    snn.set_seed(2)
    m = snn.Sequential([Flatten(), Dense(64, init="he_normal", trainable=False), Swish(), Dense(10)],
                       dtype="float64")
    m.compile(optimizer=Lion(3e-4), loss="softmax_cross_entropy")
    m.fit(Xe, ye, epochs=1, batch_size=32, verbose=0, seed=2, engine=engine)
    frozen_runs[engine] = m
kernel_diff = max(np.abs(frozen_runs["reference"].parameters()[k] - frozen_runs["fast"].parameters()[k]).max()
                  for k in frozen_runs["reference"].parameters())
steps = -(-len(Xe) // 32)
print(f"frozen Dense -> Swish -> Dense, one epoch of {steps} steps: the engine called the Swish kernel "
      f"{kernel_calls['no_dx']} times without an input gradient and {kernel_calls['need_dx']} times with one")
print(f"largest difference from the reference step's parameters: {kernel_diff:.1e}")

# %% [markdown]
# The same kernel now also runs in every later `fit` of a model with Swish (registration is
# global, per class). Whether a kernel is worth having is for a benchmark to say; that it
# computes what the plain layer computes is for a test like the one above, in float64, to prove.

# %% [markdown]
# ## What this showed

# %%
good = [r for w, r in checks.items() if "negative" not in w]
control = checks["wrong backward (negative control)"]
print(f"- The Swish layer's backward agrees with central differences in float64 (largest relative error "
      f"{max(r.max_rel_error for r in good):.1e}, tolerance {good[0].rtol:.0e}) on feature vectors and on images; "
      + ("the deliberately wrong backward fails the same check "
         f"(relative error {control.max_rel_error:.1e}), so the check can tell." if not control.passed
         else "but the deliberately wrong backward PASSED it, so this check could not tell."))
all_b = np.concatenate(list(betas.values()))
print(f"- Registered and used in an MLP, Swish trained to {val_acc:.4f} validation accuracy in {EPOCHS} epochs; "
      f"its betas moved from 1.0 to between {all_b.min():.2f} and {all_b.max():.2f}"
      + (": each unit tuned its own shape." if all_b.max() - all_b.min() > 0.1
         else ": they barely moved from the SiLU."))
print(f"- The model saved and loaded by name " + ("predicts exactly what the trained one predicts"
                                                 if same_predictions else "does NOT predict what the trained one does")
      + "; a model with an unregistered layer was " + ("refused at save time." if save_refused != "no error"
                                                        else "NOT refused at save time."))
lion_acc, adam_acc = runs["Lion, default engine"][2], runs["Adam, default engine"][2]
agree = param_diff < 1e-8
print(f"- Lion, written as one update(key, p, g) method with a state slot, trained the model on both engines: "
      f"their parameters differ by at most {param_diff:.1e} in float64 "
      + ("(the same computation, up to rounding)" if agree else "(MORE than rounding)")
      + f"; it reached {lion_acc:.4f} validation accuracy against Adam's {adam_acc:.4f} after {ENGINE_EPOCHS} epochs "
      f"on {N_ENGINE} images.")
lion32, adam32 = f32["Lion"][0], f32["Adam"][0]
print(f"- In float32 the two paths round differently: with Adam the weights differ by at most {adam32:.1e}; with "
      f"Lion {f32['Lion'][1]:.2%} of them differ, by up to {lion32:.1e} ({lion32 / 3e-4:.0f} steps)"
      + (", since its sign turns a rounding difference near zero into a whole step and the runs then drift apart."
         if lion32 > 10 * adam32 else "; here the sign did not amplify the rounding."))
print(f"- A backward kernel registered with register_kernel ran {kernel_calls['no_dx']} times without computing an "
      f"input gradient, and the engine's result stayed within {kernel_diff:.1e} of the reference step's.")
