"""Linear, Flatten and Reshape."""
import math

from .. import backend
from .module import Module, Parameter


class Linear(Module):
    """y = x W^T + b, weight (out, in).  dL/dW = g^T x,  dL/db = sum_n g,  dL/dx = g W.

    in_features, out_features: the sizes of x's and y's last axis; bias: learn b (out,);
    rng: seed or tinygan Generator for PyTorch's default init; dtype: of the parameters.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=backend.DEFAULT_DTYPE):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        if min(self.in_features, self.out_features) < 1:
            raise ValueError(f"Linear: in_features and out_features must be >= 1, got {in_features}, "
                             f"{out_features}")
        rng = backend.default_rng(rng)
        bound = 1.0 / math.sqrt(self.in_features)   # PyTorch's default initialisation
        self.weight = Parameter(rng.uniform((out_features, in_features), -bound, bound, dtype=dtype))
        self.bias = Parameter(rng.uniform((out_features,), -bound, bound, dtype=dtype)) if bias else None

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, x):
        """x (N, in) -> y (N, out)."""
        self.check_input(x, 2, self.in_features, layout="(N, C)")
        self.cache = x
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad_output, need_input_grad=True):
        x, self.cache = self.cache, None
        if self.weight.requires_grad:
            self.weight.accumulate(grad_output.T @ x)
            if self.bias is not None:
                self.bias.accumulate(grad_output.sum(axis=0))
        return grad_output @ self.weight.data if need_input_grad else None


class Reshape(Module):
    """Reshape every sample to ``shape`` (the batch axis is kept; one entry may be -1); backward reshapes back."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def extra_repr(self):
        return ", ".join(map(str, self.shape))

    def forward(self, x):
        """x (N, ...) -> (N, *shape), the same numbers."""
        backend.check_array(x, repr(self))
        per_sample = math.prod(x.shape[1:])
        known = math.prod(s for s in self.shape if s != -1)
        fits = per_sample % known == 0 if -1 in self.shape else per_sample == known
        if self.shape.count(-1) > 1 or not fits:
            raise ValueError(f"{self!r}: cannot reshape input {tuple(x.shape)} to (N, "
                             f"{', '.join(map(str, self.shape))})")
        self.cache = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, grad_output, need_input_grad=True):
        shape, self.cache = self.cache, None
        return grad_output.reshape(shape) if need_input_grad else None


class Flatten(Reshape):
    """(N, C, H, W) -> (N, C*H*W)."""

    def __init__(self):
        super().__init__(-1)

    def extra_repr(self):
        return ""
