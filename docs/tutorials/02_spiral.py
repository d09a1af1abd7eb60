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
# # 2. A first network on the spiral
#
# The smallest data set that shows why networks need hidden layers is the spiral: three arms of
# points in the plane, one class per arm, wound around each other. We first fit the best *linear*
# classifier there is, a softmax over three affine scores, and watch it fail; then we add one
# hidden layer of ReLU units and watch the same training loop draw the arms.
#
# Both models are trained the same way: full-batch gradient descent on the mean softmax
# cross-entropy plus an L2 penalty on the weights,
#
# $$
# L = \frac{1}{N}\sum_{i=1}^{N} -\log \frac{e^{s_{i, y_i}}}{\sum_k e^{s_{ik}}}
#     \;+\; \lambda \sum_{\ell} \lVert W_\ell \rVert^2 ,
# $$
#
# where $s_i$ are the network's three scores (logits) for point $x_i$.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_spiral
from scratchnn.layers import Dense, ReLU
from scratchnn.optimizers import SGD
from scratchnn.regularizers import L2

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("Built with SCRATCHNN_DOCS_QUICK=1: reduced sizes, so the numbers below are a smoke test, not the lesson.")

N_PER_CLASS = 100
EPOCHS_LINEAR = 200 if QUICK else 300   # full-batch steps: one epoch is one update
EPOCHS_HIDDEN = 800 if QUICK else 3000
HIDDEN = 100
LR, L2_STRENGTH = 1.0, 1e-3

# %% [markdown]
# ## The data
#
# `load_spiral` places arm $k$'s points at radii evenly spaced in $[0, 1]$ and angles running
# from $4k$ to $4(k+1)$ radians, plus Gaussian noise on the angle. Each arm turns by more than
# half a circle, so every straight line through the plane cuts every arm. We draw a second set of
# points with a different noise seed to measure accuracy on points the models never saw.

# %%
X, y = load_spiral(n_per_class=N_PER_CLASS, seed=0)
X_test, y_test = load_spiral(n_per_class=N_PER_CLASS, seed=1)
print(f"X: {X.shape} {X.dtype}, y: {y.shape}, classes {np.bincount(y).tolist()}; "
      f"coordinates within [{X.min():.2f}, {X.max():.2f}]")

colors = np.array(["tab:blue", "tab:orange", "tab:green"])
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(X[:, 0], X[:, 1], c=colors[y], s=12, edgecolors="k", linewidths=0.3)
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="The 3-class spiral", aspect="equal")
plt.show()

# %% [markdown]
# ## A linear softmax classifier
#
# A linear classifier gives class $k$ the score $s_k = w_k \cdot x + b_k$ and predicts the
# class with the largest score. The region where it predicts $k$ is
#
# $$
# R_k = \{x : (w_k - w_j)\cdot x + (b_k - b_j) \ge 0 \ \text{for all } j\},
# $$
#
# an intersection of half-planes, hence **convex**: the plane is cut into three wedges by straight
# lines. No convex region can hold a whole spiral arm, so no choice of $W$ and $b$ can classify
# the spiral well, however long we train. In scratchnn this model is a single `Dense(3)`
# layer; the softmax lives in the loss.


# %%
def train(layers, epochs, seed=0):
    """Full-batch gradient descent on the spiral; returns the model and its History."""
    snn.set_seed(seed)
    model = snn.Sequential(layers)
    model.compile(optimizer=SGD(lr=LR), loss="softmax_cross_entropy", regularizer=L2(L2_STRENGTH))
    history = model.fit(X, y, epochs=epochs, batch_size=len(X), verbose=0, seed=seed)
    return model, history


linear, hist_linear = train([Dense(3)], EPOCHS_LINEAR)
acc_linear = linear.evaluate(X, y)["accuracy"]
test_linear = linear.evaluate(X_test, y_test)["accuracy"]
print(f"linear softmax: training accuracy {acc_linear:.1%}, fresh points {test_linear:.1%} "
      f"(chance is {1 / 3:.1%}); final loss {hist_linear['loss'][-1]:.4f}")

# %% [markdown]
# To see the regions, we ask the model for a class at every point of a fine grid and colour the
# grid by the answer.

# %%
grid_x, grid_y = np.meshgrid(np.linspace(-1.1, 1.1, 300), np.linspace(-1.1, 1.1, 300))
grid = np.column_stack([grid_x.ravel(), grid_y.ravel()]).astype(np.float32)


def plot_regions(model, ax, title):
    regions = model.predict_classes(grid).reshape(grid_x.shape)
    ax.contourf(grid_x, grid_y, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.25)
    ax.contour(grid_x, grid_y, regions, levels=[0.5, 1.5], colors="k", linewidths=0.6)
    ax.scatter(X[:, 0], X[:, 1], c=colors[y], s=10, edgecolors="k", linewidths=0.3)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title, aspect="equal", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))


