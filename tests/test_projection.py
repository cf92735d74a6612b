"""Finding a photo in the generator (tinygan.projection, `python -m tinygan project`), and z files as seeds."""
import numpy as np
import pytest
from PIL import Image

from helpers import face_images
from tinygan import checkpoint, model_files, projection, sampling
from tinygan.cli import main
from tinygan.data import to_float
from tinygan.dcgan import Discriminator, Generator
from tinygan.gradcheck import relative_error


def tiny_pair(seed=0):
    """A tiny G that paints faces which vary with z, as a trained G does (DCGAN's initial weights paint a nearly
    flat grey: its last layer 30 times stronger, its BatchNorm statistics from a batch of z), and a tiny D with
    the running statistics of faces."""
    from tinygan.ema import recalibrate_batchnorm
    D = Discriminator(ndf=4, rng=seed)
    D(to_float(face_images(8)))
    G = Generator(nz=8, ngf=4, rng=seed)
    G.main[-2].weight.data *= 30
    return recalibrate_batchnorm(G, [np.random.default_rng(seed).normal(size=(16, 8, 1, 1)).astype(np.float32)]), \
        D.eval()


@pytest.fixture(scope="module")
def ckpt(run_dir):
    return run_dir / "checkpoints" / "ckpt_000002.npz"


def along(f, x, direction, h=1e-5):
    return (f(x + h * direction) - f(x - h * direction)) / (2 * h)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_the_distance_and_dd_dz_through_g_agree_with_finite_differences_in_float64(weight):
    G, D = tiny_pair()
    G.astype(np.float64), D.astype(np.float64)
    rng = np.random.default_rng(1)
    photo = rng.uniform(-1, 1, (1, 3, 64, 64))
    likeness = projection.Likeness(photo, D, weight)
    assert len(likeness.taps) == (4 if weight else 0)          # after each LeakyReLU: 32x32 down to 4x4
    faces = rng.uniform(-1, 1, (2, 3, 64, 64))
    _, grad = likeness.gradient(faces)
    for _ in range(3):                                  # d/dimages along random directions
        direction = rng.normal(size=faces.shape)
        numeric = along(lambda x: likeness.distances(x).sum(), faces, direction)
        assert relative_error(float((grad * direction).sum()), numeric) < 1e-6
    z = rng.normal(size=(2, 8, 1, 1))                   # and on through G to z, as project uses it
    dz = G.backward(likeness.gradient(G(z))[1])
    for _ in range(3):
        direction = rng.normal(size=z.shape)
        numeric = along(lambda v: likeness.distances(G(v)).sum(), z, direction)
        assert relative_error(float((dz * direction).sum()), numeric) < 1e-6
    assert all(p.grad is None for p in D.parameters())      # only dd/dimage was asked of D


def test_onto_prior_puts_z_on_the_sphere_or_into_the_cube():
    z = np.random.default_rng(0).normal(size=(5, 100, 1, 1)).astype(np.float32) * 3
    on = projection.onto_prior(z)
    assert on.dtype == np.float32 and on.shape == z.shape
    np.testing.assert_allclose(np.linalg.norm(on.reshape(5, -1), axis=1), 10.0, rtol=1e-5)
    np.testing.assert_allclose(on / np.linalg.norm(on.reshape(5, -1), axis=1).reshape(-1, 1, 1, 1),
                               z / np.linalg.norm(z.reshape(5, -1), axis=1).reshape(-1, 1, 1, 1), rtol=1e-5)
    assert np.abs(projection.onto_prior(z, "uniform")).max() <= 1.0


def test_projection_finds_a_face_of_the_shipped_g_far_closer_than_its_random_starts():
    G, D = model_files.load_generator(), model_files.load_discriminator()
    target = sampling.generate_images(G, [123456])[0]        # a face G can paint (up to the sphere)
    result = projection.project(G, target, D, steps=40, every=20)
    assert len(result["frames"]) == 3 and result["face"].shape == (64, 64, 3)
    start = projection.Likeness(to_float(target[None]), D).distances(to_float(result["frames"][0][None]))[0]
    assert result["distance"] < 0.6 * start and result["psnr"] > projection.psnr(result["frames"][0], target) + 3
    assert result["z"].shape == (1, 100, 1, 1) and result["z"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result["z"]), 10.0, rtol=1e-5)
    assert result["psnr"] == projection.psnr(result["face"], target)
    again = projection.project(G, target, D, steps=40)
    np.testing.assert_array_equal(again["z"], result["z"])             # the same photo and seed: the same z
    assert all(p.grad is None for p in G.parameters()) and not G.training


