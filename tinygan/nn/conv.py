"""Conv2d and ConvTranspose2d, with the same parameters and numerics as torch.nn.

The arithmetic is in the path's set of array functions (tinygan.nn.paths): the textbook in
tinygan.nn.reference (im2col, col2im, conv2d, conv2d_adjoint, conv2d_weight_grad, with the
equations), the same functions organised for speed in tinygan.nn.fast. The layers hold the
weights, check their input and keep the gradient bookkeeping.
"""
import math

from .. import backend
from . import paths
from .cpu import WorkArrays
from .module import Module, Parameter
from .reference import conv_transpose2d_output_size, pair


def _torch_default_init(shape, fan_in, rng, dtype):
    """PyTorch's default: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(shape, -bound, bound, dtype=dtype)


class _Conv(Module):
    """What Conv2d and ConvTranspose2d share: hyper-parameters, weights, the gradient bookkeeping."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, rng, dtype, weight_shape,
                 fan_in):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.in_channels, self.out_channels, *self.kernel_size, *self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{name}: channels, kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"in={in_channels} out={out_channels} kernel_size={kernel_size} stride={stride} "
                             f"padding={padding}")
        rng = backend.default_rng(rng)
        fan_in = fan_in * self.kernel_size[0] * self.kernel_size[1]
        self.weight = Parameter(_torch_default_init(weight_shape + self.kernel_size, fan_in, rng, dtype))
        self.bias = Parameter(_torch_default_init((self.out_channels,), fan_in, rng, dtype)) if bias else None
        self.work_arrays = WorkArrays()    # what the fast path keeps from call to call (tinygan.nn.cpu)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")

    def bias_data(self):
        return None if self.bias is None else self.bias.data

    def accumulate(self, dw, db):
        """Add dL/dW and dL/db to the parameters' gradients (dw is None when W is frozen). Both paths return
        fresh arrays."""
        if dw is not None:
            self.weight.accumulate(dw, fresh=True)
            if self.bias is not None:
                self.bias.accumulate(db, fresh=True)


class Conv2d(_Conv):
    """y[n, o] = b[o] + sum_c W[o, c] * x[n, c]  (cross-correlation), weight (O, C, kh, kw).

    in_channels, out_channels: C and O; kernel_size, stride, padding: an int or (h, w);
    bias: learn a bias b (O,); rng: seed or tinygan Generator for PyTorch's default init;
    dtype: of the parameters (float32; float64 for gradient checks).

    With g = dL/dy and cols = im2col(x):
        dL/dW = g . cols (over n, ho, wo),   dL/db = sum of g,   dL/dx = conv2d_adjoint(g) = col2im(W^T g)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 rng=None, dtype=backend.DEFAULT_DTYPE):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, rng, dtype,
                         weight_shape=(int(out_channels), int(in_channels)), fan_in=int(in_channels))

    def forward(self, x):
        """x (N, C, H, W) -> y (N, O, Ho, Wo), Ho = floor((H + 2p - kh) / s) + 1."""
        self.check_input(x, 4, self.in_channels)
        h, w = x.shape[2:]
        if h + 2 * self.padding[0] < self.kernel_size[0] or w + 2 * self.padding[1] < self.kernel_size[1]:
            raise ValueError(f"{self!r}: input {h}x{w} (padded by {self.padding}) is smaller than the kernel")
        path = paths.path()                         # "fast" or "reference"
        ops = paths.functions(path)                 # tinygan.nn.fast or tinygan.nn.reference
        y, saved = ops.conv2d_forward(x, self.weight.data, self.bias_data(), self.stride, self.padding, self.work_arrays)
        self.cache = (path, saved)                  # the backward takes the path that made the forward
        return y

    def backward(self, grad_output, need_input_grad=True):
        """Add dL/dW, dL/db to the gradients; return dL/dx (None if not needed)."""
        (path, saved), self.cache = self.cache, None
        ops = paths.functions(path)                 # the set of functions that made the forward
        dx, dw, db = ops.conv2d_backward(grad_output, saved, self.weight.data, self.stride, self.padding,
                                         need_input_grad, self.weight.requires_grad, self.work_arrays)
        self.accumulate(dw, db)
        return dx


class ConvTranspose2d(_Conv):
    """The adjoint of Conv2d: each input pixel paints a weighted kernel onto the output.

    weight (Cin, Cout, kh, kw), read as the weight of a conv from Cout to Cin channels;
    Hout = (H - 1) s - 2p + kh + output_padding.

    in_channels, out_channels: Cin and Cout; kernel_size, stride, padding: an int or (h, w);
    output_padding (< stride): extra rows and columns at the bottom and right; bias: learn a
    bias (Cout,); rng: seed or tinygan Generator for PyTorch's default init; dtype: of the parameters.

        y = conv2d_adjoint(x, W) + b          (a conv's input gradient, with x in the place of g)
    With g = dL/dy and cols = im2col(g):
        dL/dx = conv2d(g, W)   (a plain conv),   dL/dW = x . cols (over n, h, w),   dL/db = sum of g
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True, rng=None, dtype=backend.DEFAULT_DTYPE):
        # PyTorch computes the default init's fan_in from weight.shape[1], i.e. out_channels.
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, rng, dtype,
                         weight_shape=(int(in_channels), int(out_channels)), fan_in=int(out_channels))
        self.output_padding = pair(output_padding, "output_padding")
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than "
                             f"stride {self.stride}")

    def extra_repr(self):
        return super().extra_repr().replace(", bias=", f", output_padding={self.output_padding}, bias=")

    def output_hw(self, h, w):
        return tuple(conv_transpose2d_output_size(size, k, s, p, op) for size, k, s, p, op in
                     zip((h, w), self.kernel_size, self.stride, self.padding, self.output_padding))

    def forward(self, x):
        """x (N, Cin, H, W) -> y (N, Cout, Hout, Wout)."""
        self.check_input(x, 4, self.in_channels)
        out_hw = self.output_hw(*x.shape[2:])
        if min(out_hw) < 1:
            raise ValueError(f"{self!r}: input {x.shape[2]}x{x.shape[3]} gives an empty output {out_hw}")
        path = paths.path()                         # "fast" or "reference"
        ops = paths.functions(path)                 # tinygan.nn.fast or tinygan.nn.reference
        y, saved = ops.conv_transpose2d_forward(x, self.weight.data, self.bias_data(), self.stride, self.padding,
                                                out_hw, self.work_arrays)
        self.cache = (path, saved)
        return y

    def backward(self, grad_output, need_input_grad=True):
        """Add dL/dW, dL/db to the gradients; return dL/dx (None if not needed)."""
        (path, saved), self.cache = self.cache, None
        ops = paths.functions(path)                 # the set of functions that made the forward
        dx, dw, db = ops.conv_transpose2d_backward(grad_output, saved, self.weight.data, self.stride, self.padding,
                                                   need_input_grad, self.weight.requires_grad, self.work_arrays)
        self.accumulate(dw, db)
        return dx
