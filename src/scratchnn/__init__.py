"""scratchnn: neural networks from first principles on NumPy."""
from . import backend, initializers, layers, regularizers
from .backend import set_default_dtype, set_seed

__version__ = "0.1.0"
