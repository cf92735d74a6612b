"""Neural-network modules with hand-written backward passes (NCHW, PyTorch-compatible).

Each layer holds its parameters and calls one set of array functions: tinygan.nn.reference,
the textbook code to read, or tinygan.nn.fast, the same functions organised for speed (the
default). ``with tinygan.nn.using_path("reference"):`` or ``TINYGAN_PATH=reference`` selects
the reference path (tinygan.nn.paths).
"""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from .batchnorm import BatchNorm2d
from .conv import Conv2d, ConvTranspose2d
from .linear import Flatten, Linear, Reshape
from .module import Module, Parameter, Sequential
from .paths import PATHS, path, using_path
from .pool import AdaptiveAvgPool2d, AvgPool2d, Concat, MaxPool2d, concat_channels

__all__ = ["Module", "Parameter", "Sequential", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU",
           "LeakyReLU", "Tanh", "Sigmoid", "sigmoid", "Linear", "Flatten", "Reshape", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Concat", "concat_channels", "PATHS", "path", "using_path"]
