"""The DCGAN of Radford et al. (2016) for 64x64 faces, layer for layer as in the PyTorch DCGAN tutorial.

Generator: z (N, 100, 1, 1) -> ConvT-BN-ReLU x4 -> ConvT-tanh -> image (N, 3, 64, 64)
    100 -> 512x4x4 -> 256x8x8 -> 128x16x16 -> 64x32x32 -> 3x64x64
Discriminator: image -> Conv-LeakyReLU(0.2) -> Conv-BN-LeakyReLU x3 -> Conv -> logit (N, 1, 1, 1)
    3x64x64 -> 64x32x32 -> 128x16x16 -> 256x8x8 -> 512x4x4 -> 1x1x1

The discriminator returns a *logit*; the sigmoid lives inside the loss
(BCE-with-logits), which is the numerically stable form. Parameter names
("main.0.weight", ...) equal the tutorial's, so a state_dict loads into its
PyTorch modules. ``image_size=128`` adds one more block to each network.

A :class:`ModelConfig` (nz, ngf, ndf, nc, image_size, z_dist) describes the pair. Every
checkpoint and generator file stores it, and it rebuilds the networks
(``config.generator()``), as nanoGPT's ``model_args`` do.
"""
from dataclasses import asdict, dataclass, fields

from . import backend
from .init import dcgan_init
from .nn import BatchNorm2d, Conv2d, ConvTranspose2d, LeakyReLU, Module, ReLU, Sequential, Tanh

SUPPORTED_SIZES = (64, 128)
Z_DISTS = ("normal", "uniform")
MAX_WIDTH = 1024     # ngf and ndf: 64 is the paper's; 1024 already makes a 3 GB generator
MAX_NZ = 4096


def sample_noise(rng, n, nz, z_dist="normal"):
    """z for n images: N(0, I) or U(-1, 1), shape (n, nz, 1, 1), on the active backend."""
    if z_dist == "uniform":
        return rng.uniform((n, nz, 1, 1), -1.0, 1.0)
    if z_dist != "normal":
        raise ValueError(f"z_dist must be one of {Z_DISTS}, got {z_dist!r}")
    return rng.normal((n, nz, 1, 1))


@dataclass(frozen=True)
class ModelConfig:
    """Everything it takes to rebuild the DCGAN pair; saved in every checkpoint and generator file.

    nz: length of the noise vector z; ngf, ndf: G's and D's widths (channels); nc: image channels;
    image_size: 64 or 128; z_dist: the noise G is trained on, "normal" or "uniform".
    """
    nz: int = 100              # length of the noise vector z
    ngf: int = 64              # G's width: the channels of its last hidden layer (x8 at 4x4)
    ndf: int = 64              # D's width: the channels of its first layer
    nc: int = 3                # image channels (RGB)
    image_size: int = 64       # 64 or 128
    z_dist: str = "normal"     # the noise G was trained on: "normal" N(0, I) or "uniform" U(-1, 1)

    def __post_init__(self):
        for name, low, high in (("nz", 1, MAX_NZ), ("ngf", 1, MAX_WIDTH), ("ndf", 1, MAX_WIDTH), ("nc", 1, 4)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"model config: {name} must be an int in {low}..{high}, got {value!r}")
        if self.image_size not in SUPPORTED_SIZES:
            raise ValueError(f"model config: image_size must be one of {SUPPORTED_SIZES}, got {self.image_size!r}")
        if self.z_dist not in Z_DISTS:
            raise ValueError(f"model config: z_dist must be one of {Z_DISTS}, got {self.z_dist!r}")

    @classmethod
    def from_dict(cls, values):
        """Build from a dict (e.g. a checkpoint's), ignoring keys that are not model settings."""
        if not isinstance(values, dict):
            raise ValueError(f"model config: expected a dict, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self):
        return asdict(self)

    def generator(self, rng=None):
        return Generator(self.nz, self.ngf, self.nc, self.image_size, z_dist=self.z_dist, rng=rng)

    def discriminator(self, rng=None):
        return Discriminator(self.ndf, self.nc, self.image_size, rng=rng)


def _check_size(image_size):
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"DCGAN image_size must be one of {SUPPORTED_SIZES}, got {image_size!r}")
    return 4 if image_size == 64 else 5   # number of stride-2 blocks


