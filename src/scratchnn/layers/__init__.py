"""Layers: each follows the contract in ``scratchnn.layers.base``."""
from .activations import ELU, LeakyReLU, Maxout, ReLU, Sigmoid, Softmax, Tanh
from .augment import RandomShift
from .base import LAYERS, Layer
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm, BatchNorm2D, Standardize

__all__ = ["Layer", "LAYERS", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "Softmax", "Maxout",
           "Dropout", "BatchNorm", "BatchNorm2D", "Standardize", "RandomShift"]
from .conv import Conv2D
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .reshape import Flatten, Reshape

__all__ += ["Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Reshape"]
