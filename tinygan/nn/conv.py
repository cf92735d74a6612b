"""Conv2d and ConvTranspose2d, with the same parameters and numerics as torch.nn.

The arithmetic lives in :mod:`tinygan.nn.functional`; here are the modules
that hold the weights, check the inputs and keep the cache for backward.
"""
import math

from .. import backend
from . import functional as F
from .module import Module, Parameter


def _torch_default_init(shape, fan_in, rng, dtype):
    """PyTorch's default: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(shape, -bound, bound, dtype=dtype)


class _Conv(Module):
    """What Conv2d and ConvTranspose2d share: hyper-parameters, weights, the backward bookkeeping."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, rng, dtype, weight_shape,
                 fan_in):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = F.pair(padding, "padding")
        if min(self.in_channels, self.out_channels, *self.kernel_size, *self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{name}: channels, kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"in={in_channels} out={out_channels} kernel_size={kernel_size} stride={stride} "
                             f"padding={padding}")
        rng = backend.default_rng(rng)
        fan_in = fan_in * self.kernel_size[0] * self.kernel_size[1]
        self.weight = Parameter(_torch_default_init(weight_shape + self.kernel_size, fan_in, rng, dtype))
        self.bias = Parameter(_torch_default_init((self.out_channels,), fan_in, rng, dtype)) if bias else None

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")

    def _accumulate(self, dw, db):
        if dw is not None:
            self.weight.accumulate(dw)
            if self.bias is not None:
                self.bias.accumulate(db)


class Conv2d(_Conv):
    """y[n, o] = b[o] + sum_c W[o, c] * x[n, c]  (cross-correlation), weight (O, C, kh, kw).

    Gradients, with g = dL/dy and cols = im2col(x):
        dL/dW = g^T cols,   dL/db = sum(g),   dL/dx = col2im(g W)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 rng=None, dtype=backend.DEFAULT_DTYPE):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, rng, dtype,
                         weight_shape=(int(out_channels), int(in_channels)), fan_in=int(in_channels))

    def forward(self, x):
        self.check_input(x, 4, self.in_channels)
        h, w = x.shape[2:]
        kh, kw = self.kernel_size
        if h + 2 * self.padding[0] < kh or w + 2 * self.padding[1] < kw:
            raise ValueError(f"{self!r}: input {h}x{w} (padded by {self.padding}) is smaller than the kernel")
        bias = None if self.bias is None else self.bias.data
        y, cols = F.conv2d_forward(x, self.weight.data, bias, self.stride, self.padding)
        self.cache = (cols, (h, w))
        return y

    def backward(self, grad_output, need_input_grad=True):
        cols, x_hw = self.cache
        self.cache = None
        dx, dw, db = F.conv2d_backward(grad_output, cols, self.weight.data, x_hw, self.stride, self.padding,
                                       need_input_grad, self.weight.requires_grad)
        self._accumulate(dw, db)
        return dx


class ConvTranspose2d(_Conv):
    """The adjoint of Conv2d: each input pixel paints a weighted kernel onto the output.

    weight (Cin, Cout, kh, kw); Hout = (H - 1) s - 2p + k + output_padding.
    With g = dL/dy and cols = im2col(g):
        dL/dx = cols W^T   (a plain convolution of g),   dL/dW = x^T cols,   dL/db = sum(g)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True, rng=None, dtype=backend.DEFAULT_DTYPE):
        # PyTorch computes the default init's fan_in from weight.shape[1], i.e. out_channels.
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, rng, dtype,
                         weight_shape=(int(in_channels), int(out_channels)), fan_in=int(out_channels))
        self.output_padding = F.pair(output_padding, "output_padding")
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than "
                             f"stride {self.stride}")

    def extra_repr(self):
        return super().extra_repr().replace(", bias=", f", output_padding={self.output_padding}, bias=")

    def output_hw(self, h, w):
        return tuple(F.conv_transpose2d_output_size(size, k, s, p, op) for size, k, s, p, op in
                     zip((h, w), self.kernel_size, self.stride, self.padding, self.output_padding))

    def forward(self, x):
        self.check_input(x, 4, self.in_channels)
        h, w = x.shape[2:]
        out_hw = self.output_hw(h, w)
        if min(out_hw) < 1:
            raise ValueError(f"{self!r}: input {h}x{w} gives an empty output {out_hw}")
        bias = None if self.bias is None else self.bias.data
        y, x_mat = F.conv_transpose2d_forward(x, self.weight.data, bias, self.stride, self.padding, out_hw)
        self.cache = (x_mat, (h, w))
        return y

    def backward(self, grad_output, need_input_grad=True):
        x_mat, x_hw = self.cache
        self.cache = None
        dx, dw, db = F.conv_transpose2d_backward(grad_output, x_mat, self.weight.data, x_hw, self.stride,
                                                 self.padding, need_input_grad, self.weight.requires_grad)
        self._accumulate(dw, db)
        return dx
