"""scratchnn: neural networks from first principles on NumPy.

Example:
    >>> import scratchnn as snn
    >>> from scratchnn.layers import Dense, ReLU
    >>> model = snn.Sequential([Dense(100), ReLU(), Dense(10)])
    >>> model.compile(optimizer=snn.optimizers.SGD(lr=0.1), loss="softmax_cross_entropy")
    >>> history = model.fit(X_train, y_train, epochs=5, validation_data=(X_val, y_val))
"""
from . import backend, callbacks, errors, initializers, layers, losses, optimizers, parallel, regularizers, schedules
from .backend import set_default_dtype, set_seed
from .errors import ScratchnnError, TrainingDivergedError
from .model import Sequential
from .parallel import get_num_threads, set_num_threads
from .saving import load

__version__ = "0.1.0"

__all__ = ["Sequential", "load", "set_seed", "set_default_dtype", "set_num_threads", "get_num_threads",
           "ScratchnnError", "TrainingDivergedError", "errors", "layers", "losses", "optimizers", "schedules", "initializers", "regularizers",
           "callbacks", "backend", "parallel"]
