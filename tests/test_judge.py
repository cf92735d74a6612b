"""The judge (tinygan.judge): one threshold, a D fitted on mixed batches, where D looks, what is no face;
the framing of a photo by a box or by the eyes (tinygan.images)."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import face_images, oval_faces
from tinygan import checkpoint, judge, model_files
from tinygan.dcgan import Discriminator, Generator
from tinygan.gradcheck import relative_error
from tinygan.images import CELEBA_CROP, GUIDE, dark_centroid, eyes_box, prepare_for_judging

SHARED_TAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_align_89x109_10k.tar"


def tiny_pair(seed=0):
    return Generator(nz=8, ngf=4, rng=seed).eval(), Discriminator(ndf=4, rng=seed)


def test_one_threshold_for_an_image_a_folder_and_the_page():
    assert judge.verdict(0.5) == "real" and judge.verdict(0.4999) == "fake"
    np.testing.assert_array_equal(judge.called_real([0.5, 0.4999, 1.0, 0.0]), [True, False, True, False])


def test_the_map_of_where_d_looks_is_dlogit_dpixel_by_finite_differences_in_float64():
    _, D = tiny_pair()
    D(face_images(8).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1)   # running statistics of real data
    D.eval().astype(np.float64)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64))
    analytic = judge.input_gradient(D, x.copy())
    h = 1e-6
    for n, c, i, j in ((0, 0, 10, 20), (1, 2, 33, 5), (0, 1, 63, 63), (1, 0, 31, 32)):
        plus, minus = x.copy(), x.copy()
        plus[n, c, i, j] += h
        minus[n, c, i, j] -= h
        numeric = (D(plus)[n].item() - D(minus)[n].item()) / (2 * h)
        assert relative_error(analytic[n, c, i, j], numeric) < 1e-6, (n, c, i, j)
    assert all(p.grad is None for p in D.parameters())              # only dL/dx was asked for


def test_saliency_is_a_map_of_the_face_in_0_1_and_its_picture_is_face_map_overlay():
    _, D = tiny_pair()
    face = oval_faces(1)[0]
    strength = judge.saliency(D.eval(), face)
    assert strength.shape == (64, 64) and strength.min() >= 0 and strength.max() == 1
    picture = judge.saliency_picture(face, strength, scale=2)
    assert picture.shape == (128, 3 * 128 + 4, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture[::2, :128:2], face)


def test_box_average_is_the_mean_of_each_window_with_the_edges_repeated():
    image = np.random.default_rng(0).normal(size=(7, 9))
    padded = np.pad(image, 2, mode="edge")
    expected = [[padded[i:i + 5, j:j + 5].mean() for j in range(9)] for i in range(7)]
    np.testing.assert_allclose(judge.box_average(image, 5), expected, rtol=1e-12)


def test_fit_judge_on_mixed_batches_makes_d_call_held_out_faces_real_and_fakes_fake():
    G, D = tiny_pair()
    faces = oval_faces(96, seed=3)
    before = judge.accuracy(D, faces[64:], judge.fresh_fakes(G, 32))
    D, face_model, report = judge.make_judge(G, D, faces, held_out=32, steps=30, batch_size=16, say=None)
    assert not D.training and report["held_out_images"] == 32 and report["train_images"] == 64
    after = report["score"]
    assert after["real_called_real"] >= 0.9 and after["fake_called_fake"] >= 0.9, (before, after)
    assert report["face_check"]["real_passed"] >= 0.9


def test_make_judge_needs_enough_images_and_says_how_many():
    G, D = tiny_pair()
    with pytest.raises(ValueError, match="expected at least 48"):
        judge.make_judge(G, D, oval_faces(40), held_out=32, batch_size=16, say=None)


def test_the_face_model_warns_on_blank_flat_and_noisy_images_and_passes_faces_it_did_not_see():
    faces = oval_faces(400, seed=4)
    _, D = tiny_pair()
    D.eval()
    model = judge.FaceModel.fit(D, faces[:300], faces[300:])
    assert model.is_face(D, oval_faces(50, seed=9)).mean() >= 0.95
    rng = np.random.default_rng(0)
    odd = np.stack([np.full((64, 64, 3), v, np.uint8) for v in (0, 128, 255)]
                   + [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)])
    assert not model.is_face(D, odd).any()
    again = judge.FaceModel.from_dict(model.to_dict())
    np.testing.assert_allclose(again.distances(D, faces[:5]), model.distances(D, faces[:5]), rtol=1e-4)


def test_a_generator_file_keeps_the_gans_d_and_the_judge_apart(tmp_path):
    G, D = tiny_pair()
    faces = oval_faces(96, seed=3)
    judge_D, face_model, _ = judge.make_judge(G, Discriminator(ndf=4, rng=0), faces, held_out=32, steps=5,
                                              batch_size=16, say=None)
    path = model_files.save_generator(G, tmp_path / "g.npz", D=D, judge=(judge_D, face_model))
    loaded, gan = model_files.load_discriminator(path), model_files.load_discriminator(path, which="gan")
    assert loaded.role == "judge" and gan.role == "gan"
    for key, value in checkpoint.load(path)["judge"]["D"].items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value.astype(np.float32))
    assert not np.array_equal(loaded.state_dict()["main.0.weight"], gan.state_dict()["main.0.weight"])
    assert model_files.load_face_model(path) is not None
    plain = model_files.save_generator(G, tmp_path / "plain.npz", D=D)
    assert model_files.load_discriminator(plain).role == "gan" and model_files.load_face_model(plain) is None


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_box_frames_exactly_what_it_holds():
    photo = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    face, how = prepare_for_judging(png(photo), 32, box=(10, 20, 64))
    expected = np.asarray(Image.fromarray(photo).resize((32, 32), Image.LANCZOS, box=(10, 20, 74, 84)))
    np.testing.assert_array_equal(face, expected)
    assert "box" in how
    with pytest.raises(ValueError, match="reaches outside the 100x120 photo"):
        prepare_for_judging(png(photo), 32, box=(50, 20, 64))


@pytest.mark.parametrize("tilt", [0.0, 12.0, -20.0])
def test_eyes_put_the_eyes_where_the_training_faces_have_theirs(tilt):
    """Two dark dots, the eyes, in a tilted photo: framed by them, they land on GUIDE's eyes, level."""
    size, distance = 400, 80.0
    centre = np.array([210.0, 190.0])
    direction = np.array([np.cos(np.radians(tilt)), np.sin(np.radians(tilt))])
    left, right = centre - direction * distance / 2, centre + direction * distance / 2
    yy, xx = np.mgrid[:size, :size] + 0.5
    photo = np.full((size, size, 3), 200, np.uint8)
    for x, y in (left, right):
        photo[(xx - x) ** 2 + (yy - y) ** 2 < 6 ** 2] = 0
    face, _ = prepare_for_judging(png(photo), 64, eyes=(tuple(left), tuple(right)))
    dark = face.mean(axis=2) < 120
    for name, half in (("left_eye", slice(0, 32)), ("right_eye", slice(32, 64))):
        rows, cols = np.nonzero(dark[:, half])
        found = np.array([cols.mean() + half.start + 0.5, rows.mean() + 0.5]) / 64
        np.testing.assert_allclose(found, GUIDE[name], atol=1.5 / 64)
    assert eyes_box((tuple(left), tuple(right)))[0] == pytest.approx(tilt)
    swapped, _ = prepare_for_judging(png(photo), 64, eyes=(tuple(right), tuple(left)))    # either eye first
    np.testing.assert_array_equal(swapped, face)


