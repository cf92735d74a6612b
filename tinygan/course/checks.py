"""The graded checks of the course's parts, and where a wrong answer is wrong.

Each part has a check that runs the student's code on small float64 arrays and compares every output with an
answer the grader computes *its own way*: direct sums over kernel offsets for the convolutions, the textbook
formulas for BatchNorm and Adam, ``logaddexp`` for the loss, a plain copy of the two GAN updates. It never
calls the library's implementation of the same part (those are in ``parts.LIBRARY``; a student's part that
calls one is refused by the grader before it runs).

A wrong array is located: which entries (indices, the largest error and where), a small picture of the error
per channel or per kernel offset, and, when the answer matches a typical mistake (the mean where the sum
belongs, a missing bias correction, the saturating G loss, ...), that mistake by name.

Run by the grader, one part per process, so that an endless loop or a crash costs that part only::

    python -m tinygan.course.checks PART < student_lesson.py     # one JSON line on stdout
"""
import ast
import contextlib
import io
import json
import linecache
import sys
import traceback

import numpy as np

from ..backend import to_numpy

# --- running a student's lesson without running the lesson ----------------------------------------------

def definitions(source, filename):
    """Execute what a lesson *defines* (imports, functions, classes, constants) and not what it runs.

    A top-level assignment is kept only when its value calls nothing (``xp = backend.xp``, ``EPS = 1e-5``):
    the lesson's own work (parsing flags, training, figures) stays undone.
    """
    tree = ast.parse(source, filename)
    namespace = {"__name__": "student_lesson", "__file__": filename}
    for node in tree.body:
        keep = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) or (
            isinstance(node, ast.Assign) and not any(isinstance(n, ast.Call) for n in ast.walk(node.value)))
        if keep:
            try:
                exec(compile(ast.Module([node], []), filename, "exec"), namespace)
            except Exception:          # a name the lesson makes at run time; the check says if a part needs it
                pass
    return namespace


# --- comparing arrays, and saying where they differ -----------------------------------------------------

class Result:
    """The checks of one part: each {name, passed, value, should, detail}."""

    def __init__(self):
        self.checks = []

    def add(self, name, passed, value, should, detail=""):
        self.checks.append({"name": name, "passed": bool(passed), "value": value, "should": should,
                            "detail": detail})
        return passed

    def array(self, name, got, want, mistakes=(), picture=None, rtol=1e-7):
        """Compare an array with the answer; on a mismatch say where, and which typical mistake it matches."""
        want = np.asarray(want, dtype=np.float64)
        try:
            got = np.asarray(to_numpy(got), dtype=np.float64)
        except (TypeError, ValueError):
            return self.add(name, False, f"{type(got).__name__}", f"an array of shape {want.shape}")
        if got.shape != want.shape:
            detail = axes_hint(got, want)
            return self.add(name, False, f"shape {got.shape}", f"shape {want.shape}", detail)
        with np.errstate(invalid="ignore"):
            error = np.where(np.isfinite(got), np.abs(got - want), np.inf)
        scale = rtol * (1 + np.abs(want).max())
        wrong = error > scale
        if not wrong.any():
            return self.add(name, True, f"max error {error.max():.2g}", f"<= {scale:.2g}")
        worst = np.unravel_index(np.argmax(error), error.shape)
        lines = [f"{int(wrong.sum())} of {wrong.size} entries wrong, e.g. {list_indices(wrong)}; the largest error "
                 f"is at {tuple(int(i) for i in worst)}: {got[worst]:.6g} where it should be {want[worst]:.6g}"]
        if picture is not None:
            lines += picture(error)
        for description, variant in mistakes:
            try:
                variant = np.asarray(variant(), dtype=np.float64)
            except Exception:
                continue
            if variant.shape == got.shape and np.allclose(got, variant, rtol=1e-6, atol=scale):
                lines.append(f"this is what {description}")
                break
        return self.add(name, False, f"max error {error.max():.3g}", f"<= {scale:.2g}", "\n".join(lines))

    def scalar(self, name, got, want, rtol=1e-7, mistakes=()):
        return self.array(name, np.asarray(to_numpy(got), dtype=np.float64).reshape(()), np.asarray(want),
                          mistakes, rtol=rtol)


