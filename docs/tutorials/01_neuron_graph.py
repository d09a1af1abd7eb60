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
# # 1. A neuron as a graph of gates
#
# Every network in scratchnn is built from one idea: a function is a graph of small gates, the
# forward pass computes each gate's output from its inputs, and the backward pass sends the
# gradient of the loss back through the same gates by the chain rule, each gate multiplying the
# gradient that arrives at its output by its own *local* derivative.
#
# We take one sigmoid neuron with two inputs,
#
# $$
# f(w, x) = \sigma(w_0 x_0 + w_1 x_1 + w_2), \qquad \sigma(z) = \frac{1}{1 + e^{-z}},
# $$
#
# write it as multiply and add gates, run it forward and backward by hand, and check the result
# against numerical derivatives and against scratchnn's own `Dense` and `Sigmoid` layers.

# %%
import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn.gradcheck import check_layer, numerical_gradient
from scratchnn.layers import Dense, Sigmoid

w = np.array([2.0, -3.0, -3.0])  # w0, w1 and the bias w2
x = np.array([-1.0, -2.0])

# %% [markdown]
# ## Forward: one gate at a time
#
# Each line is one gate. We keep every intermediate value: the backward pass needs them.

# %%
a = w[0] * x[0]          # multiply gate
b = w[1] * x[1]          # multiply gate
c = a + b                # add gate
z = c + w[2]             # add gate (the bias)
f = 1 / (1 + np.exp(-z))  # sigmoid gate
print(f"a = {a}, b = {b}, c = {c}, z = {z}, f = sigma(z) = {f:.4f}")

# %% [markdown]
# ## Backward: the chain rule, gate by gate
#
# Start from $\partial f / \partial f = 1$ and walk back. The local rules are all we need:
#
# - sigmoid: $\partial \sigma / \partial z = \sigma(z)(1 - \sigma(z))$, computed from the output alone;
# - add gate: passes the arriving gradient unchanged to *both* inputs (a gradient distributor);
# - multiply gate: sends each input the arriving gradient times the *other* input (a switcher).

# %%
df = 1.0
dz = df * f * (1 - f)        # sigmoid gate
dc, dw2 = dz * 1.0, dz * 1.0  # add gate: copies
da, db = dc * 1.0, dc * 1.0   # add gate: copies
dw0, dx0 = da * x[0], da * w[0]  # multiply gate: swaps
dw1, dx1 = db * x[1], db * w[1]
grad_w = np.array([dw0, dw1, dw2])
grad_x = np.array([dx0, dx1])
print("df/dw =", grad_w.round(4), " df/dx =", grad_x.round(4))

# %% [markdown]
# ## The graph, with forward values above and gradients below each wire

# %%
fig, ax = plt.subplots(figsize=(9, 3.6))
ax.axis("off")
nodes = {"w0": (0, 3), "x0": (0, 2), "w1": (0, 1), "x1": (0, 0), "w2": (2, -0.6),
         "*1": (1, 2.5), "*2": (1, 0.5), "+1": (2, 1.5), "+2": (3, 1.0), "sig": (4, 1.0), "out": (5, 1.0)}
edges = [("w0", "*1", w[0], dw0), ("x0", "*1", x[0], dx0), ("w1", "*2", w[1], dw1), ("x1", "*2", x[1], dx1),
         ("*1", "+1", a, da), ("*2", "+1", b, db), ("+1", "+2", c, dc), ("w2", "+2", w[2], dw2),
         ("+2", "sig", z, dz), ("sig", "out", f, df)]
for u, v, fwd, bwd in edges:
    (x1_, y1_), (x2_, y2_) = nodes[u], nodes[v]
    ax.annotate("", (x2_, y2_), (x1_, y1_), arrowprops=dict(arrowstyle="->", color="0.5"))
    mx, my = (x1_ + x2_) / 2, (y1_ + y2_) / 2
    ax.text(mx, my + 0.12, f"{fwd:.2f}", color="tab:green", ha="center", fontsize=9)
    ax.text(mx, my - 0.28, f"{bwd:.2f}", color="tab:red", ha="center", fontsize=9)
labels = {"*1": "×", "*2": "×", "+1": "+", "+2": "+", "sig": "σ", "out": "f"}
for name, (px, py) in nodes.items():
    ax.text(px, py, labels.get(name, name), ha="center", va="center", fontsize=12,
            bbox=dict(boxstyle="circle", fc="white", ec="tab:blue"))
ax.set_title("forward values (green) and gradients df/d(wire) (red)")
plt.show()

# %% [markdown]
# ## Check: numerical derivatives
#
# The central difference $(f(w + h e_i) - f(w - h e_i)) / 2h$ needs no calculus at all: if the
# hand-derived gradient is right, the two agree to about $10^{-10}$ in float64.

# %%
def neuron():
    return 1 / (1 + np.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))


num_w = numerical_gradient(neuron, w)
num_x = numerical_gradient(neuron, x)
err_w = np.abs(num_w - grad_w).max()
err_x = np.abs(num_x - grad_x).max()
print(f"numerical df/dw = {num_w.round(4)}, largest difference {err_w:.1e}")
print(f"numerical df/dx = {num_x.round(4)}, largest difference {err_x:.1e}")

# %% [markdown]
# ## The same neuron in scratchnn
#
# A `Dense(1)` layer holds $w_0, w_1$ in `W` (shape `(2, 1)`) and $w_2$ in `b`; `Sigmoid` is the
# last gate. Their `backward` methods are exactly the rules above, written for a whole batch at
# once. `check_layer` runs the same numerical comparison on a layer.

# %%
snn.set_default_dtype("float64")
dense = Dense(1, in_features=2)
dense.params["W"][:, 0] = w[:2]
dense.params["b"][0] = w[2]
sig = Sigmoid()
out = sig.forward(dense.forward(x[None], training=True), training=True)
dx_layers = dense.backward(sig.backward(np.ones((1, 1))))
same = np.allclose(out[0, 0], f) and np.allclose(dense.grads["W"][:, 0], grad_w[:2]) \
    and np.allclose(dense.grads["b"][0], grad_w[2]) and np.allclose(dx_layers[0], grad_x)
print(f"layers: f = {out[0, 0]:.4f}, dW = {dense.grads['W'][:, 0].round(4)}, db = {dense.grads['b'][0]:.4f}, "
      f"dx = {dx_layers[0].round(4)}; same as by hand: {same}")
rng = np.random.default_rng(0)
checks = {name: check_layer(layer, rng.normal(size=(4, 2 if name == "Dense" else 1)))
          for name, layer in [("Dense", Dense(1)), ("Sigmoid", Sigmoid())]}
for name, result in checks.items():
    print(f"{name}: {result.report.splitlines()[0]}")
snn.set_default_dtype("float32")

# %% [markdown]
# ## What this showed

# %%
print(f"- The neuron's output for w = {w.tolist()}, x = {x.tolist()} is f = {f:.4f}.")
print(f"- The chain rule gate by gate gave df/dw = {grad_w.round(4).tolist()} and df/dx = {grad_x.round(4).tolist()}; "
      f"central differences agree within {max(err_w, err_x):.0e}.")
print(f"- scratchnn's Dense + Sigmoid compute the same value and gradients ({'yes' if same else 'NO'}), and "
      f"their gradient checks pass with relative errors of "
      f"{', '.join(f'{r.max_rel_error:.0e}' for r in checks.values())}.")
