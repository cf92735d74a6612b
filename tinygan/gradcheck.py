"""Numerical gradient checks: does a hand-written backward agree with calculus?

We check a module against the scalar L = <module(x), g> for a *random* upstream
gradient g (a fixed upstream such as all-ones would hide sign and transpose
bugs). Its exact derivative is what backward(g) returns. The numerical one is a
central difference in float64:

    dL/dx . d  ~=  (L(x + h d) - L(x - h d)) / (2 h)        error O(h^2)

For small tensors d runs over every coordinate; for large ones over a few
random unit directions, which tests every entry of the gradient at once.
The relative error  |a - n| / max(|a| + |n|, tiny)  should be around 1e-8 in
float64; anything above 1e-6 means a bug.
"""
import numbers

import numpy as np

from . import backend


def relative_error(analytic, numeric, zero_tol=1e-7):
    """||a - n|| / (||a|| + ||n||), for arrays or numbers.

    A gradient that is truly zero (a conv bias in front of BatchNorm, say) is
    computed as ~1e-17 analytically and ~1e-10 numerically (round-off in L
    divided by h): both below ``zero_tol`` counts as agreement, error 0.
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    norm_a, norm_n = np.linalg.norm(a), np.linalg.norm(n)
    if norm_a < zero_tol and norm_n < zero_tol:
        return 0.0
    return float(np.linalg.norm(a - n) / (norm_a + norm_n))


def numerical_directional(f, x, direction, h=1e-6):
    """(f(x + h d) - f(x - h d)) / 2h, restoring x afterwards. f reads x in place."""
    x += h * direction
    plus = f()
    x -= 2 * h * direction
    minus = f()
    x += h * direction
    return (plus - minus) / (2 * h)


def check_array_gradient(f, x, analytic, rng, max_coords=64, n_directions=6, h=1e-6):
    """Relative error between ``analytic`` (dL/dx) and central differences of f() w.r.t. x.

    Every coordinate when x has at most ``max_coords`` entries, else random directions.
    """
    xp = backend.get_array_module(x)
    if x.size <= max_coords:
        numeric = np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            e = xp.zeros_like(x)
            e[idx] = 1.0
            numeric[idx] = numerical_directional(f, x, e, h)
        return relative_error(backend.to_numpy(analytic), numeric)
    exact, approx = [], []
    for _ in range(n_directions):
        d = rng.normal(x.shape, dtype=np.float64)
        d /= float(xp.linalg.norm(d))
        exact.append(float((analytic * d).sum()))
        approx.append(numerical_directional(f, x, d, h))
    return relative_error(exact, approx)


def check_module(module, x, seed=0, check_params=True, h=1e-6):
    """Gradient-check ``module`` at input ``x`` in float64.

    Returns {"input": err, "weight": err, ...}: one relative error per input and parameter.
    The module is cast to float64 for the check (cast it back with ``astype`` if reused).
    """
    rng = backend.default_rng(seed)
    module.astype(np.float64)
    x = backend.to_device(backend.to_numpy(x), dtype=np.float64).copy()
    buffers = {k: v.copy() for k, v in module.named_buffers()}
    upstream = rng.normal(module(x).shape, dtype=np.float64)

    def loss():
        return float((module(x) * upstream).sum())

    module.zero_grad()
    module(x)
    dx = module.backward(upstream)
    errors = {"input": check_array_gradient(loss, x, dx, rng, h=h)}
    if check_params:
        for name, p in module.named_parameters():
            errors[name] = check_array_gradient(loss, p.data, p.grad, rng, h=h)
    module.load_state_dict(buffers, strict=False)   # undo the running-statistics updates of the checks
    return errors


def check_loss(loss_fn, x, target, seed=0, h=1e-6):
    """Gradient-check a loss (a scalar function of x) in float64; returns the relative error."""
    rng = backend.default_rng(seed)
    x = backend.to_device(backend.to_numpy(x), dtype=np.float64).copy()
    if not isinstance(target, numbers.Number):
        target = backend.to_device(backend.to_numpy(target), dtype=np.float64)
    loss_fn(x, target)
    dx = loss_fn.backward()
    return check_array_gradient(lambda: float(loss_fn(x, target)), x, dx, rng, h=h)
