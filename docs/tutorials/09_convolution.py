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
# # 9. Convolution from scratch
#
# A convolutional layer slides $F$ small filters of shape $C \times k_h \times k_w$ over an
# image of $C$ channels and, at every position, takes the dot product of the filter with the
# patch under it (strictly a cross-correlation, as in every deep-learning library):
#
# $$
# y_{n,f,i,j} = b_f + \sum_{c=1}^{C}\sum_{a=0}^{k_h-1}\sum_{b=0}^{k_w-1}
# W_{f,c,a,b}\; x_{n,c,\,i s + a,\,j s + b},
# $$
#
# with stride $s$ and a zero-padded input. Written like that it is four nested loops around a
# small sum, which is very slow in Python. scratchnn instead copies every patch into one row of a
# matrix (*im2col*) so that the whole layer becomes a single matrix product. We picture im2col,
# check `Conv2D` and `MaxPool2D` against the naive loops, check their gradients, and train a small
# CNN on MNIST to look at what its filters learned.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn import functional as F
from scratchnn.datasets import load_mnist, scale
from scratchnn.gradcheck import check_layer
from scratchnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from scratchnn.optimizers import Adam

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("This page was built with reduced sizes (SCRATCHNN_DOCS_QUICK=1): its numbers are a smoke test, "
          "not the lesson.")
snn.set_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## im2col, pictured
#
# A 4×4 one-channel image holding the numbers 0 to 15, and a 3×3 kernel with stride 1 and no
# padding: the kernel fits at $2 \times 2$ positions, so `im2col` returns a $4 \times 9$ matrix,
# one row per position, holding the 9 pixels under the kernel there (columns ordered
# $(c, a, b)$, channel first, for NCHW input).

# %%
img = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)  # (N, C, H, W)
cols = F.im2col(img, kernel_size=3, stride=1, padding=0)
print("image:\n", img[0, 0].astype(int))
print(f"im2col(image, 3) has shape {cols.shape}:\n", cols.astype(int))

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.2]})
ax0.imshow(img[0, 0], cmap="Greys", alpha=0.25)
for (r, c), v in np.ndenumerate(img[0, 0]):
    ax0.text(c, r, int(v), ha="center", va="center")
colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    inset = 0.06 * k
    ax0.add_patch(plt.Rectangle((j - 0.5 + inset, i - 0.5 + inset), 3 - 2 * inset, 3 - 2 * inset, fill=False,
                                ec=colors[k], lw=2))
ax0.set(title="4×4 image and the four 3×3 windows", xticks=[], yticks=[])
ax1.imshow(np.zeros_like(cols), cmap="Greys", vmin=0, vmax=1)
for (r, c), v in np.ndenumerate(cols):
    ax1.text(c, r, int(v), ha="center", va="center", color=colors[r])
ax1.set(title="im2col: one row per window", xlabel="column = (kernel row, kernel column) of the one channel",
        ylabel="row = output position", xticks=range(9), yticks=range(4),
        xticklabels=[f"{a},{b}" for a in range(3) for b in range(3)])
plt.show()

# %% [markdown]
# With the filters flattened the same way, `W.reshape(F, -1)`, one product computes every output
# of every filter at every position: `cols @ W.reshape(F, -1).T` has shape
# $(N H_o W_o, F)$, which is reshaped to $(N, F, H_o, W_o)$. An image of $C$ channels gives
# rows of $C k_h k_w$ values. `Conv2D` does exactly this (internally channels-last, which makes
# each window's values contiguous), and its backward pass is two more products:
# $\partial L/\partial W = \text{cols}^\top\, \partial L/\partial Y$, and
# $\partial L/\partial x = \text{col2im}(\partial L/\partial Y\, W)$, where `col2im` adds each
# row back onto the pixels it was copied from (overlapping windows add up).

# %%
W_demo = np.ones((1, 1, 3, 3))  # one 3x3 filter that sums its window
y_demo = (cols @ W_demo.reshape(1, -1).T).reshape(1, 2, 2, 1).transpose(0, 3, 1, 2)
print("window sums through im2col:", y_demo[0, 0].astype(int).tolist(),
      "  by hand:", [[int(img[0, 0, i:i + 3, j:j + 3].sum()) for j in range(2)] for i in range(2)])

# %% [markdown]
# ## Conv2D against the four nested loops
#
# The definition, literally: loop over images, filters and output rows and columns, and sum the
# product of the filter with the (zero-padded) patch. We compare it with `Conv2D` in float64 for
# two geometries, "same" padding with stride 1 and padding 1 with stride 2.

# %%
def naive_conv(x, W, b, stride, pad):
    n_img, _, h, w = x.shape
    n_f, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n_img, n_f, ho, wo))
    for n in range(n_img):
        for f in range(n_f):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return out


