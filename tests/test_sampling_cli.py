"""Using a trained GAN through tinygan.sampling and `python -m tinygan`: generate, interpolate, arithmetic,
judge, export/import, and the errors a user sees."""
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinygan import checkpoint, judge, model_files, sampling
from tinygan.cli import main
from tinygan.judge import JUDGE_WARNING


@pytest.fixture(scope="module")
def ckpt(run_dir):
    return run_dir / "checkpoints" / "ckpt_000002.npz"


@pytest.fixture(scope="module")
def G(ckpt):
    return model_files.load_generator(ckpt)


def png_pixels(path):
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"))


def one_line(text):
    return " ".join(text.split())        # argparse wraps help text; compare words, not line breaks


# --- generating -----------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_face_whatever_the_batch(G):
    alone = sampling.generate_images(G, [5])
    assert alone.shape == (1, 64, 64, 3) and alone.dtype == np.uint8
    np.testing.assert_array_equal(alone[0], sampling.generate_images(G, [1, 2, 5])[2])
    np.testing.assert_array_equal(alone[0], sampling.generate_images(G, list(range(9)), batch_size=4)[5])
    assert not np.array_equal(alone[0], sampling.generate_images(G, [6])[0])


def test_loaded_generator_is_in_eval_mode_and_keeps_the_checkpoint_config(G, ckpt):
    assert not any(m.training for m in G.modules())
    assert G.config == {"nz": 8, "ngf": 4, "nc": 3, "image_size": 64, "z_dist": "normal"}
    trained = checkpoint.load(ckpt)
    for key, value in G.state_dict().items():                   # the averaged G by default ...
        np.testing.assert_array_equal(value, trained["G_ema"][key], err_msg=key)
    for key, value in model_files.load_generator(ckpt, raw=True).state_dict().items():   # ... the raw one on request
        np.testing.assert_array_equal(value, trained["G"][key], err_msg=key)


def test_negative_seeds_are_refused(G):
    with pytest.raises(ValueError, match="non-negative"):
        sampling.generate_images(G, [3, -1])


@pytest.mark.parametrize("args, words", [
    (["generate", "--n", "100000000"], "too many for one grid (at most 10,000"),
    (["generate", "--n", "200000", "--separate"], "too many for one call (at most 100,000)"),
    (["generate", "--seeds", "0-100000000"], "names more than 100,000 seeds"),
    (["interpolate", "--steps", "5000"], "from 2 to 1000"),
])
def test_absurd_face_counts_are_refused_at_once_in_one_line(args, words, tmp_path, capsys):
    try:
        code = main(args + ["--out", str(tmp_path / "x.png")])    # returns at once, loading no model
    except SystemExit as stop:                                    # or argparse refuses the value
        code = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and words in err[-1] and err[-1].startswith(f"tinygan {args[0]}: error:"), err
    assert list(tmp_path.iterdir()) == []