@pytest.mark.skipif(not SHARED_TAR.exists(), reason="needs ../shared/data")
def test_the_guide_is_where_the_mean_training_face_has_its_eyes_and_mouth():
    from tinygan.data import FaceDataset
    mean = np.asarray(FaceDataset(SHARED_TAR, 64, crop=CELEBA_CROP, verbose=False).images,
                      dtype=np.float64).mean(axis=(0, 3))                               # (64, 64)

    def darkest(x0, x1, y0, y1):                                   # in fractions of the face, as GUIDE
        return np.array(dark_centroid(mean, x0, x1, y0, y1)) / 64

    for name, found in (("left_eye", darkest(14, 28, 27, 40)), ("right_eye", darkest(36, 50, 27, 40)),
                        ("mouth", darkest(24, 41, 50, 60))):
        np.testing.assert_allclose(found, GUIDE[name], atol=0.02, err_msg=name)


@pytest.fixture(scope="module")
def judge_file(tmp_path_factory):
    """A generator file with a tiny G, its D and a judge fitted on drawn faces."""
    G, D = tiny_pair()
    judge_D, face_model, _ = judge.make_judge(G, Discriminator(ndf=4, rng=0), oval_faces(96, seed=3), held_out=32,
                                              steps=5, batch_size=16, say=None)
    return model_files.save_generator(G, tmp_path_factory.mktemp("judge") / "g.npz", D=D, judge=(judge_D, face_model))


def test_the_command_line_judges_frames_explains_and_gives_no_verdict_for_a_blank(judge_file, tmp_path, capsys):
    from tinygan.cli import main
    photo, blank = tmp_path / "photo.png", tmp_path / "blank.png"
    Image.fromarray(np.pad(oval_faces(1, seed=4)[0], ((20, 16), (8, 8), (0, 0)), mode="edge")).save(photo)
    Image.new("RGBA", (80, 100), (0, 0, 0, 0)).save(blank)                   # a fully transparent PNG
    where = tmp_path / "where.png"
    assert main(["judge", "-c", str(judge_file), str(photo), "--box", "8,20,64", "--explain", str(where)]) == 0
    out = capsys.readouterr().out
    assert "the box left 8, top 20, side 64 px" in out and "wrote" in out
    with Image.open(where) as picture:
        assert picture.size == (3 * 256 + 8, 256)
    assert main(["judge", "-c", str(judge_file), str(blank)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "blank.png" in line)
    assert "no verdict" in line
    assert main(["judge", "-c", str(judge_file), "--which", "gan", str(photo), "--eyes", "30,50,50,52"]) == 0
    out = capsys.readouterr().out
    assert "aligned by the eyes" in out and "not a judge fitted for judging" in out
    assert main(["judge", "-c", str(judge_file), str(photo), str(blank), "--explain", str(where)]) == 2
    assert "exactly one image file" in capsys.readouterr().err
    assert main(["judge", "-c", str(judge_file), str(photo), "--explain", str(tmp_path / "where.gif")]) == 2
    assert "--explain" in capsys.readouterr().err
    assert main(["judge", "-c", str(judge_file), str(photo), "--box", "0,0,500"]) == 2
    captured = capsys.readouterr()
    assert "reaches outside" in captured.err and captured.out == ""        # refused before anything is said
    with pytest.raises(SystemExit):
        main(["judge", str(photo), "--eyes", "1,2,3"])
    assert "--eyes XL,YL,XR,YR must be 4 numbers" in capsys.readouterr().err
