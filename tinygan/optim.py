"""Optimisers: SGD with momentum and Adam, with the update rules of torch.optim.

Their state is float32 (like the parameters) and round-trips through
``state_dict()`` / ``load_state_dict()`` as plain arrays for an ``.npz`` checkpoint. Adam updates a large
parameter's rows on every core, a cache-sized piece at a time (tinygan.nn.cpu.over_batch): its ten passes then
read what the one before wrote from the cache.
"""
import numpy as np

from . import backend
from .nn.cpu import over_batch


class Optimizer:
    """What SGD and Adam share: ``params``, a list of Parameters to update, and the learning rate ``lr``."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = float(lr)
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _slots(self):
        return {}

    def state_dict(self):
        state = {"steps": np.array(self.steps, dtype=np.int64)}
        for name, arrays in self._slots().items():
            for i, a in enumerate(arrays):
                state[f"{name}.{i}"] = backend.to_numpy(a)
        return state

    def load_state_dict(self, state):
        self.steps = int(state["steps"])
        for name, arrays in self._slots().items():
            for i, a in enumerate(arrays):
                value = np.asarray(state[f"{name}.{i}"])
                if value.shape != a.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: {name}.{i} has shape {value.shape}, "
                                     f"expected {tuple(a.shape)}")
                a[...] = backend.to_device(value, dtype=a.dtype)


class SGD(Optimizer):
    """v <- mu v + g;   w <- w - lr v   (torch.optim.SGD with dampening 0; plain SGD when mu = 0).

    params: the Parameters to update; lr: the step size; momentum: mu; weight_decay: adds
    weight_decay * w to g (L2 regularisation).
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.velocity = [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def _slots(self):
        return {"velocity": self.velocity}

    def step(self):
        self.steps += 1
        for p, v in zip(self.params, self.velocity):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam:

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    params: the Parameters to update; lr: the step size; betas: (b1, b2); eps: keeps the division
    finite; ``weight_decay`` adds wd * w to g (L2 regularisation, not AdamW).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.m = [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]
        self.v = [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def _slots(self):
        return {"m": self.m, "v": self.v}

    def step(self):
        self.steps += 1
        bias1 = 1 - self.beta1 ** self.steps
        bias2_sqrt = (1 - self.beta2 ** self.steps) ** 0.5
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is not None:      # the rows of a large parameter on every core, a cache-sized piece at a time
                over_batch(p.data, lambda rows: self._update(p.data[rows], p.grad[rows], m[rows], v[rows], bias1,
                                                             bias2_sqrt), in_cache=True)

    def _update(self, w, g, m, v, bias1, bias2_sqrt):
        """Adam's update of the parameter w (in place) from its gradient g and moments m, v."""
        xp = backend.get_array_module(w)
        if self.weight_decay:
            g = g + self.weight_decay * w
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        denom = xp.sqrt(v)
        denom /= bias2_sqrt
        denom += self.eps
        w -= (self.lr / bias1) * (m / denom)