def list_indices(mask, most=4):
    found = [tuple(int(i) for i in index) for index in np.argwhere(mask)[:most]]
    return ", ".join(map(str, found)) + (", ..." if mask.sum() > most else "")


def axes_hint(got, want):
    """Say so when a wrong shape is the right array with its axes in another order (a missing transpose)."""
    if sorted(got.shape) != sorted(want.shape) or got.ndim != want.ndim:
        return ""
    import itertools
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


# --- the grader's own answers ---------------------------------------------------------------------------

def conv_reference(x, weight, bias, s, p):
    """y[n, o, i, j] = sum_{c,u,v} W[o, c, u, v] x_pad[n, c, s i + u, s j + v] + b[o], by kernel offsets."""
    n, c, h, w = x.shape
    o, _, k, _ = weight.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    y = np.zeros((n, o, ho, wo))
    for u in range(k):
        for v in range(k):
            y += np.einsum("nchw,oc->nohw", xpad[:, :, u:u + s * ho:s, v:v + s * wo:s], weight[:, :, u, v])
    return y + (0 if bias is None else bias.reshape(1, -1, 1, 1))


def conv_gradients(x, weight, G, s, p, flip=False):
    """(dL/dx, dL/dW, dL/db) of conv_reference for the upstream gradient G. ``flip``: the kernel's u and v
    swapped in dL/dx, a typical mistake."""
    n, c, h, w = x.shape
    k = weight.shape[2]
    ho, wo = G.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxpad = np.zeros((n, c, max(h + 2 * p, s * (ho - 1) + k), max(w + 2 * p, s * (wo - 1) + k)))
    dW = np.zeros_like(weight)
    kernel = weight.transpose(0, 1, 3, 2) if flip else weight
    for u in range(k):
        for v in range(k):
            dW[:, :, u, v] = np.einsum("nohw,nchw->oc", G, xpad[:, :, u:u + s * ho:s, v:v + s * wo:s])
            dxpad[:, :, u:u + s * ho:s, v:v + s * wo:s] += np.einsum("nohw,oc->nchw", G, kernel[:, :, u, v])
    return dxpad[:, :, p:p + h, p:p + w], dW, G.sum(axis=(0, 2, 3))


