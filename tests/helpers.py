"""Small fixtures shared by several test modules (importable because pytest puts tests/ on sys.path)."""
import numpy as np

from scratchnn.datasets import write_idx


def write_mnist_files(root, n_train=300, n_test=50, seed=0):
    """Random 28x28 IDX files (labels 0-9) in MNIST's layout under ``root``, which is created."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for name, shape in [("train-images-idx3-ubyte", (n_train, 28, 28)), ("t10k-images-idx3-ubyte", (n_test, 28, 28))]:
        write_idx(root / f"{name}.gz", rng.integers(0, 256, shape, dtype=np.uint8), gz=True)
    for name, n in [("train-labels-idx1-ubyte", n_train), ("t10k-labels-idx1-ubyte", n_test)]:
        write_idx(root / f"{name}.gz", rng.integers(0, 10, n, dtype=np.uint8), gz=True)
    return root
