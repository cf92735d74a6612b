"""Asking a discriminator "real or fake?": one threshold, a D fitted for judging, where D looks, what is no face.

**Why the GAN's own D is a poor judge.** In training D sees a batch of real faces and then a batch of
fakes, and BatchNorm normalises each with that batch's own mean and variance. In eval mode (one photo at a
time) both kinds get the running average of those statistics, which belongs to neither: the D of the shipped
run called 81% of its own training faces fake. Its train-mode accuracy (the loss log's ``d_acc``) says
nothing about that, because every batch it is measured on is normalised by itself.

**A judge.** :func:`fit_judge` fine-tunes the run's D for about a hundred Adam steps against the frozen
(averaged) G on *mixed* batches: real and generated faces in one batch, so BatchNorm learns one set of
statistics for both, which is what eval mode then uses. Afterwards its running statistics are set to the exact
average over a few mixed batches (as tinygan.ema does for G).

**Where D looks.** :func:`input_gradient` is the gradient of D's logit with respect to the pixels, from the
same backward pass that trains D (Simonyan et al. 2013, "saliency maps"): bright where a small change of the
pixel would change the verdict most.

**What is no face.** D was only ever shown faces; on a blank page or a landscape its score means nothing.
:class:`FaceModel` measures how far an image lies from the cloud of training faces (a Gaussian with a
low-rank covariance, "probabilistic PCA", on 32x32 thumbnails and on the judge's own last features) so that
the judge can say so instead of giving a verdict.
"""
import numpy as np

from . import backend
from .ema import recalibrate_batchnorm
from .losses import BCEWithLogitsLoss
from .nn import sigmoid
from .optim import Adam

REAL_THRESHOLD = 0.5          # D(x) >= 0.5, i.e. a logit >= 0: "real", for one image, a folder and the page
FRESH_SEEDS = 10 ** 6         # fakes for measuring a judge: seeds from here on, which no demo or FID uses
FACE_SEEDS = 2 * 10 ** 6      # fakes that set the FaceModel's limits
JUDGE_STEPS, JUDGE_BATCH = 100, 64
CALIBRATION_BATCHES = 8
JUDGE_WARNING = ("The judge is a GAN's discriminator: it learned to tell face photos framed like its training "
                 "faces from the fakes of one generator, and nothing else (not other generators, not edited "
                 "photos). It is NOT a deepfake detector; never use it to decide whether a real photo is genuine.")
NOT_A_FACE = ("this does not look like a face photo framed like the training faces, so D's verdict means "
              "nothing here: the judge knows only face photos")


def verdict(probability):
    """'real' or 'fake' for one probability, by the one threshold."""
    return "real" if probability >= REAL_THRESHOLD else "fake"


def called_real(probabilities):
    """Which probabilities the judge calls real (bool array), by the one threshold."""
    return np.asarray(probabilities) >= REAL_THRESHOLD


def probabilities(D, images_uint8, batch_size=64):
    """D's probability that each image (uint8 (N, H, W, 3), framed like the training data) is real."""
    from .data import to_float
    probs = []
    for i in range(0, len(images_uint8), batch_size):
        logits = D(to_float(np.asarray(images_uint8[i:i + batch_size])))
        probs.append(backend.to_numpy(sigmoid(logits)).reshape(-1).astype(np.float64))
    D.free_activations()
    return np.concatenate(probs) if probs else np.zeros(0)


def judge_faces(D, faces_uint8, face_model=None):
    """Each face's verdict, as the CLI and the demo give it: a dict with D's ``probability``, ``is_face`` (what
    ``face_model`` says; True without one) and ``verdict``: 'real', 'fake', or 'no verdict' for no face photo."""
    probs = probabilities(D, faces_uint8)
    is_face = face_model.is_face(D, faces_uint8) if face_model is not None else np.ones(len(probs), bool)
    return [{"probability": float(p), "is_face": bool(ok), "verdict": verdict(p) if ok else "no verdict"}
            for p, ok in zip(probs, is_face)]


def judge_folder(D, source, real, image_size, crop=None, limit=None):
    """How D judges a folder (.zip, .tar) of real (``real``) or of generated faces, framed for judging
    (tinygan.data): a dict with ``right`` (bool per image: called what it is), ``probabilities``, ``names``
    and ``skipped`` (the files that are no image)."""
    from .data import load_source_for_judging
    images, names, skipped = load_source_for_judging(source, image_size, crop, limit)
    probs = probabilities(D, images)
    right = called_real(probs) if real else ~called_real(probs)
    return {"right": right, "probabilities": probs, "names": names, "skipped": skipped}


def fresh_fakes(G, n, start=FRESH_SEEDS):
    """n faces of G (uint8) from seeds ``start ..``: faces no training step, FID score or demo painted."""
    from .sampling import generate_images
    return generate_images(G, range(start, start + n))


