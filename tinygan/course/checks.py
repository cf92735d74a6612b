"""The graded checks of the course's parts, run in the grader's process on what a student's process returned.

Each check compares every output of the student's code (probes.py) with the grader's own answer (answers.py) on
the same inputs, and says where a wrong answer is wrong and which typical mistake it is (diagnose.py). A check
never sees the student's code or objects: only arrays, so nothing a student writes can change how it is judged.
"""
import functools

import numpy as np

from . import answers, probes, registry
from .diagnose import Result, by_parameter, per_channel, per_kernel_offset


def check_linear_backward(i, out):
    W, x, G = i["W"], i["x"], i["G"]
    r = Result()
    r.array("dL/dW", out["dW"], G.T @ x, mistakes=[("G^T x's transpose (x^T G) gives: dL/dW = G^T x", lambda: x.T @ G)])
    r.array("dL/db", out["db"], G.sum(axis=0), mistakes=[(
        "the mean over the batch gives: dL/db is the *sum* of G over the batch (each sample adds its gradient)",
        lambda: G.mean(axis=0))])
    r.array("dL/dx", out["dx"], G @ W, mistakes=[("G W^T would give: dL/dx = G W", lambda: G @ W.T)])
    r.array("dL/dW after a second backward (gradients add up)", out["dW twice"], 2 * G.T @ x,
            mistakes=[("a backward that sets the gradient gives: add into self.dW, do not assign it",
                       lambda: G.T @ x)])
    return r


