"""Finding a photo in the generator ("projection", GAN inversion): the z whose face is closest to a photo.

The backward pass that trains G also gives the gradient with respect to its *input*: ``G.backward`` returns
dL/dz. So a photo can be projected into z: start from the best of a few random seeds and follow dL/dz with
Adam, as StyleGAN2's projector does (Karras et al. 2020, with its learning-rate ramp).

**The prior.** G was trained on z ~ N(0, I). In nz = 100 dimensions nearly all such z lie near the sphere
|z| = sqrt(nz) (the length of z varies by about +-0.7 around 10); G never saw a z much shorter or longer, and
paints such z washed out or overcooked. Each Adam step is therefore followed by a projection back onto that
sphere. A norm penalty would need a weight, and the Gaussian's density, which it would maximise, peaks at
z = 0, exactly where no training z lay. (A G trained on uniform z keeps z in its cube [-1, 1]^nz instead.)

**The distance** between a face x and the photo y (:class:`Likeness`), per image:

    d(x, y) = mean_pixels (x - y)^2  +  w * sum_l mean_positions |u_l(x) - u_l(y)|^2,    u_l = f_l / |f_l|

pixels in [-1, 1], and f_l the channels at each position after the LeakyReLUs of a discriminator (the judge's
inner layers: 32x32, 16x16, 8x8 and 4x4), each scaled to unit length as LPIPS does (Zhang et al. 2018), so that
every layer counts alike. Pixels alone give the blurry average of the faces that fit; D's layers know what
faces are made of and pull towards edges and features. ``benchmarks/projection.py`` measures both.
"""
import math
import time

import numpy as np

from . import backend
from .dcgan import sample_noise
from .nn import LeakyReLU, Parameter
from .optim import Adam

STEPS, STARTS, KEEP = 200, 64, 4   # Adam steps; random seeds tried first; the best of them that Adam improves
LEARNING_RATE = 0.1                # z's entries are about 1 in size: a step of 0.1 moves the face visibly
FEATURE_WEIGHT = 1.0               # w above; 0 measures pixels only
START_SEED = 3 * 10 ** 6           # the random starts: seeds no demo, FID or judge uses
FLOOR = 0.1                        # features shorter than this share of the photo's mean length count less
EPS = 1e-12


