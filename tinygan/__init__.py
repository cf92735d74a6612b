"""tinygan: a face DCGAN written from scratch in NumPy/CuPy, with every backward pass by hand.

    import tinygan as tg
    D = tg.nn.Sequential(tg.nn.Conv2d(3, 8, 4, 2, 1), tg.nn.LeakyReLU(0.2), ...)
    loss = tg.losses.BCEWithLogitsLoss()
    opt = tg.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

The library's core (backend, nn, losses, optim, init, gradcheck, the DCGAN) loads with
NumPy alone. Data, training, sampling, FID and pictures (which need Pillow and
matplotlib) are modules of their own: ``from tinygan import train, sampling, fid``.
"""
from . import backend, gradcheck, init, losses, nn, optim
from .dcgan import Discriminator, Generator, ModelConfig

__version__ = "0.2.0"
__all__ = ["backend", "nn", "losses", "optim", "init", "gradcheck", "Generator", "Discriminator", "ModelConfig"]
