"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

With little data, D memorises the training faces and stops teaching G anything
useful (lesson 16). DiffAugment shows D only randomly *augmented* images, real and
fake alike, with the same random policy, so D cannot memorise exact pixels. Because
the fakes are augmented too, G's gradient has to flow back through the augmentation,
so every augmentation here is differentiable, with its backward written by hand.
Given its random numbers, each one is linear in x:

    colour       brightness  y = x + b                        b ~ U(-0.5, 0.5) per image
                 saturation  y = s (x - mean_c x) + mean_c x  s ~ U(0, 2)      (mean over channels, per pixel)
                 contrast    y = c (x - mean x) + mean x      c ~ U(0.5, 1.5)  (mean over the image)
    translation  y = x shifted by up to 1/8 of the size in each direction, zeros shifted in
    cutout       y = x * mask, the mask zero on a square of half the size at a random place

and the backward passes, for g = dL/dy:

    brightness   dL/dx = g
    saturation   dL/dx = s g + (1 - s) mean_c g
    contrast     dL/dx = c g + (1 - c) mean g
    translation  dL/dx = g shifted back (what was shifted out gets no gradient)
    cutout       dL/dx = g * mask

A forward draws new random numbers from its generator every call (so D sees a new
augmentation of every image every time); ``freeze()`` keeps the last draw, for
gradient checks. The generator's state is part of a training checkpoint, so a
resumed run augments exactly as it would have.
"""
import numpy as np

from . import backend
from .nn import Module

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy):
    """'color,translation,cutout' -> ('color', 'translation', 'cutout'); '' -> ()."""
    names = tuple(name.strip() for name in (policy or "").split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown}; expected a comma-separated subset of {POLICIES}")
    return names


class DiffAugment(Module):
    """Random, differentiable augmentation of a batch (N, C, H, W) in [-1, 1].

    policy: comma-separated 'color', 'translation', 'cutout' (Zhao et al.'s defaults);
    rng: seed or tinygan Generator for the random numbers.
    """

    def __init__(self, policy="color,translation,cutout", rng=None):
        super().__init__()
        self.policy = parse_policy(policy)
        self.rng = backend.default_rng(rng)
        self.draw_cache = self.frozen = None    # the last draw, and the draw that freeze() keeps

    def extra_repr(self):
        return ",".join(self.policy)

    def freeze(self):
        """Keep the last random numbers for every following call (gradient checks)."""
        self.frozen = self.draw_cache
        return self

    def draw(self, x):
        """The random numbers of one augmentation of the batch x."""
        n, _, h, w = x.shape
        rng, dtype = self.rng, x.dtype
        numbers = {}
        if "color" in self.policy:
            numbers["brightness"] = rng.uniform((n, 1, 1, 1), -0.5, 0.5, dtype=dtype)
            numbers["saturation"] = rng.uniform((n, 1, 1, 1), 0.0, 2.0, dtype=dtype)
            numbers["contrast"] = rng.uniform((n, 1, 1, 1), 0.5, 1.5, dtype=dtype)
        if "translation" in self.policy:
            sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            numbers["shift"] = (rng.integers(-sh, sh + 1, size=n), rng.integers(-sw, sw + 1, size=n), sh, sw)
        if "cutout" in self.policy:
            ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
            top = rng.integers(0, h + (1 - ch % 2), size=n) - ch // 2      # the square's corner, may stick out
            left = rng.integers(0, w + (1 - cw % 2), size=n) - cw // 2
            rows, cols = np.arange(h), np.arange(w)
            inside = ((rows[None, :, None] >= top[:, None, None]) & (rows[None, :, None] < top[:, None, None] + ch)
                      & (cols[None, None, :] >= left[:, None, None]) & (cols[None, None, :] < left[:, None, None] + cw))
            numbers["mask"] = backend.to_device((~inside)[:, None].astype(dtype))          # (N, 1, H, W)
        return numbers

    def forward(self, x):
        """x (N, C, H, W) -> its augmentation, with new random numbers unless frozen."""
        backend.check_array(x, repr(self))
        numbers = self.frozen if self.frozen is not None else self.draw(x)
        self.draw_cache = numbers
        if "brightness" in numbers:
            x = x + numbers["brightness"]
            mean_c = x.mean(axis=1, keepdims=True)
            x = numbers["saturation"] * (x - mean_c) + mean_c
            mean = x.mean(axis=(1, 2, 3), keepdims=True)
            x = numbers["contrast"] * (x - mean) + mean
        if "shift" in numbers:
            x = _translate(x, *numbers["shift"])
        if "mask" in numbers:
            x = x * numbers["mask"]
        self.cache = numbers
        return x

    def backward(self, grad_output, need_input_grad=True):
        numbers, self.cache = self.cache, None
        if not need_input_grad:
            return None
        g = grad_output
        if "mask" in numbers:
            g = g * numbers["mask"]
        if "shift" in numbers:
            dy, dx, sh, sw = numbers["shift"]
            g = _translate(g, -dy, -dx, sh, sw)                 # the adjoint of a shift is the shift back
        if "brightness" in numbers:
            c = numbers["contrast"]
            g = c * g + (1 - c) * g.mean(axis=(1, 2, 3), keepdims=True)
            s = numbers["saturation"]
            g = s * g + (1 - s) * g.mean(axis=1, keepdims=True)
        return g


def _translate(x, dy, dx, sh, sw):
    """Shift image n by (dy[n], dx[n]) pixels, filling with zeros: y[n, :, i, j] = x[n, :, i - dy, j - dx]."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    padded = xp.pad(x, ((0, 0), (0, 0), (sh, sh), (sw, sw)))
    rows = backend.to_device(sh - dy[:, None] + np.arange(h)[None, :])                # (N, H)
    cols = backend.to_device(sw - dx[:, None] + np.arange(w)[None, :])                # (N, W)
    images = backend.to_device(np.arange(n))
    return padded[images[:, None, None, None], xp.arange(c)[None, :, None, None], rows[:, None, :, None],
                  cols[:, None, None, :]]
