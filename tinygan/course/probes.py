"""What a student's process does with a part: make the part's inputs, call the student's code on them, and hand
back the raw outputs. Nothing here knows the answers (answers.py) or decides a grade (checks.py): the grader
makes the same inputs from the same seed in its own process, and judges the outputs there.

Each part has ``inputs(rng)`` (small float64 arrays, used on both sides) and ``probe(namespace, inputs)``
(student's side: the outputs, a dict of arrays).
"""
import ast

import numpy as np

from . import registry

SEED = 2026


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


def needs(namespace, name, part):
    if name not in namespace:
        raise LookupError(f"the lesson defines no {name}, which part {part} is written in")
    return namespace[name]


def as_output(value):
    """A student's result as a float64 array the grader can read, or the name of what it was instead."""
    from ..backend import to_numpy
    if value is None or isinstance(value, (str, bytes, dict)):
        return f"{type(value).__name__}, not an array"
    try:
        return np.array(to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError):
        return f"a {type(value).__name__}, not an array"


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


def weights(module):
    from ..backend import to_numpy
    return np.concatenate([to_numpy(p.data).ravel() for p in module.parameters()])


# --- the parts: inputs on both sides, the probe on the student's --------------------------------------------

IM2COL = ((3, 1, 1), (4, 2, 1), (2, 3, 0))                      # (k, s, p)
CONV = ((3, 4, 3, 1, 1), (2, 5, 4, 2, 1))                       # (c_in, c_out, k, s, p)
CONV_T = ((4, 3, 5, 4, 2, 1), (2, 5, 4, 3, 1, 1))               # (c_in, c_out, size, k, s, p)
BCE_CASES = ("moderate logits", "logits of +-1000")
ADAM = dict(lr=0.01, b1=0.5, b2=0.999, eps=1e-8)


def inputs_linear_backward(rng):
    n, d_in, d_out = 5, 4, 3
    return dict(W=rng.normal(size=(d_out, d_in)), b=rng.normal(size=d_out), x=rng.normal(size=(n, d_in)),
                G=rng.normal(size=(n, d_out)))


def probe_linear_backward(ns, i):
    layer = needs(ns, "MyLinear", "linear_backward")(i["W"].copy(), i["b"].copy())
    layer.forward(i["x"].copy())
    out = {"dx": as_output(layer.backward(i["G"].copy()))}
    out.update(dW=as_output(layer.dW), db=as_output(layer.db))
    layer.forward(i["x"].copy())
    layer.backward(i["G"].copy())
    out["dW twice"] = as_output(layer.dW)
    return out


def inputs_im2col(rng):
    return dict(x=rng.normal(size=(2, 3, 7, 6)))


def probe_im2col(ns, i):
    im2col = needs(ns, "im2col", "im2col")
    return {f"cols {k} {s} {p}": as_output(im2col(i["x"].copy(), k, s, p)) for k, s, p in IM2COL}


def inputs_conv_backward(rng):
    found = {}
    for c_in, c_out, k, s, p in CONV:
        h, w = 8, 7
        found[(k, s, p)] = dict(x=rng.normal(size=(2, c_in, h, w)), weight=rng.normal(size=(c_out, c_in, k, k)),
                                bias=rng.normal(size=c_out),
                                G=rng.normal(size=(2, c_out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)))
    return found


def probe_conv_backward(ns, inputs):
    MyConv2d, out = needs(ns, "MyConv2d", "conv_backward"), {}
    for (k, s, p), i in inputs.items():
        layer = MyConv2d(i["weight"].copy(), i["bias"].copy(), s, p)
        layer(i["x"].copy())
        out[f"dx {k} {s} {p}"] = as_output(layer.backward(i["G"].copy()))
        out[f"dW {k} {s} {p}"], out[f"db {k} {s} {p}"] = as_output(layer.weight.grad), as_output(layer.bias.grad)
    return out


def inputs_conv_transpose_forward(rng):
    found = {}
    for c_in, c_out, size, k, s, p in CONV_T:
        out = (size - 1) * s - 2 * p + k
        found[(k, s, p)] = dict(weight=rng.normal(size=(c_in, c_out, k, k)), x=rng.normal(size=(2, c_in, size, size)),
                                probe=rng.normal(size=(2, c_out, out, out)))
    return found


def probe_conv_transpose_forward(ns, inputs):
    MyConvTranspose2d = needs(ns, "MyConvTranspose2d", "conv_transpose_forward")
    return {f"y {k} {s} {p}": as_output(MyConvTranspose2d(i["weight"].copy(), s, p)(i["x"].copy()))
            for (k, s, p), i in inputs.items()}


def inputs_batchnorm_backward(rng):
    return dict(x=rng.normal(2.0, 3.0, size=(4, 3, 5, 5)), g=rng.normal(size=(4, 3, 5, 5)), gamma=rng.normal(size=3),
                beta=rng.normal(size=3))


