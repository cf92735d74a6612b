"""Neural-network modules with hand-written backward passes (NCHW, PyTorch-compatible)."""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid
from .batchnorm import BatchNorm2d
from .conv import Conv2d, ConvTranspose2d
from .linear import Flatten, Linear, Reshape
from .module import Module, Parameter, Sequential
from .pool import AdaptiveAvgPool2d, AvgPool2d, Concat, MaxPool2d, concat_channels

__all__ = ["Module", "Parameter", "Sequential", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU",
           "LeakyReLU", "Tanh", "Sigmoid", "sigmoid", "Linear", "Flatten", "Reshape", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Concat", "concat_channels"]
