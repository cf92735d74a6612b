"""DCGAN initialisation (Radford et al. 2016): every conv weight from N(0, 0.02),
BatchNorm gamma from N(1, 0.02) and beta = 0. Biases (if any) start at 0."""
from . import backend
from .nn.batchnorm import BatchNorm2d
from .nn.conv import Conv2d, ConvTranspose2d


def dcgan_init(model, rng):
    """Re-initialise ``model`` in place from the seeded generator ``rng`` (an int seed or a Generator)."""
    rng = backend.default_rng(rng)
    for m in model.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d)):
            m.weight.data[...] = rng.normal(m.weight.shape, 0.0, 0.02, dtype=m.weight.data.dtype)
            if m.bias is not None:
                m.bias.data[...] = 0
        elif isinstance(m, BatchNorm2d) and m.weight is not None:
            m.weight.data[...] = rng.normal(m.weight.shape, 1.0, 0.02, dtype=m.weight.data.dtype)
            m.bias.data[...] = 0
    return model
