"""Pooling layers and channel concatenation, written as loops over the kernel offsets.

Like im2col, a pooling window is read one kernel offset (i, j) at a time: for
all output pixels at once, offset (i, j) is the strided slice

    xpad[:, :, s*ho + i, s*wo + j]  ==  xpad[:, :, i : i + s*Ho : s, j : j + s*Wo : s]

so a k x k pool is k*k whole-array operations (max or add), and its backward
adds the upstream gradient back through the same slices (no np.add.at).

Output size (floor mode, as PyTorch's default ``ceil_mode=False``):
    Ho = floor((H + 2p - k) / s) + 1
"""
from .. import backend
from . import paths
from .module import Module
from .reference import conv_output_size, pair


def _pool_geometry(who, x_hw, kernel, stride, padding):
    """Output size (Ho, Wo) of a pool, with a clear error for an impossible window."""
    out = tuple(conv_output_size(n, k, s, p) for n, k, s, p in zip(x_hw, kernel, stride, padding))
    if min(out) < 1:
        raise ValueError(f"{who}: input {x_hw[0]}x{x_hw[1]} padded by {padding} is smaller than "
                         f"the kernel {kernel}; expected H + 2p >= k and W + 2p >= k")
    return out


def _unpad(dxpad, x_hw, padding):
    """The gradient of the padding step: drop the border."""
    (h, w), (ph, pw) = x_hw, padding
    return dxpad[:, :, ph:ph + h, pw:pw + w]


class _Pool2d(Module):
    """Shared arguments and checks of MaxPool2d and AvgPool2d: kernel_size, stride (default: the
    kernel size) and padding, each an int or (h, w)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be >= 1 and padding >= 0, "
                             f"got kernel_size={kernel_size}, stride={stride}, padding={padding}")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half the "
                             f"kernel size {self.kernel_size} (as in PyTorch)")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def padded(self, x, fill):
        """x padded by ``fill`` (the path's ``pad``: the fast one keeps x's NHWC memory)."""
        return paths.functions().pad(x, self.padding, fill)

    def windows(self, xpad, out_hw):
        """One view per kernel offset (i, j), row by row: view[n, c, ho, wo] = xpad[n, c, s*ho + i, s*wo + j]."""
        (kh, kw), (sh, sw), (ho, wo) = self.kernel_size, self.stride, out_hw
        return [xpad[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] for i in range(kh) for j in range(kw)]

    def geometry(self, x):
        self.check_input(x, 4)
        return _pool_geometry(repr(self), x.shape[2:], self.kernel_size, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    """y[n, c, ho, wo] = max over the window of x (padding counts as -inf).

    kernel_size, stride (default: kernel_size), padding: ints or (h, w) pairs, as in PyTorch.

    The gradient flows only to the position that won the max:
        dL/dx[p] = sum over windows whose argmax is p of g[window]
    Backward finds each window's winner again (the first offset, in row-major order,
    whose value equals the max: PyTorch's rule for ties), so forward stays k*k maximums.
    It compares against the input and the output of forward, so neither may be changed
    in place between forward and backward.
    """

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, Ho, Wo), Ho = floor((H + 2p - k) / s) + 1."""
        out_hw = self.geometry(x)
        xp = backend.get_array_module(x)
        xpad = self.padded(x, -xp.inf)
        first, *rest = self.windows(xpad, out_hw)
        out = first.copy(order="K")                          # (N, C, Ho, Wo), in the memory order of x
        for window in rest:
            xp.maximum(out, window, out=out)
        self.cache = (xpad, out, x.shape[2:])
        return out

    def backward(self, grad_output, need_input_grad=True):
        xpad, out, x_hw = self.cache
        self.cache = None
        if not need_input_grad:
            return None
        xp = backend.get_array_module(grad_output)
        dxpad = xp.zeros(xpad.shape, dtype=grad_output.dtype)
        routed = xp.zeros(out.shape, dtype=bool)        # windows whose max already got the gradient
        for window, dwindow in zip(self.windows(xpad, out.shape[2:]), self.windows(dxpad, out.shape[2:])):
            winner = (window == out) & ~routed
            dwindow += grad_output * winner             # in place: dwindow is a view of dxpad
            routed |= winner
        return _unpad(dxpad, x_hw, self.padding)


def avg_pool_divisor(xp, x_hw, kernel, stride, padding, out_hw, count_include_pad, dtype):
    """How many values each output averages: an (Ho, Wo) array.

    count_include_pad=True: every window counts k_h*k_w (zeros of the padding included).
    count_include_pad=False: only the real pixels, i.e. for rows
        start = s*ho - p,  count_h[ho] = min(start + k, H) - max(start, 0)
    and likewise for columns; the divisor is count_h[ho] * count_w[wo] (PyTorch's rule).
    """
    counts = []
    for n, k, s, p, n_out in zip(x_hw, kernel, stride, padding, out_hw):
        start = xp.arange(n_out) * s - p
        if count_include_pad:
            counts.append(xp.minimum(start + k, n + p) - start)
        else:
            counts.append(xp.minimum(start + k, n) - xp.maximum(start, 0))
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype)