def test_generate_command_writes_a_grid_from_a_checkpoint_or_a_run_directory(run_dir, ckpt, G, tmp_path, capsys):
    assert main(["generate", "-c", str(ckpt), "--seeds", "0-3", "--out", str(tmp_path / "a.png")]) == 0
    assert "wrote a grid of 4 faces" in capsys.readouterr().out
    assert main(["generate", "--checkpoint", str(run_dir), "--seed", "0", "--n", "4",
                 "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    grid = png_pixels(tmp_path / "a.png")
    assert grid.shape == (68, 4 * 66 + 2, 3)
    np.testing.assert_array_equal(grid[2:66, 2 + 66:66 + 66], sampling.generate_images(G, [1])[0])


def test_generate_command_writes_one_png_per_seed(ckpt, G, tmp_path):
    assert main(["generate", "-c", str(ckpt), "--seeds", "3,14,15", "--separate", "--out", str(tmp_path / "f")]) == 0
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [f"seed_{s:06d}.png" for s in (3, 14, 15)]
    np.testing.assert_array_equal(png_pixels(tmp_path / "f/seed_000014.png"), sampling.generate_images(G, [14])[0])


# --- interpolation and slerp ----------------------------------------------------------------------
def test_interpolation_starts_and_ends_at_the_seeds_faces(G):
    faces = sampling.interpolate(G, [3, 7, 11], steps=4)
    assert faces.shape == (2 * 4 - 1, 64, 64, 3)
    seeds_faces = sampling.generate_images(G, [3, 7, 11])
    np.testing.assert_array_equal(faces[0], seeds_faces[0])
    np.testing.assert_array_equal(faces[3], seeds_faces[1])           # the legs meet at the middle seed
    np.testing.assert_array_equal(faces[-1], seeds_faces[2])
    linear = sampling.interpolate(G, [3, 7], steps=4, method="linear")
    np.testing.assert_array_equal(linear[[0, -1]], seeds_faces[:2])


def test_interpolate_refuses_bad_arguments(G):
    for kwargs, message in (({"seeds": [1]}, "at least 2 seeds"), ({"seeds": [1, 2], "steps": 1}, "steps must be"),
                            ({"seeds": [1, 2], "method": "cubic"}, "'slerp' or 'linear'")):
        with pytest.raises(ValueError, match=message):
            sampling.interpolate(G, **kwargs)


def test_interpolate_command_writes_a_strip_and_a_gif(ckpt, tmp_path):
    assert main(["interpolate", "-c", str(ckpt), "--seeds", "0,1", "--steps", "3",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert png_pixels(tmp_path / "s.png").shape == (68, 3 * 66 + 2, 3)
    assert main(["interpolate", "-c", str(ckpt), "--seeds", "0,1", "--steps", "3", "--bounce",
                 "--out", str(tmp_path / "s.gif")]) == 0
    with Image.open(tmp_path / "s.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames >= 2


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2 ** 16), t=st.floats(0, 1), dim=st.integers(2, 100))
def test_slerp_hits_its_endpoints_and_keeps_the_norm(seed, t, dim):
    rng = np.random.default_rng(seed)
    z0, z1 = rng.normal(size=dim), rng.normal(size=dim)
    np.testing.assert_allclose(sampling.slerp(z0, z1, 0.0), z0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sampling.slerp(z0, z1, 1.0), z1, rtol=1e-12, atol=1e-12)
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)                  # equal norms: the path stays on the sphere
    zt = sampling.slerp(z0, z1, t)
    assert np.linalg.norm(zt) == pytest.approx(np.linalg.norm(z0), rel=1e-9)
    # and it moves at constant angular speed: angle(z0, zt) = t * angle(z0, z1)
    angle = lambda a, b: np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))  # noqa: E731
    assert angle(z0, zt) == pytest.approx(t * angle(z0, z1), abs=1e-6)


def test_slerp_of_parallel_vectors_falls_back_to_a_straight_line():
    z = np.arange(1.0, 5.0)
    np.testing.assert_allclose(sampling.slerp(z, 2 * z, 0.5), 1.5 * z)
    np.testing.assert_allclose(sampling.slerp(z, z, 0.3), z)


# --- arithmetic -------------------------------------------------------------------------------------
def test_vector_arithmetic_returns_the_groups_faces_and_four_mean_faces(G):
    groups, result = sampling.vector_arithmetic(G, [1, 2], [3, 4, 5], [6])
    assert [g.shape for g in groups] == [(2, 64, 64, 3), (3, 64, 64, 3), (1, 64, 64, 3)]
    assert result.shape == (4, 64, 64, 3) and result.dtype == np.uint8
    np.testing.assert_array_equal(groups[2][0], result[2])           # the mean of one z is that z
    np.testing.assert_array_equal(groups[0], sampling.generate_images(G, [1, 2]))
    with pytest.raises(ValueError, match="at least one seed"):
        sampling.vector_arithmetic(G, [1], [], [2])


