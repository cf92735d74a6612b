"""The whole GAN training step agrees with the same step written in PyTorch.

Same initial weights, same real batches, same noise: three steps of D and G
updates must give the same losses and weights. This checks every layer, the
loss, Adam and the order of the updates at once. Skipped without torch.

Both sides run in float64. In float32 the comparison cannot be tight on every
machine: Adam's first step moves a weight by about lr for *any* gradient well above
eps = 1e-8, so float32 rounding noise (which differs between BLAS builds) in a
gradient that is nearly zero decides the sign of a 2e-4 step. In float64 that noise
is ~1e-16, far below eps, and the same step agrees to ~1e-12; the tolerances below
leave a factor of 100 to 1000.
"""
import numpy as np
import pytest

from tinygan import backend, dcgan, train
from tinygan.optim import Adam

torch = pytest.importorskip("torch")
tnn = torch.nn


def torch_dcgan(ngf, ndf, nz=100):
    """The PyTorch DCGAN tutorial's networks (D without its final Sigmoid: it outputs logits)."""
    width = ngf * 8
    g_layers = [tnn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), tnn.BatchNorm2d(width), tnn.ReLU()]
    for _ in range(3):
        g_layers += [tnn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(width // 2),
                     tnn.ReLU()]
        width //= 2
    g_layers += [tnn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), tnn.Tanh()]
    d_layers, width = [tnn.Conv2d(3, ndf, 4, 2, 1, bias=False), tnn.LeakyReLU(0.2)], ndf
    for _ in range(3):
        d_layers += [tnn.Conv2d(width, width * 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(width * 2), tnn.LeakyReLU(0.2)]
        width *= 2
    d_layers += [tnn.Conv2d(width, 1, 4, 1, 0, bias=False)]

    class Net(tnn.Module):
        def __init__(self, layers):
            super().__init__()
            self.main = tnn.Sequential(*layers)

        def forward(self, x):
            return self.main(x)
    return Net(g_layers), Net(d_layers)


def test_three_training_steps_match_pytorch(tmp_path):
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    trainer = train.Trainer(train.make_config(out=str(tmp_path), ngf=4, ndf=4, batch_size=8, ema_decay=0),
                            dataset=images, verbose=False)
    for net in (trainer.G, trainer.D):
        net.astype(np.float64)
    trainer.opt_G = Adam(trainer.G.parameters(), 2e-4, (0.5, 0.999))        # float64 moments too
    trainer.opt_D = Adam(trainer.D.parameters(), 2e-4, (0.5, 0.999))
    trainer.G.sample_noise = lambda rng, n: dcgan.sample_noise(rng, n, 100).astype(np.float64)
    net_g, net_d = (net.double() for net in torch_dcgan(4, 4))
    for net, ours in ((net_g, trainer.G), (net_d, trainer.D)):
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}, strict=False)
    opt_g = torch.optim.Adam(net_g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = tnn.BCEWithLogitsLoss()
    for step in range(3):
        real = trainer.loader.get_batch(0, step)
        noise_rng = backend.default_rng(0)
        noise_rng.set_state(trainer.noise_rng.state())        # the noise trainer.train_step will draw
        z = torch.from_numpy(dcgan.sample_noise(noise_rng, 8, 100, "normal").astype(np.float64))
        real = real.astype(np.float64)
        ours = trainer.train_step(real)

        real_t = torch.from_numpy(np.ascontiguousarray(real))
        ones, zeros = torch.ones(8, 1, 1, 1, dtype=torch.float64), torch.zeros(8, 1, 1, 1, dtype=torch.float64)
        fake = net_g(z)
        opt_d.zero_grad()
        d_loss = bce(net_d(real_t), ones)
        d_loss.backward()
        d_loss_fake = bce(net_d(fake.detach()), zeros)
        d_loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(net_d(fake), ones)
        g_loss.backward()
        opt_g.step()
        assert ours["d_loss"] == pytest.approx((d_loss + d_loss_fake).item(), rel=1e-10)
        assert ours["g_loss"] == pytest.approx(g_loss.item(), rel=1e-10)
    for net, ours in ((net_g, trainer.G), (net_d, trainer.D)):
        theirs = net.state_dict()
        for key, value in ours.state_dict().items():
            np.testing.assert_allclose(value, theirs[key].numpy(), rtol=1e-9, atol=1e-10, err_msg=key)
