"""Layers: each follows the contract in ``scratchnn.layers.base``.

The layers below are registered by name (``register``), which is what ``scratchnn.load`` and TOML/YAML
model files resolve; register a layer of your own the same way before saving a model that uses it.
"""
from .activations import ELU, LeakyReLU, Maxout, ReLU, Sigmoid, Softmax, Tanh
from .augment import RandomFlip, RandomShift
from .base import LAYERS, Layer, register
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm, BatchNorm2D, Standardize
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .reshape import Flatten, Reshape

__all__ = ["Layer", "LAYERS", "register", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "Softmax",
           "Maxout", "Dropout", "BatchNorm", "BatchNorm2D", "Standardize", "RandomShift", "RandomFlip", "Conv2D", "MaxPool2D",
           "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Reshape"]

for _cls in (Dense, ReLU, LeakyReLU, Sigmoid, Tanh, ELU, Softmax, Maxout, Dropout, BatchNorm, BatchNorm2D, Standardize,
             RandomShift, RandomFlip, Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten, Reshape):
    register(_cls)
