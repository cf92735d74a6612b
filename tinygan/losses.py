"""Binary cross-entropy, from probabilities and (preferred) from logits.

For a target t in [0, 1] and a predicted probability p = sigmoid(x):
    BCE(p, t) = -[t log p + (1 - t) log(1 - p)]            (mean over the batch)

From logits the same loss simplifies, using log sigmoid(x) = -softplus(-x):
    BCE(x, t) = softplus(x) - t x = max(x, 0) - t x + log(1 + exp(-|x|))
which never takes the log of 0 and never overflows, and whose gradient is simply
    dL/dx = (sigmoid(x) - t) / n.
From probabilities, dL/dp = (p - t) / (p (1 - p)) / n, which explodes as p -> 0 or 1.
"""
import numbers

import numpy as np

from . import backend
from .nn.activations import sigmoid


class _Loss:
    """A loss is called as loss(prediction, target) -> scalar and then loss.backward() -> dL/dprediction.

    There is no ``loss_value.backward()`` as in PyTorch: the loss object's ``backward()``
    returns the gradient, which you pass to ``model.backward(...)``.
    """

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def _prepare(self, prediction, target):
        backend.check_array(prediction, type(self).__name__)
        if prediction.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: expected a floating-point input, got dtype {prediction.dtype}")
        xp = backend.get_array_module(prediction)
        if isinstance(target, numbers.Number):
            return xp.full(prediction.shape, target, dtype=prediction.dtype)
        backend.check_array(target, type(self).__name__ + " target")
        if target.shape != prediction.shape:
            raise ValueError(f"{type(self).__name__}: target shape {tuple(target.shape)} does not match input "
                             f"shape {tuple(prediction.shape)}")
        return target.astype(prediction.dtype, copy=False)


class BCEWithLogitsLoss(_Loss):
    """Mean binary cross-entropy of logits x against targets t (a number or an array like x)."""

    def forward(self, logits, target):
        """The mean BCE of logits (any shape) against targets (a number or an array of that shape)."""
        target = self._prepare(logits, target)
        xp = backend.get_array_module(logits)
        self.cache = (logits, target)
        loss = xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))
        return loss.mean()

    def backward(self):
        logits, target = self.cache
        return (sigmoid(logits) - target) / logits.dtype.type(logits.size)


class BCELoss(_Loss):
    """Mean binary cross-entropy of probabilities p. Like PyTorch, each log is clamped at -100."""

    EPS = 1e-12   # PyTorch's clamp of p (1 - p) in the backward pass

    def forward(self, prob, target):
        """The mean BCE of probabilities in [0, 1] (any shape) against targets."""
        target = self._prepare(prob, target)
        xp = backend.get_array_module(prob)
        if float(prob.min()) < 0 or float(prob.max()) > 1:
            raise ValueError("BCELoss: input must hold probabilities in [0, 1]; use BCEWithLogitsLoss for logits")
        self.cache = (prob, target)
        with np.errstate(divide="ignore"):        # log(0) = -inf, then clamped, as in PyTorch
            log_p = xp.maximum(xp.log(prob), -100)
            log_1mp = xp.maximum(xp.log1p(-prob), -100)
        return -(target * log_p + (1 - target) * log_1mp).mean()

    def backward(self):
        prob, target = self.cache
        xp = backend.get_array_module(prob)
        return (prob - target) / xp.maximum(prob * (1 - prob), self.EPS) / prob.dtype.type(prob.size)
