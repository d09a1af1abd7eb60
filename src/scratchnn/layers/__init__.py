"""Layers: each follows the contract in ``scratchnn.layers.base``."""
from .base import LAYERS, Layer
from .dense import Dense

__all__ = ["Layer", "LAYERS", "Dense"]