def im2col_reference(x, k, s, p):
    """cols[n, c, u, v, i, j] = x_pad[n, c, s i + u, s j + v], one output pixel at a time."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.zeros((n, c, k, k, ho, wo))
    for i in range(ho):
        for j in range(wo):
            cols[:, :, :, :, i, j] = xpad[:, :, s * i:s * i + k, s * j:s * j + k]
    return cols


def adam_reference(w, grads, lr, b1, b2, eps, bias_correction=True):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat, v_hat = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


# --- the parts --------------------------------------------------------------------------------------------

def needs(namespace, name, part):
    if name not in namespace:
        raise LookupError(f"the lesson defines no {name}, which part {part} is written in")
    return namespace[name]


def check_linear_backward(ns, rng):
    MyLinear = needs(ns, "MyLinear", "linear_backward")
    n, d_in, d_out = 5, 4, 3
    W, b, x, G = rng.normal(size=(d_out, d_in)), rng.normal(size=d_out), rng.normal(size=(n, d_in)), \
        rng.normal(size=(n, d_out))
    layer = MyLinear(W.copy(), b.copy())
    layer.forward(x)
    dx = layer.backward(G)
    r = Result()
    r.array("dL/dW", layer.dW, G.T @ x)
    r.array("dL/db", layer.db, G.sum(axis=0), mistakes=[(
        "the mean over the batch gives: dL/db is the *sum* of G over the batch (each sample adds its gradient)",
        lambda: G.mean(axis=0))])
    r.array("dL/dx", dx, G @ W, mistakes=[("G W^T would give: dL/dx = G W", lambda: G @ W.T)])
    layer.forward(x)
    layer.backward(G)
    r.array("dL/dW after a second backward (gradients add up)", layer.dW, 2 * G.T @ x,
            mistakes=[("a backward that sets the gradient gives: add into self.dW, do not assign it",
                       lambda: G.T @ x)])
    return r


def check_im2col(ns, rng):
    im2col = needs(ns, "im2col", "im2col")
    r = Result()
    x = rng.normal(size=(2, 3, 7, 6))
    for k, s, p in ((3, 1, 1), (4, 2, 1), (2, 3, 0)):
        want = im2col_reference(x, k, s, p)
        mistakes = [("the columns without padding would be", lambda: im2col_reference(x, k, s, 0)),
                    ("swapping the kernel offsets u and v gives",
                     lambda: im2col_reference(x, k, s, p).transpose(0, 1, 3, 2, 4, 5))]
        r.array(f"im2col(x, k={k}, s={s}, p={p})", im2col(x.copy(), k, s, p), want, mistakes,
                picture=lambda e: per_kernel_offset(e.transpose(0, 1, 4, 5, 2, 3)))
    return r


def check_conv_backward(ns, rng):
    MyConv2d = needs(ns, "MyConv2d", "conv_backward")
    r = Result()
    for c_in, c_out, k, s, p in ((3, 4, 3, 1, 1), (2, 5, 4, 2, 1)):
        x, weight, bias = rng.normal(size=(2, c_in, 8, 7)), rng.normal(size=(c_out, c_in, k, k)), rng.normal(size=c_out)
        layer = MyConv2d(weight.copy(), bias.copy(), s, p)
        y = layer(x)
        G = rng.normal(size=np.shape(y))
        dx = layer.backward(G)
        want_dx, want_dW, want_db = conv_gradients(x, weight, G, s, p)
        where = f"k={k} s={s} p={p}"
        r.array(f"dL/dW ({where})", layer.weight.grad, want_dW, picture=per_kernel_offset)
        r.array(f"dL/db ({where})", layer.bias.grad, want_db, mistakes=[(
            "the mean over the batch and the pixels gives: dL/db is the sum of G over N, Ho and Wo",
            lambda: G.mean(axis=(0, 2, 3)))])
        r.array(f"dL/dx ({where})", dx, want_dx, picture=per_channel(1), mistakes=[(
            "each kernel transposed (u and v swapped) gives: W^T G's kernel offsets must line up with im2col's "
            "(u, v), so check the order of the axes before col2im",
            lambda: conv_gradients(x, weight, G, s, p, True)[0])])
    return r


def check_conv_transpose_forward(ns, rng):
    MyConvTranspose2d = needs(ns, "MyConvTranspose2d", "conv_transpose_forward")
    r = Result()
    for c_in, c_out, size, k, s, p in ((4, 3, 5, 4, 2, 1), (2, 5, 4, 3, 1, 1)):
        weight, x = rng.normal(size=(c_in, c_out, k, k)), rng.normal(size=(2, c_in, size, size))
        layer = MyConvTranspose2d(weight.copy(), s, p)
        y = layer(x)
        out = (size - 1) * s - 2 * p + k
        # the adjoint: convT(x) is the input gradient of the conv (C_out -> C_in) with the same weight
        want = conv_gradients(np.zeros((2, c_out, out, out)), weight, x, s, p)[0]
        r.array(f"y = convT(x) (k={k} s={s} p={p}, {c_in} -> {c_out} channels)", y, want, picture=per_channel(1),
                mistakes=[("the kernel transposed (u and v swapped) gives",
                           lambda: conv_gradients(np.zeros((2, c_out, out, out)), weight, x, s, p, True)[0])])
        probe = rng.normal(size=(2, c_out, out, out))
        got = float(np.sum(to_numpy(y) * probe)) if np.shape(y) == probe.shape else np.nan
        lhs = float(np.sum(conv_reference(probe, weight, None, s, p) * x))
        r.add(f"the adjoint identity <conv(z), x> = <z, convT(x)> (k={k} s={s} p={p})",
              abs(got - lhs) <= 1e-9 * abs(lhs), f"{got:.6g}", f"{lhs:.6g}")
    return r


def check_batchnorm_backward(ns, rng):
    MyBatchNorm2d = needs(ns, "MyBatchNorm2d", "batchnorm_backward")
    r = Result()
    x, g = rng.normal(2.0, 3.0, size=(4, 3, 5, 5)), rng.normal(size=(4, 3, 5, 5))
    layer = MyBatchNorm2d(3)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    layer.weight.data[...], layer.bias.data[...] = gamma, beta
    layer.train()
    layer(x.copy())
    dx = layer.backward(g)
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    inv_std = 1 / np.sqrt(var + layer.eps)
    xhat = (x - mean) * inv_std
    scale = gamma.reshape(1, -1, 1, 1) * inv_std
    want = scale * (g - g.mean(axis=(0, 2, 3), keepdims=True) - xhat * (g * xhat).mean(axis=(0, 2, 3), keepdims=True))
    r.array("dL/dx in train mode", dx, want, picture=per_channel(1), mistakes=[
        ("the eval-mode gradient gamma / sigma * g gives: in train mode the batch's mean and variance depend on x, "
         "so both mean terms belong in dL/dx", lambda: scale * g),
        ("leaving out the variance's term (- xhat * mean(g * xhat)) gives",
         lambda: scale * (g - g.mean(axis=(0, 2, 3), keepdims=True))),
        ("leaving out the mean's term (- mean(g)) gives",
         lambda: scale * (g - xhat * (g * xhat).mean(axis=(0, 2, 3), keepdims=True)))])
    return r


def check_bce_with_logits(ns, rng):
    MyBCEWithLogits = needs(ns, "MyBCEWithLogits", "bce_with_logits")
    r = Result()
    for label, x in (("moderate logits", rng.normal(0, 3, size=12)),
                     ("logits of +-1000", np.array([1000.0, -1000.0, 30.0, -30.0, 0.5, -745.0]))):
        t = (rng.random(x.shape) < 0.5).astype(np.float64)
        loss = MyBCEWithLogits()
        with np.errstate(all="ignore"):
            value = loss(x.copy(), t)
            grad = loss.backward()
        want = float(np.mean(np.logaddexp(0, x) - t * x))
        sigmoid = np.exp(-np.logaddexp(0, -x))
        r.scalar(f"the loss, {label}", value, want, mistakes=[
            ("the sum instead of the mean gives: BCE is a mean over the batch", lambda: want * x.size),
            ("log(sigmoid(x)) and log(1 - sigmoid(x)) give: they overflow; use max(x, 0) - t x + log1p(exp(-|x|))",
             lambda: np.nan)])
        r.array(f"dL/dx, {label}", grad, (sigmoid - t) / x.size, mistakes=[
            ("sigmoid(x) - t without the 1/n of the mean gives", lambda: sigmoid - t)])
    return r


def check_adam_step(ns, rng):
    adam_step = needs(ns, "adam_step", "adam_step")
    r = Result()
    lr, b1, b2, eps = 0.01, 0.5, 0.999, 1e-8
    w0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=w0.shape) * 10 ** rng.uniform(-3, 1) for _ in range(5)]
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, g in enumerate(grads, start=1):
        w, m, v = adam_step(w, g, m, v, t, lr, b1, b2, eps)
    r.array("w after 5 Adam steps", w, adam_reference(w0, grads, lr, b1, b2, eps), mistakes=[
        ("Adam without its bias correction gives: divide m by 1 - b1^t and v by 1 - b2^t (both started at 0)",
         lambda: adam_reference(w0, grads, lr, b1, b2, eps, bias_correction=False))])
    w1 = adam_step(w0.copy(), grads[0], np.zeros_like(w0), np.zeros_like(w0), 1, lr, b1, b2, eps)[0]
    step = np.abs(np.asarray(w1) - w0)
    r.add("the first step has size lr in every coordinate", np.allclose(step, lr, rtol=1e-5),
          f"{step.min():.3g} to {step.max():.3g}", f"{lr} (m_hat / sqrt(v_hat) = g / |g|)")
    return r


def tiny_gan(seed):
    """A small G and D (the DCGAN's layers, 4 channels), their Adam optimisers and the loss, all float64."""
    from ..dcgan import ModelConfig
    from ..losses import BCEWithLogitsLoss
    from ..optim import Adam
    config = ModelConfig(nz=4, ngf=4, ndf=4)
    G, D = config.generator(rng=seed), config.discriminator(rng=seed + 1)
    for parameter in G.parameters() + D.parameters():
        parameter.data = parameter.data.astype(np.float64)
    return (G, D, Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)), Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)),
            BCEWithLogitsLoss())