def check_im2col(i, out):
    x, r = i["x"], Result()
    for k, s, p in probes.IM2COL:
        want = answers.im2col_reference(x, k, s, p)
        mistakes = [("the columns without padding would be: pad x by p on both sides first",
                     lambda: answers.im2col_reference(x, k, s, 0)),
                    ("swapping the kernel offsets u and v gives",
                     lambda: want.transpose(0, 1, 3, 2, 4, 5)),
                    (f"slices with steps of 1 give: the stride s={s} is ignored (slice with step s)",
                     lambda: answers.im2col_reference(x, k, 1, p)[..., :want.shape[4], :want.shape[5]])]
        ho = (x.shape[2] + 2 * p - k) // s
        shapes = [("the output size without its + 1 ((H + 2p - k) // s + 1 windows fit)",
                   (*want.shape[:4], ho, (x.shape[3] + 2 * p - k) // s)),
                  (f"the stride s={s} ignored (steps of 1)", answers.im2col_shape(x.shape, k, 1, p)),
                  (f"the padding p={p} ignored", answers.im2col_shape(x.shape, k, s, 0)),
                  ("padding with 2 p on each side", answers.im2col_shape(x.shape, k, s, 2 * p))]
        r.array(f"im2col(x, k={k}, s={s}, p={p})", out[f"cols {k} {s} {p}"], want, mistakes,
                picture=lambda e: per_kernel_offset(e.transpose(0, 1, 4, 5, 2, 3)),
                shapes=[(what, shape) for what, shape in shapes if shape != want.shape])
    return r


def check_conv_backward(inputs, out):
    r = Result()
    for (k, s, p), i in inputs.items():
        x, weight, G = i["x"], i["weight"], i["G"]
        want_dx, want_dW, want_db = answers.conv_gradients(x.shape, x, weight, G, s, p)
        where = f"k={k} s={s} p={p}"
        r.array(f"dL/dW ({where})", out[f"dW {k} {s} {p}"], want_dW, picture=per_kernel_offset)
        r.array(f"dL/db ({where})", out[f"db {k} {s} {p}"], want_db, mistakes=[(
            "the mean over the batch and the pixels gives: dL/db is the sum of G over N, Ho and Wo",
            lambda: G.mean(axis=(0, 2, 3)))])
        mistakes = [
            ("each kernel transposed (u and v swapped) gives: W^T G's kernel offsets must line up with im2col's "
             "(u, v), so check the order of the axes before col2im",
             lambda: answers.conv_gradients(x.shape, x, weight, G, s, p, flip=True)[0]),
            ("windows that overwrite each other give: where windows overlap their values must add up (+=)",
             lambda: answers.conv_gradients(x.shape, x, weight, G, s, p, overwrite=True)[0]),
            ("each kernel turned by 180 degrees gives: dL/dx uses W as it is (the forward is a correlation)",
             lambda: answers.conv_gradients(x.shape, x, weight, G, s, p, rotate=True)[0])]
        if s != 1:
            mistakes.append((f"laying the columns back with stride 1 gives: the stride s={s} is not passed on to "
                             "col2im", lambda: answers.conv_gradients(x.shape, x, weight, G, s, p, place_stride=1)[0]))
        r.array(f"dL/dx ({where})", out[f"dx {k} {s} {p}"], want_dx, picture=per_channel(1), mistakes=mistakes,
                shifts=True)
    return r


def check_conv_transpose_forward(inputs, out):
    r = Result()
    for (k, s, p), i in inputs.items():
        weight, x, probe = i["weight"], i["x"], i["probe"]
        c_in, c_out = weight.shape[:2]
        want = answers.conv_transpose_reference(x, weight, s, p)
        y = out[f"y {k} {s} {p}"]
        size = x.shape[2]
        uncropped, unstrided = (size - 1) * s + k, size - 1 - 2 * p + k
        mistakes = [("the kernel transposed (u and v swapped) gives",
                     lambda: answers.conv_transpose_reference(x, weight, s, p, flip=True)),
                    ("windows that overwrite each other give: where windows overlap their values must add up (+=)",
                     lambda: answers.conv_transpose_reference(x, weight, s, p, overwrite=True)),
                    ("the kernel turned by 180 degrees gives: convT is the conv's adjoint with the same W, unturned",
                     lambda: answers.conv_transpose_reference(x, weight, s, p, rotate=True))]
        r.array(f"y = convT(x) (k={k} s={s} p={p}, {c_in} -> {c_out} channels)", y, want, picture=per_channel(1),
                mistakes=mistakes, shifts=True, shapes=[
                    (f"not cutting off the padding p={p} on each side", (2, c_out, uncropped, uncropped)),
                    (f"the stride s={s} ignored (steps of 1)", (2, c_out, unstrided, unstrided))])
        got = float(np.sum(y * probe)) if not isinstance(y, str) and y.shape == probe.shape else np.nan
        lhs = float(np.sum(answers.conv_reference(probe, weight, None, s, p) * x))
        r.add(f"the adjoint identity <conv(z), x> = <z, convT(x)> (k={k} s={s} p={p})",
              abs(got - lhs) <= 1e-9 * abs(lhs), f"{got:.6g}", f"{lhs:.6g}")
    return r


def check_batchnorm_backward(i, out):
    x, g, gamma = i["x"], i["g"], i["gamma"]
    eps = float(out["eps"]) if not isinstance(out["eps"], str) else 1e-5
    want = answers.batchnorm_backward_reference(x, g, gamma, eps)
    inv_std = 1 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    r = Result()
    r.array("dL/dx in train mode", out["dx"], want, picture=per_channel(1), mistakes=[
        ("the eval-mode gradient gamma / sigma * g gives: in train mode the batch's mean and variance depend on x, "
         "so both mean terms belong in dL/dx", lambda: gamma.reshape(1, -1, 1, 1) * inv_std * g),
        ("leaving out the variance's term (- xhat * mean(g * xhat)) gives",
         lambda: answers.batchnorm_backward_reference(x, g, gamma, eps, terms=("mean",))),
        ("leaving out the mean's term (- mean(g)) gives",
         lambda: answers.batchnorm_backward_reference(x, g, gamma, eps, terms=("variance",))),
        ("sums over N, H and W where the means belong give: divide by N H W",
         lambda: answers.batchnorm_backward_reference(x, g, gamma, eps, reduce="sum")),
        ("leaving gamma out gives: dL/dx is gamma / sigma times the bracket",
         lambda: answers.batchnorm_backward_reference(x, g, gamma, eps, use_gamma=False)),
        ("+ xhat * mean(g * xhat) gives: the variance's term is subtracted",
         lambda: answers.batchnorm_backward_reference(x, g, gamma, eps, variance_sign=1)),
        ("means over the batch alone (axis 0) give: a channel's mean and variance are over N, H and W",
         lambda: answers.batchnorm_backward_reference(x, g, gamma, eps, axes=0))])
    return r


def check_bce_with_logits(inputs, out):
    r = Result()
    for case, i in inputs.items():
        x, t = i["x"], i["t"]
        want, grad = answers.bce_with_logits_reference(x, t)
        r.scalar(f"the loss, {case}", out[f"loss {case}"], want, mistakes=[
            ("the sum instead of the mean gives: BCE is a mean over the batch", lambda: want * x.size),
            ("log(sigmoid(x)) and log(1 - sigmoid(x)) give: they are inf or nan once |x| is large (exp overflows, "
             "sigmoid rounds to 0 or 1); use max(x, 0) - t x + log1p(exp(-|x|))", lambda: answers.bce_naive(x, t)),
            ("the BCE of the probabilities' complement gives: the target t goes with log(sigmoid(x))",
             lambda: answers.bce_with_logits_reference(x, 1 - t)[0])])
        r.array(f"dL/dx, {case}", out[f"grad {case}"], grad, mistakes=[
            ("sigmoid(x) - t without the 1/n of the mean gives", lambda: grad * x.size),
            ("t - sigmoid(x) gives: the gradient of softplus(x) - t x is sigmoid(x) - t", lambda: -grad)])
    return r


def check_adam_step(i, out):
    w0, grads, a = i["w0"], i["grads"], probes.ADAM
    lr = a["lr"]
    r = Result()

    def adam(**mistake):
        return answers.adam_reference(w0, grads, lr, a["b1"], a["b2"], a["eps"], **mistake)
    r.array("w after 5 Adam steps", out["w after 5 steps"], adam(), mistakes=[
        ("Adam without its bias correction gives: divide m by 1 - b1^t and v by 1 - b2^t (both started at 0)",
         lambda: adam(bias_correction=False)),
        ("the bias correction of the step before (t - 1) gives: step t, counted from 1, divides by 1 - b1^t "
         "and 1 - b2^t (with t - 1 the first step divides by 0)", lambda: adam(step_offset=-1)),
        ("the bias correction of the next step (t + 1) gives: step t, counted from 1, divides by 1 - b1^t and "
         "1 - b2^t", lambda: adam(step_offset=1)),
        ("eps inside the square root gives: the step is lr m_hat / (sqrt(v_hat) + eps), eps added after the root",
         lambda: adam(eps_inside=True))])
    first = out["w after 1 step"]
    if isinstance(first, str) or first.shape != w0.shape:
        r.add("the first step has size lr in every coordinate", False, str(getattr(first, "shape", first)),
              f"an array of shape {w0.shape}")
    else:
        step = np.abs(first - w0)
        sizes = f"{step.min():.3g} to {step.max():.3g}" if np.isfinite(step).all() else \
            f"{int((~np.isfinite(step)).sum())} of {step.size} steps nan or inf"
        r.add("the first step has size lr in every coordinate", np.allclose(step, lr, rtol=1e-5), sizes,
              f"{lr} (m_hat / sqrt(v_hat) = g / |g|)")
    return r


@functools.lru_cache(maxsize=None)
def gan_answers(part):
    """The grader's GAN step on the part's inputs, and the typical mistake's (computed once per grading run)."""
    from ..backend import to_numpy
    i = probes.inputs(part)
    found = {}
    mistakes = {"d_step": {"mistake": {"fake_target": 1.0}, "wiped": {"zero_between": True}},
                "g_step": {"mistake": {"saturating": True}, "target 0": {"target": 0.0}}}[part]
    for name, mistake in {"right": {}, **mistakes}.items():
        G, D, opt_G, opt_D, loss = probes.tiny_gan(7)
        fake = G(i["z"].copy())
        if part == "d_step":
            value = answers.d_step_reference(D, opt_D, loss, i["real"].copy(), fake, **mistake)
        else:
            value = answers.g_step_reference(G, D, opt_G, loss, fake, **mistake)
        found[name] = (float(to_numpy(value)), probes.weights(G), probes.weights(D))
    found["before"] = (None, *(probes.weights(m) for m in probes.tiny_gan(7)[:2]))
    found["modules"] = probes.tiny_gan(7)[:2]
    return found


def check_d_step(_, out):
    a = gan_answers("d_step")
    D = a["modules"][1]
    r = Result()
    r.scalar("L_D = BCE(D(real), 1) + BCE(D(fake), 0)", out["d_loss"], a["right"][0], mistakes=[
        ("the fakes' target 1 instead of 0 gives", lambda: a["mistake"][0])])
    r.array("D's weights after the step", out["D"], a["right"][2], rtol=1e-9, picture=by_parameter(D), mistakes=[
        ("the fakes' target 1 instead of 0 gives: D learns to call the fakes fake", lambda: a["mistake"][2]),
        ("no step at all gives: call the optimiser's step once both gradients are in", lambda: a["before"][2]),
        ("zero_grad() between the two batches gives: it wipes the real batch's gradient; D's gradients must add "
         "up over both batches before the step", lambda: a["wiped"][2])])
    return r


def check_g_step(_, out):
    a = gan_answers("g_step")
    G, D = a["modules"]
    r = Result()
    r.array("G's weights after the step", out["G"], a["right"][1], rtol=1e-9, picture=by_parameter(G), mistakes=[
        ("the saturating loss log(1 - D(G(z))) gives: it has almost no gradient where D rejects the fakes; use the "
         "non-saturating L_G = BCE(D(G(z)), 1)", lambda: a["mistake"][1]),
        ("no step at all gives: call the optimiser's step", lambda: a["before"][1]),
        ("the target 0 gives: G's loss is BCE(D(G(z)), 1), G wants its fakes called real",
         lambda: a["target 0"][1])])
    r.scalar("L_G = BCE(D(fake), 1)", out["g_loss"], a["right"][0], mistakes=[
        ("the saturating loss log(1 - D(G(z))) gives", lambda: a["mistake"][0])])
    r.array("D's weights (a G step must not change them)", out["D"], a["before"][2], rtol=1e-12,
            picture=by_parameter(D))
    return r


@functools.lru_cache(maxsize=None)
def input_gradient_answer(directions=3, h=1e-6):
    """Directional derivatives of D's logits by central differences (float64), along random directions, and
    D's probabilities: an answer that owes nothing to the library's backward."""
    from ..backend import to_numpy
    from ..nn import sigmoid
    images = probes.inputs("input_gradient")["images"]
    D = probes.tiny_gan(7)[1].eval()
    v = np.random.default_rng(probes.SEED + 1).normal(size=(len(images), directions, *images.shape[1:]))
    shifted = np.concatenate([(images[:, None] + sign * h * v).reshape(-1, *images.shape[1:]) for sign in (1, -1)])
    logits = to_numpy(D(shifted)).reshape(2, len(images), directions)
    return v, (logits[0] - logits[1]) / (2 * h), to_numpy(sigmoid(D(images.copy()))).reshape(-1)


def check_input_gradient(i, out):
    v, numeric, p = input_gradient_answer()
    got, r = out["grad"], Result()
    if isinstance(got, str) or got.shape != i["images"].shape:
        r.add("dlogit/dimages", False, got if isinstance(got, str) else f"shape {got.shape}",
              f"shape {i['images'].shape}")
    else:
        along = np.einsum("nchw,ndchw->nd", got, v)             # the student's gradient along each direction
        error = np.abs(along - numeric)
        close = error <= 1e-5 * (1 + np.abs(numeric))
        detail = ""
        if not close.all():
            ratio = along / np.where(numeric == 0, np.nan, numeric)
            named = [(what, want) for what, want in (
                ("the gradient of the probability sigmoid(logit), not of the logit: start the backward with ones",
                 (p * (1 - p))[:, None]), ("the gradient of the mean of the logits: start the backward with ones, "
                                           "not 1/N", np.full((1, 1), 1 / len(p)))) if np.allclose(ratio, want, rtol=1e-4)]
            detail = (f"along {v.shape[1]} random directions per image the gradient gives {along.ravel()[:3].round(6)}"
                      f"... where central differences of D's logits give {numeric.ravel()[:3].round(6)}..." +
                      (f"\nthis is {named[0][0]}" if named else ""))
        r.add("dlogit/dimages, along random directions (central differences)", close.all(),
              f"largest error {error.max():.3g}", f"<= 1e-05 (1 + |derivative|)", detail)
    frozen = out["frozen"]
    r.add("D's weights learn again afterwards (requires_grad back to True)", not isinstance(frozen, str) and frozen == 0,
          f"{frozen} parameters still frozen", "0")
    return r


@functools.lru_cache(maxsize=None)
def project_pixels_answers():
    i = probes.inputs("project_pixels")
    G = probes.projection_generator()
    found = {name: answers.project_pixels_reference(G, i["photo"], i["z"], probes.PROJECT_STEPS + extra,
                                                    probes.PROJECT_LR, **mistake)
             for name, extra, mistake in (("right", 0, {}), ("no sphere", 0, {"sphere": False}),
                                          ("ascent", 0, {"sign": -1.0}), ("one more", 1, {}))}
    found["after"] = (None, found.pop("one more")[1][1:])     # the distances measured after each step
    return found


def check_project_pixels(i, out):
    a, r = project_pixels_answers(), Result()
    r.array(f"z after {probes.PROJECT_STEPS} steps", out["z"], a["right"][0], rtol=1e-6, mistakes=[
        ("z left where Adam put it gives: after each step z goes back onto the sphere |z| = sqrt(nz)",
         lambda: a["no sphere"][0]),
        ("a step up the gradient gives: Adam descends dd/dz (z.grad is the gradient, the optimiser subtracts it)",
         lambda: a["ascent"][0])])
    r.array("the distances before each step (steps, N)", out["distances"], a["right"][1], rtol=1e-6, mistakes=[
        ("z left off the sphere gives", lambda: a["no sphere"][1]), ("a step up the gradient gives",
                                                                    lambda: a["ascent"][1]),
        ("the distances measured after each step give: measure the faces before the step, as the docstring says",
         lambda: a["after"][1])])
    return r


CHECKS = {part: globals()[f"check_{part}"] for part in registry.PARTS}


def judge(part, outputs):
    """The checks of ``part`` on the outputs a student's process returned: a list of check dicts."""
    try:
        return CHECKS[part](probes.inputs(part), outputs).checks
    except KeyError as missing:                 # an output the probe did not return (it cannot be the student's)
        return [{"name": "the part's outputs", "passed": False, "value": f"no output {missing}",
                 "should": "every output", "detail": ""}]