fig, ax = plt.subplots(figsize=(4.5, 4.5))
plot_regions(linear, ax, f"Linear softmax: {acc_linear:.0%} correct")
plt.show()

# %% [markdown]
# Three wedges meeting at one point: exactly the convex regions the formula predicts. Each wedge
# catches the part of one arm that happens to point its way, and that is all a linear model can do.
#
# ## One hidden layer of ReLU units
#
# Put a layer of $H = 100$ ReLU units between the input and the scores:
#
# $$
# h = \max(0,\, x W_1 + b_1), \qquad s = h W_2 + b_2 .
# $$
#
# Each hidden unit is zero on one side of the line $x \cdot w_{1,j} + b_{1,j} = 0$ and grows
# linearly on the other, so the scores are *piecewise* linear functions of $x$ with a kink along
# every unit's line. With a hundred lines the plane is cut into hundreds of small convex cells,
# each with its own linear scores, and their union can follow a curved arm. The training loop is
# unchanged: only the list of layers grows. The hidden weights use He initialization
# ($\mathcal{N}(0, 2/\text{fan-in})$), the usual choice in front of a ReLU.

# %%
net, hist_net = train([Dense(HIDDEN, init="he_normal"), ReLU(), Dense(3)], EPOCHS_HIDDEN)
acc_net = net.evaluate(X, y)["accuracy"]
test_net = net.evaluate(X_test, y_test)["accuracy"]
net.summary()
print(f"one hidden layer: training accuracy {acc_net:.1%}, fresh points {test_net:.1%}; "
      f"final loss {hist_net['loss'][-1]:.4f}")

# %% [markdown]
# ## The decision boundary over the grid
#
# On the right, the same picture for the network, with the lines where individual hidden units
# switch on drawn faintly: the boundary between classes is made of pieces of those lines.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
plot_regions(linear, axes[0], f"Linear softmax: {acc_linear:.0%} correct")
plot_regions(net, axes[1], f"{HIDDEN} ReLU units: {acc_net:.0%} correct")
W1, b1 = net.layers[0].params["W"], net.layers[0].params["b"]
t = np.linspace(-1.1, 1.1, 2)
for j in range(HIDDEN):
    w_a, w_b = W1[:, j]
    if abs(w_b) > abs(w_a):   # x2 = -(w_a x1 + b) / w_b
        axes[1].plot(t, -(w_a * t + b1[j]) / w_b, color="0.6", lw=0.4, zorder=0)
    else:                     # x1 = -(w_b x2 + b) / w_a
        axes[1].plot(-(w_b * t + b1[j]) / w_a, t, color="0.6", lw=0.4, zorder=0)
axes[1].set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The training loss
#
# Each epoch here is a single full-batch step, so the curve is the loss after every update. The
# linear model flattens out at a high loss: it has found the best wedges and nothing better exists.
# The network keeps descending long after that level and settles where the data loss and the
# L2 penalty balance.

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(np.arange(1, len(hist_linear["loss"]) + 1), hist_linear["loss"], label="linear softmax")
ax.plot(np.arange(1, len(hist_net["loss"]) + 1), hist_net["loss"], label=f"{HIDDEN} ReLU units")
ax.set(xscale="log", xlabel="update (full-batch epoch)", ylabel="loss (cross-entropy + L2)",
       title="Training loss on the spiral")
ax.grid(True, alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ## What this showed

# %%
lin_floor = hist_linear["loss"][-1]
below = next((i + 1 for i, v in enumerate(hist_net["loss"]) if v < lin_floor), None)
print(f"- A linear softmax classifier reached {acc_linear:.1%} training accuracy on the 3-class spiral "
      f"({test_linear:.1%} on fresh points) after {EPOCHS_LINEAR} full-batch steps: its regions are three "
      f"convex wedges, and its loss levelled off at {lin_floor:.3f}.")
if acc_net > acc_linear + 0.2:
    print(f"- One hidden layer of {HIDDEN} ReLU units, trained the same way for {EPOCHS_HIDDEN} steps, reached "
          f"{acc_net:.1%} training accuracy and {test_net:.1%} on fresh points, "
          f"{100 * (acc_net - acc_linear):.0f} percentage points above the linear model: its piecewise-linear boundary follows the arms.")
else:
    print(f"- One hidden layer of {HIDDEN} ReLU units reached only {acc_net:.1%} here (linear: {acc_linear:.1%}); "
          f"{EPOCHS_HIDDEN} steps were not enough to show the gap clearly.")
if below is not None:
    print(f"- The network's loss fell below the linear model's final loss after {below} updates and ended at "
          f"{hist_net['loss'][-1]:.3f}.")
else:
    print(f"- The network's loss ({hist_net['loss'][-1]:.3f}) never fell below the linear model's final loss "
          f"({lin_floor:.3f}) in this run.")
