"""The face DCGAN: shapes, output ranges, DCGAN initialisation, PyTorch-tutorial names and outputs, bad inputs."""
import numpy as np
import pytest

from tinygan import backend
from tinygan.dcgan import Discriminator, Generator
from tinygan.nn import BatchNorm2d, Conv2d, ConvTranspose2d, Tanh, sigmoid

# The PyTorch DCGAN tutorial's layer indices in nn.Sequential (ReLU / LeakyReLU / Tanh hold no parameters).
G_CONVS, G_NORMS = (0, 3, 6, 9, 12), (1, 4, 7, 10)
D_CONVS, D_NORMS = (0, 2, 5, 8, 11), (3, 6, 9)


def noise(n, nz=100, seed=0):
    return np.random.default_rng(seed).normal(size=(n, nz, 1, 1)).astype(np.float32)   # (N, nz, 1, 1)


def images(n, size=64, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, size, size)).astype(np.float32)   # (N, 3, S, S)


def tutorial_keys(convs, norms):
    keys = [f"main.{i}.weight" for i in convs]
    for i in norms:
        keys += [f"main.{i}.{name}" for name in ("weight", "bias", "running_mean", "running_var")]
    return sorted(keys)


# --- shapes and ranges -----------------------------------------------------------------
@pytest.mark.parametrize("size, blocks", [(64, 4), (128, 5)])
def test_shapes_for_64_and_128(size, blocks):
    G = Generator(nz=16, ngf=4, image_size=size, rng=0)
    D = Discriminator(ndf=4, image_size=size, rng=0)
    fake = G(noise(2, 16))
    assert fake.shape == (2, 3, size, size) and fake.dtype == np.float32
    logits = D(fake)
    assert logits.shape == (2, 1, 1, 1) and logits.dtype == np.float32
    # image_size=128 adds one stride-2 block to each network: blocks + 1 convolutions in all
    assert sum(isinstance(m, ConvTranspose2d) for m in G.modules()) == blocks + 1
    assert sum(isinstance(m, Conv2d) for m in D.modules()) == blocks + 1
    # channel widths: ngf * 2^(blocks-1) at 4x4, halving per block; D mirrors it
    assert G.main[0].weight.shape == (16, 4 * 2 ** (blocks - 1), 4, 4)
    assert D.main[len(D.main) - 1].weight.shape == (1, 4 * 2 ** (blocks - 1), 4, 4)


def test_generator_accepts_flat_noise_and_returns_its_gradient_in_that_shape():
    G = Generator(nz=16, ngf=4, rng=0)
    z = noise(3, 16).reshape(3, 16)                       # (N, nz)
    fake = G(z)
    assert fake.shape == (3, 3, 64, 64)
    dz = G.backward(np.ones_like(fake), need_input_grad=True)
    assert dz.shape == (3, 16) and dz.dtype == np.float32


def test_generator_output_lies_in_minus_one_to_one_even_when_saturated():
    G = Generator(nz=16, ngf=4, rng=1).eval()
    for scale in (1.0, 1e3):                              # huge z drives tanh into saturation
        fake = G(noise(4, 16) * np.float32(scale))
        assert np.isfinite(fake).all()
        assert fake.min() >= -1.0 and fake.max() <= 1.0
    assert isinstance(G.main[len(G.main) - 1], Tanh)


def test_discriminator_returns_logits_not_probabilities():
    D = Discriminator(ndf=4, rng=0)
    last = D.main[len(D.main) - 1]
    assert isinstance(last, Conv2d), "the sigmoid belongs in the loss (BCE-with-logits), not in D"
    last.weight.data *= 1e3                               # make the logits large
    logits = D(images(4))
    assert logits.shape == (4, 1, 1, 1)
    assert logits.min() < 0 or logits.max() > 1, "a sigmoid output would stay in (0, 1)"


