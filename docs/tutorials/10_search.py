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
# # 10. Random hyperparameter search on a validation set
#
# Training learns the weights; it does not learn the learning rate, the penalty strength or the
# width of a layer. Those *hyperparameters* are chosen by trying: draw a configuration, train a
# network with it, score the network on held-out data, repeat, keep the best. Two choices decide
# whether that works:
#
# - **how to draw**: at random rather than on a grid (Bergstra & Bengio, 2012: when only a few of
#   the hyperparameters matter, $N$ random trials try $N$ different values of each, a grid only
#   $N^{1/d}$), and on the right scale, log-uniform for learning rates and penalties;
# - **where to score**: on a *validation* split of the training data, never on the test set. The
#   best of $N$ scores is biased upwards, because the winner is partly the trial that was lucky on
#   that particular set, so the set used to choose cannot also say how good the choice is.
#
# `scratchnn.search` samples the configurations, runs the trials on an *executor* (`"serial"`,
# `"thread"`, `"process"` or `"dask"`), records every trial and picks the best on
# `val_accuracy`. We run a search locally and on a Dask cluster, and measure the optimism of the
# best-of-$N$ score.

# %%
import hashlib
import json
import os
import shutil
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np

import scratchnn as snn
from scratchnn import initializers
from scratchnn.datasets import load_mnist, scale
from scratchnn.layers import Dense, ReLU
from scratchnn.optimizers import SGD
from scratchnn.regularizers import L2
from scratchnn.search import Choice, LogUniform, Uniform, random_search, sample_configs

QUICK = os.environ.get("SCRATCHNN_DOCS_QUICK") == "1"
if QUICK:
    print("This page was built with reduced sizes (SCRATCHNN_DOCS_QUICK=1): its numbers are a smoke test, "
          "not the lesson.")
snn.set_seed(0)

# %% [markdown]
# ## Why log-uniform for learning rates
#
# A sensible range for a learning rate spans four decades, $10^{-4}$ to $1$, and what matters is
# its order of magnitude: 0.001 and 0.002 behave very differently, 0.501 and 0.502 do not. A uniform
# draw over $[10^{-4}, 1]$ puts 90% of the samples in the top decade $[0.1, 1]$ and almost none
# below 0.01. `LogUniform` draws $\log \eta$ uniformly, so every decade gets a quarter of the
# trials. `sample_configs` shows what a search would draw, before anything trains.

# %%
n_draws = 2000
uniform_lrs = np.array([c["lr"] for c in sample_configs({"lr": Uniform(1e-4, 1.0)}, n_draws, seed=0)])
log_lrs = np.array([c["lr"] for c in sample_configs({"lr": LogUniform(1e-4, 1.0)}, n_draws, seed=0)])
bins = np.logspace(-4, 0, 25)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(uniform_lrs, bins=bins, alpha=0.6, label="Uniform(1e-4, 1)")
ax.hist(log_lrs, bins=bins, alpha=0.6, label="LogUniform(1e-4, 1)")
ax.set(xscale="log", xlabel="learning rate", ylabel=f"count of {n_draws} draws", title="the same range, two scales")
ax.legend()
plt.show()
frac_low = {name: float(np.mean(v < 1e-2)) for name, v in (("uniform", uniform_lrs), ("log-uniform", log_lrs))}
print(f"draws below 0.01: uniform {frac_low['uniform']:.1%}, log-uniform {frac_low['log-uniform']:.1%}")

# %% [markdown]
# ## The data: training, validation (selection), fresh, test
#
# From MNIST's 60,000 training images we take a training set, a small **selection** set (the
# validation split the search scores on) and a large **fresh** set that no trial and no choice ever
# sees; it exists only to measure how good the chosen network really is, and how far the selection
# score overstates it. The 10,000 test images are read once, at the very end. The selection set is
# deliberately small (a few hundred images, as when labels are scarce): that makes the optimism
# large enough to see.

# %%
(X_all, y_all), (X_test_all, y_test_all) = load_mnist()
n_train, n_sel, n_fresh, n_test = (1000, 300, 2000, 2000) if QUICK else (10000, 300, 10000, 10000)
epochs, n_trials, n_dask = (2, 8, 4) if QUICK else (4, 30, 8)
order = np.random.default_rng(0).permutation(len(X_all))
X_flat = scale(X_all).reshape(len(X_all), -1)
i_train, i_sel, i_fresh = np.split(order[:n_train + n_sel + n_fresh], [n_train, n_train + n_sel])
X_train, y_train = X_flat[i_train], y_all[i_train]
X_sel, y_sel = X_flat[i_sel], y_all[i_sel]
X_fresh, y_fresh = X_flat[i_fresh], y_all[i_fresh]
X_test, y_test = scale(X_test_all[:n_test]).reshape(n_test, -1), y_test_all[:n_test]
print(f"training {n_train}, selection (validation) {n_sel}, fresh {n_fresh}, test {n_test} images")

