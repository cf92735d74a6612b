"""Neural-network modules with hand-written backward passes (NCHW, PyTorch-compatible).

Each layer's forward and backward are the reference path, the code to read. The
layers run the fast path (tinygan.nn.fast: the same arithmetic, organised for
speed) unless ``tinygan.nn.use_path("reference")`` or ``TINYGAN_PATH=reference``
selects the reference path everywhere.
"""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from .batchnorm import BatchNorm2d
from .conv import Conv2d, ConvTranspose2d
from .fast import path, use as use_path
from .linear import Flatten, Linear, Reshape
from .module import Module, Parameter, Sequential
from .pool import AdaptiveAvgPool2d, AvgPool2d, Concat, MaxPool2d, concat_channels

__all__ = ["Module", "Parameter", "Sequential", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU",
           "LeakyReLU", "Tanh", "Sigmoid", "sigmoid", "Linear", "Flatten", "Reshape", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Concat", "concat_channels", "path", "use_path"]