def psnr(a_uint8, b_uint8):
    """Peak signal-to-noise ratio of two uint8 images in dB: 10 log10(255^2 / mean squared difference)."""
    mse = np.mean((np.asarray(a_uint8, np.float64) - np.asarray(b_uint8, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def onto_prior(z, z_dist="normal"):
    """z (N, nz, 1, 1) put back where G's training noise lay: onto the sphere |z| = sqrt(nz) for normal
    noise, into [-1, 1] for uniform noise. A new array."""
    xp = backend.get_array_module(z)
    if z_dist == "uniform":
        return xp.clip(z, -1.0, 1.0)
    flat = z.reshape(len(z), -1)
    length = xp.sqrt((flat * flat).sum(axis=1)).reshape(-1, 1, 1, 1)
    return (z * (math.sqrt(flat.shape[1]) / xp.maximum(length, EPS))).astype(z.dtype)


class Likeness:
    """The distance from faces (N, 3, S, S) in [-1, 1] to one photo (1, 3, S, S): ``distances(faces)`` (N,)
    and ``gradient(faces)`` (distances and dd/dfaces). ``D`` (eval mode) gives the features; without D, or
    with ``feature_weight`` 0, the distance is pixels only."""

    def __init__(self, photo, D=None, feature_weight=FEATURE_WEIGHT):
        self.photo = photo
        self.D = D if feature_weight else None
        self.weight = float(feature_weight)
        self.taps = [] if self.D is None else [i for i, layer in enumerate(D.main) if isinstance(layer, LeakyReLU)]
        xp = backend.get_array_module(photo)
        photo_features = self.features(photo)
        self.floors = [FLOOR * float(xp.sqrt((f * f).sum(axis=1)).mean()) for f in photo_features]
        self.photo_units = [self.units(f, floor)[0] for f, floor in zip(photo_features, self.floors)]
        if self.D is not None:
            self.D.free_activations()

    def features(self, images):
        """What the distance reads of images beside their pixels: D's activations f (N, C, H, W) after each
        LeakyReLU (a tap). Empty without D. (They do not depend on the photo: compute them once to compare many
        faces with many photos.)"""
        out, x = [], images
        for i, layer in enumerate(self.D.main[:self.taps[-1] + 1] if self.taps else []):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out

    def units(self, f, floor):
        """(u, |f|): each position's channels f divided by their length |f| = sqrt(sum f^2 + floor^2), (N, C, H, W)
        and (N, 1, H, W). The floor, a tenth of the photo's mean length at that tap, keeps u short where D sees
        next to nothing (a grey wall gives f ~ 0 at the first layer, which has no bias), instead of a unit vector
        that points wherever float32's rounding points."""
        xp = backend.get_array_module(f)
        length = xp.sqrt((f * f).sum(axis=1, keepdims=True) + (floor * floor + EPS))
        return f / length, length

    def distances(self, faces, features=None):
        """d for each face (N,) as float64 NumPy; ``features``: ``self.features(faces)`` if already at hand
        (from any Likeness with the same D)."""
        return self.gradient(faces, need_gradient=False, features=features)[0]

    def gradient(self, faces, need_gradient=True, features=None):
        """(d (N,) as float64 NumPy, dd/dfaces (N, 3, S, S) or None).

        Pixels: dd/dx = 2 (x - y) / P. A tap: with u = f/|f| and g = dd/du = 2 w (u - u_y) / positions,
        dd/df = (g - u <u, g>) / |f| (the part of g along u only changes |f|, which u ignores; exact for the
        floored |f| of :meth:`units` too)."""
        diff = faces - self.photo
        per_image = faces[0].size
        dist = (diff * diff).reshape(len(faces), -1).sum(axis=1) / per_image
        grad = 2 * diff / per_image if need_gradient else None
        if self.D is not None:
            tap_grads = []
            for f, floor, u_photo in zip(self.features(faces) if features is None else features, self.floors,
                                         self.photo_units):
                u, length = self.units(f, floor)
                positions = u.shape[2] * u.shape[3]
                du = u - u_photo
                dist = dist + self.weight * (du * du).reshape(len(u), -1).sum(axis=1) / positions
                if need_gradient:
                    g = 2 * self.weight * du / positions
                    tap_grads.append((g - u * (u * g).sum(axis=1, keepdims=True)) / length)
            if need_gradient:
                grad = grad + self._backward(tap_grads)
            self.D.free_activations()
        return backend.to_numpy(dist).astype(np.float64), grad

    def _backward(self, tap_grads):
        """D's backward pass from its taps down to its input, adding each tap's gradient on the way."""
        grad = None
        with self.D.frozen():                                    # dd/dimage only, no dd/dW
            for i in range(self.taps[-1], -1, -1):
                if i in self.taps:
                    tap = tap_grads[self.taps.index(i)]
                    grad = tap if grad is None else grad + tap
                grad = self.D.main[i].backward(grad)
        return grad


def project(G, photo_uint8, D=None, steps=STEPS, starts=STARTS, keep=KEEP, lr=LEARNING_RATE,
            feature_weight=FEATURE_WEIGHT, seed=0, every=0, report=None, seconds=None):
    """The z whose face G paints closest to ``photo_uint8`` (S, S, 3), framed like the training faces.

    Tries ``starts`` random z (seeds from START_SEED + seed), keeps the ``keep`` closest, and improves them
    together with ``steps`` Adam steps on dd/dz through G in eval mode (each z stays on the prior, see
    :func:`onto_prior`), the learning rate ramping up over the first 5% and down as a cosine (:func:`ramp`). G
    and D are used in eval mode and put back in the mode they were in.
    ``report(step, distance, face_uint8)`` is called with the best so far after each step (or every ``every``
    steps, and after the last). ``seconds``: a time limit; the loop ends after the step that passes it.
    Returns a dict: ``z`` (1, nz, 1, 1) float32, ``face`` uint8 (S, S, 3), ``distance``, ``psnr`` (dB, face
    against photo), ``steps`` (taken) and ``frames``: the best face every ``every`` steps (from step 0, the best
    random start, to the last; empty when every is 0).
    """
    from .data import to_float
    from .sampling import to_uint8
    if steps < 0 or starts < 1 or not 1 <= keep <= starts:
        raise ValueError(f"project: expected steps >= 0 and 1 <= keep <= starts, got {steps}, {keep}, {starts}")
    nz, z_dist = G.config["nz"], G.config["z_dist"]
    size = G.config["image_size"]
    if np.shape(photo_uint8) != (size, size, 3):
        raise ValueError(f"project: expected a uint8 photo of shape ({size}, {size}, 3), got {np.shape(photo_uint8)}")
    modules = [G] + ([D] if D is not None else [])
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    best, frames = None, []
    try:
        likeness = Likeness(to_float(np.asarray(photo_uint8)[None]), D, feature_weight)
        candidates = sample_noise(backend.default_rng(START_SEED + seed), starts, nz, z_dist)
        first = np.concatenate([likeness.distances(G(candidates[i:i + 64])) for i in range(0, starts, 64)])
        z = Parameter(onto_prior(candidates[backend.to_device(np.argsort(first, kind="stable")[:keep])], z_dist))
        opt = Adam([z], lr=lr, betas=(0.9, 0.999))
        deadline = None if seconds is None else time.perf_counter() + seconds
        with G.frozen():                                         # dd/dz only: G's weights stay as they are
            for step in range(steps + 1):
                last = step == steps or (deadline is not None and time.perf_counter() > deadline)
                faces = G(z.data)
                dist, grad = likeness.gradient(faces, need_gradient=not last)
                i = int(np.argmin(dist))
                if best is None or dist[i] < best["distance"]:
                    best = {"distance": float(dist[i]), "z": z.data[i:i + 1].copy(),
                            "face": to_uint8(faces[i:i + 1])[0]}
                if every and (step % every == 0 or last):
                    frames.append(best["face"])
                if report is not None and (not every or step % every == 0 or last):
                    report(step, best["distance"], best["face"])
                if last:
                    break
                z.grad = G.backward(grad)
                opt.lr = lr * ramp((step + 0.5) / steps)
                opt.step()
                z.data = onto_prior(z.data, z_dist)
    finally:
        G.free_activations()
        for module, mode in zip(modules, modes):
            module.train(mode)
    return {"z": best["z"].astype(np.float32), "face": best["face"], "distance": best["distance"],
            "psnr": psnr(best["face"], photo_uint8), "steps": step, "frames": frames}


def ramp(t, up=0.05):
    """The learning rate's share at fraction t of the way: up linearly over the first ``up``, and down as a
    half cosine over the whole way (StyleGAN2's projector ramps so)."""
    return min(1.0, t / up) * 0.5 * (1 + math.cos(math.pi * t))