# %% [markdown]
# ## A trial
#
# A trial is a function `train_fn(config) -> dict` with at least `"val_accuracy"`, measured on the
# selection set. Ours trains a one-hidden-layer network with SGD (momentum 0.9) on three
# hyperparameters: the learning rate, an L2 penalty and the hidden width. It seeds everything it
# draws from its *own* generators (the initial weights through an initializer bound to a local
# generator, the shuffling through `fit(seed=...)`) rather than the global `snn.set_seed`, so
# trials running side by side in threads cannot disturb each other and every executor gives the
# same numbers. It also saves its network, so we can look at all of them afterwards.

# %%
workdir = tempfile.mkdtemp(prefix="scratchnn-search-")


def model_path(config):
    key = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(workdir, "models", f"{key}.npz")


def seeded(init_name, seed):
    """An initializer that draws from its own generator, seeded, instead of scratchnn's global one."""
    rng = np.random.default_rng(seed)
    init = initializers.get(init_name)
    return lambda shape, fan_in, fan_out, _rng, dtype: init(shape, fan_in, fan_out, rng, dtype)


def train_fn(config):
    model = snn.Sequential([Dense(config["width"], init=seeded("he_normal", 0)), ReLU(),
                            Dense(10, init=seeded("xavier_uniform", 1))])
    model.compile(optimizer=SGD(config["lr"], momentum=0.9), loss="softmax_cross_entropy",
                  regularizer=L2(config["l2"]))
    history = model.fit(X_train, y_train, epochs=epochs, batch_size=64, validation_data=(X_sel, y_sel),
                        verbose=0, seed=0)
    os.makedirs(os.path.dirname(model_path(config)), exist_ok=True)
    model.save(model_path(config))
    return {"val_accuracy": history["val_accuracy"][-1], "val_loss": history["val_loss"][-1],
            "train_accuracy": history["accuracy"][-1]}


space = {"lr": LogUniform(1e-4, 1.0), "l2": LogUniform(1e-6, 1e-2), "width": Choice([32, 64, 128])}

# %% [markdown]
# ## Running the search locally
#
# `executor="serial"` runs the trials one after the other in this process. `"thread"` runs them in
# a pool of threads, and `"process"` (the default) in spawned processes, which pickle `train_fn`:
# that needs a function defined in a module (a script or a package), not in a notebook; a dict of
# base settings such as `{"dataset": "mnist", "model": "mlp-128-64", "epochs": 4}` works with every
# executor (see the [search guide](../guide/search.md)). A learning rate large enough to make the
# loss overflow ends its trial with status `"diverged"` (a `TrainingDivergedError` caught by the
# search): the search goes on, and such a trial can never be the best.

# %%
result = random_search(space, train_fn, n_trials=n_trials, seed=0, executor="serial",
                       out_dir=os.path.join(workdir, "search"), verbose=False)
print(result)
for r in result.trials:
    c = r["config"]
    what = f"val_accuracy {r['metrics']['val_accuracy']:.4f}" if r["status"] == "ok" else r["status"].upper()
    print(f"trial {r['trial']:2d}: lr {c['lr']:.2e}  l2 {c['l2']:.1e}  width {c['width']:3d}  -> {what}")
print("best:", result.best["trial"], result.best_config)
print("files written:", ", ".join(os.path.basename(f) for f in result.files))

# %% [markdown]
# The learning rate dominates: accuracy climbs with it over several decades, then falls off a
# cliff where SGD becomes unstable. A log axis shows all of it; on a linear axis everything below
# 0.1 would be squeezed against zero.

# %%
ok = [r for r in result.trials if r["status"] == "ok"]
bad = [r for r in result.trials if r["status"] != "ok"]
fig, ax = plt.subplots(figsize=(7, 4))
for width, color in zip((32, 64, 128), ("tab:blue", "tab:orange", "tab:green")):
    rows = [r for r in ok if r["config"]["width"] == width]
    ax.scatter([r["config"]["lr"] for r in rows], [r["metrics"]["val_accuracy"] for r in rows], color=color,
               label=f"width {width}")
if bad:
    ax.scatter([r["config"]["lr"] for r in bad], [0.0] * len(bad), marker="x", color="tab:red",
               label="diverged / failed")
ax.scatter([result.best["config"]["lr"]], [result.best["metrics"]["val_accuracy"]], s=160, facecolors="none",
           edgecolors="k", label="best (chosen)")
ax.set(xscale="log", xlabel="learning rate", ylabel="validation (selection) accuracy", ylim=(-0.03, 1.0),
       title=f"{n_trials} random trials")
