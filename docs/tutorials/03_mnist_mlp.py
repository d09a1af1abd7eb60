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
# # 3. MNIST from layers to 98%
#
# This tutorial takes the classic 784-100-200-10 ReLU network apart and puts it back together on
# MNIST's handwritten digits. We push one batch forward through the layers and print every shape,
# send the gradient backward through the same layers, check those gradients against numerical
# derivatives, and then train the network with the recipe of scratchnn's `mlp` preset until it
# classifies about 98% of the test digits correctly.
#
# The network computes, for a flattened image $x \in \mathbb{R}^{784}$,
#
# $$
# h_1 = \max(0, x W_1 + b_1) \in \mathbb{R}^{100}, \quad
# h_2 = \max(0, h_1 W_2 + b_2) \in \mathbb{R}^{200}, \quad
# s = h_2 W_3 + b_3 \in \mathbb{R}^{10},
# $$
#
# and is trained on the softmax cross-entropy of the scores $s$ plus an L2 penalty
# $\lambda \sum_\ell \lVert W_\ell \rVert^2$.

# %%
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.callbacks import ModelCheckpoint
from scratchnn.datasets import load_mnist, scale, train_val_split
from scratchnn.gradcheck import check_model, relative_error
from scratchnn.layers import Dense, Flatten, RandomShift, ReLU
from scratchnn.optimizers import SGD
from scratchnn.regularizers import L2
from scratchnn.schedules import StepDecay

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

N_TRAIN = 5000 if QUICK else None      # None: all 60,000 training images
N_VAL = 500 if QUICK else 5000         # held out of the training images, MNIST's classic split
EPOCHS = 2 if QUICK else 30            # the mlp preset trains 30 epochs
snn.set_seed(0)

# %% [markdown]
# ## The data
#
# `load_mnist` returns uint8 images of shape `(N, 28, 28)`. We scale the pixels to $[0, 1]$,
# add a channel axis (the images layers expect `(N, channels, height, width)`) and hold out
# validation images from the training set. The test set is touched only once, at the very end.

# %%
(X_all, y_all), (X_test, y_test) = load_mnist()
if N_TRAIN:
    X_all, y_all = X_all[:N_TRAIN], y_all[:N_TRAIN]
X_all = scale(X_all)[:, None]          # (N, 1, 28, 28) float32 in [0, 1]
X_test = scale(X_test)[:, None]
(X_train, y_train), (X_val, y_val) = train_val_split(X_all, y_all, val_size=N_VAL, seed=0)
print(f"train {X_train.shape}, validation {X_val.shape}, test {X_test.shape}; pixels in "
      f"[{X_train.min():.0f}, {X_train.max():.0f}]")

fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for ax, img, label in zip(axes, X_train[:10], y_train[:10]):
    ax.imshow(img[0], cmap="gray_r")
    ax.set_title(str(label))
    ax.axis("off")
fig.suptitle("The first ten training images and their labels", y=1.08)
plt.show()

# %% [markdown]
# ## The network as a list of layers
#
# Exactly the layers of the `mlp` preset (`scratchnn.presets.mlp`): a `RandomShift(1)` that moves
# every *training* image by up to one pixel in each direction (identity at test time, so it is
# augmentation written as a layer), a `Flatten`, and three `Dense` layers with ReLUs between them.
# The hidden layers use He initialization, $W \sim \mathcal{N}(0, 2/\text{fan-in})$, which keeps
# the scale of the activations steady through ReLUs.


# %%
def mlp_layers():
    return [RandomShift(1), Flatten(), Dense(100, init="he_normal"), ReLU(),
            Dense(200, init="he_normal"), ReLU(), Dense(10)]


def compiled_mlp():
    model = snn.Sequential(mlp_layers(), name="mlp")
    model.compile(optimizer=SGD(lr=StepDecay(0.1, drop=0.5, every=10)), loss="softmax_cross_entropy",
                  regularizer=L2(3e-5))
    model.build((1, 28, 28))
    return model


model = compiled_mlp()
model.summary()

# %% [markdown]
# ## One forward pass, layer by layer
#
# `Sequential.forward` is nothing but a loop over the layers. We write the loop out for a batch of
# 32 images and print what each layer hands to the next. At initialization the scores carry no
# information yet, so the softmax is close to uniform and the loss is close to
# $-\log(1/10) = \ln 10 \approx 2.303$: a useful sanity check for any new classifier.

# %%
xb, yb = X_train[:32], y_train[:32]
out = xb
print(f"{'input':<28s} {str(out.shape):<18s}")
for layer in model.layers:
    out = layer.forward(out, training=True)
    note = f"fraction > 0: {np.mean(out > 0):.2f}" if isinstance(layer, ReLU) else f"std {out.std():.3f}"
    print(f"{layer.name + ' (' + type(layer).__name__ + ')':<28s} {str(out.shape):<18s} {note}")
loss, dscores = model.loss(out, yb)
print(f"mean cross-entropy of the batch: {loss:.4f} (ln 10 = {np.log(10):.4f}); "
      f"L2 penalty: {model.penalty():.5f}")

