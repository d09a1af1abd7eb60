"""Random search with your own training function, on local processes or a Dask cluster.

    python examples/random_search.py                      # local processes
    python examples/random_search.py tcp://host:8786      # a running Dask scheduler

The training function must be importable by the workers (defined at a module's top level), and it
returns metrics measured on held-out validation data: the search selects on ``val_accuracy``.
"""
import sys

import scratchnn as snn
from scratchnn.datasets import load_spiral, train_val_split
from scratchnn.layers import Dense, Dropout, ReLU
from scratchnn.optimizers import Adam
from scratchnn.regularizers import L2
from scratchnn.search import Choice, IntUniform, LogUniform, Uniform, random_search


def train(config):
    X, y = load_spiral(n_per_class=200, n_classes=3, seed=0)
    (X, y), (Xv, yv) = train_val_split(X, y, val_size=0.25, seed=0, stratify=True)
    snn.set_seed(0)
    model = snn.Sequential([Dense(config["units"], init="he_normal", regularizer=L2(config["l2"])), ReLU(),
                            Dropout(config["dropout"]), Dense(3)])
    model.compile(optimizer=Adam(config["lr"]), loss="softmax_cross_entropy")
    history = model.fit(X, y, epochs=60, batch_size=config["batch_size"], validation_data=(Xv, yv), verbose=0, seed=0)
    return {"val_accuracy": history["val_accuracy"][-1], "train_accuracy": history["accuracy"][-1]}


if __name__ == "__main__":  # needed: process workers import this module
    space = {"lr": LogUniform(1e-4, 1e-1), "l2": LogUniform(1e-6, 1e-1), "units": IntUniform(5, 200),
             "dropout": Uniform(0.0, 0.5), "batch_size": Choice([16, 32, 64])}
    scheduler = sys.argv[1] if len(sys.argv) > 1 else None
    result = random_search(space, train, n_trials=20, seed=0, executor="dask" if scheduler else "process",
                           scheduler=scheduler, out_dir="runs/search-spiral")
    print(result)
