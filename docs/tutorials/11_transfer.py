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
# # 11. Transfer learning
#
# A network trained on one task has learned a chain of features, and the early links of the chain
# (stroke and edge detectors) are rarely specific to that task. Transfer learning reuses them: when
# a new task has only a few labelled examples, start from a network trained on a related task with
# many. Write the trained network as a feature map followed by an output layer,
#
# $$
# f(x) = h\big(\phi_\theta(x)\big), \qquad h(z) = zW + b ,
# $$
#
# where $\phi_\theta$ is everything below the output layer. The recipe (Yosinski et al. 2014; the
# Keras transfer-learning guide) has two steps:
#
# 1. **feature extraction**: drop the old output layer, *freeze* $\theta$ and train only a new
#    head $h'$ on the new labels. With $\theta$ fixed, $\phi_\theta(x)$ is a fixed vector per
#    image, so training $h'$ is softmax regression on those vectors: a convex problem that a
#    few hundred examples can pin down;
# 2. **fine-tuning**: unfreeze everything and keep training with a learning rate about 10x
#    smaller, so that $\theta$ adapts to the new task without being thrown away by the first
#    large steps.
#
# Our two tasks come from MNIST: the *source* task is digits 0-4 (plenty of labels), the *target*
# task is digits 5-9 with only $k$ labelled images per class. Each way of learning the target is
# compared with the same network trained from scratch on the same $k$ labels. The last part
# trains a convolutional network whose global average pooling lets it run, unchanged, on images
# of another size.

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist, scale
from scratchnn.layers import Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU
from scratchnn.optimizers import Adam
from scratchnn.transfer import extract_features, new_head_model, unfreeze

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

N_SOURCE, N_SOURCE_VAL, SOURCE_EPOCHS = (3000, 1000, 2) if QUICK else (12000, 2000, 5)
LABELS_PER_CLASS = (5, 50) if QUICK else (5, 20, 100, 500)  # target labels per class
SUBSETS = (0,) if QUICK else (0, 1, 2)                    # random labelled subsets per budget
STEPS, BATCH, LR = (100, 32, 1e-3) if QUICK else (300, 32, 1e-3)  # updates per target run
N_TEST = 1000 if QUICK else None                          # target test images (None: all 4,861)
CNN_WIDTHS = (8, 16, 32) if QUICK else (16, 32, 64)
N_CNN, CNN_EPOCHS, CNN_LR = (3000, 2, 2e-3) if QUICK else (6000, 4, 2e-3)
CNN_KS, CNN_STEPS, N_CNN_TEST = ((20,), 150, 500) if QUICK else ((10, 50), 300, 2000)
BIG = 36                                                  # the larger image size

(X_train, y_train), (X_test, y_test) = load_mnist()
X_train, X_test = scale(X_train)[:, None], scale(X_test)[:, None]   # (N, 1, 28, 28) in [0, 1]
rng = np.random.default_rng(0)

source = rng.permutation(np.flatnonzero(y_train < 5))
src_idx, src_val_idx = source[:N_SOURCE], source[N_SOURCE:N_SOURCE + N_SOURCE_VAL]
target_pool = np.flatnonzero(y_train >= 5)              # where the few target labels come from
target_test = np.flatnonzero(y_test >= 5)
if N_TEST is not None:
    target_test = rng.choice(target_test, N_TEST, replace=False)
Xt_test, yt_test = X_test[target_test], y_test[target_test] - 5   # digits 5-9 as classes 0-4
print(f"source: {len(src_idx)} training and {len(src_val_idx)} validation images of digits 0-4; "
      f"target: digits 5-9, tested on {len(target_test)} test images")


def few_labels(k, subset):
    """k training images of each digit 5-9 (labels 0-4), a fixed random subset."""
    r = np.random.default_rng(1000 + subset)
    idx = np.concatenate([r.choice(target_pool[y_train[target_pool] == d], k, replace=False) for d in range(5, 10)])
    return X_train[idx], y_train[idx] - 5