ax.legend(fontsize=8, loc="center left")
plt.show()

# %% [markdown]
# ## The optimism of the best of N
#
# Score every trained network on the fresh set, which played no part in the choice. The same few
# hundred selection images score every trial, so they may be a little easier (or harder) than
# average for all the networks alike: the average gap over all trials measures that. The *best*
# trial's gap is larger still, because among near-equal networks the winner tends to be the one
# those particular images happened to favour.

# %%
def correctness(record, X, y):
    model = snn.load(model_path(record["config"]))
    return model.predict_classes(X) == y


sel_acc = np.array([r["metrics"]["val_accuracy"] for r in ok])
fresh_correct = np.array([correctness(r, X_fresh, y_fresh) for r in ok])
fresh_acc = fresh_correct.mean(axis=1)
best_i = int(np.argmax(sel_acc))  # the search's choice (ties: the first trial, as random_search does)
best_gap = sel_acc[best_i] - fresh_acc[best_i]
mean_gap_all = float(np.mean(sel_acc - fresh_acc))
oracle = int(np.argmax(fresh_acc))
print(f"chosen trial {ok[best_i]['trial']}: selection accuracy {sel_acc[best_i]:.4f}, fresh accuracy "
      f"{fresh_acc[best_i]:.4f} (gap {best_gap:+.4f})")
print(f"average gap over all {len(ok)} finished trials: {mean_gap_all:+.4f}")
print(f"the truly best trial on the fresh set was trial {ok[oracle]['trial']} with {fresh_acc[oracle]:.4f}")

fig, ax = plt.subplots(figsize=(5, 5))
good = fresh_acc > fresh_acc.max() - 0.08  # the competitive trials
lo = min(sel_acc[good].min(), fresh_acc[good].min()) - 0.01
ax.plot([lo, 1], [lo, 1], color="0.6", lw=1, label="no gap")
ax.scatter(fresh_acc[good], sel_acc[good], label="trial")
ax.scatter([fresh_acc[best_i]], [sel_acc[best_i]], s=160, facecolors="none", edgecolors="k", label="chosen")
hi = max(sel_acc[good].max(), fresh_acc[good].max()) + 0.01
ax.plot([lo, hi], [lo + mean_gap_all, hi + mean_gap_all], "--", color="0.6", lw=1, label="average gap")
ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"fresh accuracy ({n_fresh} images)",
       ylabel=f"selection accuracy ({n_sel} images)", title="the competitive trials: above the diagonal flatters")
ax.legend()
plt.show()

# %% [markdown]
# One search is one draw of that gap. Because we kept every network, we can replay the choice many
# times: pool the selection and fresh images, split them at random into a new selection set of
# $n$ images and a fresh rest, let $N$ of the trained networks compete on the selection set,
# and record how much the winner's selection score exceeds its fresh score. The average over 500
# replays is the expected optimism of the best of $N$: zero for $N = 1$, growing with $N$, and
# shrinking as the selection set grows.