def test_arithmetic_command_writes_its_picture(ckpt, tmp_path):
    out = tmp_path / "arith.png"
    assert main(["arithmetic", "-c", str(ckpt), "--a", "1,2", "--b", "3", "--c", "4-6", "--out", str(out)]) == 0
    assert png_pixels(out).shape == (4 * 66 + 2, 4 * 66 + 2, 3)      # 3 groups + the answer; 3 seeds + mean a row


# --- judge -----------------------------------------------------------------------------------------
def test_judge_command_prints_the_warning_and_one_probability_per_image(run_dir, ckpt, G, tmp_path, capsys):
    faces = sampling.generate_images(G, [0, 1])
    paths = []
    for i, face in enumerate(faces):
        paths.append(str(tmp_path / f"face{i}.png"))
        Image.fromarray(face).save(paths[-1])
    for source in (ckpt, run_dir):
        assert main(["judge", "-c", str(source), "--crop", "1.0", *paths]) == 0
        out = capsys.readouterr().out
        assert JUDGE_WARNING in out
        printed = [float(line.split()[0]) for line in out.splitlines() if ".png" in line]
        expected = judge.probabilities(model_files.load_discriminator(ckpt), faces)
        np.testing.assert_allclose(printed, expected, atol=6e-4)
        assert all(0 < p < 1 for p in expected)


def test_judge_scores_d_on_folders_of_real_and_generated_faces(ckpt, G, tmp_path, capsys):
    """--real / --fake: the share D gets right on each, and both together as the training log's d_acc."""
    faces = sampling.generate_images(G, range(6))
    for kind in ("real", "fake"):
        (tmp_path / kind).mkdir()
    for i, face in enumerate(faces):
        Image.fromarray(face).save(tmp_path / ("real" if i < 3 else "fake") / f"{i}.png")
    (tmp_path / "fake" / "broken.png").write_bytes(b"not a png")
    assert main(["judge", "-c", str(ckpt), "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake")]) == 0
    out = capsys.readouterr().out
    probs = judge.probabilities(model_files.load_discriminator(ckpt), faces)
    right_real, right_fake = int((probs[:3] > 0.5).sum()), int((probs[3:] < 0.5).sum())
    assert f"D calls {right_real} of 3 real" in out and f"D calls {right_fake} of 3 fake" in out
    assert "skipped 1 of 4 files" in out and "broken.png" in out
    assert f"together: {100 * (right_real + right_fake) / 6:.1f}%" in out
    assert main(["judge", "-c", str(ckpt), "--real", str(tmp_path / "real"), "--limit", "2"]) == 0
    assert "of 2 real" in capsys.readouterr().out
    assert main(["judge", "-c", str(ckpt)]) == 2
    assert "nothing to judge" in capsys.readouterr().err
    assert main(["judge", "-c", str(ckpt), "--fake", str(tmp_path / "missing")]) == 2
    assert "--fake" in capsys.readouterr().err


def test_judge_refuses_a_generator_only_file(G, tmp_path, capsys):
    gen = model_files.save_generator(G, tmp_path / "generator.npz")
    Image.fromarray(sampling.generate_images(G, [0])[0]).save(tmp_path / "face.png")
    assert main(["judge", "-c", str(gen), str(tmp_path / "face.png")]) == 2
    err = capsys.readouterr().err
    assert "generator.npz holds no discriminator" in err and "training checkpoint" in err


def test_a_generator_file_is_float16_and_generates_nearly_the_same_faces(G, tmp_path):
    path = model_files.save_generator(G, tmp_path / "generator.npz", provenance={"note": "test"})
    tree = checkpoint.load(path)
    assert tree["format"] == model_files.GENERATOR_FORMAT and tree["provenance"] == {"note": "test"}
    assert all(v.dtype == np.float16 for v in tree["G"].values())
    small = model_files.load_generator(path)
    diff = np.abs(sampling.generate_images(small, [0, 1]).astype(int) - sampling.generate_images(G, [0, 1]))
    assert diff.max() <= 8