snn.set_default_dtype("float64")
x = rng.standard_normal((2, 3, 9, 9))
conv_errors = {}
for stride, pad, padding in [(1, 1, "same"), (2, 1, 1)]:
    conv = Conv2D(4, 3, stride=stride, padding=padding)
    conv.ensure_built(x)
    conv.params["b"][...] = rng.standard_normal(4)
    fast = conv.forward(x)
    slow = naive_conv(x, conv.params["W"], conv.params["b"], stride, pad)
    conv_errors[(stride, padding)] = np.abs(fast - slow).max()
    print(f"stride {stride}, padding {padding!r}: output {fast.shape}, largest difference from the loops "
          f"{conv_errors[(stride, padding)]:.1e}")

# %% [markdown]
# ## MaxPool2D against a loop
#
# Max pooling keeps the largest value of each window, per channel; it has no parameters. The
# backward pass sends each window's gradient to the position of its maximum only (the other inputs
# did not affect the output). Two geometries: 2×2 windows with stride 2 (they tile the image) and
# overlapping 3×3 windows with stride 2.

# %%
def naive_maxpool(x, k, stride):
    n_img, n_c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n_img, n_c, ho, wo))
    for n in range(n_img):
        for c in range(n_c):
            for i in range(ho):
                for j in range(wo):
                    out[n, c, i, j] = x[n, c, i * stride:i * stride + k, j * stride:j * stride + k].max()
    return out


pool_errors = {}
for k, stride in [(2, 2), (3, 2)]:
    fast = MaxPool2D(k, stride=stride).forward(x)
    pool_errors[(k, stride)] = np.abs(fast - naive_maxpool(x, k, stride)).max()
    print(f"{k}x{k} windows, stride {stride}: output {fast.shape}, largest difference from the loop "
          f"{pool_errors[(k, stride)]:.1e}")

# %% [markdown]
# ## The backward passes, gradient-checked
#
# `check_layer` perturbs every input pixel and every weight by $\pm 10^{-6}$ and compares the
# central differences with `backward` (relative error, float64). Random inputs have no ties, so
# the max-pooling maximum is unique and its gradient is well defined.

# %%
grad_checks = {
    "Conv2D 4 filters 3x3, same": check_layer(Conv2D(4, 3, padding="same"), rng.standard_normal((2, 3, 6, 6))),
    "Conv2D 3 filters 3x3, stride 2, pad 1": check_layer(Conv2D(3, 3, stride=2, padding=1),
                                                         rng.standard_normal((2, 2, 7, 7))),
    "MaxPool2D 2x2": check_layer(MaxPool2D(2), rng.standard_normal((2, 3, 6, 6))),
    "MaxPool2D 3x3, stride 2": check_layer(MaxPool2D(3, stride=2), rng.standard_normal((2, 3, 7, 7))),
}
for name, result in grad_checks.items():
    print(f"{name:40s} {result.report.splitlines()[0]}")
snn.set_default_dtype("float32")

# %% [markdown]
# ## A small CNN on MNIST
#
# Two convolution stages and a linear classifier:
# 16 filters of 5×5 ("same" padding) → ReLU → 2×2 max pooling (28×28 → 14×14) →
# 32 filters of 3×3 → ReLU → 2×2 max pooling (→ 7×7) → flatten → `Dense(10)`.
# Pooling halves the resolution, so each output of the second convolution depends on a 10×10 patch
# of the original image (its 3×3 window spans 6×6 pooled-over pixels, each seen through a 5×5
# filter), and the whole network has fewer parameters than a single 784-100 dense layer.

# %%
(X_all, y_all), (X_test_all, y_test_all) = load_mnist()
n_train, n_val, n_test, epochs = (2000, 1000, 1000, 1) if QUICK else (30000, 2000, 10000, 3)
X_train, y_train = scale(X_all[:n_train])[:, None], y_all[:n_train]  # (N, 1, 28, 28)
X_val, y_val = scale(X_all[-n_val:])[:, None], y_all[-n_val:]
X_test, y_test = scale(X_test_all[:n_test])[:, None], y_test_all[:n_test]

snn.set_seed(0)
cnn = snn.Sequential([Conv2D(16, 5, padding="same"), ReLU(), MaxPool2D(2),
                      Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2),
                      Flatten(), Dense(10)])
cnn.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
cnn.build((1, 28, 28))
cnn.summary()
W1_init = cnn.layers[0].params["W"][:, 0].copy()  # the first layer's 16 random 5x5 filters, before training
t0 = time.perf_counter()
history = cnn.fit(X_train, y_train, epochs=epochs, batch_size=64, validation_data=(X_val, y_val), verbose=0,
                  seed=0)
train_seconds = time.perf_counter() - t0
test_acc = cnn.evaluate(X_test, y_test)["accuracy"]
for e, (acc, val) in enumerate(zip(history["accuracy"], history["val_accuracy"]), 1):
    print(f"epoch {e}: training accuracy {acc:.4f}, validation accuracy {val:.4f}")
print(f"{n_train} training images, {epochs} epoch(s) in {train_seconds:.0f} s; test accuracy on {n_test} images: "
      f"{test_acc:.4f}")

