"""The DCGAN of Radford et al. (2016) for 64x64 faces, layer for layer as in the PyTorch DCGAN tutorial.

Generator: z (N, 100, 1, 1) -> ConvT-BN-ReLU x4 -> ConvT-tanh -> image (N, 3, 64, 64)
    100 -> 512x4x4 -> 256x8x8 -> 128x16x16 -> 64x32x32 -> 3x64x64
Discriminator: image -> Conv-LeakyReLU(0.2) -> Conv-BN-LeakyReLU x3 -> Conv -> logit (N, 1, 1, 1)
    3x64x64 -> 64x32x32 -> 128x16x16 -> 256x8x8 -> 512x4x4 -> 1x1x1

The discriminator returns a *logit*; the sigmoid lives inside the loss
(BCE-with-logits), which is the numerically stable form. Parameter names
("main.0.weight", ...) equal the tutorial's, so a state_dict loads into its
PyTorch modules. ``image_size=128`` adds one more block to each network.
"""
from . import backend
from .init import dcgan_init
from .nn import BatchNorm2d, Conv2d, ConvTranspose2d, LeakyReLU, Module, ReLU, Sequential, Tanh

SUPPORTED_SIZES = (64, 128)


def _check_size(image_size):
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"DCGAN image_size must be one of {SUPPORTED_SIZES}, got {image_size!r}")
    return 4 if image_size == 64 else 5   # number of stride-2 blocks


class Generator(Module):
    def __init__(self, nz=100, ngf=64, nc=3, image_size=64, rng=None):
        super().__init__()
        blocks = _check_size(image_size)
        self.config = {"nz": int(nz), "ngf": int(ngf), "nc": int(nc), "image_size": int(image_size)}
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

    def backward(self, grad_output, need_input_grad=False):
        dz = self.main.backward(grad_output, need_input_grad)
        return None if dz is None else dz.reshape(self.cache)


class Discriminator(Module):
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