def test_a_z_file_is_a_seed_and_paints_the_projected_face(tmp_path):
    G, D = tiny_pair()
    result = projection.project(G, face_images(1)[0], D, steps=5)
    sampling.save_z(result["z"], tmp_path / "me.npy")
    assert np.load(tmp_path / "me.npy").shape == (8,)
    seeds = sampling.parse_seeds(f"{tmp_path / 'me.npy'},3")
    assert seeds == [str(tmp_path / "me.npy"), 3]
    faces = sampling.generate_images(G, seeds)
    assert np.abs(faces[0].astype(int) - result["face"]).max() <= 1          # other batch sizes round differently
    np.testing.assert_array_equal(faces[1], sampling.generate_images(G, [3])[0])
    strip = sampling.interpolate(G, seeds, steps=3)
    np.testing.assert_array_equal(strip[0], faces[0])
    np.testing.assert_array_equal(sampling.walk(G, seeds[0], 3, 1.0), faces[1])


@pytest.mark.parametrize("content, words", [
    (None, "no such file"), (b"not numpy", "not a NumPy .npy file"), (np.zeros(7, np.float32), "expected 8"),
    (np.zeros(8, np.int64), "floating-point"), (np.full(8, np.nan, np.float32), "NaN"), ("npz", ".npz archive")])
def test_a_bad_z_file_is_refused_naming_the_file(tmp_path, content, words):
    path = tmp_path / "z.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        with open(path, "wb") as f:
            np.savez(f, z=np.zeros(8, np.float32))
    elif content is not None:
        np.save(path, content)
    with pytest.raises(ValueError, match=words) as err:
        sampling.noise_for_seeds([str(path)], 8)
    assert str(path) in str(err.value)