def accuracy(D, real_uint8, fake_uint8):
    """How D judges real and generated faces, in eval mode as ``judge`` uses it: shares called right, means."""
    was_training = D.training
    D.eval()
    try:
        p_real, p_fake = probabilities(D, real_uint8), probabilities(D, fake_uint8)
    finally:
        D.train(was_training)
    right_real, right_fake = called_real(p_real).mean(), (~called_real(p_fake)).mean()
    return {"real_called_real": float(right_real), "fake_called_fake": float(right_fake),
            "accuracy": float((right_real + right_fake) / 2),
            "mean_p_real": float(p_real.mean()), "mean_p_fake": float(p_fake.mean()),
            "n_real": len(p_real), "n_fake": len(p_fake)}


def mixed_batch(real, fake):
    """One batch of real then generated images (N_r + N_f, 3, S, S) and its targets 1 then 0."""
    xp = backend.get_array_module(real)
    targets = xp.concatenate([xp.ones(len(real), real.dtype), xp.zeros(len(fake), real.dtype)])
    return xp.concatenate([real, fake]), targets.reshape(-1, 1, 1, 1)


def fit_judge(D, G, real_images, steps=JUDGE_STEPS, batch_size=JUDGE_BATCH, seed=0, lr=2e-4, betas=(0.5, 0.999),
              say=print):
    """Fine-tune D (in place) to judge: ``steps`` Adam steps of BCE on mixed batches of ``batch_size`` real
    faces (uint8 (N, S, S, 3), mirrored at random) and as many faces of the frozen G (eval mode); then its
    BatchNorm statistics are averaged over a few more mixed batches. Returns D in eval mode."""
    from .data import BatchLoader
    if steps < 1 or batch_size < 1:
        raise ValueError(f"fit_judge: steps and batch_size must be >= 1, got {steps} and {batch_size}")
    loader = BatchLoader(real_images, batch_size, seed=seed)
    noise_rng = backend.default_rng([seed, 1])
    opt, loss = Adam(D.parameters(), lr, betas), BCEWithLogitsLoss()
    G.eval()
    D.train()
    step, epoch = 0, 0
    while step < steps:
        for real in loader.epoch(epoch):
            images, targets = mixed_batch(real, G(G.sample_noise(noise_rng, batch_size)))
            opt.zero_grad()
            batch_loss = loss(D(images), targets)
            D.backward(loss.backward(), need_input_grad=False)
            opt.step()
            step += 1
            if say and (step % 25 == 0 or step == steps):
                say(f"judge: step {step}/{steps}  BCE on mixed batches {float(batch_loss):.4f}")
            if step == steps:
                break
        epoch += 1
    calibration = [mixed_batch(loader.get_batch(epoch + 1, i % len(loader)),
                               G(G.sample_noise(noise_rng, batch_size)))[0] for i in range(CALIBRATION_BATCHES)]
    return recalibrate_batchnorm(D, calibration)


def make_judge(G, D, images, held_out=1000, steps=JUDGE_STEPS, batch_size=JUDGE_BATCH, seed=0, say=print):
    """A run's judge: D (changed in place) fine-tuned by :func:`fit_judge` on all but the last ``held_out``
    images (uint8 (N, S, S, 3)), the FaceModel of those images, and a report of how both were made and what
    they score on the held-out faces and as many fresh fakes. Returns (D, face_model, report)."""
    n = len(images)
    if held_out < 1 or n - held_out < batch_size:
        raise ValueError(f"{n} images are too few to hold out {held_out} and fine-tune on batches of {batch_size}: "
                         f"expected at least {held_out + batch_size}")
    train, test = images[:n - held_out], np.asarray(images[n - held_out:])
    fit_judge(D, G, train, steps, batch_size, seed, say=say)
    fakes = fresh_fakes(G, held_out)
    score = accuracy(D, test, fakes)
    faces = FaceModel.fit(D, train, np.concatenate([test, fresh_fakes(G, held_out, start=FACE_SEEDS)]))
    passed = faces.is_face(D, np.concatenate([test, fakes]))
    report = {
        "how": (f"the GAN's D fine-tuned for {steps} Adam steps (lr 2e-4, betas 0.5/0.999) against the frozen G on "
                f"mixed batches of {batch_size} real and {batch_size} generated faces, then its BatchNorm "
                f"statistics averaged over {CALIBRATION_BATCHES} more mixed batches (tinygan.judge.fit_judge)"),
        "train_images": n - held_out, "held_out_images": held_out,
        "held_out": f"the last {held_out} images of the data",
        "steps": steps, "batch_size": batch_size, "seed": seed, "threshold": REAL_THRESHOLD,
        "score": {key: round(value, 4) if isinstance(value, float) else value for key, value in score.items()},
        "score_on": (f"the {held_out} held-out real faces and {held_out} fresh fakes of this G (seeds "
                     f"{FRESH_SEEDS:,} on), judged one by one in eval mode"),
        "face_check": {"real_passed": round(float(passed[:held_out].mean()), 4),
                       "fake_passed": round(float(passed[held_out:].mean()), 4),
                       "how": "tinygan.judge.FaceModel: PPCA of 32x32 thumbnails and of the judge's last features"},
    }
    return D, faces, report