class Generator(Module):
    """Noise z (N, nz, 1, 1) -> images (N, nc, S, S) in [-1, 1].

    nz: length of z; ngf: width (channels of the last hidden layer, doubled in each block
    towards the 4x4 start); nc: image channels; image_size: 64 or 128; z_dist: the noise it
    is trained on ("normal" or "uniform"); rng: seed or tinygan Generator for the DCGAN init.
    """

    def __init__(self, nz=100, ngf=64, nc=3, image_size=64, z_dist="normal", rng=None):
        super().__init__()
        blocks = _check_size(image_size)
        if z_dist not in Z_DISTS:
            raise ValueError(f"Generator: z_dist must be one of {Z_DISTS}, got {z_dist!r}")
        self.config = {"nz": int(nz), "ngf": int(ngf), "nc": int(nc), "image_size": int(image_size),
                       "z_dist": z_dist}
        rng = backend.default_rng(rng)
        width = ngf * 2 ** (blocks - 1)                      # 512 channels at 4x4 for 64x64 images
        layers = [ConvTranspose2d(nz, width, 4, 1, 0, bias=False, rng=rng), BatchNorm2d(width), ReLU()]
        for _ in range(blocks - 1):                           # each block doubles H, W and halves C
            layers += [ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False, rng=rng),
                       BatchNorm2d(width // 2), ReLU()]
            width //= 2
        layers += [ConvTranspose2d(width, nc, 4, 2, 1, bias=False, rng=rng), Tanh()]
        self.main = Sequential(*layers)
        dcgan_init(self, rng)

    def sample_noise(self, rng, n):
        """n noise vectors of the kind this G was trained on: (n, nz, 1, 1)."""
        return sample_noise(rng, n, self.config["nz"], self.config["z_dist"])

    def forward(self, z):
        """z: (N, nz) or (N, nz, 1, 1) -> images (N, nc, S, S) in [-1, 1]."""
        nz = self.config["nz"]
        backend.check_array(z, "Generator")
        self.cache = z.shape                        # dL/dz is returned in the shape z came in
        if z.ndim == 2 and z.shape[1] == nz:
            z = z.reshape(z.shape[0], nz, 1, 1)
        if z.ndim != 4 or z.shape[1:] != (nz, 1, 1):
            raise ValueError(f"Generator: expected noise of shape (N, {nz}) or (N, {nz}, 1, 1), got {tuple(z.shape)}")
        return self.main(z)

    def backward(self, grad_output, need_input_grad=True):
        dz = self.main.backward(grad_output, need_input_grad)
        return None if dz is None else dz.reshape(self.cache)


class Discriminator(Module):
    """Images (N, nc, S, S) in [-1, 1] -> one logit each, (N, 1, 1, 1).

    ndf: width (channels of the first layer, doubled in each block); nc: image channels;
    image_size: 64 or 128; rng: seed or tinygan Generator for the DCGAN init.
    """

    def __init__(self, ndf=64, nc=3, image_size=64, rng=None):
        super().__init__()
        blocks = _check_size(image_size)
        self.config = {"ndf": int(ndf), "nc": int(nc), "image_size": int(image_size)}
        rng = backend.default_rng(rng)
        layers = [Conv2d(nc, ndf, 4, 2, 1, bias=False, rng=rng), LeakyReLU(0.2)]   # no BatchNorm on the input layer
        width = ndf
        for _ in range(blocks - 1):
            layers += [Conv2d(width, width * 2, 4, 2, 1, bias=False, rng=rng), BatchNorm2d(width * 2),
                       LeakyReLU(0.2)]
            width *= 2
        layers += [Conv2d(width, 1, 4, 1, 0, bias=False, rng=rng)]                 # 4x4 -> one logit
        self.main = Sequential(*layers)
        dcgan_init(self, rng)

    def forward(self, images):
        """images (N, nc, S, S) in [-1, 1] -> logits (N, 1, 1, 1)."""
        size = self.config["image_size"]
        self.check_input(images, 4, self.config["nc"])
        if images.shape[2:] != (size, size):
            raise ValueError(f"Discriminator: expected images of shape (N, {self.config['nc']}, {size}, {size}), "
                             f"got {tuple(images.shape)}")
        return self.main(images)

    def backward(self, grad_output, need_input_grad=True):
        return self.main.backward(grad_output, need_input_grad)