class AvgPool2d(_Pool2d):
    """y = (1 / divisor) * sum over the window of x (padding counts as 0).

    kernel_size, stride (default: kernel_size), padding: ints or (h, w) pairs; count_include_pad:
    whether the padding's zeros count in the divisor, as in PyTorch.

    Every input pixel in the window gets an equal share of the gradient:
        dL/dx[p] = sum over windows containing p of g[window] / divisor[window]
    See :func:`avg_pool_divisor` for ``count_include_pad``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = bool(count_include_pad)

    def extra_repr(self):
        return super().extra_repr() + f", count_include_pad={self.count_include_pad}"

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, Ho, Wo), Ho = floor((H + 2p - k) / s) + 1."""
        out_hw = self.geometry(x)
        xp = backend.get_array_module(x)
        xpad = self.padded(x, 0)
        first, *rest = self.windows(xpad, out_hw)
        out = first.copy(order="K")                          # (N, C, Ho, Wo), in the memory order of x
        for window in rest:
            out += window
        divisor = avg_pool_divisor(xp, x.shape[2:], self.kernel_size, self.stride, self.padding, out_hw,
                                   self.count_include_pad, x.dtype)
        out /= divisor
        self.cache = (divisor, xpad.shape, x.shape[2:])
        return out

    def backward(self, grad_output, need_input_grad=True):
        divisor, xpad_shape, x_hw = self.cache
        self.cache = None
        if not need_input_grad:
            return None
        xp = backend.get_array_module(grad_output)
        g = grad_output / divisor
        dxpad = xp.zeros(xpad_shape, dtype=grad_output.dtype)
        for dwindow in self.windows(dxpad, g.shape[2:]):
            dwindow += g                                # in place: dwindow is a view of dxpad
        return _unpad(dxpad, x_hw, self.padding)


class AdaptiveAvgPool2d(Module):
    """Global average pooling: y[n, c, 0, 0] = mean over (h, w) of x[n, c, h, w].

    Only output_size 1 is supported. dL/dx[n, c, h, w] = g[n, c] / (H W).
    """

    def __init__(self, output_size=1):
        super().__init__()
        if pair(output_size, "output_size") != (1, 1):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=1 (global average) is supported, "
                             f"got {output_size!r}")
        self.output_size = (1, 1)

    def extra_repr(self):
        return "output_size=1"

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, 1, 1)."""
        self.check_input(x, 4)
        n, c, h, w = x.shape
        if h * w == 0:
            raise ValueError(f"{self!r}: input has an empty spatial size {h}x{w}")
        out = x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)           # (N, C, 1, 1)
        self.cache = (h, w)
        return out

    def backward(self, grad_output, need_input_grad=True):
        h, w = self.cache
        self.cache = None
        if not need_input_grad:
            return None
        xp = backend.get_array_module(grad_output)
        g = grad_output / grad_output.dtype.type(h * w)                      # (N, C, 1, 1)
        return xp.broadcast_to(g, g.shape[:2] + (h, w)).copy()


def concat_channels(arrays):
    """Stack (N, C_k, H, W) arrays along channels into one (N, sum C_k, H, W) array."""
    if not arrays:
        raise ValueError("concat_channels: expected at least one array, got none")
    n, _, h, w = arrays[0].shape
    for a in arrays:
        if a.ndim != 4 or a.shape[0] != n or a.shape[2:] != (h, w) or a.dtype != arrays[0].dtype:
            raise ValueError(f"concat_channels: every array must be (N={n}, C, H={h}, W={w}) of dtype "
                             f"{arrays[0].dtype}; got {[(tuple(b.shape), str(b.dtype)) for b in arrays]}")
    return paths.functions().concat_channels(arrays)


class Concat(Module):
    """Run every branch on the same input and concatenate the outputs along channels.

        y = [b_1(x), b_2(x), ..., b_K(x)]   (channel axis)
        dL/dx = sum_k b_k.backward(g[:, channels of branch k])

    An Inception block is a Concat of its branches (the modules passed in).
    """

    def __init__(self, *branches):
        super().__init__()
        if not branches:
            raise ValueError("Concat: expected at least one branch module")
        for k, branch in enumerate(branches):
            if not isinstance(branch, Module):
                raise TypeError(f"Concat: branch {k} is a {type(branch).__name__}, expected a Module")
            setattr(self, str(k), branch)

    def forward(self, x):
        """Every branch on the same x; their outputs stacked along channels."""
        outputs = [branch(x) for branch in self._modules.values()]
        self.cache = [o.shape[1] for o in outputs]
        return concat_channels(outputs)

    def backward(self, grad_output, need_input_grad=True):
        widths, self.cache = self.cache, None
        dx, start = None, 0
        for branch, width in zip(self._modules.values(), widths):
            d = branch.backward(grad_output[:, start:start + width], need_input_grad=need_input_grad)
            start += width
            if d is not None:
                dx = d if dx is None else dx + d
        return dx
