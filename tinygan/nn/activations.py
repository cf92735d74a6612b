"""Elementwise activations. Each backward is the chain rule with the local slope f'(x)."""
from .. import backend
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
        self.check(x)
        y = backend.get_array_module(x).maximum(x, 0)
        self.cache = y
        return y

    def backward(self, grad_output, need_input_grad=True):
        y, self.cache = self.cache, None
        return grad_output * (y > 0) if need_input_grad else None


class LeakyReLU(_Activation):
    """y = x if x > 0 else a x;  dL/dx = g * (1 if x > 0 else a).

    For 0 <= a <= 1 this is y = max(x, a x): two passes over memory instead of three.
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        self.check(x)
        xp = backend.get_array_module(x)
        y = x * x.dtype.type(self.negative_slope)
        if 0 <= self.negative_slope <= 1:
            xp.maximum(y, x, out=y)
        else:
            y = xp.where(x > 0, x, y)
        self.cache = y                 # y > 0 exactly where x > 0
        return y

    def backward(self, grad_output, need_input_grad=True):
        y, self.cache = self.cache, None
        if not need_input_grad:
            return None
        xp = backend.get_array_module(grad_output)
        dx = grad_output * grad_output.dtype.type(self.negative_slope)
        xp.copyto(dx, grad_output, where=y > 0)
        return dx


class Tanh(_Activation):
    """y = tanh(x);  dL/dx = g * (1 - y^2)."""

    def forward(self, x):
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