def input_gradient(D, images):
    """dlogit/dimage for float images (N, 3, S, S) in [-1, 1]: D's backward pass, taken to its input.

    D should be in eval mode: in train mode each image's logit would depend on the others in the batch.
    """
    logits = D(images)                                            # (N, 1, 1, 1)
    xp = backend.get_array_module(logits)
    try:
        with D.frozen():                                          # no dL/dW wanted: only dL/dx
            return D.backward(xp.ones_like(logits))               # d(sum of logits)/dx: each image its own
    finally:
        D.free_activations()


def saliency(D, face_uint8, width=5):
    """Where D looks in one face (uint8 (S, S, 3)): |dlogit/dpixel|, the largest over the colours, averaged over
    ``width`` x ``width`` neighbourhoods (the raw map is a checkerboard: D's stride-2 convolutions reach the
    pixels unevenly), scaled so that its 99th percentile is 1 and clipped to [0, 1]: float (S, S)."""
    from .data import to_float
    grad = backend.to_numpy(input_gradient(D, to_float(np.asarray(face_uint8)[None])))[0]    # (3, S, S)
    strength = box_average(np.abs(grad).max(axis=0), width)
    return np.clip(strength / max(np.percentile(strength, 99), 1e-12), 0, 1)


def box_average(image, width):
    """The mean over a width x width window around each pixel of a 2-D array (edges repeated)."""
    half = width // 2
    padded = np.pad(image, half, mode="edge")
    sums = np.cumsum(np.cumsum(np.pad(padded, ((1, 0), (1, 0))), axis=0), axis=1)   # summed-area table
    h, w = image.shape
    return (sums[width:width + h, width:width + w] - sums[:h, width:width + w] - sums[width:width + h, :w]
            + sums[:h, :w]) / width ** 2


def saliency_picture(face_uint8, strength, scale=4):
    """The face, its map and the map laid over it, side by side, ``scale`` x larger: uint8 (sS, 3 sS + 2s, 3)."""
    heat = np.stack([strength, strength ** 2, np.zeros_like(strength)], axis=-1)     # black -> red -> yellow
    heat = (255 * heat).astype(np.uint8)
    face = np.asarray(face_uint8)
    overlay = (0.45 * face + 0.55 * heat * np.maximum(strength, 0.25)[..., None]).clip(0, 255).astype(np.uint8)
    gap = np.full((face.shape[0], 1, 3), 255, np.uint8)
    row = np.concatenate([face, gap, heat, gap, overlay], axis=1)
    return row.repeat(scale, axis=0).repeat(scale, axis=1)


