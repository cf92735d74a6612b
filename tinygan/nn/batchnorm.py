"""BatchNorm2d: normalise each channel over the batch, then scale and shift.

Train mode, per channel over the M = N*H*W values of a batch:
    mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu) / sqrt(var + eps),  y = gamma xhat + beta
and the running statistics follow PyTorch (the running variance is unbiased):
    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var * M / (M - 1)
Eval mode uses running_mean and running_var in place of mu and var.

Backward in train mode (mu and var depend on x, which couples the batch):
    dgamma = sum(g xhat),  dbeta = sum(g)
    dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat mean(g xhat))
In eval mode the statistics are constants: dx = gamma / sqrt(running_var + eps) * g.
"""
from .. import backend
from .module import Module, Parameter


class BatchNorm2d(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=backend.DEFAULT_DTYPE):
        super().__init__()
        xp = backend.xp
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        if self.num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be >= 1, got {num_features}")
        self.weight = Parameter(xp.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(xp.zeros(num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", xp.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", xp.ones(num_features, dtype=dtype))

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        self.check_input(x, 4, self.num_features)
        if not self.training:
            return self._eval_forward(x)
        axes = (0, 2, 3)
        m = x.size // x.shape[1]
        if m < 2:
            raise ValueError(f"{self!r}: train mode needs more than one value per channel, got input "
                             f"{tuple(x.shape)}")
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=axes, keepdims=True)
        self.running_mean *= 1 - self.momentum
        self.running_mean += self.momentum * mean.reshape(-1)
        self.running_var *= 1 - self.momentum
        self.running_var += (self.momentum * m / (m - 1)) * var.reshape(-1)
        inv_std = 1.0 / (var + self.eps) ** 0.5
        xhat = xc
        xhat *= inv_std                      # reuse xc's memory: it is not needed any more
        self.cache = (xhat, inv_std)
        if self.weight is None:
            return xhat.copy()
        y = xhat * self.weight.data.reshape(1, -1, 1, 1)
        y += self.bias.data.reshape(1, -1, 1, 1)
        return y

    def _eval_forward(self, x):
        """With constant statistics BN is one affine map per channel: y = x scale + shift (2 passes)."""
        inv_std = 1.0 / (self.running_var.reshape(1, -1, 1, 1) + self.eps) ** 0.5
        scale = inv_std if self.weight is None else inv_std * self.weight.data.reshape(1, -1, 1, 1)
        shift = -self.running_mean.reshape(1, -1, 1, 1) * scale
        if self.weight is not None:
            shift += self.bias.data.reshape(1, -1, 1, 1)
        self.cache = (x, inv_std)            # backward recomputes xhat from x if it needs it
        y = x * scale
        y += shift
        return y

    def backward(self, grad_output, need_input_grad=True):
        xhat, inv_std = self.cache
        self.cache = None
        if not self.training:                # the cache holds x: xhat = (x - running_mean) / std
            xhat = (xhat - self.running_mean.reshape(1, -1, 1, 1)) * inv_std
        axes = (0, 2, 3)
        gamma = 1.0 if self.weight is None else self.weight.data.reshape(1, -1, 1, 1)
        sum_g = grad_output.sum(axis=axes)
        sum_gxhat = (grad_output * xhat).sum(axis=axes)
        if self.weight is not None:
            self.weight.accumulate(sum_gxhat)
            self.bias.accumulate(sum_g)
        if not need_input_grad:
            return None
        if not self.training:
            return grad_output * (gamma * inv_std)
        m = grad_output.size // grad_output.shape[1]
        dx = xhat * (-sum_gxhat / m).reshape(1, -1, 1, 1)
        dx += grad_output
        dx -= (sum_g / m).reshape(1, -1, 1, 1)
        dx *= gamma * inv_std
        return dx
