"""Transfer learning with scratchnn: digits 0-4 -> digits 5-9 from 50 labelled images per class.

    python examples/transfer_learning.py --data-dir /path/to/mnist

The full study (several label budgets and subsets, fine-tuning, a GAP CNN on 36x36 images) is
``scratchnn experiment transfer``; this script is the recipe in a few lines.
"""
import argparse

import numpy as np

import scratchnn as snn
from scratchnn.datasets import load_mnist, scale
from scratchnn.layers import Dense, Flatten, ReLU
from scratchnn.optimizers import Adam
from scratchnn.transfer import extract_features, new_head_model, unfreeze

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir")
args = parser.parse_args()
(X, y), (Xt, yt) = load_mnist(args.data_dir)
X, Xt = scale(X)[:, None], scale(Xt)[:, None]
rng = np.random.default_rng(0)

# 1. a network trained on digits 0-4
snn.set_seed(0)
src = np.flatnonzero(y < 5)[:12000]
base = snn.Sequential([Flatten(), Dense(256, init="he_normal"), ReLU(), Dense(128, init="he_normal"), ReLU(), Dense(5)])
base.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
base.fit(X[src], y[src], epochs=5, batch_size=64, verbose=0, seed=0)

# 2. 50 labelled images per class of digits 5-9 (labels 0-4), tested on all test images of 5-9
few = np.concatenate([rng.choice(np.flatnonzero(y == d), 50, replace=False) for d in range(5, 10)])
test = np.flatnonzero(yt >= 5)
print("features of the last hidden layer:", extract_features(base, X[few]).shape)

# 3. frozen base + new head, then fine-tuning with a 10x smaller learning rate
model = new_head_model(base, [Dense(5)], n_drop=1)
model.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
model.fit(X[few], y[few] - 5, epochs=40, batch_size=32, verbose=0, seed=0)
print("frozen base + new head:", model.evaluate(Xt[test], yt[test] - 5)["accuracy"])
unfreeze(model)
model.compile(optimizer=Adam(1e-4), loss="softmax_cross_entropy")
model.fit(X[few], y[few] - 5, epochs=40, batch_size=32, verbose=0, seed=0)
print("fine-tuned end to end: ", model.evaluate(Xt[test], yt[test] - 5)["accuracy"])

# 4. the same network from scratch on the 250 images
snn.set_seed(1)
scratch = snn.Sequential([Flatten(), Dense(256, init="he_normal"), ReLU(), Dense(128, init="he_normal"), ReLU(),
                          Dense(5)])
scratch.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
scratch.fit(X[few], y[few] - 5, epochs=40, batch_size=32, verbose=0, seed=0)
print("from scratch:          ", scratch.evaluate(Xt[test], yt[test] - 5)["accuracy"])
