"""FID from scratch: folding, the fast conv, resizing, the Fréchet distance, KID, weights and the pipeline.

Tests that need the shared weights or faces skip when ../shared (next to the repository) is absent;
the comparisons with PyTorch skip without torch. The 64-face and 500-vs-500 agreement checks live in
benchmarks/fid_agreement.py.
"""
import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinygan import fid
from tinygan.cli import main
from tinygan.fid.conv import conv2d_relu
from tinygan.nn import fast, reference
from tinygan.nn.pool import AvgPool2d, MaxPool2d

SHARED = Path(__file__).resolve().parents[2] / "shared"
WEIGHTS = SHARED / "weights" / fid.TORCHSCRIPT_NAME
ALIGNED_FACES = SHARED / "data" / "celeba_align_89x109_10k.tar"
CROPPED_FACES = SHARED / "data" / "celeba_testsplit_facecrops_dev5k.tar"
needs_shared = pytest.mark.skipif(not WEIGHTS.is_file() or not ALIGNED_FACES.is_file(),
                                  reason=f"shared weights and faces not found under {SHARED}")


# ------------------------------------------------------------------ folding and the fast conv

def reference_conv(x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
    """The reference path's conv2d (tinygan.nn.reference), plus a bias."""
    y, _ = reference.conv2d(x, weight, stride, padding)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("with_gamma", [False, True])
def test_fold_batchnorm_equals_conv_then_batchnorm(with_gamma):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3))
    mean, var, beta = rng.normal(size=4), rng.uniform(0.1, 2, size=4), rng.normal(size=4)
    gamma = rng.normal(size=4) if with_gamma else None
    x = rng.normal(size=(2, 3, 6, 6))
    y = reference_conv(x, w, padding=(1, 1))
    scale = (np.ones(4) if gamma is None else gamma) / np.sqrt(var + 1e-3)
    bn = scale[:, None, None] * (y - mean[:, None, None]) + beta[:, None, None]
    w_folded, b_folded = fid.fold_batchnorm(w, mean, var, beta, gamma, eps=1e-3)
    assert w_folded.dtype == np.float32 and b_folded.dtype == np.float32
    np.testing.assert_allclose(reference_conv(x, w_folded.astype(np.float64), b_folded, padding=(1, 1)), bn,
                               rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_names_the_bad_shape():
    with pytest.raises(ValueError, match=r"bn_var has shape \(3,\), expected \(4,\)"):
        fid.fold_batchnorm(np.zeros((4, 2, 1, 1)), np.zeros(4), np.ones(3), np.zeros(4))


@settings(deadline=None, max_examples=40)
@given(n=st.integers(1, 3), c=st.integers(1, 4), o=st.integers(1, 4), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 2), sw=st.integers(1, 2), ph=st.integers(0, 2), pw=st.integers(0, 2),
       h=st.integers(3, 8), w=st.integers(3, 8), chunk=st.sampled_from([1, 200, 4 << 20]), seed=st.integers(0, 99))