# --- PyTorch-layout export / import -----------------------------------------------------------------
def test_export_then_import_gives_identical_images(ckpt, G, tmp_path, capsys):
    assert main(["export", "-c", str(ckpt), "--out", str(tmp_path / "export")]) == 0
    assert "load_state_dict" in capsys.readouterr().out
    with np.load(tmp_path / "export/generator_torch.npz", allow_pickle=False) as f:
        assert sorted(f.files) == sorted(G.state_dict())              # exactly the torch keys, nothing else
        assert all(f[k].dtype == np.float32 for k in f.files)
    with np.load(tmp_path / "export/discriminator_torch.npz", allow_pickle=False) as f:
        assert "main.11.weight" in f.files
    assert main(["import", str(tmp_path / "export/generator_torch.npz"), "--out", str(tmp_path / "gen.npz")]) == 0
    imported = model_files.load_generator(tmp_path / "gen.npz")
    np.testing.assert_array_equal(sampling.generate_images(imported, range(4)), sampling.generate_images(G, range(4)))
    for args in (["-c", str(ckpt)], ["-c", str(tmp_path / "gen.npz")],
                 ["-c", str(tmp_path / "export/generator_torch.npz")]):
        out = tmp_path / f"grid{len(list(tmp_path.glob('grid*')))}.png"
        assert main(["generate", *args, "--n", "4", "--out", str(out)]) == 0
    grids = sorted(tmp_path.glob("grid*.png"))
    assert len({p.read_bytes() for p in grids}) == 1


def test_export_of_a_generator_file_writes_only_the_generator_and_says_so(G, tmp_path, capsys):
    gen = model_files.save_generator(G, tmp_path / "generator.npz", dtype=np.float32)
    assert main(["export", "-c", str(gen), "--out", str(tmp_path / "export")]) == 0
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["generator_torch.npz"]
    assert "holds no discriminator: wrote the generator only" in capsys.readouterr().out


def test_import_remembers_the_noise_distribution(ckpt, tmp_path):
    assert main(["export", "-c", str(ckpt), "--out", str(tmp_path)]) == 0
    assert main(["import", str(tmp_path / "generator_torch.npz"), "--z-dist", "uniform",
                 "--out", str(tmp_path / "gen.npz")]) == 0
    assert model_files.load_generator(tmp_path / "gen.npz").config["z_dist"] == "uniform"


# --- gif -----------------------------------------------------------------------------------------
def test_gif_command_collects_the_runs_sample_grids(run_dir, tmp_path):
    assert main(["gif", str(run_dir), "--out", str(tmp_path / "t.gif")]) == 0
    with Image.open(tmp_path / "t.gif") as gif:
        assert gif.n_frames == 2                                       # sample_every=1, 2 steps
    assert main(["gif", str(tmp_path)]) == 2                           # no samples/ there