# %% [markdown]
# ## One backward pass
#
# The loss hands back $\partial L / \partial s = (\mathrm{softmax}(s) - \mathrm{onehot}(y)) / N$,
# one row per image. Each layer's `backward` takes the gradient with respect to its output,
# stores the gradients of its own parameters in `layer.grads`, and returns the gradient with respect
# to its input for the layer before it. For a `Dense` layer,
#
# $$
# \frac{\partial L}{\partial W} = x^\top \frac{\partial L}{\partial y}, \qquad
# \frac{\partial L}{\partial b} = \sum_{\text{rows}} \frac{\partial L}{\partial y}, \qquad
# \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\, W^\top ,
# $$
#
# and a ReLU lets the gradient through only where its unit was active. Every parameter gradient
# must have its parameter's shape; the gradient that comes out at the bottom has the images' shape.

# %%
print(f"{'dL/d(scores)':<28s} {str(dscores.shape):<18s}")
grad = dscores
for layer in reversed(model.layers):
    grad = layer.backward(grad)
    shapes = ", ".join(f"d{k} {g.shape}" for k, g in layer.grads.items())
    print(f"{layer.name + ' (' + type(layer).__name__ + ')':<28s} dx {str(grad.shape):<15s} {shapes}")
    for k, g in layer.grads.items():
        assert g.shape == layer.params[k].shape
print("every parameter gradient has its parameter's shape")

# %% [markdown]
# ## Checking the gradients numerically
#
# A gradient check compares every analytic derivative with the central difference
#
# $$
# \frac{\partial L}{\partial \theta_i} \approx \frac{L(\theta + h e_i) - L(\theta - h e_i)}{2h},
# \qquad h = 10^{-6},
# $$
#
# in float64, where the two agree to about $10^{-9}$ when the backward pass is right
# (a mistake typically shows up as an error of $10^{-2}$ or more). `check_model` runs it on
# a compiled model: the loss *with* the L2 penalty, the input and every parameter, on a few samples;
# the random shift is reseeded before each forward pass so every evaluation sees the same shifts.
#
# It perturbs every single entry, two forward passes each. For the full network that is about
# 200,000 passes (minutes), so we give `check_model` the same stack of layers at a narrow width, and
# afterwards spot-check randomly chosen entries of the full-size network by hand.

# %%
narrow = (4, 8) if QUICK else (10, 20)
twin = snn.Sequential([RandomShift(1), Flatten(), Dense(narrow[0], init="he_normal"), ReLU(),
                       Dense(narrow[1], init="he_normal"), ReLU(), Dense(10)])
twin.compile(optimizer="sgd", loss="softmax_cross_entropy", regularizer=L2(3e-5))
n_check = 2 if QUICK else 3
t0 = time.perf_counter()
result = check_model(twin, X_train[:n_check], y_train[:n_check])
t_check = time.perf_counter() - t0
print(f"784-{narrow[0]}-{narrow[1]}-10 on {n_check} images, {t_check:.1f} s:")
print(result.report)

# %% [markdown]
# The spot check does the same thing by hand for the 784-100-200-10 network: convert it to float64,
# pick a few random entries of every parameter array, nudge each by $\pm h$ and compare.

# %%
for layer in model.layers:
    layer.astype(np.float64)
Xc, yc = X_train[:n_check].astype(np.float64), y_train[:n_check]


def loss_and_grad():
    for layer in model.layers:
        if hasattr(layer, "reseed"):
            layer.reseed(0)             # the same random shifts for every evaluation
    value, dscores = model.loss(model.forward(Xc, training=True), yc)
    return value + model.penalty(), dscores


def full_loss():
    return loss_and_grad()[0]


model.backward(loss_and_grad()[1])      # the analytic gradients, then the penalty's share
rng = np.random.default_rng(0)
h = 1e-6
spot_errors = {}
for layer in model.layers:
    layer.add_penalty_grads()
    for key, p in layer.params.items():
        picks = rng.choice(p.size, size=min(8, p.size), replace=False)
        analytic = layer.grads[key].reshape(-1)[picks].copy()
        numeric = np.empty_like(analytic)
        flat = p.reshape(-1)
        for j, i in enumerate(picks):
            old = flat[i]
            flat[i] = old + h
            up = full_loss()
            flat[i] = old - h
            down = full_loss()
            flat[i] = old
            numeric[j] = (up - down) / (2 * h)
        spot_errors[f"{layer.name}.{key}"] = relative_error(analytic, numeric)
for name, err in spot_errors.items():
    print(f"{name:<12s} relative error on 8 random entries: {err:.2e}")
spot_worst = max(spot_errors.values())