def test_same_seed_gives_the_same_weights():
    a, b, c = Generator(nz=8, ngf=4, rng=3), Generator(nz=8, ngf=4, rng=3), Generator(nz=8, ngf=4, rng=4)
    for (key, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        np.testing.assert_array_equal(x, y, err_msg=key)
    assert not np.array_equal(a.main[0].weight.data, c.main[0].weight.data)


# --- DCGAN initialisation ----------------------------------------------------------------
def test_full_size_models_have_dcgan_init_statistics():
    """Radford et al.: conv weights ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02), beta = 0."""
    for model in (Generator(rng=0), Discriminator(rng=0)):   # the real 64x64 sizes (ngf = ndf = 64)
        for m in model.modules():
            if isinstance(m, (Conv2d, ConvTranspose2d)):
                w = m.weight.data
                assert w.dtype == np.float32
                assert abs(w.std() - 0.02) < 0.02 * (0.1 if w.size > 1000 else 0.5), (m, w.std())
                assert abs(w.mean()) < 0.02 * (0.05 if w.size > 1000 else 0.5), (m, w.mean())
                assert m.bias is None                  # DCGAN convs have no bias: BatchNorm's beta replaces it
            elif isinstance(m, BatchNorm2d):
                gamma, beta = m.weight.data, m.bias.data
                assert abs(gamma.mean() - 1) < 0.01 and 0.01 < gamma.std() < 0.03, (m, gamma.mean(), gamma.std())
                np.testing.assert_array_equal(beta, 0)
                np.testing.assert_array_equal(m.running_mean, 0)
                np.testing.assert_array_equal(m.running_var, 1)


# --- names: the PyTorch DCGAN tutorial's state_dict --------------------------------------
def test_state_dict_keys_equal_the_pytorch_tutorial():
    G, D = Generator(ngf=4, rng=0), Discriminator(ndf=4, rng=0)
    assert sorted(G.state_dict()) == tutorial_keys(G_CONVS, G_NORMS)
    assert sorted(D.state_dict()) == tutorial_keys(D_CONVS, D_NORMS)
    assert G.state_dict()["main.0.weight"].shape == (100, 32, 4, 4)       # (nz, ngf*8, 4, 4): ConvT is (in, out, k, k)
    assert G.state_dict()["main.12.weight"].shape == (4, 3, 4, 4)
    assert D.state_dict()["main.0.weight"].shape == (4, 3, 4, 4)          # Conv is (out, in, k, k)
    assert D.state_dict()["main.11.weight"].shape == (1, 32, 4, 4)
    assert all(v.dtype == np.float32 for v in list(G.state_dict().values()) + list(D.state_dict().values()))


def test_load_state_dict_names_the_key_that_does_not_fit():
    G, other = Generator(ngf=4, rng=0), Generator(ngf=8, rng=0)
    with pytest.raises(ValueError, match=r"main\.0\.weight.*expected"):
        G.load_state_dict(other.state_dict())
    state = G.state_dict()
    del state["main.1.running_var"]
    with pytest.raises(ValueError, match=r"missing keys \['main\.1\.running_var'\]"):
        G.load_state_dict(state)


def torch_tutorial_models(torch, nz, ngf, ndf, nc=3):
    """The networks of the PyTorch DCGAN tutorial (pytorch.org/tutorials/beginner/dcgan_faces_tutorial)."""
    nn = torch.nn

    class TorchGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, z):
            return self.main(z)

    class TorchDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())   # tinygan keeps the sigmoid in the loss

        def forward(self, x):
            return self.main(x)

    return TorchGenerator(), TorchDiscriminator()


def test_weights_load_into_the_pytorch_tutorial_models_and_give_the_same_outputs():
    torch = pytest.importorskip("torch")
    nz, ngf, ndf = 16, 4, 4
    G, D = Generator(nz=nz, ngf=ngf, rng=0), Discriminator(ndf=ndf, rng=1)
    for model in (G, D):                                  # non-trivial BatchNorm statistics and affine terms
        for m in model.modules():
            if isinstance(m, BatchNorm2d):
                rng = np.random.default_rng(m.num_features)
                m.running_mean[...] = rng.normal(0, 0.1, m.num_features)
                m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features)
                m.bias.data[...] = rng.normal(0, 0.1, m.num_features)
    tG, tD = torch_tutorial_models(torch, nz, ngf, ndf)

    for ours, theirs in ((G, tG), (D, tD)):
        torch_state = theirs.state_dict()
        # torch adds num_batches_tracked, a counter that no computation reads; every other key must match
        torch_keys = sorted(k for k in torch_state if not k.endswith("num_batches_tracked"))
        assert sorted(ours.state_dict()) == torch_keys
        for key, value in ours.state_dict().items():
            assert tuple(torch_state[key].shape) == value.shape, key
        theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})   # strict

    z, x = noise(4, nz, seed=5), images(4, seed=6)
    for mode in ("eval", "train"):
        for model in (G, D, tG, tD):
            model.train(mode == "train")
        with torch.no_grad():
            fake_torch = tG(torch.from_numpy(z)).numpy()
            prob_torch = tD(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(G(z), fake_torch, atol=1e-4, err_msg=f"G, {mode} mode")
        np.testing.assert_allclose(sigmoid(D(x)), prob_torch, atol=1e-4, err_msg=f"D, {mode} mode")
    # train mode updated the running statistics in the same way
    torch_G = tG.state_dict()
    for key, value in G.state_dict().items():
        np.testing.assert_allclose(value, torch_G[key].numpy(), atol=1e-5, err_msg=key)


# --- bad inputs ------------------------------------------------------------------------------
def test_bad_noise_shapes_name_the_expected_shape():
    G = Generator(nz=16, ngf=4, rng=0)
    for bad in (np.zeros((2, 15), np.float32), np.zeros((2, 16, 2, 2), np.float32), np.zeros(16, np.float32)):
        with pytest.raises(ValueError, match=r"expected noise of shape \(N, 16\) or \(N, 16, 1, 1\), got"):
            G(bad)


def test_bad_image_shapes_name_the_expected_shape():
    D = Discriminator(ndf=4, rng=0)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 64, 64\), got \(2, 3, 32, 32\)"):
        D(images(2, size=32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(2, 1, 64, 64\)"):
        D(np.zeros((2, 1, 64, 64), np.float32))
    with pytest.raises(TypeError, match="float32"):
        D(images(2).astype(np.float64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        D(images(2).tolist())


@pytest.mark.parametrize("size", [32, 96, 256])
def test_unsupported_image_size_says_which_sizes_work(size):
    with pytest.raises(ValueError, match=r"one of \(64, 128\), got " + str(size)):
        Generator(image_size=size)
    with pytest.raises(ValueError, match=r"one of \(64, 128\)"):
        Discriminator(image_size=size)


def test_models_are_created_on_the_active_backend():
    assert backend.name() == "numpy"
    G = Generator(nz=8, ngf=4, rng=0)
    assert all(isinstance(p.data, np.ndarray) for p in G.parameters())