def reference_d_step(D, opt_D, loss, real, fake, fake_target=0.0):
    opt_D.zero_grad()
    d_loss = loss(D(real), 1.0)
    D.backward(loss.backward(), need_input_grad=False)
    d_loss = d_loss + loss(D(fake), fake_target)
    D.backward(loss.backward(), need_input_grad=False)
    opt_D.step()
    return d_loss


def reference_g_step(G, D, opt_G, loss, fake, saturating=False):
    opt_G.zero_grad()
    D.requires_grad_(False)
    logits = D(fake)
    g_loss = -loss(logits, 0.0) if saturating else loss(logits, 1.0)
    gradient = loss.backward()
    G.backward(D.backward(-gradient if saturating else gradient), need_input_grad=False)
    D.requires_grad_(True)
    opt_G.step()
    return g_loss


def weights(module):
    return np.concatenate([to_numpy(p.data).ravel() for p in module.parameters()])


def by_parameter(module):
    """A picture of a flat weights() error: which of the module's parameters are wrong, and in how many entries."""
    def picture(error):
        lines, start = [], 0
        for name, parameter in module.named_parameters():
            part = error[start:start + parameter.data.size]
            start += parameter.data.size
            if (part > 0).any():
                lines.append(f"{name} {tuple(parameter.data.shape)}: largest error {part.max():.3g}")
        return ["wrong parameters: " + "; ".join(lines[:6]) + ("; ..." if len(lines) > 6 else "")]
    return picture


