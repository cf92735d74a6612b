"""Using a trained GAN: generate faces, walk between them, do arithmetic on z, ask D.

Each face is seeded on its own: z for seed s is drawn from a generator seeded
with s alone, and G runs in eval mode (BatchNorm uses its running statistics),
so an image never depends on the other images in its batch. The same seed
gives the same face in a batch of 1 or of 1,000, on the CPU or the GPU (matrix
products of other sizes round differently, so a pixel may differ by 1/255).
"""
from pathlib import Path

import numpy as np

from . import backend, checkpoint
from .dcgan import Discriminator, Generator, ModelConfig, sample_noise
from .nn import sigmoid

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "generator.npz"
GENERATOR_FORMAT = "tinygan-generator"
MAX_FACES = 100_000     # faces one command may paint: 1.2 GB of 64x64 RGB, about 6 minutes on a 2-core CPU
JUDGE_WARNING = ("The judge is a GAN's discriminator: it learned to tell face photos framed like its training "
                 "faces from the fakes of one generator, and nothing else (not other generators, not edited "
                 "photos). It is NOT a deepfake detector; never use it to decide whether a real photo is genuine.")


def parse_seeds(text):
    """'0-7' -> [0..7]; '1,5,9' -> [1, 5, 9]; mixes allowed: '0-3,10'. A ValueError says what is wrong."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        try:
            bounds = [int(v) for v in part.split("-", 1)] if "-" in part[1:] else [int(part)] if part else []
        except ValueError:
            raise ValueError(f"seeds must look like '0-7' or '1,5,9', got {text!r}") from None
        if len(bounds) == 2:
            lo, hi = bounds
            if hi < lo:
                raise ValueError(f"the seed range {part!r} runs backwards; write it as {hi}-{lo}")
            if len(seeds) + hi - lo + 1 > MAX_FACES:
                raise ValueError(f"{text!r} names more than {MAX_FACES:,} seeds")
            seeds += list(range(lo, hi + 1))
        else:
            seeds += bounds
    if not seeds or min(seeds) < 0:
        raise ValueError(f"expected one or more non-negative seeds, got {text!r}")
    if len(seeds) > MAX_FACES:
        raise ValueError(f"{text!r} names more than {MAX_FACES:,} seeds")
    return seeds


# --- loading -------------------------------------------------------------------
def _is_torch_layout(tree):
    return "format" not in tree and any(k.startswith("main.") for k in tree)


def _conv_weights(state):
    """The 4-D (conv / convT) weights of a DCGAN state_dict (keys main.N.weight), in layer order."""
    convs = {int(k.split(".")[1]): np.asarray(v) for k, v in state.items()
             if k.startswith("main.") and k.endswith(".weight") and np.asarray(v).ndim == 4}
    if not convs:
        raise ValueError(f"no conv weights (main.N.weight) among the keys {sorted(state)[:8]}")
    return [convs[i] for i in sorted(convs)]


def _load_float32(module, state):
    module.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
    return module.eval()


def generator_from_state_dict(state, z_dist="normal"):
    """A Generator for a PyTorch-layout state_dict, which stores no config: its shape is read off the weights."""
    convs = _conv_weights(state)            # first: (nz, ngf * 2^(n-2), 4, 4), last: (ngf, nc, 4, 4)
    n = len(convs)
    G = Generator(nz=convs[0].shape[0], ngf=convs[0].shape[1] // 2 ** (n - 2), nc=convs[-1].shape[1],
                  image_size=4 * 2 ** (n - 1), z_dist=z_dist, rng=0)
    return _load_float32(G, state)


def discriminator_from_state_dict(state):
    """A Discriminator for a PyTorch-layout state_dict, its shape read off the weights."""
    convs = _conv_weights(state)            # first: (ndf, nc, 4, 4)
    D = Discriminator(ndf=convs[0].shape[0], nc=convs[0].shape[1], image_size=4 * 2 ** (len(convs) - 1), rng=0)
    return _load_float32(D, state)


def model_config_of(tree, path):
    """The ModelConfig stored in a checkpoint or generator file.

    Files written before configs were stored under "model" keep the same settings in "config"
    (a training config, or a generator file's nz/ngf/nc/image_size/z_dist).
    """
    stored = tree.get("model", tree.get("config"))
    if not isinstance(stored, dict):
        raise ValueError(f"{path} stores no model config (expected a tinygan checkpoint or generator file)")
    try:
        return ModelConfig.from_dict(stored)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def load_tree(path):
    """Read a training checkpoint, a run directory, a generator file or a PyTorch-layout .npz."""
    path = Path(path)
    if path.is_dir():
        path = checkpoint.find_checkpoint(path)
    return checkpoint.load(path), path


def load_generator(path=None, raw=False):
    """The generator (eval mode) from ``path``; with no path, the pretrained one shipped with tinygan.

    A checkpoint with an averaged generator (``G_ema``, see tinygan.ema) gives that one, unless ``raw``.
    """
    tree, path = load_tree(_pretrained() if path is None else path)
    if _is_torch_layout(tree):
        return generator_from_state_dict(tree)
    key = "G_ema" if "G_ema" in tree and not raw else "G"
    if key not in tree:
        raise ValueError(f"{path} holds no generator (expected a tinygan checkpoint with G/... arrays)")
    return _load_float32(model_config_of(tree, path).generator(rng=0), tree[key])


def load_discriminator(path=None, which="judge"):
    """A discriminator (eval mode) from a checkpoint, run directory, generator file with D, or PyTorch .npz.

    which: "judge" (default) gives the D fitted for judging where the file has one (see tinygan.judge and
    ``examples/package_generator.py --data``), else the GAN's D; "gan" gives the D the GAN trained against.
    With no path, the one shipped beside the pretrained generator. ``D.role`` says which it is.
    """
    if which not in ("judge", "gan"):
        raise ValueError(f"which must be 'judge' or 'gan', got {which!r}")
    tree, path = load_tree(_pretrained() if path is None else path)
    if _is_torch_layout(tree):
        D = discriminator_from_state_dict(tree)
        D.role = "gan"
        return D
    fitted = which == "judge" and isinstance(tree.get("judge"), dict) and "D" in tree["judge"]
    if not fitted and "D" not in tree:
        raise ValueError(f"{path} holds no discriminator: judging needs a training checkpoint "
                         "(ckpt_*.npz) or a generator file saved with its D")
    D = _load_float32(model_config_of(tree, path).discriminator(rng=0), tree["judge"]["D"] if fitted else tree["D"])
    D.role = "judge" if fitted else "gan"
    return D


def load_face_model(path=None):
    """The file's tinygan.judge.FaceModel (how face-like an image is), or None where it has none."""
    from .judge import FaceModel
    tree, path = load_tree(_pretrained() if path is None else path)
    faces = tree.get("judge", {}).get("faces") if isinstance(tree.get("judge"), dict) else None
    return FaceModel.from_dict(faces) if faces else None


def _pretrained():
    if not PRETRAINED.exists():
        raise FileNotFoundError(f"no pretrained generator at {PRETRAINED}; pass --checkpoint PATH")
    return PRETRAINED


# --- generating ----------------------------------------------------------------
def noise_for_seeds(seeds, nz, z_dist="normal"):
    """One z per seed, (len(seeds), nz, 1, 1), each drawn from its own seeded generator."""
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"expected one or more non-negative seeds, got {seeds}")
    return backend.xp.concatenate([sample_noise(backend.default_rng(s), 1, nz, z_dist) for s in seeds])


def _run_generator(G, z, batch_size):
    return np.concatenate([to_uint8(G(z[i:i + batch_size])) for i in range(0, z.shape[0], batch_size)])


def to_uint8(images):
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    from .viz import to_uint8_images
    return to_uint8_images(images)


def generate_images(G, seeds, batch_size=64):
    """uint8 faces (N, H, W, 3), one per seed."""
    z = noise_for_seeds(seeds, G.config["nz"], G.config["z_dist"])
    return _run_generator(G, z, batch_size)


def slerp(z0, z1, t):
    """Spherical interpolation: follow the great circle between z0 and z1.

    Gaussian z concentrate near a sphere of radius sqrt(nz); a straight line
    between two of them passes closer to the origin, where G saw no training
    points. slerp(t) = sin((1-t) w)/sin(w) z0 + sin(t w)/sin(w) z1, cos w = <z0, z1>/(|z0||z1|).
    """
    xp = backend.get_array_module(z0)
    a, b = z0.reshape(-1), z1.reshape(-1)
    cos = float((a @ b) / (xp.linalg.norm(a) * xp.linalg.norm(b)))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:                                  # (nearly) parallel: plain lerp is exact enough
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def interpolate(G, seeds, steps=8, method="slerp", batch_size=64):
    """Faces along a path through the z of ``seeds`` (2 or more), ``steps`` per leg: uint8 (M, H, W, 3)."""
    if len(seeds) < 2:
        raise ValueError(f"interpolation needs at least 2 seeds, got {list(seeds)}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    if method not in ("slerp", "linear"):
        raise ValueError(f"method must be 'slerp' or 'linear', got {method!r}")
    z = noise_for_seeds(seeds, G.config["nz"], G.config["z_dist"])
    path = []
    for leg in range(len(seeds) - 1):
        for k, t in enumerate(np.linspace(0.0, 1.0, steps)):
            if leg > 0 and k == 0:
                continue                            # the leg's first face ended the previous leg
            path.append(slerp(z[leg], z[leg + 1], t) if method == "slerp" else (1 - t) * z[leg] + t * z[leg + 1])
    return _run_generator(G, backend.xp.stack(path).astype(np.float32), batch_size)


def walk(G, seed_a, seed_b, t, method="slerp"):
    """The face at fraction t (0..1) of the way from seed_a's z to seed_b's: uint8 (H, W, 3)."""
    if not 0 <= t <= 1:
        raise ValueError(f"t must be in [0, 1], got {t}")
    if method not in ("slerp", "linear"):
        raise ValueError(f"method must be 'slerp' or 'linear', got {method!r}")
    z0, z1 = noise_for_seeds([seed_a, seed_b], G.config["nz"], G.config["z_dist"])
    z = slerp(z0, z1, t) if method == "slerp" else (1 - t) * z0 + t * z1
    return _run_generator(G, z[None].astype(np.float32), 1)[0]


def vector_arithmetic(G, group_a, group_b, group_c, batch_size=64):
    """Radford et al.'s face arithmetic: mean z(A) - mean z(B) + mean z(C).

    E.g. A = smiling women, B = neutral women, C = neutral men -> smiling men.
    Averaging a few z per concept makes the direction far less noisy than one z.
    Returns (faces of A, B, C as lists of uint8 arrays, the result face).
    """
    nz, z_dist = G.config["nz"], G.config["z_dist"]
    groups = [group_a, group_b, group_c]
    if any(len(g) == 0 for g in groups):
        raise ValueError("each of the three seed groups needs at least one seed")
    zs = [noise_for_seeds(g, nz, z_dist).reshape(len(g), nz) for g in groups]
    xp = backend.get_array_module(zs[0])

    def lengths(z):                                  # (k, nz) -> (k,)
        return xp.sqrt((z * z).sum(axis=1))

    # A mean of k Gaussian z is 1/sqrt(k) as long as a typical z: G never saw such short
    # vectors and paints them washed out. Each mean gets its group's typical length back.
    raw = [z.mean(axis=0, keepdims=True) for z in zs]
    means = [mean * (lengths(z).mean() / lengths(mean)) for z, mean in zip(zs, raw)]
    result = raw[0] - raw[1] + raw[2]
    all_z = xp.concatenate(zs)
    means.append(result * (lengths(all_z).mean() / lengths(result)))
    means = xp.concatenate(means).reshape(4, nz, 1, 1)
    zs = [z.reshape(-1, nz, 1, 1) for z in zs]
    faces = [_run_generator(G, z, batch_size) for z in zs]
    return faces, _run_generator(G, means, batch_size)


def arithmetic_picture(groups, result):
    """One picture of ``vector_arithmetic``'s output: a row per group (its faces, a gap, the face of
    its mean z), and a last row that ends in the answer, mean(A) - mean(B) + mean(C). uint8 tiles."""
    width = max(len(g) for g in groups) + 1
    rows = []
    for faces, mean_face in zip(groups, result[:3]):
        blank = np.zeros((width - 1 - len(faces),) + faces.shape[1:], np.uint8)
        rows += [faces, blank, mean_face[None]]
    answer = np.zeros((width,) + result.shape[1:], np.uint8)
    answer[-1] = result[3]
    return np.concatenate(rows + [answer])


def judge(D, images_uint8, batch_size=64):
    """D's probability that each image (uint8 (N, H, W, 3), framed like the training data) is real."""
    from .judge import probabilities
    return probabilities(D, images_uint8, batch_size)


# --- PyTorch-layout export / import --------------------------------------------
def export_torch(module, path):
    """Write ``module.state_dict()`` with exactly PyTorch's keys (main.0.weight, ...) to an .npz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = module.state_dict()
    with checkpoint.atomic_write(path) as f:
        np.savez(f, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()})
    return path


def save_generator(G, path, provenance=None, dtype=np.float16, D=None, judge=None):
    """A generator file (float16 by default: half the size, invisible in the images), with D if given.

    It stores the ModelConfig under "model", so ``load_generator`` rebuilds G from it. ``judge``: the D
    fitted for judging and its tinygan.judge.FaceModel, as (D, face_model), stored under "judge".
    """
    some_D = D if D is not None else judge[0] if judge is not None else None
    model = ModelConfig(nz=G.config["nz"], ngf=G.config["ngf"], nc=G.config["nc"], image_size=G.config["image_size"],
                        z_dist=G.config["z_dist"], **({"ndf": some_D.config["ndf"]} if some_D is not None else {}))
    tree = {"format": GENERATOR_FORMAT, "model": model.to_dict(),
            "G": {k: v.astype(dtype) for k, v in G.state_dict().items()}}
    if D is not None:
        tree["D"] = {k: v.astype(dtype) for k, v in D.state_dict().items()}
    if judge is not None:
        judge_D, faces = judge
        tree["judge"] = {"D": {k: v.astype(dtype) for k, v in judge_D.state_dict().items()}, "faces": faces.to_dict()}
    if provenance:
        tree["provenance"] = provenance
    checkpoint.save(path, tree)
    return Path(path)