# %% [markdown]
# ## Training with the `mlp` recipe
#
# The preset's recipe (`scratchnn.presets.PRESETS["mlp"]`, what `scratchnn train --model mlp` runs):
#
# - plain SGD, $\theta \leftarrow \theta - \eta\, \nabla_\theta L$, on mini-batches of 32 images;
# - step decay: $\eta = 0.1$ for epochs 1-10, 0.05 for 11-20, 0.025 for 21-30;
# - L2 penalty $3 \times 10^{-5} \sum \lVert W \rVert^2$ on the three weight matrices;
# - every training image shifted at random by up to one pixel, so the network never sees the
#   exact same image twice.
#
# After every epoch `fit` measures the validation set. As `scratchnn train` does, a
# `ModelCheckpoint(save_best_only=True)` keeps the epoch with the best validation accuracy, and that
# model is the one we test.

# %%
model = compiled_mlp()
workdir = tempfile.TemporaryDirectory()   # the checkpoint file lives here until the best model is loaded
best_path = os.path.join(workdir.name, "best.npz")
keep_best = ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True)
t0 = time.perf_counter()
history = model.fit(X_train, y_train, epochs=EPOCHS, batch_size=32, validation_data=(X_val, y_val),
                    verbose=2, seed=0, callbacks=[keep_best])
t_train = time.perf_counter() - t0
best = snn.load(best_path)
workdir.cleanup()
test = best.evaluate(X_test, y_test)
best_epoch = keep_best.best_epoch + 1
print(f"{EPOCHS} epochs in {t_train:.0f} s; best validation accuracy {keep_best.best:.4f} at epoch {best_epoch}; "
      f"test accuracy of that model {test['accuracy']:.4f}")

# %% [markdown]
# ## Loss and accuracy curves
#
# The training numbers are running averages over each epoch on shifted images, measured while the
# weights change; the validation numbers are measured after the epoch on unshifted images. The drops
# at epochs 11 and 21 are the learning rate halving: smaller steps settle deeper into the minimum.

# %%
hist = history.history
epochs = np.arange(1, len(hist["loss"]) + 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(epochs, hist["loss"], "o-", ms=3, label="training (running, shifted images)")
ax1.plot(epochs, hist["val_loss"], "o-", ms=3, label="validation")
ax1.set(xlabel="epoch", ylabel="loss (cross-entropy + L2)", title="Loss")
ax2.plot(epochs, hist["accuracy"], "o-", ms=3, label="training (running, shifted images)")
ax2.plot(epochs, hist["val_accuracy"], "o-", ms=3, label="validation")
ax2.axhline(0.98, color="0.5", ls="--", lw=0.8, label="98%")
ax2.axvline(best_epoch, color="tab:red", lw=0.8, label=f"best epoch ({best_epoch})")
ax2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(min(0.9, min(hist["val_accuracy"])), 1.0))
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the network still gets wrong
#
# A look at some of the test digits the chosen model misclassifies, with its answer and the label.

# %%
pred = best.predict_classes(X_test)
wrong = np.flatnonzero(pred != y_test)
fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, i in zip(axes.ravel(), wrong[:16]):
    ax.imshow(X_test[i, 0], cmap="gray_r")
    ax.set_title(f"{pred[i]} (true {y_test[i]})", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle(f"{len(wrong)} of {len(y_test)} test digits misclassified: the first 16 (prediction, label)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What this showed

# %%
n_train = len(X_train)
print(f"- One forward pass took a batch of shape {xb.shape} through {len(model.layers)} layers to scores of "
      f"shape (32, 10); at initialization the loss was {loss:.3f}, close to ln 10 = {np.log(10):.3f}.")
print(f"- The backward pass produced a gradient of each parameter's own shape and an input gradient of shape "
      f"{xb.shape}.")
verdict = "passed" if result.passed else "FAILED"
print(f"- check_model {verdict} on the 784-{narrow[0]}-{narrow[1]}-10 twin in float64 (largest relative error "
      f"{result.max_rel_error:.1e}); the spot check of the full network's parameters gave at most {spot_worst:.1e}"
      f"{'' if spot_worst < 1e-6 else ', above the 1e-6 tolerance'}.")
acc = test["accuracy"]
first98 = next((i + 1 for i, a in enumerate(history.history["val_accuracy"]) if a >= 0.98), None)
print("- Validation accuracy " + (f"first reached 98% at epoch {first98}" if first98 else
                                  f"never reached 98% (best {keep_best.best:.2%})") +
      f"; one epoch took {t_train / EPOCHS:.1f} s on average.")
if acc >= 0.98:
    print(f"- Trained with the mlp recipe on {n_train:,} images for {EPOCHS} epochs ({t_train:.0f} s), the epoch with "
          f"the best validation accuracy ({best_epoch}) classifies {acc:.2%} of the 10,000 test digits correctly: "
          f"past the 98% of the title.")
else:
    print(f"- Trained with the mlp recipe on {n_train:,} images for {EPOCHS} epochs ({t_train:.0f} s), the epoch with "
          f"the best validation accuracy ({best_epoch}) classifies {acc:.2%} of the test digits correctly: short of "
          f"98% with this budget (the full 30 epochs on all 55,000 training images are needed for it; "
          f"`scratchnn train --model mlp` runs them).")