def two_gans(rng, batch=4):
    real = rng.uniform(-1, 1, size=(batch, 3, 64, 64))
    gans = [tiny_gan(7) for _ in range(3)]                 # the student's, the answer, a typical mistake
    z = rng.normal(size=(batch, 4, 1, 1))
    fakes = [G(z.copy()) for G, *_ in gans]
    return real, gans, fakes


def check_d_step(ns, rng):
    d_step = needs(ns, "d_step", "d_step")
    real, ((_, D, _, opt_D, loss), (_, D_ref, _, opt_ref, loss_ref), (_, D_bad, _, opt_bad, loss_bad)), fakes = \
        two_gans(rng)
    before = weights(D)
    returned = d_step(D, opt_D, loss, real.copy(), fakes[0])
    want = reference_d_step(D_ref, opt_ref, loss_ref, real.copy(), fakes[1])
    reference_d_step(D_bad, opt_bad, loss_bad, real.copy(), fakes[2], fake_target=1.0)
    r = Result()
    d_loss = returned[0] if isinstance(returned, tuple) else returned
    r.scalar("L_D = BCE(D(real), 1) + BCE(D(fake), 0)", d_loss, float(to_numpy(want)))
    r.array("D's weights after the step", weights(D), weights(D_ref), rtol=1e-9, picture=by_parameter(D), mistakes=[
        ("the fakes' target 1 instead of 0 gives: D learns to call the fakes fake", lambda: weights(D_bad)),
        ("no step at all gives: call the optimiser's step once both gradients are in", lambda: before)])
    return r


