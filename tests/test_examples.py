"""Every script in examples/ runs: --help shows its options and defaults, --quick finishes in seconds and
writes what it says it writes. Each runs as a subprocess from a temporary directory, as a user would."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinygan import checkpoint, logs, model_files, run_folder
from tinygan.cli import main
from tinygan.train import Trainer, make_config

from helpers import oval_faces

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = ["train_celeba", "generate_faces", "interpolate", "real_or_fake", "make_training_gif", "pca_faces"]


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    for i, face in enumerate(oval_faces(24)):
        Image.fromarray(face).save(folder / f"{i:06d}.png")
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny training run made with the library: checkpoints/ckpt_000003.npz and three sample grids."""
    out = tmp_path_factory.mktemp("run")
    config = make_config(out=str(out), nz=8, ngf=4, ndf=4, batch_size=4, n_samples=4, max_steps=3, log_every=1,
                         sample_every=1, checkpoint_every=3)
    Trainer(config, dataset=oval_faces(8, seed=1), verbose=False).run()
    return out


def run_example(name, *args, cwd, data=None):
    """Run examples/<name>.py with ``args`` in ``cwd``; returns the CompletedProcess (text output)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop("TINYGAN_DATA", None)
    if data is not None:
        env["TINYGAN_DATA"] = str(data)
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result.stdout


def one_line(text):
    return " ".join(text.split())


def png_size(path):
    with Image.open(path) as picture:
        return picture.format, picture.size


def test_every_example_is_tested():
    found = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))
    assert found == sorted(SCRIPTS + ["package_generator", "fit_discriminator"])


HELP_MENTIONS = {
    "train_celeba": ["--data", "--epochs", "--batch-size", "--preset", "--out", "--resume", "--backend", "--max-steps",
                     "img_align_celeba.zip", "mmlab.ie.cuhk.edu.hk", "non-commercial"],   # where to get CelebA
    "generate_faces": ["--checkpoint", "--seeds", "--separate", "pretrained"],
    "interpolate": ["--seeds", "--gif", "slerp"],
    "real_or_fake": ["--checkpoint", "NOT a deepfake detector"],
    "make_training_gif": ["--max-frames", "samples/step_*.png"],
    "pca_faces": ["--samples-dir", "--checkpoint", "--k", "Gram-matrix trick", "SVD"],
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_the_options_and_their_defaults(name, tmp_path):
    text = one_line(ok(run_example(name, "--help", cwd=tmp_path)))
    assert text.startswith(f"usage: {name}.py") and "--quick" in text and "(default: " in text
    for phrase in HELP_MENTIONS[name]:
        assert phrase in text, phrase
    assert list(tmp_path.iterdir()) == [], "--help must not write anything"


# --- --quick --------------------------------------------------------------------------------------
def test_train_celeba_quick_trains_and_resumes(face_folder, tmp_path):
    out = ok(run_example("train_celeba", "--quick", "--out", "run", cwd=tmp_path, data=face_folder))
    run = tmp_path / "run"
    assert "run is in run" in out and "--resume run" in out
    assert [s for s, _ in run_folder.list_checkpoints(run / "checkpoints")] == [0, 2, 4]
    assert checkpoint.load(run / "checkpoints/ckpt_000004.npz")["config"]["data"] == str(face_folder)
    for name in ("loss_log.csv", "loss_plot.png", "training.gif", "samples/step_000004.png", "config.json"):
        assert (run / name).is_file(), name
    out = ok(run_example("train_celeba", "--resume", "run", "--max-steps", "6", cwd=tmp_path))
    assert "resumed from" in out and "trained 6 steps" in out
    assert [row["step"] for row in logs.read_log(run / "loss_log.csv")] == [1, 2, 3, 4, 5, 6]


def test_train_celeba_quick_on_synthetic_faces_and_a_clear_error_without_data(tmp_path):
    out = ok(run_example("train_celeba", "--quick", "--synthetic", "--preset", "seed003", "--out", "syn",
                         cwd=tmp_path))
    assert "synthetic faces" in out
    assert checkpoint.load(tmp_path / "syn/checkpoints/ckpt_000004.npz")["config"]["z_dist"] == "uniform"
    result = run_example("train_celeba", "--data", tmp_path / "missing.zip", "--max-steps", "1", cwd=tmp_path)
    assert result.returncode == 2 and "missing.zip does not exist" in result.stderr


def test_generate_faces_quick_and_from_a_checkpoint(run_dir, tmp_path):
    out = ok(run_example("generate_faces", "--quick", cwd=tmp_path))
    assert "faces.png" in out and png_size(tmp_path / "faces.png")[0] == "PNG"
    out = ok(run_example("generate_faces", "-c", run_dir, "--seeds", "4,2", "--separate", "--out", "f", cwd=tmp_path))
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["seed_000002.png", "seed_000004.png"]
    assert png_size(tmp_path / "f/seed_000002.png") == ("PNG", (64, 64))
    result = run_example("generate_faces", "-c", tmp_path / "nope.npz", cwd=tmp_path)
    assert result.returncode == 2 and "nope.npz" in result.stderr


def test_interpolate_quick_writes_a_strip_and_a_gif(tmp_path):
    out = ok(run_example("interpolate", "--quick", "--seeds", "1,2,3", cwd=tmp_path))
    assert "slerp" in out and "interpolation.gif" in out
    assert png_size(tmp_path / "interpolation.png") == ("PNG", (9 * 66 + 2, 2 * 66 + 2))   # 2 legs of 5, 2 rows
    with Image.open(tmp_path / "interpolation.gif") as gif:
        assert gif.n_frames > 2


def test_real_or_fake_quick_scores_real_and_fake_faces(face_folder, run_dir, tmp_path):
    out = ok(run_example("real_or_fake", "--quick", cwd=tmp_path, data=face_folder))
    assert "NOT a deepfake detector" in out and "D is right on" in out
    with open(tmp_path / "real_or_fake.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["kind"] for row in rows] == ["real"] * 8 + ["fake"] * 8
    assert all(0 < float(row["p_real"]) < 1 for row in rows)
    images = [face_folder / "000000.png", face_folder / "000001.png"]
    out = ok(run_example("real_or_fake", "-c", run_dir, *images, "--out", "given.csv", cwd=tmp_path))
    assert out.count("D says") == 2 and "given.csv" in out
    generator_only = tmp_path / "generator.npz"
    checkpoint.save(generator_only, {"format": "tinygan-generator", "G": checkpoint.load(
        run_dir / "checkpoints/ckpt_000003.npz")["G"]})
    result = run_example("real_or_fake", "-c", generator_only, *images, cwd=tmp_path)
    assert result.returncode == 2 and "holds no discriminator" in result.stderr


def test_make_training_gif_quick_and_from_a_run(run_dir, tmp_path):
    out = ok(run_example("make_training_gif", "--quick", cwd=tmp_path))
    assert "training.gif" in out
    with Image.open(tmp_path / "training.gif") as gif:
        assert gif.n_frames == 4
    out = ok(run_example("make_training_gif", run_dir, "--max-frames", "2", "--out", "two.gif", cwd=tmp_path))
    assert "2 of the 3 sample grids" in out
    with Image.open(tmp_path / "two.gif") as gif:
        assert gif.n_frames == 2
    result = run_example("make_training_gif", tmp_path, cwd=tmp_path)
    assert result.returncode == 2 and "no sample grids" in result.stderr


def test_pca_faces_quick_writes_pictures_and_a_samples_folder(face_folder, run_dir, tmp_path):
    out = ok(run_example("pca_faces", "--quick", "-c", run_dir, "--samples-dir", "pca_pngs", cwd=tmp_path,
                         data=face_folder))
    assert "eigenfaces explain" in out and "pca_pngs" in out
    samples = sorted((tmp_path / "pca_pngs").iterdir())
    assert len(samples) == 16 and png_size(samples[0]) == ("PNG", (64, 64))
    for name in ("eigenfaces.png", "reconstructions.png", "variance.png", "pca_samples.png", "comparison.png",
                 "gan_samples.png"):
        assert png_size(tmp_path / "pca_faces" / name)[0] == "PNG", name
    ok(run_example("pca_faces", "--quick", "--synthetic", "--method", "svd", "--out", "svd", cwd=tmp_path))
    assert len(list((tmp_path / "svd/pca_samples").iterdir())) == 16


def test_package_generator_makes_a_small_generator_file_that_generates(run_dir, face_folder, tmp_path):
    text = one_line(ok(run_example("package_generator", "--help", cwd=tmp_path)))
    assert "float16" in text and "(default: " in text
    out = tmp_path / "generator.npz"
    text = ok(run_example("package_generator", run_dir / "checkpoints" / "ckpt_000003.npz", "--out", out,
                          "--wall-time", "1 s", "--data", face_folder, "--judge-steps", "3", "--judge-held-out", "8",
                          "--judge-batch-size", "4", cwd=tmp_path))
    assert "of 8 real faces called real" in text
    tree = checkpoint.load(out)
    assert tree["format"] == "tinygan-generator" and tree["provenance"]["steps"] == 3
    assert "non-commercial" in tree["provenance"]["terms"]
    assert all(v.dtype == np.float16 for v in tree["G"].values())
    about = json.loads((tmp_path / "generator.json").read_text())["judge"]
    assert about["steps"] == 3 and about["held_out_images"] == 8 and about["train_images"] == 16
    assert set(about["score"]) >= {"real_called_real", "fake_called_fake"} and "mixed batches" in about["how"]
    for name, value in checkpoint.load(run_dir / "checkpoints" / "ckpt_000003.npz")["D"].items():   # D as it was
        np.testing.assert_array_equal(tree["D"][name], value.astype(np.float16))
    assert model_files.load_discriminator(out).role == "judge" and model_files.load_face_model(out) is not None
    faces = tmp_path / "faces.png"
    assert main(["generate", "-c", str(out), "--n", "4", "--out", str(faces)]) == 0 and faces.exists()

    again = tmp_path / "again.npz"                         # a generator file is re-packaged: G and D as they were
    ok(run_example("package_generator", out, "--out", again, "--data", face_folder, "--judge-steps", "2",
                   "--judge-held-out", "8", "--judge-batch-size", "4", cwd=tmp_path))
    repackaged = checkpoint.load(again)
    for key in ("G", "D"):
        for name, value in tree[key].items():
            np.testing.assert_array_equal(repackaged[key][name], value, err_msg=f"{key}/{name}")
    assert repackaged["provenance"]["judge"]["steps"] == 2

    no_data = tmp_path / "no_judge.npz"
    text = ok(run_example("package_generator", run_dir, "--out", no_data, "--data", "", cwd=tmp_path))
    assert "no --data" in text and "judge" not in checkpoint.load(no_data)
    for bad in (tmp_path / "missing.npz", run_dir / "fid_reference.npz", tmp_path):
        result = run_example("package_generator", bad, "--out", tmp_path / "bad.npz", "--data", "", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("package_generator.py: error:")


def test_fit_discriminator_gives_a_generator_file_a_d_and_keeps_g_as_it_was(run_dir, face_folder, tmp_path):
    g_only = tmp_path / "g_only.npz"
    model_files.save_generator(model_files.load_generator(run_dir / "checkpoints" / "ckpt_000003.npz"), g_only)
    assert "D" not in checkpoint.load(g_only)
    face = tmp_path / "face.png"
    Image.fromarray(oval_faces(1, seed=5)[0]).save(face)
    assert main(["judge", "-c", str(g_only), str(face)]) == 2          # no D: one error line

    out = tmp_path / "with_d.npz"
    text = ok(run_example("fit_discriminator", g_only, "--data", face_folder, "--steps", "6", "--batch-size", "4",
                          "--held-out", "8", "--out", out, cwd=tmp_path))
    assert "held out:" in text and "of 8 real faces called real" in text
    before, after = checkpoint.load(g_only), checkpoint.load(out)
    assert before["G"].keys() == after["G"].keys()
    for name, value in before["G"].items():
        np.testing.assert_array_equal(after["G"][name], value, err_msg=name)
    fitted = after["provenance"]["judge"]
    assert fitted["steps"] == 6 and fitted["train_images"] == 16 and fitted["held_out_images"] == 8
    assert "not the D of G's own run" in fitted["how"] and "mixed batches" in fitted["how"]
    assert set(fitted["score"]) >= {"real_called_real", "fake_called_fake", "mean_p_real", "mean_p_fake"}
    assert "D" not in after and model_files.load_discriminator(out).role == "judge"
    assert (tmp_path / "with_d.json").exists()
    assert main(["judge", "-c", str(out), str(face)]) == 0


def test_fit_discriminator_refuses_too_little_data_in_one_line(run_dir, face_folder, tmp_path):
    result = run_example("fit_discriminator", run_dir / "checkpoints" / "ckpt_000003.npz", "--data", face_folder,
                         "--held-out", "100", "--out", tmp_path / "g.npz", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("fit_discriminator.py: error:")
    assert "too few to hold out 100" in result.stderr and not (tmp_path / "g.npz").exists()
    result = run_example("fit_discriminator", run_dir / "checkpoints" / "ckpt_000003.npz", "--data", face_folder,
                         "--out", tmp_path, cwd=tmp_path)                  # a folder: refused before training
    assert result.returncode == 2 and "is a folder" in result.stderr and "step" not in result.stdout