def train(model, X, y, lr, steps=STEPS, batch=BATCH, seed=0):
    """Adam for about `steps` updates (whole epochs), silently; returns the model."""
    model.compile(optimizer=Adam(lr), loss="softmax_cross_entropy")
    model.fit(X, y, epochs=max(1, math.ceil(steps * batch / len(X))), batch_size=batch, verbose=0, seed=seed)
    return model


def mlp():
    return snn.Sequential([Flatten(), Dense(256, init="he_normal"), ReLU(),
                           Dense(128, init="he_normal"), ReLU(), Dense(5)])


# %% [markdown]
# ## 1. A network for digits 0-4
#
# The source network is an MLP 784-256-128-5 trained on the digits 0-4. Its accuracy on held-out
# images of those digits says how good its features are for the task they were learned for.

# %%
snn.set_seed(0)
base = train(mlp(), X_train[src_idx], y_train[src_idx], LR,
             steps=SOURCE_EPOCHS * len(src_idx) // 64, batch=64)
base_val_acc = base.evaluate(X_train[src_val_idx], y_train[src_val_idx])["accuracy"]
print(f"source network: validation accuracy {base_val_acc:.4f} on digits 0-4")

# %% [markdown]
# ## 2. The frozen network is a feature map
#
# `extract_features(model, X, n_drop=1)` runs the network without its last layer in inference
# mode: each image becomes the 128 activations of the last hidden layer. `new_head_model` builds
# the trainable version of the same thing: a *copy* of the base without its last `n_drop` layers,
# frozen (`trainable=False`), followed by new layers. The summary marks the frozen layers; only
# the new head's $128 \times 5 + 5 = 645$ parameters will learn.

# %%
X_few, y_few = few_labels(50, 0)
features = extract_features(base, X_few, n_drop=1)
print(f"features of {len(X_few)} target images: shape {features.shape}, "
      f"{(features > 0).mean():.0%} of them non-zero (ReLU outputs)")
snn.set_seed(1)
frozen = new_head_model(base, [Dense(5)], n_drop=1)
frozen.summary()

# %% [markdown]
# Since nothing below the head changes, training the frozen model is training a one-layer softmax
# classifier on the extracted features. We can check that literally: a lone `Dense(5)` with the
# same initial weights (same seed), trained on precomputed features with the same batches, ends
# with the same weights. Precomputing the features is the cheap way to do it: each image goes
# through the base once instead of once per epoch.

# %%
train(frozen, X_few, y_few, LR)
snn.set_seed(1)
head_only = train(snn.Sequential([Dense(5)]), features, y_few, LR)
same_head = np.abs(frozen.layers[-1].params["W"] - head_only.layers[0].params["W"]).max()
print(f"largest difference between the two heads' weights after {STEPS} updates: {same_head:.1e}")
print(f"base weights unchanged by training the frozen copy: "
      f"{np.array_equal(frozen.layers[1].params['W'], base.layers[1].params['W'])}")

# %% [markdown]
# ## 3. Four ways to learn digits 5-9 from k labels per class
#
# For each budget $k$ and each of several random labelled subsets, every method gets the same
# number of Adam updates at the same learning rate:
#
# - **from scratch**: the whole MLP, randomly initialized;
# - **frozen layer 1 + new layers**: the first pretrained layer (784-256) kept and frozen, a new
#   128-unit layer and head trained on top (`new_head_model(base, [...], n_drop=3)`);
# - **frozen layers 1-2 + new head**: feature extraction from the last hidden layer (above);
# - **+ fine-tuned**: that model unfrozen (`unfreeze`) and trained as many updates again with a
#   10x smaller learning rate.
#
# Accuracy is measured on the MNIST test images of digits 5-9; nothing is tuned on them.

# %%
METHODS = ["from scratch", "frozen layer 1 + new layers", "frozen layers 1-2 + new head", "+ fine-tuned (lr / 10)"]
results = {m: {k: [] for k in LABELS_PER_CLASS} for m in METHODS}
for k in LABELS_PER_CLASS:
    for s in SUBSETS:
        X_k, y_k = few_labels(k, s)
        snn.set_seed(10 + s)
        models = {"from scratch": train(mlp(), X_k, y_k, LR, seed=s)}
        snn.set_seed(10 + s)
        low = new_head_model(base, [Dense(128, init="he_normal"), ReLU(), Dense(5)], n_drop=3)
        models["frozen layer 1 + new layers"] = train(low, X_k, y_k, LR, seed=s)
        snn.set_seed(10 + s)
        head = train(new_head_model(base, [Dense(5)], n_drop=1), X_k, y_k, LR, seed=s)
        models["frozen layers 1-2 + new head"] = head
        for m, model in models.items():
            results[m][k].append(model.evaluate(Xt_test, yt_test)["accuracy"])
        unfreeze(head)  # every layer trains again, 10x more gently
        train(head, X_k, y_k, LR / 10, seed=s)
        results["+ fine-tuned (lr / 10)"][k].append(head.evaluate(Xt_test, yt_test)["accuracy"])

mean = {m: {k: float(np.mean(v)) for k, v in per_k.items()} for m, per_k in results.items()}
print(f"test accuracy on digits 5-9, mean over {len(SUBSETS)} labelled subset(s):")
print(f"{'labels per class':<32}" + "".join(f"{k:>10}" for k in LABELS_PER_CLASS))
for m in METHODS:
    print(f"{m:<32}" + "".join(f"{mean[m][k]:>10.4f}" for k in LABELS_PER_CLASS))

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for i, m in enumerate(METHODS):
    ax.errorbar(LABELS_PER_CLASS, [mean[m][k] for k in LABELS_PER_CLASS],
                yerr=[np.std(results[m][k]) for k in LABELS_PER_CLASS], marker="o", capsize=3, label=m,
                color=f"C{i}")
ax.set(xscale="log", xlabel="labelled images per class (digits 5-9)", ylabel="test accuracy on digits 5-9",
       title="Transfer from digits 0-4 (MLP)")
ax.set_xticks(LABELS_PER_CLASS, [str(k) for k in LABELS_PER_CLASS])
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What to look for: how much each pretrained layer is worth. The first layer of an MNIST network
# learns stroke detectors that serve any digit; the second combines strokes into the parts of
# 0-4 and is specific to them, so a head on top of it sees features that ignore what tells a 5
# from an 8. Fine-tuning lets those layers move toward the new digits, and its small learning
# rate keeps the start it was given. As $k$ grows, the labels themselves carry enough
# information and the head start matters less.

# %% [markdown]
# ## 4. Another image size: global average pooling
#
# An MLP's first layer has one weight per pixel, so it accepts exactly the image size it was
# trained on. Convolution and pooling do not care: a $3\times3$ filter slides over any image,
# and an $H\times W$ input gives an $H'\times W'$ feature map. *Global average pooling* then
# turns any map into one number per channel,
#
# $$
# z_c = \frac{1}{H'W'} \sum_{i=1}^{H'} \sum_{j=1}^{W'} a_{c,i,j} ,
# $$
#
# so a CNN ending in `GlobalAvgPool2D` and a `Dense` head runs unchanged on larger images. We train
# conv-pool-conv-pool-conv-GAP-dense on 28x28 digits 0-4, then show it the same test digits in a
# 36x36 canvas, centered or at a random place.

# %%
from scratchnn.datasets import pad_images   # each image in a zero canvas: centered, or at a random place


def gap_cnn():
    a, b, c = CNN_WIDTHS
    return snn.Sequential([Conv2D(a, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(b, 3, padding=1), ReLU(),
                           MaxPool2D(2), Conv2D(c, 3, padding=1), ReLU(), GlobalAvgPool2D(), Dense(5)])


pad_rng = np.random.default_rng(7)
src_test = rng.choice(np.flatnonzero(y_test < 5), N_CNN_TEST, replace=False)
Xs_test, ys_test = X_test[src_test], y_test[src_test]
Xs_center, Xs_random = pad_images(Xs_test, BIG), pad_images(Xs_test, BIG, pad_rng)

fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for a, img, title in zip(axes, (Xs_test[0, 0], Xs_center[0, 0], Xs_random[0, 0]),
                         ("trained size, 28x28", f"centered in {BIG}x{BIG}", f"random place in {BIG}x{BIG}")):
    a.imshow(img, cmap="gray_r", extent=(0, img.shape[1], img.shape[0], 0))
    a.set(title=title, xlabel="pixel", ylabel="pixel")
    a.title.set_fontsize(9)
plt.tight_layout()
plt.show()

snn.set_seed(0)
cnn_idx = src_idx[:N_CNN]
cnn = train(gap_cnn(), X_train[cnn_idx], y_train[cnn_idx], CNN_LR,
            steps=CNN_EPOCHS * len(cnn_idx) // 32)
cnn_acc = {"28x28": cnn.evaluate(Xs_test, ys_test)["accuracy"],
           f"{BIG}x{BIG} centered": cnn.evaluate(Xs_center, ys_test)["accuracy"],
           f"{BIG}x{BIG} random place": cnn.evaluate(Xs_random, ys_test)["accuracy"]}
for setting, acc in cnn_acc.items():
    print(f"GAP CNN trained on 28x28 digits 0-4, tested on {len(ys_test)} test digits 0-4 at {setting}: {acc:.4f}")

# %% [markdown]
# The same weights run on a larger input: every convolution simply produces a larger map. The
# position of the digit hardly matters, since the convolutions are translation-equivariant and
# the average forgets where a feature was. But the border is not neutral: an empty region still
# produces activations ($\mathrm{ReLU}(b)$ for a filter with bias $b$, and so on up the layers),
# and the larger canvas adds more of these background values to every channel's average,
# diluting the digit's contribution. The pooled vectors shrink and turn away from the ones the
# head was trained on:

# %%
f_small = extract_features(cnn, Xs_test, n_drop=1)
f_big = extract_features(cnn, Xs_center, n_drop=1)
norm_ratio = float(np.linalg.norm(f_big, axis=1).mean() / np.linalg.norm(f_small, axis=1).mean())
cos = float(np.mean(np.sum(f_small * f_big, axis=1)
                    / (np.linalg.norm(f_small, axis=1) * np.linalg.norm(f_big, axis=1) + 1e-12)))
print(f"pooled features: {f_small.shape[1]} per image; at {BIG}x{BIG} their norm is {norm_ratio:.2f}x that at "
      f"28x28 and their mean cosine similarity with the 28x28 ones is {cos:.3f}")

# %% [markdown]
# ### The GAP CNN as a feature extractor for digits 5-9, at both sizes
#
# Now the target task with $k$ labels per class, in two modes. **Frozen**: the pooled features
# of the frozen CNN feed a new `Dense(5)` head, trained on the features of the labelled images at
# 28x28, and separately at 36x36 (digits at random places, in training and test images). A lone
# linear layer on fixed features is a convex problem and tolerates a larger step, so the head uses
# a learning rate of $10^{-2}$. **Fine-tuned**: the 36x36 model (`new_head_model`, head trained
# the same way) is unfrozen and trained end to end with a learning rate 10x smaller than the one
# the CNN was trained with. The baseline is the same CNN trained from scratch on the same labelled
# 36x36 images, with as many updates as the fine-tuning.

# %%
tgt = rng.choice(np.arange(len(Xt_test)), min(N_CNN_TEST, len(Xt_test)), replace=False)
Xc_test, yc_test = Xt_test[tgt], yt_test[tgt]
Xc_test_big = pad_images(Xc_test, BIG, pad_rng)
CNN_METHODS = ["frozen + new head, 28x28", f"frozen + new head, {BIG}x{BIG}",
               f"fine-tuned (lr / 10), {BIG}x{BIG}", f"from scratch, {BIG}x{BIG}"]
gap_results = {m: {} for m in CNN_METHODS}
for k in CNN_KS:
    X_k, y_k = few_labels(k, 0)
    X_k_big = pad_images(X_k, BIG, pad_rng)
    for method, Xa, Xb in ((CNN_METHODS[0], X_k, Xc_test), (CNN_METHODS[1], X_k_big, Xc_test_big)):
        snn.set_seed(1)
        head = train(snn.Sequential([Dense(5)]), extract_features(cnn, Xa, n_drop=1), y_k, 1e-2, steps=CNN_STEPS)
        gap_results[method][k] = head.evaluate(extract_features(cnn, Xb, n_drop=1), yc_test)["accuracy"]
    snn.set_seed(1)
    tuned = new_head_model(cnn, [Dense(5)], n_drop=1)
    train(tuned, X_k_big, y_k, 1e-2, steps=CNN_STEPS)          # the head first, as above
    unfreeze(tuned)
    train(tuned, X_k_big, y_k, CNN_LR / 10, steps=CNN_STEPS)   # then everything, gently
    gap_results[CNN_METHODS[2]][k] = tuned.evaluate(Xc_test_big, yc_test)["accuracy"]
    snn.set_seed(1)
    scratch = train(gap_cnn(), X_k_big, y_k, CNN_LR, steps=CNN_STEPS)
    gap_results[CNN_METHODS[3]][k] = scratch.evaluate(Xc_test_big, yc_test)["accuracy"]
    for m in CNN_METHODS:
        print(f"digits 5-9 from {k} labels per class, {m}: {gap_results[m][k]:.4f} on {len(yc_test)} test images")

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
bars0 = ax0.bar(range(3), list(cnn_acc.values()), color="C0")
ax0.bar_label(bars0, fmt="%.3f", fontsize=8)
ax0.set_xticks(range(3), [s.replace(" ", "\n", 1) for s in cnn_acc], fontsize=8)
ax0.set(ylim=(0, 1.1), ylabel="test accuracy", title="digits 0-4: the trained CNN, unchanged")
width = 0.8 / len(CNN_KS)
for j, k in enumerate(CNN_KS):
    vals = [gap_results[m][k] for m in CNN_METHODS]
    bars1 = ax1.bar(np.arange(len(CNN_METHODS)) + (j - (len(CNN_KS) - 1) / 2) * width, vals, width,
                    label=f"{k} labels per class", color=f"C{j + 1}")
    ax1.bar_label(bars1, fmt="%.3f", fontsize=7)
ax1.set_xticks(range(len(CNN_METHODS)), [m.replace(", ", "\n") for m in CNN_METHODS], fontsize=8)
ax1.set(ylim=(0, 1.15), ylabel="test accuracy", title="digits 5-9 from few labels")
for a in (ax0, ax1):
    a.axhline(0.2, color="k", ls="--", lw=1, label="chance (5 classes)")
    a.grid(True, axis="y", alpha=0.3)
ax1.legend(fontsize=8, loc="upper center", ncol=3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Where a pretrained network can come from
#
# The base network does not have to be trained in scratchnn. `scratchnn.interop.from_torch(net,
# input_shape=(1, 28, 28))` turns a PyTorch `nn.Sequential` (convolutions, pooling, linear layers,
# activations) into a `Sequential` that predicts what PyTorch predicts; `new_head_model` and
# `unfreeze` then work on it exactly as above. `examples/transfer_from_pytorch.py` does that with a
# CNN trained in PyTorch on digits 0-4.

# %% [markdown]
# ## What this showed

# %%
def compare(a, b, margin=0.01):
    """'higher than', 'about the same as' or 'lower than', with a margin of one point."""
    return "higher than" if a > b + margin else "lower than" if a < b - margin else "about the same as"


k_lo, k_hi = LABELS_PER_CLASS[0], LABELS_PER_CLASS[-1]
ks = ", ".join(map(str, LABELS_PER_CLASS))
fmt = lambda m: ", ".join(f"{mean[m][k]:.3f}" for k in LABELS_PER_CLASS)  # noqa: E731
print(f"- The MLP trained on digits 0-4 reached {base_val_acc:.4f} on held-out 0-4 images. Frozen, it is a fixed "
      f"feature map: a head trained on its precomputed features matched the frozen model's head within "
      f"{same_head:.0e}.")
print(f"- Test accuracy on digits 5-9 for k = {ks} labels per class: from scratch {fmt('from scratch')}; "
      f"frozen layer 1 + new layers {fmt('frozen layer 1 + new layers')}; frozen layers 1-2 + new head "
      f"{fmt('frozen layers 1-2 + new head')}; fine-tuned {fmt('+ fine-tuned (lr / 10)')}.")
low, scr = mean["frozen layer 1 + new layers"], mean["from scratch"]
print(f"- With the fewest labels (k = {k_lo}), reusing the frozen first layer scored {compare(low[k_lo], scr[k_lo])} "
      f"training from scratch ({low[k_lo]:.4f} vs {scr[k_lo]:.4f}); with the most (k = {k_hi}) it scored "
      f"{compare(low[k_hi], scr[k_hi])} it ({low[k_hi]:.4f} vs {scr[k_hi]:.4f}).")
gap_head = [scr[k] - mean["frozen layers 1-2 + new head"][k] for k in LABELS_PER_CLASS]
if min(gap_head) > 0.01:
    print(f"- A new head on the frozen last hidden layer was worse than training from scratch at every budget "
          f"(by {', '.join(f'{g:.3f}' for g in gap_head)}): that layer's features are specific to digits 0-4.")
else:
    print(f"- A new head on the frozen last hidden layer was not clearly worse than training from scratch at every "
          f"budget (differences {', '.join(f'{g:+.3f}' for g in gap_head)}).")
fine = mean["+ fine-tuned (lr / 10)"]
head_ = mean["frozen layers 1-2 + new head"]
recovered = [k for k in LABELS_PER_CLASS if fine[k] >= scr[k] - 0.01]
print(f"- Fine-tuning that model end to end at a 10x smaller learning rate raised it by "
      f"{', '.join(f'{fine[k] - head_[k]:+.3f}' for k in LABELS_PER_CLASS)}; it came within a point of training "
      f"from scratch (or above) " + (f"at k = {', '.join(map(str, recovered))}." if recovered else "at no budget."))
acc28, acc_c, acc_r = cnn_acc["28x28"], cnn_acc[f"{BIG}x{BIG} centered"], cnn_acc[f"{BIG}x{BIG} random place"]
print(f"- The GAP CNN trained on 28x28 digits 0-4 ran unchanged on {BIG}x{BIG} images: {acc28:.4f} at 28x28, "
      f"{acc_c:.4f} centered and {acc_r:.4f} at random places (chance is 0.2). Its pooled features at {BIG}x{BIG} "
      f"had {norm_ratio:.2f}x the norm of those at 28x28"
      + (f", and accuracy dropped by {acc28 - min(acc_c, acc_r):.3f}." if min(acc_c, acc_r) < acc28 - 0.01
         else ", at no clear cost in accuracy."))
for k in CNN_KS:
    fr, ft, sc = (gap_results[m][k] for m in CNN_METHODS[1:])
    well = min(fr, ft) > 0.5
    print(f"- Digits 5-9 at {BIG}x{BIG} from {k} labels per class: the transferred CNN scored {fr:.4f} frozen and "
          f"{ft:.4f} fine-tuned, " + ("both well above" if well else "NOT both well above")
          + f" chance (0.2); the best of them is {compare(max(fr, ft), sc)} the CNN trained from scratch ({sc:.4f}).")