def check_g_step(ns, rng):
    g_step = needs(ns, "g_step", "g_step")
    real, ((G, D, opt_G, _, loss), (G_ref, D_ref, opt_ref, _, loss_ref), (G_bad, D_bad, opt_bad, _, loss_bad)), \
        fakes = two_gans(rng)
    d_before = weights(D)
    g_loss = g_step(G, D, opt_G, loss, fakes[0])
    want = reference_g_step(G_ref, D_ref, opt_ref, loss_ref, fakes[1])
    saturating = reference_g_step(G_bad, D_bad, opt_bad, loss_bad, fakes[2], saturating=True)
    r = Result()
    r.array("G's weights after the step", weights(G), weights(G_ref), rtol=1e-9, picture=by_parameter(G), mistakes=[(
        "the saturating loss log(1 - D(G(z))) gives: it has almost no gradient where D rejects the fakes; use the "
        "non-saturating L_G = BCE(D(G(z)), 1)", lambda: weights(G_bad))])
    r.scalar("L_G = BCE(D(fake), 1)", g_loss, float(to_numpy(want)), mistakes=[
        ("the saturating loss log(1 - D(G(z))) gives", lambda: float(to_numpy(saturating)))])
    r.array("D's weights (a G step must not change them)", weights(D), d_before, rtol=1e-12, picture=by_parameter(D))
    return r


def check_input_gradient(ns, rng):
    from ..judge import input_gradient as reference
    from ..nn import sigmoid
    input_gradient = needs(ns, "input_gradient", "input_gradient")
    D, D_ref = tiny_gan(7)[1].eval(), tiny_gan(7)[1].eval()
    images = rng.uniform(-1, 1, size=(3, 3, 64, 64))
    got = input_gradient(D, images.copy())
    want = to_numpy(reference(D_ref, images.copy()))
    p = to_numpy(sigmoid(D_ref(images.copy()))).reshape(-1, 1, 1, 1)
    r = Result()
    r.array("dlogit/dimages", got, want, rtol=1e-9, mistakes=[
        ("the gradient of the probability sigmoid(logit), not of the logit, gives: start the backward with ones",
         lambda: want * p * (1 - p)),
        ("the gradient of the mean of the logits gives: start the backward with ones, not 1/N",
         lambda: want / len(images))])
    frozen = sum(not parameter.requires_grad for parameter in D.parameters())
    r.add("D's weights learn again afterwards (requires_grad back to True)", frozen == 0,
          f"{frozen} parameters still frozen", "0")
    return r


CHECKS = {"linear_backward": check_linear_backward, "im2col": check_im2col, "conv_backward": check_conv_backward,
          "conv_transpose_forward": check_conv_transpose_forward, "batchnorm_backward": check_batchnorm_backward,
          "bce_with_logits": check_bce_with_logits, "adam_step": check_adam_step, "d_step": check_d_step,
          "g_step": check_g_step, "input_gradient": check_input_gradient}


def run_part(part, source, filename="student_lesson.py"):
    """The checks of ``part`` on the lesson ``source``: a list of check dicts (a crash is one failed check)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)   # lines for tracebacks
    with contextlib.redirect_stdout(io.StringIO()):                 # a lesson's prints are not the grader's
        try:
            namespace = definitions(source, filename)
            return CHECKS[part](namespace, np.random.default_rng(2026)).checks
        except Exception as err:
            frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == filename]
            where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
            return [{"name": "the part runs", "passed": False, "value": f"{type(err).__name__}: {err}{where}",
                     "should": "no error", "detail": ""}]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    part = argv[0]
    filename = next((a.split("=", 1)[1] for a in argv if a.startswith("--file=")), "student_lesson.py")
    print(json.dumps(run_part(part, sys.stdin.read(), filename)))


if __name__ == "__main__":
    main()