def test_fast_conv_matches_reference_conv2d(n, c, o, kh, kw, sh, sw, ph, pw, h, w, chunk, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w))
    weight, bias = rng.normal(size=(o, c, kh, kw)), rng.normal(size=o)
    expected = np.maximum(reference_conv(x, weight, bias, (sh, sw), (ph, pw)), 0)
    got = conv2d_relu(fast.nhwc(x), weight, bias, (sh, sw), (ph, pw), chunk_bytes=chunk)
    np.testing.assert_allclose(fast.nchw(got), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("branch, pool", [(fid.AvgPoolConv2d, AvgPool2d(3, 1, 1, count_include_pad=False)),
                                          (fid.MaxPoolConv2d, MaxPool2d(3, 1, 1))])
def test_pool_branches_equal_pool_then_conv(branch, pool):
    """AvgPoolConv2d pools after its 1x1 conv (they commute); the result is the graph's pool-then-conv."""
    rng = np.random.default_rng(0)
    conv = branch(6, 4)
    conv.weight.data = rng.normal(size=(4, 6, 1, 1)).astype(np.float32)
    conv.bias.data = rng.normal(size=4).astype(np.float32)
    x = rng.normal(size=(2, 6, 5, 7)).astype(np.float32)
    expected = np.maximum(reference_conv(pool(x), conv.weight.data, conv.bias.data), 0)
    np.testing.assert_allclose(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_basic_conv_keeps_float32_and_nhwc_memory():
    conv = fid.BasicConv2d(3, 5, (1, 3), padding=(0, 1))
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    y = conv(x)
    assert y.dtype == np.float32 and y.shape == (2, 5, 4, 4) and fast.nhwc(y).flags.c_contiguous


# ------------------------------------------------------------------ preprocessing

def test_resize_matrix_basics():
    np.testing.assert_array_equal(fid.resize_matrix(7, 7), np.eye(7, dtype=np.float32))
    for n_in, n_out in [(64, 299), (109, 299), (500, 299), (1, 4)]:
        for half_pixel in (True, False):
            m = fid.resize_matrix(n_in, n_out, half_pixel)
            assert m.shape == (n_out, n_in) and m.dtype == np.float32
            np.testing.assert_allclose(m.sum(axis=1), 1, rtol=1e-6)
            assert ((m != 0).sum(axis=1) <= 2).all()        # two taps: no antialiasing


@pytest.mark.parametrize("size", [(64, 64), (109, 89), (400, 350)])
def test_resize_matches_torch(size):
    torch = pytest.importorskip("torch")
    images = np.random.default_rng(0).integers(0, 256, (2,) + size + (3,), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    expected = torch.nn.functional.interpolate(x / 255, size=(299, 299), mode="bilinear",
                                               align_corners=False) * 2 - 1
    np.testing.assert_allclose(fid.preprocess(images), expected.numpy(), atol=5e-5)
    # legacy-tf: the StyleGAN/clean-fid TorchScript model resizes with affine_grid + grid_sample
    h, w = size
    theta = torch.tensor([[1, 0, 1 / w - 1 / 299], [0, 1, 1 / h - 1 / 299]]).repeat(2, 1, 1)
    grid = torch.nn.functional.affine_grid(theta, [2, 3, 299, 299], align_corners=False)
    legacy = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    np.testing.assert_allclose(fid.preprocess(images, "legacy-tf"), ((legacy - 128) / 128).numpy(), atol=5e-4)


def test_preprocess_checks_its_input():
    x = fid.preprocess(np.full((1, 8, 8, 3), 255, np.uint8))
    assert x.shape == (1, 3, 299, 299) and x.dtype == np.float32
    np.testing.assert_allclose(x, 1, rtol=1e-6)
    np.testing.assert_allclose(fid.preprocess(np.zeros((1, 8, 8, 3), np.uint8), "legacy-tf"), -1)
    with pytest.raises(ValueError, match=r"uint8 RGB images of shape \(N, H, W, 3\)"):
        fid.preprocess(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        fid.preprocess(np.zeros((1, 8, 8, 3), np.uint8), "clean")


# ------------------------------------------------------------------ statistics

def random_covariance(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def denman_beavers_sqrtm(a, steps=60):
    """sqrt(A) of a general (non-symmetric) matrix by the Denman-Beavers iteration: a different method."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(steps):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


def test_fid_of_identical_statistics_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), random_covariance(rng, 16)
    assert fid.statistics_to_fid(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-9)


def test_fid_of_diagonal_covariances_has_a_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    v1, v2 = rng.uniform(0.1, 3, size=10), rng.uniform(0.1, 3, size=10)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid.statistics_to_fid(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_fid_matches_a_general_matrix_square_root():
    rng = np.random.default_rng(2)
    for d in (3, 12, 40):
        s1, s2 = random_covariance(rng, d), random_covariance(rng, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                    - 2 * np.trace(denman_beavers_sqrtm(s1 @ s2)))
        assert fid.statistics_to_fid(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_rank_deficient_covariances_matches_scipy():
    rng = np.random.default_rng(3)
    f1, f2 = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 0.3    # N < D: singular covariances
    (mu1, s1), (mu2, s2) = fid.features_to_statistics(f1), fid.features_to_statistics(f2)
    value = fid.statistics_to_fid(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value > 0
    linalg = pytest.importorskip("scipy.linalg")
    covmean = linalg.sqrtm(s1 @ s2).real                                    # pytorch-fid's way
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert value == pytest.approx(expected, rel=1e-6)


def test_features_to_statistics_is_mean_and_unbiased_covariance():
    f = np.random.default_rng(4).normal(size=(30, 5)).astype(np.float32)
    mu, sigma = fid.features_to_statistics(f)
    assert mu.dtype == np.float64
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-10)
    with pytest.raises(ValueError, match="N >= 2"):
        fid.features_to_statistics(f[:1])


def test_statistics_to_fid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"sigma2 has shape \(3, 3\), expected \(4, 4\)"):
        fid.statistics_to_fid(np.zeros(4), np.eye(4), np.zeros(4), np.eye(3))


def unbiased_mmd2(x, y):
    """The KID estimate for one pair of subsets, term by term."""
    k = lambda a, b: (a @ b / x.shape[1] + 1) ** 3                          # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)) + 0.5
    mean, std = fid.kid(x, y, subsets=3, subset_size=100)    # capped at 6: every subset is the whole set
    assert mean == pytest.approx(unbiased_mmd2(x, y), rel=1e-10) and std == 0
    same, _ = fid.kid(rng.normal(size=(300, 4)), rng.normal(size=(300, 4)), subsets=10, subset_size=100)
    assert abs(same) < 0.05 < mean


def test_kid_with_one_whole_set_equals_drawing_both_subsets_every_time():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(9, 4)) + 0.3
    draws = np.random.default_rng(0)                         # the subsets kid(seed=0) draws, in its order
    expected = [unbiased_mmd2(a[draws.choice(5, 5, replace=False)], b[draws.choice(9, 5, replace=False)])
                for _ in range(4)]
    mean, std = fid.kid(a, b, subsets=4, subset_size=5, seed=0)
    assert (mean, std) == pytest.approx((np.mean(expected), np.std(expected)), rel=1e-10)
    assert std > 0


# ------------------------------------------------------------------ weights: names, formats, lookup

@pytest.fixture(scope="module")
def weights_npz(tmp_path_factory):
    """The shared TorchScript weights, converted once into a temporary cache."""
    if not WEIGHTS.is_file():
        pytest.skip(f"shared weights not found at {WEIGHTS}")
    cache = tmp_path_factory.mktemp("fid-cache")
    return fid.fid_weights_path(WEIGHTS, cache=cache, verbose=False)


def test_torchscript_names_map_onto_every_conv(weights_npz):
    state = fid.read_fid_weights(weights_npz)
    model = fid.FIDInceptionV3()
    names = list(model.conv_layers())
    assert len(names) == 94
    expected = {f"{name}.{p}" for name in names
                for p in ("conv.weight", "bn.bias", "bn.running_mean", "bn.running_var")}
    assert set(state) == expected
    model.load_fid_weights(state)
    assert model.Mixed_7c.branch3x3dbl_3b.weight.shape == (384, 384, 3, 1)


def test_reads_the_legacy_pytorch_fid_format(weights_npz, tmp_path):
    """pytorch-fid's .pth is a legacy torch pickle of a torchvision-named state dict, gamma and fc included."""
    torch = pytest.importorskip("torch")
    state = fid.read_fid_weights(weights_npz)
    pth = {k: torch.from_numpy(v) for k, v in state.items() if k.startswith(("Conv2d_", "Mixed_5b"))}
    for key in [k for k in pth if k.endswith("bn.bias")]:
        pth[key.replace("bn.bias", "bn.weight")] = torch.ones_like(pth[key])
        pth[key.replace("bn.bias", "bn.num_batches_tracked")] = torch.tensor(0)
    pth["fc.weight"], pth["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path / "pt_inception-like.pth"
    torch.save(pth, path, _use_new_zipfile_serialization=False)
    loaded = fid.read_fid_weights(path)
    assert "fc.weight" not in loaded and not any("num_batches" in k for k in loaded)
    for key in loaded:
        expected = np.ones_like(loaded[key]) if key.endswith("bn.weight") else state[key]
        np.testing.assert_array_equal(loaded[key], expected, err_msg=key)


def test_weight_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGAN_FID_WEIGHTS", raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="download=False"):
        fid.fid_weights_path(cache=cache, download=False)
    converted = cache / (Path(fid.PYTORCH_FID_URL).stem + ".npz")
    cache.mkdir()
    np.savez(converted, x=np.zeros(1))
    assert fid.fid_weights_path(cache=cache, download=False) == converted          # the cache
    from_env = tmp_path / "env.npz"
    np.savez(from_env, x=np.zeros(1))
    monkeypatch.setenv("TINYGAN_FID_WEIGHTS", str(from_env))
    assert fid.fid_weights_path(cache=cache) == from_env                          # the environment
    explicit = tmp_path / "explicit.npz"
    np.savez(explicit, x=np.zeros(1))
    assert fid.fid_weights_path(explicit, cache=cache) == explicit                 # an explicit path
    with pytest.raises(FileNotFoundError, match="do not exist"):
        fid.fid_weights_path(tmp_path / "missing.pth", cache=cache)


def test_download_checks_the_checksum(tmp_path):
    source = tmp_path / "served" / "weights.pth"
    source.parent.mkdir()
    source.write_bytes(b"pretend these are weights")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    path = fid.download_fid_weights(tmp_path / "ok", url=source.as_uri(), sha256_prefix=digest[:8], verbose=False)
    assert path.read_bytes() == source.read_bytes()
    with pytest.raises(ValueError, match="checksum mismatch"):
        fid.download_fid_weights(tmp_path / "bad", url=source.as_uri(), sha256_prefix="00000000", verbose=False)
    assert not (tmp_path / "bad" / "weights.pth").exists()
    with pytest.raises(OSError, match="cannot download .*; without a network, pass --weights"):
        fid.download_fid_weights(tmp_path / "none", url=(tmp_path / "gone.pth").as_uri(), verbose=False)


# ------------------------------------------------------------------ the network on real faces

@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """8 real faces at 64x64 (training crop) from the shared aligned CelebA tar."""
    if not ALIGNED_FACES.is_file():
        pytest.skip(f"shared faces not found at {ALIGNED_FACES}")
    cache = tmp_path_factory.mktemp("faces-cache")
    return np.array(fid.load_images(ALIGNED_FACES, n=8, cache=cache, verbose=False))     # a writable copy


@needs_shared
@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # torch.jit.load is deprecated, its files are not
def test_features_match_the_torchscript_reference(weights_npz, faces):
    torch = pytest.importorskip("torch")
    model = fid.fid_inception_v3(weights_npz, verbose=False)
    ours = fid.images_to_features(faces, batch_size=8, model=model)
    reference = torch.jit.load(str(WEIGHTS), map_location="cpu").eval()
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        theirs = reference(x * 2 - 1).numpy()
    assert ours.shape == (8, 2048) and ours.dtype == np.float32
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) <= 1e-3


@needs_shared
def test_fid_end_to_end_and_command_line(weights_npz, faces, tmp_path, capsys):
    cache = tmp_path / "cache"
    fake_dir = tmp_path / "fakes"
    fake_dir.mkdir()
    fakes = faces[:, ::-1].copy()                          # upside-down faces: clearly not the real ones
    for i, face in enumerate(fakes):
        Image.fromarray(face).save(fake_dir / f"{i}.png")
    result = fid.fid_between(ALIGNED_FACES, fakes, n=8, weights=weights_npz, cache=cache, kid_subsets=5,
                             verbose=False)
    assert np.isfinite(result["fid"]) and result["fid"] > 1 and result["n"] == 8

    assert main(["fid", "--real", str(ALIGNED_FACES), "--fake", str(fake_dir), "-n", "8",
                 "--batch-size", "8", "--weights", str(weights_npz), "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "warning: n=8 < 2048" in out and "real statistics from cache" in out
    printed = float(next(line for line in out.splitlines() if line.startswith("FID ")).split()[1])
    assert printed == pytest.approx(result["fid"], rel=1e-3)   # PNG round trip of the fakes is lossless