# --- help and bad inputs ------------------------------------------------------------------------------
def test_generate_help_mentions_seeds(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--help"])
    assert info.value.code == 0
    help_text = one_line(capsys.readouterr().out)
    assert "--seeds" in help_text and "seed" in help_text and "'0-9'" in help_text


def test_judge_help_warns_that_d_is_not_a_deepfake_detector(capsys):
    with pytest.raises(SystemExit) as info:
        main(["judge", "--help"])
    assert info.value.code == 0
    assert "not a deepfake detector" in one_line(capsys.readouterr().out).lower()


def test_a_missing_checkpoint_exits_2_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "nope.npz"
    assert main(["generate", "-c", str(missing), "--out", str(tmp_path / "x.png")]) == 2
    assert str(missing) in capsys.readouterr().err
    (tmp_path / "empty-run").mkdir()
    assert main(["judge", "-c", str(tmp_path / "empty-run"), str(missing)]) == 2
    assert f"no checkpoint found at {tmp_path / 'empty-run'}" in capsys.readouterr().err


def test_no_pretrained_generator_exits_2_and_says_to_pass_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(model_files, "PRETRAINED", tmp_path / "pretrained/generator.npz")
    assert main(["generate", "--n", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_judge_of_a_broken_image_exits_2_naming_the_file(ckpt, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    assert main(["judge", "-c", str(ckpt), str(tmp_path / "broken.png")]) == 2
    assert "broken.png" in capsys.readouterr().err


@pytest.mark.parametrize("seeds", ["a-b", "1,x", "5-3", "-1", ""])
def test_bad_seeds_exit_2_with_a_message(seeds, ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "-c", str(ckpt), "--seeds", seeds, "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2
    err = one_line(capsys.readouterr().err)
    assert "--seeds" in err and re.search(r"seeds must look like|non-negative seeds|runs backwards; write it as 3-5",
                                          err), err
    assert not (tmp_path / "x.png").exists()


def test_generate_works_out_of_the_box_with_the_pretrained_generator(tmp_path):
    """`python -m tinygan generate --out faces.png` needs no data, no checkpoint and no GPU."""
    out = tmp_path / "faces.png"
    assert main(["generate", "--n", "4", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    provenance = model_files.load_tree(model_files.PRETRAINED)[0]["provenance"]
    assert "non-commercial" in provenance["terms"] and provenance["steps"] > 0


def test_judge_works_out_of_the_box_with_the_discriminator_shipped_beside_the_generator(tmp_path, capsys):
    """`python -m tinygan judge face.png` needs no checkpoint: the shipped file holds D too."""
    assert main(["generate", "--seeds", "7", "--out", str(tmp_path / "face.png")]) == 0
    capsys.readouterr()
    assert main(["judge", str(tmp_path / "face.png")]) == 0
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.match(r"\s*[01]\.\d{3}  (real|fake)  .*face\.png  \(already 64x64: judged as it is\)$", verdict), verdict


# --- a new user's first hour ------------------------------------------------------------------------
def test_generate_refuses_zero_faces_and_backwards_ranges_with_clear_words(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--n", "0", "--out", str(tmp_path / "x.png")])
    assert "expected a number >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--seeds", "5-2", "--out", str(tmp_path / "x.png")])
    assert "runs backwards; write it as 2-5" in capsys.readouterr().err


def test_one_seed_writes_one_unbordered_face_and_the_suffix_picks_the_format(ckpt, tmp_path, capsys):
    assert main(["generate", "-c", str(ckpt), "--seeds", "42", "--out", str(tmp_path / "face.png")]) == 0
    assert "wrote the face of seed 42 (64x64)" in capsys.readouterr().out
    with Image.open(tmp_path / "face.png") as face:
        assert face.size == (64, 64) and face.format == "PNG"
    assert main(["generate", "-c", str(ckpt), "--n", "4", "--out", str(tmp_path / "faces.jpg")]) == 0
    with Image.open(tmp_path / "faces.jpg") as grid:
        assert grid.format == "JPEG"
    assert main(["generate", "-c", str(ckpt), "--n", "4", "--out", str(tmp_path / "faces.tiff")]) == 2
    assert "cannot tell the image format from its suffix" in capsys.readouterr().err


def test_judge_takes_a_generated_face_as_it_is_and_crops_a_photo(ckpt, G, tmp_path, capsys):
    face = sampling.generate_images(G, [3])[0]
    Image.fromarray(face).save(tmp_path / "generated.png")
    photo = np.random.default_rng(0).integers(0, 256, (109, 89, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main(["judge", "-c", str(ckpt), str(tmp_path / "generated.png"), str(tmp_path / "photo.png")]) == 0
    lines = {line.split()[-1].strip("()"): line for line in capsys.readouterr().out.splitlines() if ".png" in line}
    out = "\n".join(lines.values())
    assert "already 64x64: judged as it is" in out and "centre crop 0.719 of the width" in out
    expected = judge.probabilities(model_files.load_discriminator(ckpt), face[None])[0]
    printed = float(next(line for line in lines.values() if "generated.png" in line).split()[0])
    assert printed == pytest.approx(expected, abs=6e-4)


def test_judge_of_a_folder_and_export_onto_a_file_are_one_error_line(ckpt, tmp_path, capsys):
    assert main(["judge", "-c", str(ckpt), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an image file (it is a folder: pass it as --real or --fake" in err
    (tmp_path / "taken").write_text("x")
    assert main(["export", "-c", str(ckpt), "--out", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file; expected a folder" in err


def test_fid_refuses_a_missing_fake_before_any_work(tmp_path, capsys, monkeypatch):
    from tinygan import fid
    monkeypatch.setattr(fid, "real_statistics", lambda *a, **k: pytest.fail("computed real statistics first"))
    (tmp_path / "real").mkdir()
    assert main(["fid", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "missing"), "-n", "4"]) == 2
    assert "--fake" in capsys.readouterr().err


def test_every_option_of_every_command_has_help_and_no_default_none(capsys):
    from tinygan.cli import build_parser
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "(default: None)" not in capsys.readouterr().out, name


def test_each_training_option_is_described_once_and_the_flags_and_readme_come_from_it():
    from tinygan import config, train
    from tinygan.cli import build_parser
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert config.options_markdown() in readme, "README's option list is not the one made from config.OPTIONS"
    assert set(train.DEFAULTS) == {option.name for option in config.OPTIONS}
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {action.dest: action for action in train_parser._actions}
    for option in config.OPTIONS:
        assert option.name in flags and flags[option.name].default is None, option.name
        assert option.help in flags[option.name].help


def test_help_on_every_public_class_explains_its_arguments():
    import inspect

    import tinygan as tg
    from tinygan import augment, data, ema, train
    classes = [obj for module in (tg.nn, tg.optim, tg.losses) for obj in vars(module).values()
               if inspect.isclass(obj) and obj.__module__.startswith("tinygan")]
    classes += [tg.Generator, tg.Discriminator, tg.ModelConfig, data.FaceDataset, data.BatchLoader, train.Trainer,
                ema.EMA, augment.DiffAugment]
    for cls in classes:
        doc = inspect.getdoc(cls) or ""
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
        missing = [p for p in params if p not in doc]
        assert doc and not missing, f"{cls.__name__}: the docstring does not explain {missing}"
        forward = getattr(cls, "forward", None)
        if forward is not None and forward is not tg.nn.Module.forward:
            assert inspect.getdoc(forward), f"{cls.__name__}.forward has no docstring"


def test_every_command_describes_itself_and_the_help_reads_as_text(capsys):
    from tinygan.cli import build_parser
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert sub.description, f"{name} --help has no description"
    assert "``" not in parser.format_help()
    assert "(default: 0,1)" in one_line(commands["interpolate"].format_help())


def test_generate_separate_writes_a_folder_named_faces_and_the_first_command_still_works(ckpt, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "-c", str(ckpt), "--separate", "--n", "2"]) == 0
    assert len(list((tmp_path / "faces").glob("*.png"))) == 2 and not (tmp_path / "faces.png").exists()
    assert main(["generate", "-c", str(ckpt), "--n", "2"]) == 0
    assert (tmp_path / "faces.png").is_file()


def test_a_course_error_names_its_subcommand(tmp_path, capsys):
    assert main(["course", "assign", "--out", str(tmp_path), "99"]) == 2
    assert capsys.readouterr().err.startswith("tinygan course assign: error: no lesson named 99")


def test_debug_prints_the_traceback_above_the_one_error_line(tmp_path, capsys, monkeypatch):
    from tinygan.__main__ import command
    missing = str(tmp_path / "missing.png")
    monkeypatch.delenv("TINYGAN_DEBUG", raising=False)
    assert main(["judge", missing]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().endswith(f"tinygan judge: error: {missing} is not an image file")
    for argv, env in ((["judge", missing, "--debug"], None), (["--debug", "judge", missing], None),
                      (["judge", missing], "1")):
        if env:
            monkeypatch.setenv("TINYGAN_DEBUG", env)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("Traceback") and err.strip().endswith("is not an image file"), argv
    assert command(["--debug", "train", "--out", "x"]) == "train" and command(["--help"]) is None