def probe_batchnorm_backward(ns, i):
    layer = needs(ns, "MyBatchNorm2d", "batchnorm_backward")(3)
    eps = as_output(layer.eps)
    layer.weight.data[...], layer.bias.data[...] = i["gamma"], i["beta"]
    layer.train()
    layer(i["x"].copy())
    return {"dx": as_output(layer.backward(i["g"].copy())), "eps": eps}


def inputs_bce_with_logits(rng):
    found = {}
    for case, x in zip(BCE_CASES, (rng.normal(0, 3, size=12), np.array([1000.0, -1000.0, 30.0, -30.0, 0.5, -745.0]))):
        found[case] = dict(x=x, t=(rng.random(x.shape) < 0.5).astype(np.float64))
    return found


def probe_bce_with_logits(ns, inputs):
    MyBCEWithLogits, out = needs(ns, "MyBCEWithLogits", "bce_with_logits"), {}
    for case, i in inputs.items():
        loss = MyBCEWithLogits()
        with np.errstate(all="ignore"):
            out[f"loss {case}"] = as_output(loss(i["x"].copy(), i["t"].copy()))
            out[f"grad {case}"] = as_output(loss.backward())
    return out


def inputs_adam_step(rng):
    w0 = rng.normal(size=(3, 4))
    return dict(w0=w0, grads=[rng.normal(size=w0.shape) * 10 ** rng.uniform(-3, 1) for _ in range(5)])


def probe_adam_step(ns, i):
    adam_step, a = needs(ns, "adam_step", "adam_step"), ADAM
    w, m, v = i["w0"].copy(), np.zeros_like(i["w0"]), np.zeros_like(i["w0"])
    with np.errstate(all="ignore"):
        for t, g in enumerate(i["grads"], start=1):
            w, m, v = adam_step(w, g.copy(), m, v, t, a["lr"], a["b1"], a["b2"], a["eps"])
        first = adam_step(i["w0"].copy(), i["grads"][0].copy(), np.zeros_like(w), np.zeros_like(w), 1, a["lr"],
                          a["b1"], a["b2"], a["eps"])[0]
    return {"w after 5 steps": as_output(w), "w after 1 step": as_output(first)}


def inputs_gan(rng, batch=4):
    return dict(real=rng.uniform(-1, 1, size=(batch, 3, 64, 64)), z=rng.normal(size=(batch, 4, 1, 1)))


def probe_d_step(ns, i):
    d_step = needs(ns, "d_step", "d_step")
    G, D, _, opt_D, loss = tiny_gan(7)
    returned = d_step(D, opt_D, loss, i["real"].copy(), G(i["z"].copy()))
    return {"d_loss": as_output(returned[0] if isinstance(returned, tuple) else returned), "D": weights(D)}


def probe_g_step(ns, i):
    g_step = needs(ns, "g_step", "g_step")
    G, D, opt_G, _, loss = tiny_gan(7)
    g_loss = g_step(G, D, opt_G, loss, G(i["z"].copy()))
    return {"g_loss": as_output(g_loss), "G": weights(G), "D": weights(D)}


def inputs_input_gradient(rng):
    return dict(images=rng.uniform(-1, 1, size=(3, 3, 64, 64)))


def probe_input_gradient(ns, i):
    input_gradient = needs(ns, "input_gradient", "input_gradient")
    D = tiny_gan(7)[1].eval()
    grad = as_output(input_gradient(D, i["images"].copy()))
    return {"grad": grad, "frozen": as_output(sum(not p.requires_grad for p in D.parameters()))}


def inputs_project_pixels(rng):
    return dict(photo=rng.uniform(-1, 1, size=(1, 3, 64, 64)), z=rng.normal(size=(2, 4, 1, 1)))


PROJECT_STEPS, PROJECT_LR = 3, 0.1


def projection_generator():
    """tiny_gan's G made to paint faces that vary with z, as a trained G does: its BatchNorm statistics set from a
    batch of z (eval mode), its last layer 30 times stronger (DCGAN's initial weights paint an almost flat grey,
    whose dd/dz is too small for Adam's eps and for finite differences)."""
    from ..ema import recalibrate_batchnorm
    G = tiny_gan(7)[0]
    G.main[-2].weight.data *= 30
    return recalibrate_batchnorm(G, [np.random.default_rng(SEED + 2).normal(size=(16, 4, 1, 1))])


def probe_project_pixels(ns, i):
    project_pixels = needs(ns, "project_pixels", "project_pixels")
    G = projection_generator()
    returned = project_pixels(G, i["photo"].copy(), i["z"].copy(), PROJECT_STEPS, PROJECT_LR)
    z, distances = returned if isinstance(returned, (tuple, list)) and len(returned) == 2 else (returned, None)
    return {"z": as_output(z), "distances": as_output(distances)}


PARTS = {part: (globals()[f"inputs_{part}"] if f"inputs_{part}" in globals() else inputs_gan, globals()[f"probe_{part}"])
         for part in registry.PARTS}


def inputs(part):
    """The inputs of ``part``, the same in the grader's process and the student's."""
    return PARTS[part][0](np.random.default_rng(SEED))