class PPCA:
    """A Gaussian in many dimensions whose covariance is its ``k`` leading eigenvectors U (variances lambda_i)
    plus one variance sigma^2 for every other direction (probabilistic PCA, Tipping & Bishop 1999).

    A vector t (D numbers) has coefficients c = U^T (t - mu) and two distances, each about 1 for a typical
    vector of the fit:

        inside   = sum_i c_i^2 / lambda_i / k                    how unusual its usual part is
        residual = |t - mu - U c|^2 / sigma^2 / (D - k)          how much of it the usual directions miss
    """

    def __init__(self, mean, components, variances, residual_variance):
        self.mean, self.components = np.asarray(mean, np.float64), np.asarray(components, np.float64)
        self.variances, self.residual_variance = np.asarray(variances, np.float64), float(residual_variance)

    @classmethod
    def fit(cls, vectors, rank):
        """Fit to float (N, D) vectors, keeping ``rank`` directions (at most half of N, so that the rest still has a
        measured variance): the SVD of the centred data."""
        vectors = np.asarray(vectors, np.float64)
        rank = max(1, min(rank, (len(vectors) - 1) // 2, vectors.shape[1] - 1))
        mean = vectors.mean(axis=0)
        _, singular, directions = np.linalg.svd(vectors - mean, full_matrices=False)
        variances = singular ** 2 / (len(vectors) - 1)          # the covariance's eigenvalues, largest first
        rest = variances[rank:].sum() / (vectors.shape[1] - rank)  # directions beyond N have variance 0
        return cls(mean, directions[:rank].T, variances[:rank], rest)

    def distances(self, vectors):
        """(inside, residual) for each of float (N, D) vectors: float64 (N, 2)."""
        centred = np.asarray(vectors, np.float64) - self.mean
        coefficients = centred @ self.components
        residual = centred - coefficients @ self.components.T
        k, dims = self.components.shape[1], centred.shape[1]
        return np.stack([(coefficients ** 2 / self.variances).sum(axis=1) / k,
                         (residual ** 2).sum(axis=1) / self.residual_variance / (dims - k)], axis=1)

    def to_dict(self):
        return {"mean": self.mean.astype(np.float32), "components": self.components.astype(np.float32),
                "variances": self.variances, "residual_variance": np.float64(self.residual_variance)}

    @classmethod
    def from_dict(cls, state):
        return cls(state["mean"], state["components"], state["variances"], state["residual_variance"])


class FaceModel:
    """How face-like an image is, seen two ways: as 32x32 thumbnails, and as the judge D sees it.

    Five numbers per image, each compared with the range of real and generated faces the fit did not see
    (quantiles 0.1% and 99.9%, widened by MARGIN); an image outside any range gets a warning, no verdict:

    - the PPCA distances (inside, residual) of its thumbnail: noise and text have a huge residual;
    - its contrast, the standard deviation of the thumbnail's values: a blank page, a fully transparent PNG
      (put on white) or a black frame has none;
    - the PPCA distances of D's last features (the 4x4 maps before the logit, flattened): D's filters are
      tuned to faces, so a landscape or a drawing that the thumbnails cannot tell from a face lands far out.

    In so many dimensions a typical face lies on a shell, neither close to the mean nor far from it, so both
    ends of each range count.
    """

    SIDE, PIXEL_RANK, FEATURE_RANK, QUANTILES, MARGIN = 32, 128, 64, (0.001, 0.999), 1.25
    NAMES = ("pixels inside", "pixels residual", "contrast", "D features inside", "D features residual")

    def __init__(self, pixels, features, limits):
        self.pixels, self.features, self.limits = pixels, features, np.asarray(limits, np.float64)

    @classmethod
    def thumbnails(cls, images_uint8):
        """uint8 (N, S, S, 3) -> float64 (N, 32 * 32 * 3) in [0, 1], each the mean of S/32 x S/32 blocks."""
        images = np.asarray(images_uint8, dtype=np.float64) / 255
        n, size = images.shape[0], images.shape[1]
        if size % cls.SIDE:
            raise ValueError(f"FaceModel: images must be a multiple of {cls.SIDE} pixels wide, got {size}")
        block = size // cls.SIDE
        return images.reshape(n, cls.SIDE, block, cls.SIDE, block, 3).mean(axis=(2, 4)).reshape(n, -1)

    @staticmethod
    def d_features(D, images_uint8, batch_size=64):
        """D's activations before its last layer (the one that makes the logit), flattened: float32 (N, F)."""
        from .data import to_float
        features = []
        for i in range(0, len(images_uint8), batch_size):
            x = to_float(np.asarray(images_uint8[i:i + batch_size]))
            for layer in list(D.main)[:-1]:
                x = layer(x)
            features.append(backend.to_numpy(x).reshape(len(x), -1))
        D.free_activations()
        return np.concatenate(features)

    @classmethod
    def fit(cls, D, faces_uint8, held_out_uint8, max_fit=4000):
        """Fit to ``faces_uint8`` (its first ``max_fit`` for D's features) with D in eval mode; set the ranges
        from ``held_out_uint8``: real faces the fit did not see and generated ones (what D is asked about)."""
        pixels = PPCA.fit(cls.thumbnails(faces_uint8), cls.PIXEL_RANK)
        features = PPCA.fit(cls.d_features(D, faces_uint8[:max_fit]), cls.FEATURE_RANK)
        model = cls(pixels, features, np.zeros((len(cls.NAMES), 2)))
        low, high = np.quantile(model.distances(D, held_out_uint8), cls.QUANTILES, axis=0)
        model.limits = np.stack([low / cls.MARGIN, high * cls.MARGIN], axis=1)         # (5, [low, high])
        return model

    def distances(self, D, images_uint8):
        """The five numbers of NAMES for each image: float64 (N, 5)."""
        thumbnails = self.thumbnails(images_uint8)
        return np.concatenate([self.pixels.distances(thumbnails), thumbnails.std(axis=1)[:, None],
                               self.features.distances(self.d_features(D, images_uint8))], axis=1)

    def is_face(self, D, images_uint8):
        """True where the image is close enough to the faces D knows for its verdict to mean something."""
        d = self.distances(D, images_uint8)
        return ((d >= self.limits[:, 0]) & (d <= self.limits[:, 1])).all(axis=1)

    def to_dict(self):
        return {"pixels": self.pixels.to_dict(), "features": self.features.to_dict(), "limits": self.limits}

    @classmethod
    def from_dict(cls, state):
        return cls(PPCA.from_dict(state["pixels"]), PPCA.from_dict(state["features"]), state["limits"])
