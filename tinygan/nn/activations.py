"""Elementwise activations. Each backward is the chain rule with the local slope f'(x).

ReLU and LeakyReLU call the path's set of array functions (tinygan.nn.paths); tanh and the
sigmoid are one line each and the same on both paths.
"""
from .. import backend
from . import paths
from .module import Module


class _Activation(Module):
    """Shared input check: activations accept any shape of floating array."""

    def check(self, x):
        backend.check_array(x, repr(self))
        if x.dtype.kind != "f":
            raise TypeError(f"{self!r}: expected a floating-point input, got dtype {x.dtype}")


class ReLU(_Activation):
    """y = max(x, 0);  dL/dx = g * [x > 0]."""

    def forward(self, x):
        """x of any shape -> max(x, 0), elementwise."""
        self.check(x)
        path = paths.path()                         # "fast" or "reference"
        ops = paths.functions(path)                 # tinygan.nn.fast or tinygan.nn.reference
        y, saved = ops.relu_forward(x)
        self.cache = (path, saved)                  # the backward takes the path that made the forward
        return y

    def backward(self, grad_output, need_input_grad=True):
        (path, saved), self.cache = self.cache, None
        ops = paths.functions(path)                 # the set of functions that made the forward
        return ops.relu_backward(grad_output, saved) if need_input_grad else None


class LeakyReLU(_Activation):
    """y = x if x > 0 else a x;  dL/dx = g * (1 if x > 0 else a).  negative_slope: a (D uses 0.2)."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        """x of any shape -> x where x > 0, a x elsewhere."""
        self.check(x)
        path = paths.path()                         # "fast" or "reference"
        ops = paths.functions(path)                 # tinygan.nn.fast or tinygan.nn.reference
        y, saved = ops.leaky_relu_forward(x, self.negative_slope)
        self.cache = (path, saved)
        return y

    def backward(self, grad_output, need_input_grad=True):
        (path, saved), self.cache = self.cache, None
        ops = paths.functions(path)                 # the set of functions that made the forward
        return ops.leaky_relu_backward(grad_output, saved, self.negative_slope) if need_input_grad else None


class Tanh(_Activation):
    """y = tanh(x);  dL/dx = g * (1 - y^2)."""

    def forward(self, x):
        """x of any shape -> tanh(x), in (-1, 1)."""
        self.check(x)
        y = backend.get_array_module(x).tanh(x)
        self.cache = y
        return y

    def backward(self, grad_output, need_input_grad=True):
        y, self.cache = self.cache, None
        return grad_output * (1 - y * y) if need_input_grad else None


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)), computed without overflow;  dL/dx = g * y (1 - y)."""

    def forward(self, x):
        """x of any shape -> 1 / (1 + e^-x), in (0, 1)."""
        self.check(x)
        y = sigmoid(x)
        self.cache = y
        return y

    def backward(self, grad_output, need_input_grad=True):
        y, self.cache = self.cache, None
        return grad_output * (y * (1 - y)) if need_input_grad else None


def sigmoid(x):
    """Stable logistic function: exp of a non-positive number never overflows.

    For x >= 0: 1 / (1 + e^-x);  for x < 0: e^x / (1 + e^x).
    """
    xp = backend.get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
