"""Module, Parameter and Sequential: the skeleton every layer hangs on.

A module's ``forward(x)`` computes its output and keeps in ``self.cache`` what
its ``backward`` will need. ``backward(grad_output)`` returns dL/dx and *adds*
dL/dw into each parameter's ``.grad`` (so gradients from two backward passes,
say D on a real batch and then on a fake batch, sum up as in PyTorch).

The contract is one forward, then at most one backward: a second forward
overwrites the cache. That keeps every layer's backward short enough to read.
"""
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from .. import backend


class Parameter:
    """A learnable array ``data`` and its accumulated gradient ``grad``."""

    def __init__(self, data):
        self.data = data
        self.grad = None
        self.requires_grad = True

    @property
    def shape(self):
        return self.data.shape

    def accumulate(self, g, fresh=False):
        """grad += g (grad starts as None so a fresh parameter costs no memory). ``fresh``: g is a new array that
        nobody else holds, so a first gradient is g itself, not a copy (a conv's dL/dW: up to 8 MB)."""
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = g if fresh else g.copy()
        else:
            self.grad += g

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class. Subclasses set Parameters, buffers and child Modules as attributes."""

    def __init__(self):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        self.training = True
        self.cache = None

    def __setattr__(self, key, value):
        if isinstance(value, Parameter):
            self._params[key] = value
        elif isinstance(value, Module):
            self._modules[key] = value
        object.__setattr__(self, key, value)

    def register_buffer(self, key, array):
        """A persistent array that is not learned (BatchNorm's running statistics)."""
        self._buffers[key] = True
        object.__setattr__(self, key, array)

    # --- running -------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output, need_input_grad=True):
        """Return dL/dx (or None when ``need_input_grad`` is False) and accumulate dL/dw."""
        raise NotImplementedError

    # --- parameters ----------------------------------------------------------
    def named_parameters(self, prefix=""):
        for key, p in self._params.items():
            yield prefix + key, p
        for key, m in self._modules.items():
            yield from m.named_parameters(prefix + key + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for key in self._buffers:
            yield prefix + key, getattr(self, key)
        for key, m in self._modules.items():
            yield from m.named_buffers(prefix + key + ".")

    def modules(self):
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def free_activations(self):
        """Drop what every layer kept from its forward for a backward (call it when no backward follows)."""
        for m in self.modules():
            m.cache = None
        return self

    def requires_grad_(self, flag=True):
        """Switch gradient accumulation for all parameters (off: backward skips dL/dw work)."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    @contextmanager
    def frozen(self):
        """Within the block no parameter accumulates a gradient (a backward then gives only dL/dinput); each
        parameter's requires_grad is put back afterwards, whatever it was."""
        flags = [p.requires_grad for p in self.parameters()]
        self.requires_grad_(False)
        try:
            yield self
        finally:
            for p, flag in zip(self.parameters(), flags):
                p.requires_grad = flag

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    # --- state ---------------------------------------------------------------
    def state_dict(self):
        """Parameters and buffers by PyTorch-style dotted names, as NumPy arrays."""
        state = OrderedDict()
        for key, p in self.named_parameters():
            state[key] = backend.to_numpy(p.data)
        for key, b in self.named_buffers():
            state[key] = backend.to_numpy(b)
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays (NumPy or the active backend) into this module, checking names and shapes."""
        own = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        extra = [k for k in state if k not in own and k not in buffers and not k.endswith("num_batches_tracked")]
        missing = [k for k in list(own) + list(buffers) if k not in state]
        if strict and (extra or missing):
            raise ValueError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                             f"unexpected keys {extra}")
        for key, value in state.items():
            if key in own:
                target = own[key].data
            elif key in buffers:
                target = buffers[key]
            else:
                continue
            value = np.asarray(backend.to_numpy(value))
            if value.shape != target.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {key!r} has shape {value.shape}, "
                                 f"expected {tuple(target.shape)}")
            target[...] = backend.to_device(value, dtype=target.dtype)
        return self

    def astype(self, dtype):
        """Cast every parameter and floating buffer (float64 for gradient checks, float32 to train)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for m in self.modules():
            for key in m._buffers:
                b = getattr(m, key)
                if b.dtype.kind == "f":
                    object.__setattr__(m, key, b.astype(dtype))
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for key, m in self._modules.items():
            lines.append("  (" + key + "): " + repr(m).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

    # --- input checks shared by the layers -----------------------------------
    def check_input(self, x, ndim, channels=None, layout="(N, C, H, W)"):
        """Raise a clear error for wrong backend, dtype, rank or channel count."""
        who = repr(self) if not self._modules else type(self).__name__
        backend.check_array(x, who)
        if x.dtype.kind != "f":
            raise TypeError(f"{who}: expected a floating-point input (float32), got dtype {x.dtype}")
        params = self.parameters()
        if params and params[0].data.dtype != x.dtype:
            raise TypeError(f"{who}: input dtype {x.dtype} does not match parameter dtype "
                            f"{params[0].data.dtype}; cast one of them (module.astype(...) or x.astype(...))")
        if x.ndim != ndim or (channels is not None and x.shape[1] != channels):
            expected = layout.replace("C", str(channels)) if channels is not None else layout
            raise ValueError(f"{who}: expected input of shape {expected}, got {tuple(x.shape)}")


class Sequential(Module):
    """``layers`` applied in order; parameter names are '0.weight', '1.bias', ... as in torch.nn.Sequential."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        """Each layer's output is the next layer's input."""
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, grad_output, need_input_grad=True):
        layers = list(self._modules.values())
        for i, layer in enumerate(reversed(layers)):
            first = i == len(layers) - 1
            grad_output = layer.backward(grad_output, need_input_grad=need_input_grad or not first)
        return grad_output
