"""Comparing a student's arrays with the grader's answers, and saying where and how they differ.

A wrong array is located (which entries, the largest error and where, a small picture of the error per channel
or per kernel offset) and, where it can be, named: the answer with its axes in another order, the shape another
value of an argument would give (an ignored stride), the answer shifted by a pixel or two, nan or inf where the
answer is finite, or one of the part's typical mistakes (computed by answers.py) matched entry by entry.
"""
import itertools

import numpy as np


class Result:
    """The checks of one part: each {name, passed, value, should, detail}."""

    def __init__(self):
        self.checks = []

    def add(self, name, passed, value, should, detail=""):
        self.checks.append({"name": name, "passed": bool(passed), "value": value, "should": should,
                            "detail": detail})
        return passed

    def array(self, name, got, want, mistakes=(), picture=None, rtol=1e-7, shapes=(), shifts=False):
        """Compare an array with the answer; on a mismatch say where, and which typical mistake it matches.

        ``mistakes``: (what it is, a function giving the array that mistake gives); ``shapes``: (what it is, the
        shape it gives) for a wrong shape; ``shifts``: look for the answer moved by up to 2 pixels (N, C, H, W)."""
        want = np.asarray(want, dtype=np.float64)
        if isinstance(got, str):                     # the student's code returned something that is no array
            return self.add(name, False, got, f"an array of shape {want.shape}")
        if got.shape != want.shape:
            matching = [what for what, shape in shapes if tuple(shape) == got.shape]
            lines = [axes_hint(got, want)] + ([f"that shape is what {' or '.join(matching)} gives"] if matching else [])
            return self.add(name, False, f"shape {got.shape}", f"shape {want.shape}", "\n".join(filter(None, lines)))
        with np.errstate(invalid="ignore"):
            error = np.where(np.isfinite(got), np.abs(got - want), np.inf)
        scale = rtol * (1 + np.abs(want).max())
        wrong = error > scale
        if not wrong.any():
            return self.add(name, True, f"max error {error.max():.2g}", f"<= {scale:.2g}")
        worst = np.unravel_index(np.argmax(error), error.shape)
        lines = [f"{int(wrong.sum())} of {wrong.size} entries wrong, e.g. {list_indices(wrong)}; the largest error "
                 f"is at {tuple(int(i) for i in worst)}: {got[worst]:.6g} where it should be {want[worst]:.6g}"]
        broken = ~np.isfinite(got)
        if broken.any():
            lines.append(f"{int(broken.sum())} entries are nan or inf, e.g. {list_indices(broken)}, where the answer "
                         "is finite")
        if picture is not None:
            lines += picture(error)
        named = next((what for what, variant in mistakes if matches(got, variant, scale)), None)
        if named:
            lines.append(f"this is what {named}")
        elif shifts and got.ndim == 4:
            lines += shift_hint(got, want, scale)
        return self.add(name, False, f"max error {error.max():.3g}", f"<= {scale:.2g}", "\n".join(lines))

    def scalar(self, name, got, want, rtol=1e-7, mistakes=()):
        if not isinstance(got, str):
            got = got.reshape(()) if got.size == 1 else got
        return self.array(name, got, np.asarray(want, dtype=np.float64), mistakes, rtol=rtol)


def matches(got, variant, scale):
    """True when ``got`` is the array ``variant()`` gives, nan and inf in the same places included."""
    try:
        variant = np.asarray(variant(), dtype=np.float64)
    except Exception:                                   # a mistake that cannot be computed for these inputs
        return False
    return variant.shape == got.shape and np.allclose(got, variant, rtol=1e-6, atol=scale, equal_nan=True)


def shift_hint(got, want, scale, most=2):
    """Say so when the image is the answer moved by (dy, dx) pixels (an off-by-one in the padding or crop)."""
    h, w = want.shape[2:]
    for dy, dx in sorted(itertools.product(range(-most, most + 1), repeat=2), key=lambda d: abs(d[0]) + abs(d[1])):
        if (dy, dx) == (0, 0) or abs(dy) >= h // 2 or abs(dx) >= w // 2:
            continue
        moved = got[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
        right = want[:, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        if np.allclose(moved, right, rtol=1e-6, atol=scale):
            steps = [f"{abs(d)} {unit}{'s' * (abs(d) > 1)} {way[d > 0]}" for d, unit, way in
                     ((dy, "row", ("up", "down")), (dx, "column", ("left", "right"))) if d]
            return [f"it is the right image moved {' and '.join(steps)}: check where the padding is cut off "
                    "(the output starts p pixels into the padded canvas)"]
    return []


def list_indices(mask, most=4):
    found = [tuple(int(i) for i in index) for index in np.argwhere(mask)[:most]]
    return ", ".join(map(str, found)) + (", ..." if mask.sum() > most else "")


def axes_hint(got, want):
    """Say so when a wrong shape is the right array with its axes in another order (a missing transpose)."""
    if sorted(got.shape) != sorted(want.shape) or got.ndim != want.ndim:
        return ""
    for order in itertools.permutations(range(want.ndim)):
        if tuple(want.shape[i] for i in order) == got.shape and np.allclose(got, want.transpose(order)):
            return f"it is the right array with its axes in the order {order}: a transpose is missing or wrong"
    return f"its axes hold {got.shape} where {want.shape} belong"


def grid(title, table, rows="", columns=""):
    """Lines of a small text picture of a 2-D table of errors."""
    lines = [f"{title} ({rows} down, {columns} across):" if rows else title + ":"]
    lines += ["    " + " ".join(f"{value:8.2g}" for value in row) for row in np.atleast_2d(table)]
    return lines


def per_kernel_offset(error):
    """The largest error at each kernel offset (u, v) of an (..., k, k) array."""
    return grid("largest error per kernel offset", error.reshape(-1, *error.shape[-2:]).max(axis=0), "u", "v")


def per_channel(axis):
    def picture(error):
        moved = np.moveaxis(error, axis, 0).reshape(error.shape[axis], -1).max(axis=1)
        return grid("largest error per channel", moved[None])
    return picture


def by_parameter(module):
    """A picture of a flat error over a module's parameters: which are wrong, and by how much."""
    def picture(error):
        lines, start = [], 0
        for name, parameter in module.named_parameters():
            part = error[start:start + parameter.data.size]
            start += parameter.data.size
            if (part > 0).any():
                lines.append(f"{name} {tuple(parameter.data.shape)}: largest error {part.max():.3g}")
        return ["wrong parameters: " + "; ".join(lines[:6]) + ("; ..." if len(lines) > 6 else "")]
    return picture
