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

The arithmetic is batchnorm_forward and batchnorm_backward of the path's set of array functions
(tinygan.nn.reference, the textbook; tinygan.nn.fast, the same numbers faster).
"""
from .. import backend
from . import paths
from .module import Module, Parameter


class BatchNorm2d(Module):
    """num_features: channels C; eps: added to the variance; momentum: weight of a new batch in the
    running statistics; affine: learn gamma (weight) and beta (bias); dtype: of parameters and statistics."""

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

    def update_running_statistics(self, mean, var, m):
        """running <- (1 - momentum) running + momentum batch; the variance unbiased (x M / (M - 1))."""
        self.running_mean *= 1 - self.momentum
        self.running_mean += self.momentum * mean
        self.running_var *= 1 - self.momentum
        self.running_var += (self.momentum * m / (m - 1)) * var

    def forward(self, x):
        """x (N, C, H, W) -> y of the same shape."""
        self.check_input(x, 4, self.num_features)
        m = x.size // x.shape[1]
        if self.training and m < 2:
            raise ValueError(f"{self!r}: train mode needs more than one value per channel, got input "
                             f"{tuple(x.shape)}")
        gamma, beta = (None, None) if self.weight is None else (self.weight.data, self.bias.data)
        statistics = None if self.training else (self.running_mean, self.running_var)    # None: the batch's own
        path = paths.path()                         # "fast" or "reference"
        ops = paths.functions(path)                 # tinygan.nn.fast or tinygan.nn.reference
        y, (mean, var), saved = ops.batchnorm_forward(x, gamma, beta, self.eps, statistics)
        if self.training:
            self.update_running_statistics(mean, var, m)
        self.cache = (path, saved)                  # the backward takes the path that made the forward
        return y

    def backward(self, grad_output, need_input_grad=True):
        """Add dL/dgamma, dL/dbeta to the gradients; return dL/dx (None if not needed)."""
        (path, saved), self.cache = self.cache, None
        ops = paths.functions(path)                 # the set of functions that made the forward
        gamma = None if self.weight is None else self.weight.data
        dx, dgamma, dbeta = ops.batchnorm_backward(grad_output, saved, gamma, need_input_grad)
        if gamma is not None:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx
