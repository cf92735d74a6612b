"""Using a trained generator: paint faces from seeds, walk between them, do arithmetic on z. (Loading and
saving models: tinygan.model_files; asking D: tinygan.judge.)

Each face is seeded on its own: z for seed s is drawn from a generator seeded
with s alone, and G runs in eval mode (BatchNorm uses its running statistics),
so an image never depends on the other images in its batch. The same seed
gives the same face in a batch of 1 or of 1,000, on the CPU or the GPU (matrix
products of other sizes round differently, so a pixel may differ by 1/255).

Wherever a seed goes, a z file may go too: a ``.npy`` file holding one z, such as
the one ``tinygan project`` (tinygan.projection) finds for a photo. So "walk from
my photo to seed 42" is ``interpolate --seeds me.npy,42``.
"""
from pathlib import Path

import numpy as np

from . import backend
from .dcgan import sample_noise

PATHS = ("slerp", "linear")      # how interpolate and walk go from one z to the next
MAX_FACES = 100_000     # faces one command may paint: 1.2 GB of 64x64 RGB, about 6 minutes on a 2-core CPU


def parse_seeds(text, z_files=True):
    """'0-7' -> [0..7]; '1,5,9' -> [1, 5, 9]; a z file: 'me.npy,42' -> ['me.npy', 42]; mixes allowed: '0-3,10'.
    ``z_files=False`` refuses z files (the demo: nothing a client sends becomes a path). A ValueError says what
    is wrong."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if is_z_file(part) and not z_files:
            raise ValueError(f"seeds must be numbers here, got {part!r}")
        if is_z_file(part):
            seeds.append(part)
            continue
        try:
            bounds = [int(v) for v in part.split("-", 1)] if "-" in part[1:] else [int(part)] if part else []
        except ValueError:
            raise ValueError(f"seeds must look like '0-7', '1,5,9' or 'me.npy,42', got {text!r}") from None
        if len(bounds) == 2:
            lo, hi = bounds
            if hi < lo:
                raise ValueError(f"the seed range {part!r} runs backwards; write it as {hi}-{lo}")
            if len(seeds) + hi - lo + 1 > MAX_FACES:
                raise ValueError(f"{text!r} names more than {MAX_FACES:,} seeds")
            seeds += list(range(lo, hi + 1))
        else:
            seeds += bounds
    if not seeds or any(isinstance(seed, int) and seed < 0 for seed in seeds):
        raise ValueError(f"expected one or more non-negative seeds or z files (.npy), got {text!r}")
    if len(seeds) > MAX_FACES:
        raise ValueError(f"{text!r} names more than {MAX_FACES:,} seeds")
    return seeds


def is_z_file(seed):
    """Whether a seed names a z file (a path ending in .npy) rather than a number."""
    return isinstance(seed, (str, Path)) and str(seed).lower().endswith(".npy")


def seed_name(seed):
    """How a seed is named in messages: '42', or a z file's name ('me.npy')."""
    return Path(seed).name if is_z_file(seed) else str(seed)


def save_z(z, path):
    """One z (nz numbers in any shape) as a .npy file of float32 (nz,), which every seed option accepts."""
    np.save(path, backend.to_numpy(z).astype(np.float32).reshape(-1), allow_pickle=False)


def load_z(path, nz):
    """A z file -> (1, nz, 1, 1) float32 on the active backend; a ValueError names the file and what is wrong."""
    try:
        z = np.load(Path(path).expanduser(), allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = "no such file" if not Path(path).expanduser().exists() else f"not a NumPy .npy file ({err})"
        raise ValueError(f"cannot use z file {path}: {reason}") from None
    if not isinstance(z, np.ndarray):                        # a .npz archive under a .npy name
        z.close()
        raise ValueError(f"cannot use z file {path}: it is a .npz archive, not a .npy file of one z")
    if not np.issubdtype(z.dtype, np.floating) or z.size != nz:
        raise ValueError(f"cannot use z file {path}: expected {nz} floating-point numbers (this generator's nz), "
                         f"got {z.size} of {z.dtype}")
    if not np.isfinite(z).all():
        raise ValueError(f"cannot use z file {path}: it holds NaN or infinite numbers")
    return backend.to_device(z.reshape(1, nz, 1, 1), np.float32)


# --- generating ----------------------------------------------------------------
def noise_for_seeds(seeds, nz, z_dist="normal"):
    """One z per seed, (len(seeds), nz, 1, 1): a number is drawn from its own seeded generator, a z file
    (:func:`is_z_file`) is loaded, an array of nz numbers is taken as it is."""
    zs = []
    for seed in seeds:
        if is_z_file(seed):
            zs.append(load_z(seed, nz))
        elif hasattr(seed, "shape") and not np.shape(seed) == ():
            zs.append(backend.to_device(backend.to_numpy(seed).reshape(1, nz, 1, 1), np.float32))
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
            zs.append(sample_noise(backend.default_rng(int(seed)), 1, nz, z_dist))
        else:
            raise ValueError(f"expected non-negative whole seeds, z files (.npy) or z arrays, got {seed!r}")
    if not zs:
        raise ValueError("expected one or more seeds, got none")
    return backend.xp.concatenate(zs)


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


def check_path(method):
    if method not in PATHS:
        raise ValueError(f"method must be {' or '.join(map(repr, PATHS))}, got {method!r}")


def interpolate(G, seeds, steps=8, method="slerp", batch_size=64):
    """Faces along a path through the z of ``seeds`` (2 or more), ``steps`` per leg: uint8 (M, H, W, 3)."""
    if len(seeds) < 2:
        raise ValueError(f"interpolation needs at least 2 seeds, got {list(seeds)}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    check_path(method)
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
    check_path(method)
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