# %%
pool_correct = np.concatenate([np.array([correctness(r, X_sel, y_sel) for r in ok]), fresh_correct], axis=1)
contenders = pool_correct[pool_correct.mean(axis=1) > 0.5]  # the networks that trained
replay_rng = np.random.default_rng(1)
n_values = [n for n in (1, 2, 4, 8, 16, 32) if n <= len(contenders)]
sizes = [s for s in (100, 300, 1000, 3000) if s < pool_correct.shape[1] // 2]
optimism = {}
for size in sizes:
    for n in n_values:
        gaps = []
        for _ in range(500):
            perm = replay_rng.permutation(pool_correct.shape[1])
            models = replay_rng.choice(len(contenders), n, replace=False)
            sel = contenders[models][:, perm[:size]].mean(axis=1)
            w = models[np.argmax(sel)]
            gaps.append(sel.max() - contenders[w, perm[size:]].mean())
        optimism[(size, n)] = float(np.mean(gaps))
fig, ax = plt.subplots(figsize=(6.5, 4))
for size in sizes:
    ax.plot(n_values, [100 * optimism[(size, n)] for n in n_values], "o-", label=f"selection set of {size}")
ax.axhline(0, color="0.6", lw=0.8)
ax.set(xscale="log", xticks=n_values, xticklabels=n_values, xlabel="N trials competing",
       ylabel="selection − fresh accuracy (points)", title="expected optimism of the best of N (500 replays)")
ax.legend()
plt.show()
for size in sizes:
    print(f"selection set of {size:4d}: " + ", ".join(f"N={n}: {100 * optimism[(size, n)]:+.2f}" for n in n_values))

# %% [markdown]
# That is the whole argument for a separate test set: the number that chose the model is spent.
# The chosen network is evaluated on the test images once, and that is the number to report.

# %%
chosen = snn.load(model_path(result.best_config))
chosen.compile(loss="softmax_cross_entropy")
test_acc = chosen.evaluate(X_test, y_test)["accuracy"]
print(f"chosen configuration {result.best_config}: selection {sel_acc[best_i]:.4f}, fresh {fresh_acc[best_i]:.4f}, "
      f"test {test_acc:.4f}")

# %% [markdown]
# ## The same search on a Dask cluster
#
# With `executor="dask"` the trials are submitted to a Dask cluster; the call is the same. Here
# a `LocalCluster` of two workers in this process (`processes=False`, so the workers share this
# notebook's data and function; on a real cluster each worker needs scratchnn and the data, and
# `scheduler="tcp://host:8786"` names the scheduler). Configurations depend only on the seed and
# the trial number, so asking for the first `n_dask` trials draws the same configurations, and the
# trials, seeded on their own, give the same accuracies as the serial run, in whatever order the
# workers finish them.
#
# Dask ships each task with its function and everything the function refers to: here the training
# arrays, about 30 MB per trial, which Dask warns about (we silence that warning). On a real
# cluster, let each worker load its data once instead, as the base-settings trials of
# `scratchnn.search` do.

# %%
try:
    from distributed import Client, LocalCluster
except ImportError:
    Client = None
    print("dask.distributed is not installed (pip install 'scratchnn[dask]'): skipping the Dask run")
if Client is not None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        dask_result = random_search(space, train_fn, n_trials=n_dask, seed=0, executor="dask", scheduler=client,
                                    verbose=False)
    print(dask_result)
    same = [(r["config"] == s["config"]) and r["status"] == s["status"] and
            (r["status"] != "ok" or r["metrics"]["val_accuracy"] == s["metrics"]["val_accuracy"])
            for r, s in zip(dask_result.trials, result.trials[:n_dask])]
    for r in dask_result.trials:
        what = f"{r['metrics']['val_accuracy']:.4f}" if r["status"] == "ok" else r["status"]
        print(f"dask trial {r['trial']}: lr {r['config']['lr']:.2e} -> {what}")
    print(f"{sum(same)} of {n_dask} Dask trials identical to the serial run")
else:
    dask_result, same = None, []
shutil.rmtree(workdir)

# %% [markdown]
# ## What this showed

# %%
best = result.best
print(f"- Over [1e-4, 1], a uniform draw put {frac_low['uniform']:.1%} of learning rates below 0.01, a log-uniform "
      f"draw {frac_low['log-uniform']:.1%}.")
print(f"- Of {n_trials} random trials, {len(ok)} finished and {result.n_diverged} diverged; the best on the "
      f"{n_sel}-image selection set was trial {best['trial']} (lr {best['config']['lr']:.2g}, "
      f"l2 {best['config']['l2']:.1g}, width {best['config']['width']}) with {sel_acc[best_i]:.2%}.")
if best_gap > max(mean_gap_all, 0):
    print(f"- Its accuracy on {n_fresh} fresh images was {fresh_acc[best_i]:.2%}: the selection score overstated it by "
          f"{100 * best_gap:.2f} points, more than the {100 * mean_gap_all:+.2f} points of the average trial (how much "
          f"easier, or harder, these {n_sel} images were for every network).")
else:
    print(f"- Its accuracy on {n_fresh} fresh images was {fresh_acc[best_i]:.2%} (gap {100 * best_gap:+.2f} points, "
          f"average trial {100 * mean_gap_all:+.2f}): this one search does not show the optimism (one draw of a noisy "
          f"gap; the replays measure its average).")
largest_n = n_values[-1]
grows = all(optimism[(s, largest_n)] > optimism[(s, 1)] for s in sizes)
shrinks = optimism[(sizes[0], largest_n)] > optimism[(sizes[-1], largest_n)]
print(f"- Averaged over 500 replays, the best of {largest_n} networks overstated its accuracy by "
      f"{100 * optimism[(sizes[0], largest_n)]:.2f} points on a selection set of {sizes[0]} images and by "
      f"{100 * optimism[(sizes[-1], largest_n)]:.2f} points on {sizes[-1]}; against "
      f"{100 * optimism[(sizes[0], 1)]:+.2f} for a single network. "
      + ("The optimism grew with N and shrank with the selection set's size."
         if grows and shrinks else "These numbers do not show the optimism cleanly growing with N and shrinking "
                                   "with the selection set's size."))
print(f"- The chosen network's test accuracy, measured once: {test_acc:.2%}.")
if dask_result is not None:
    print(f"- On a local Dask cluster of 2 workers the same call ran {n_dask} trials; {sum(same)} of {n_dask} gave "
          f"exactly the serial run's configuration and validation accuracy.")