# %% [markdown]
# ## What the first layer learned
#
# Each first-layer filter is a 5×5 weight pattern applied to raw pixels; blue is negative, red
# positive, each filter on its own colour scale. The top row is the random He initialization, the
# bottom row the same filters after training. Filters that have moved far from their start tend to
# show structure such as a positive band beside a negative one, which responds where the ink
# changes in that direction (an edge or stroke detector); with few epochs some stay close to noise.

# %%
W1 = cnn.layers[0].params["W"][:, 0]  # (16, 5, 5)
moved = np.linalg.norm((W1 - W1_init).reshape(16, -1), axis=1) / np.linalg.norm(W1_init.reshape(16, -1), axis=1)
fig, axes = plt.subplots(2, 16, figsize=(13, 2.3))
for f in range(16):
    for row, W in enumerate((W1_init, W1)):
        lim = np.abs(W[f]).max()
        axes[row, f].imshow(W[f], cmap="bwr", vmin=-lim, vmax=lim)
        axes[row, f].set(xticks=[], yticks=[])
    axes[0, f].set_title(f"#{f}", fontsize=8)
    axes[1, f].set_xlabel(f"moved {moved[f]:.0%}", fontsize=7)
axes[0, 0].set_ylabel("initial", fontsize=8)
axes[1, 0].set_ylabel("trained", fontsize=8)
fig.suptitle("first-layer filters (5×5) before and after training; 'moved' = ||W - W_init|| / ||W_init||", y=1.04)
plt.show()
print(f"relative change of the 16 filters: median {np.median(moved):.2f}, range {moved.min():.2f} to {moved.max():.2f}")

# %% [markdown]
# And what they do to one test image: the 16 feature maps after the first ReLU (each filter's
# response at every position), then 16 of the 32 maps of the second stage at half the resolution,
# which combine the first stage's edges into larger parts of digits. We run the layers one by one
# in inference mode.

# %%
image = X_test[:1]
activations, h = [], image
for layer in cnn.layers:
    h = layer.forward(h, training=False)
    activations.append(h)
maps1, maps2 = activations[1][0], activations[4][0]  # after the first and the second ReLU
pred = int(activations[-1][0].argmax())
fig, axes = plt.subplots(4, 9, figsize=(11, 5.4))
for ax in axes.flat:
    ax.axis("off")
axes[0, 0].imshow(image[0, 0], cmap="gray_r")
axes[0, 0].set_title(f"label {y_test[0]}\npredicted {pred}", fontsize=8)
axes[1, 0].text(0.5, 0.5, "stage 1\n28×28", ha="center", va="center", transform=axes[1, 0].transAxes)
axes[2, 0].text(0.5, 0.5, "stage 2\n14×14", ha="center", va="center", transform=axes[2, 0].transAxes)
for f in range(16):
    axes[f // 8, 1 + f % 8].imshow(maps1[f], cmap="viridis")
    axes[f // 8, 1 + f % 8].set_title(f"conv1 #{f}", fontsize=7)
    axes[2 + f // 8, 1 + f % 8].imshow(maps2[f], cmap="viridis")
    axes[2 + f // 8, 1 + f % 8].set_title(f"conv2 #{f}", fontsize=7)
fig.suptitle("one test image: its 16 first-stage feature maps and 16 of the 32 second-stage maps (after ReLU)")
plt.show()

# %% [markdown]
# ## What this showed

# %%
ok_conv = max(conv_errors.values()) < 1e-10
ok_pool = max(pool_errors.values()) < 1e-12
print(f"- im2col turned a 4×4 image into a {cols.shape[0]}×{cols.shape[1]} matrix, one row per 3×3 window, "
      f"and one matrix product with it gave the window sums {y_demo[0, 0].astype(int).tolist()}.")
print(f"- Conv2D {'matched' if ok_conv else 'did NOT match'} the four nested loops "
      f"(largest difference {max(conv_errors.values()):.0e}, for stride 1 'same' and stride 2 padding 1); "
      f"MaxPool2D {'matched' if ok_pool else 'did NOT match'} its loop "
      f"(largest difference {max(pool_errors.values()):.0e}).")
print(f"- The gradient checks {'all passed' if all(grad_checks.values()) else 'did NOT all pass'}; the largest "
      f"relative error was {max(r.max_rel_error for r in grad_checks.values()):.0e}.")
val_acc = history["val_accuracy"]
trend = (f"validation accuracy went from {val_acc[0]:.2%} after the first epoch to {val_acc[-1]:.2%} after the last"
         if len(val_acc) > 1 else f"validation accuracy was {val_acc[0]:.2%} after its one epoch")
print(f"- Training moved the first-layer filters by a median {np.median(moved):.0%} of their initial norm "
      f"(from {moved.min():.0%} to {moved.max():.0%}).")
print(f"- The CNN ({cnn.count_params():,} parameters) trained on {n_train} images for {epochs} epoch(s) in "
      f"{train_seconds:.0f} s; its {trend}, and it reached {test_acc:.2%} accuracy on {n_test} test images.")