def test_project_command_writes_z_face_and_steps_and_the_z_walks_to_a_seed(ckpt, tmp_path, capsys):
    photo = tmp_path / "me.jpg"
    Image.fromarray(face_images(1, size=128)[0]).save(photo)
    out = tmp_path / "found"
    assert main(["project", str(photo), "-c", str(ckpt), "--steps", "8", "--every", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "step 8/8" in printed and "PSNR" in printed and f"wrote {out / 'me'}.npy" in printed
    with Image.open(out / "me_steps.png") as strip:
        assert strip.size == (4 * 64 + 5 * 2, 64 + 2 * 2)          # the photo, then steps 0, 4 and 8
    G = model_files.load_generator(ckpt)
    with Image.open(out / "me.png") as face:
        painted = sampling.generate_images(G, [str(out / "me.npy")])[0]
        assert np.abs(np.asarray(face).astype(int) - painted).max() <= 1
    assert main(["interpolate", "-c", str(ckpt), "--seeds", f"{out / 'me.npy'},42", "--steps", "3",
                 "--out", str(tmp_path / "walk.png")]) == 0
    assert "through me.npy, 42" in capsys.readouterr().out


@pytest.mark.parametrize("make, args, words", [
    (lambda d: d.mkdir(), [], "is not an image file (it is a folder)"),
    (lambda d: d.write_bytes(b"no image"), [], "cannot use image"),
    (lambda d: Image.new("RGB", (80, 80)).save(d, "PNG"), ["--box", "0,0,40"], "give exactly one photo"),
    (lambda d: Image.new("RGB", (80, 80)).save(d, "PNG"), ["--out", "FILE"], "is a file"),
])
def test_a_bad_photo_or_option_is_one_error_line_and_nothing_is_written(ckpt, tmp_path, capsys, make, args, words):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGB", (80, 80)).save(good)
    make(bad)
    (tmp_path / "FILE").write_text("keep me")
    args = [a.replace("FILE", str(tmp_path / "FILE")) for a in args]
    out = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    assert main(["project", str(good), str(bad), "-c", str(ckpt)] + out + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinygan project: error:") and words in err[0], err
    assert not (tmp_path / "out").exists() and (tmp_path / "FILE").read_text() == "keep me"


@pytest.mark.parametrize("names", [("a/me.png", "b/me.png"), ("a/Me.png", "b/me.jpg"), ("a/me.png", "b/me_steps.png")])
def test_photos_whose_files_would_overwrite_each_other_are_refused(ckpt, tmp_path, capsys, names):
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (80, 80)).save(tmp_path / name)
    out = tmp_path / "out"
    assert main(["project", *(str(tmp_path / name) for name in names), "-c", str(ckpt), "--out", str(out)]) == 2
    assert "would both write" in capsys.readouterr().err and not out.exists()


def test_dotted_names_keep_their_dots_and_the_photo_itself_is_never_replaced(ckpt, tmp_path, capsys):
    for name in ("john.1.png", "john.2.png"):
        Image.new("RGB", (80, 80), (40 * len(name), 90, 20)).save(tmp_path / name)
    out = tmp_path / "out"
    assert main(["project", str(tmp_path / "john.1.png"), str(tmp_path / "john.2.png"), "-c", str(ckpt), "--steps",
                 "0", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["john.1.npy", "john.1.png", "john.1_steps.png", "john.2.npy",
                                                     "john.2.png", "john.2_steps.png"]
    photo = tmp_path / "me.png"
    Image.new("RGB", (80, 80)).save(photo)
    before = photo.read_bytes()
    assert main(["project", str(photo), "-c", str(ckpt), "--out", str(tmp_path)]) == 2
    assert "is a photo being projected" in capsys.readouterr().err and photo.read_bytes() == before


def test_two_photos_of_one_name_and_bad_feature_weights_are_refused(ckpt, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (80, 80)).save(tmp_path / folder / "me.png")
    assert main(["project", str(tmp_path / "a" / "me.png"), str(tmp_path / "b" / "me.png"), "-c", str(ckpt)]) == 2
    assert "would both write" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["project", str(tmp_path / "a" / "me.png"), "--features", "-1"])
    assert "expected a number >= 0" in capsys.readouterr().err


def test_a_generator_without_d_projects_by_pixels_and_says_so(ckpt, tmp_path, capsys):
    G = model_files.load_generator(ckpt)
    model_files.save_generator(G, tmp_path / "g.npz")
    assert "D" not in checkpoint.load(tmp_path / "g.npz")
    photo = tmp_path / "me.png"
    Image.fromarray(face_images(1)[0]).save(photo)
    assert main(["project", str(photo), "-c", str(tmp_path / "g.npz"), "--steps", "2", "--out",
                 str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "no discriminator for the feature distance" in printed and "the distance is pixels only" in printed


def test_a_photo_too_large_in_pixels_or_bytes_is_one_error_line(ckpt, tmp_path, capsys, monkeypatch):
    from tinygan import images
    photo = tmp_path / "big.png"
    Image.new("RGB", (80, 80)).save(photo)
    monkeypatch.setattr(images, "MAX_PHOTO_PIXELS", 80 * 80 - 1)
    assert main(["project", str(photo), "-c", str(ckpt), "--out", str(tmp_path / "out")]) == 2
    assert "80x80 pixels is too large a photo" in capsys.readouterr().err
    monkeypatch.setattr(images, "MAX_PHOTO_BYTES", photo.stat().st_size - 1)
    assert main(["judge", str(photo), "-c", str(ckpt)]) == 2
    assert "bytes is too large a photo" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_generate_separate_refuses_two_z_files_of_one_name(ckpt, tmp_path, capsys):
    G = model_files.load_generator(ckpt)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sampling.save_z(sampling.noise_for_seeds([len(folder)], 8), tmp_path / folder / "me.npy")
    seeds = f"{tmp_path / 'a' / 'me.npy'},{tmp_path / 'b' / 'me.npy'}"
    assert main(["generate", "-c", str(ckpt), "--seeds", seeds, "--separate", "--out", str(tmp_path / "o")]) == 2
    assert "would both be written as" in capsys.readouterr().err
    assert main(["generate", "-c", str(ckpt), "--seeds", "3,3", "--separate", "--out", str(tmp_path / "o")]) == 0
    assert G is not None
