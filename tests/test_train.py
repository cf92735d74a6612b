"""The training loop on tiny configs: every parameter learns, exact resume, checkpoints, divergence, presets."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from tinygan import checkpoint, dcgan, logs, run_folder, train, viz
from tinygan.cli import main
from tinygan.train import DivergenceError, Trainer, make_config, resume

from helpers import FACES, TinyFeatures, assert_trees_equal, face_images, log_without_timing, tiny, trainer


# --- one step ----------------------------------------------------------------------------
def test_one_step_changes_every_parameter_of_g_and_d_and_gives_finite_losses(tmp_path):
    t = trainer(tmp_path)
    before = {("G", k): v.copy() for k, v in t.G.state_dict().items()}
    before.update({("D", k): v.copy() for k, v in t.D.state_dict().items()})
    stats = t.train_step(t.loader.get_batch(0, 0))
    assert set(stats) == {"d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake"}
    assert all(math.isfinite(v) for v in stats.values()), stats
    assert 0 < stats["d_real"] < 1 and 0 < stats["d_fake"] < 1
    assert all(float(stats[k]) * 4 in (0, 1, 2, 3, 4) for k in ("d_acc_real", "d_acc_fake"))   # shares of 4
    after = {("G", k): v for k, v in t.G.state_dict().items()}
    after.update({("D", k): v for k, v in t.D.state_dict().items()})
    unchanged = [key for key in before if np.array_equal(before[key], after[key])]
    assert unchanged == [], f"not updated by one step: {unchanged}"     # parameters and running statistics
    assert t.step == 1 and t.opt_G.steps == 1 and t.opt_D.steps == 1
    assert all(p.requires_grad for p in t.D.parameters()), "the G step must switch D's gradients back on"
    assert all(p.data.dtype == np.float32 for p in t.G.parameters() + t.D.parameters())
    assert all(m.dtype == np.float32 for m in t.opt_G.m + t.opt_D.v)


def test_first_d_loss_is_near_2_log_2(tmp_path):
    """A fresh D outputs logits near 0, so BCE(real) + BCE(fake) is about 2 log 2."""
    t = trainer(tmp_path)
    stats = t.train_step(t.loader.get_batch(0, 0))
    assert abs(stats["d_loss"] - 2 * math.log(2)) < 0.5
    assert abs(stats["g_loss"] - math.log(2)) < 0.5


# --- resume --------------------------------------------------------------------------------
def test_resume_2_plus_2_steps_is_bit_identical_to_4_steps(tmp_path):
    straight = trainer(tmp_path / "straight")
    straight.run()

    first = trainer(tmp_path / "split", max_steps=3)
    first.run()                                                        # checkpoints at steps 2 and 3
    (tmp_path / "split/checkpoints/ckpt_000003.npz").unlink()          # "crash" after step 3 was logged
    again = resume(tmp_path / "split", dataset=FACES, verbose=False, max_steps=4)
    assert again.step == 2
    again.run()

    assert log_without_timing(tmp_path / "split") == log_without_timing(tmp_path / "straight")
    assert [row["step"] for row in log_without_timing(tmp_path / "split")] == [1, 2, 3, 4]
    a = checkpoint.load(tmp_path / "straight/checkpoints/ckpt_000004.npz")
    b = checkpoint.load(tmp_path / "split/checkpoints/ckpt_000004.npz")
    assert a["config"]["out"] != b["config"]["out"]
    assert_trees_equal(a, b, skip=("config",))                        # G, D, both Adam states, rng, data order
    assert {k: v for k, v in a["config"].items() if k != "out"} == {k: v for k, v in b["config"].items() if k != "out"}
    for name in ("samples/step_000004.png", "samples/step_000002.png"):
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "split" / name).read_bytes(), name


def test_resume_finds_the_newest_checkpoint_and_rejects_other_files(tmp_path):
    trainer(tmp_path / "run", max_steps=2, checkpoint_every=1).run()
    assert run_folder.find_checkpoint(tmp_path / "run") == tmp_path / "run/checkpoints/ckpt_000002.npz"
    assert run_folder.find_checkpoint(tmp_path / "run/checkpoints") == tmp_path / "run/checkpoints/ckpt_000002.npz"
    with pytest.raises(FileNotFoundError, match="no checkpoint found at"):
        resume(tmp_path / "nothing-here", dataset=FACES)
    checkpoint.save(tmp_path / "other.npz", {"format": "something-else", "x": np.zeros(2)})
    with pytest.raises(ValueError, match="not a tinygan training checkpoint"):
        resume(tmp_path / "other.npz", dataset=FACES)


def test_resume_on_different_data_is_refused(tmp_path):
    trainer(tmp_path / "run", max_steps=2).run()
    with pytest.raises(ValueError, match="data differs"):
        resume(tmp_path / "run", dataset=face_images(16, seed=1), verbose=False)


def test_same_seed_gives_the_same_sample_png_bytes(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        trainer(tmp_path / name, max_steps=2, seed=seed).run()
    grid = "samples/step_000002.png"
    assert (tmp_path / "a" / grid).read_bytes() == (tmp_path / "b" / grid).read_bytes()
    assert (tmp_path / "a" / grid).read_bytes() != (tmp_path / "c" / grid).read_bytes()


# --- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_holds_everything_needed_to_continue(tmp_path):
    t = trainer(tmp_path, max_steps=4)     # 3 batches an epoch, so step 4 is in epoch 1
    t.run()
    state = checkpoint.load(tmp_path / "checkpoints/ckpt_000004.npz")
    assert set(state) == {"format", "step", "config", "model", "G", "D", "G_ema", "ema", "optim_G", "optim_D",
                          "rng", "fixed_noise", "data_order", "last_healthy"}
    assert state["last_healthy"] == 4
    assert state["format"] == "tinygan-dcgan-train" and state["step"] == 4
    assert state["config"] == json.loads(json.dumps(t.config))
    assert state["model"] == {"nz": 8, "ngf": 4, "ndf": 4, "nc": 3, "image_size": 64, "z_dist": "normal"}
    assert state["ema"] == {"updates": 4, "decay": 0.999}
    with t.painting() as G_ema:
        assert_trees_equal(state["G_ema"], dict(G_ema.state_dict()))
    assert_trees_equal(state["G"], dict(t.G.state_dict()))
    assert_trees_equal(state["D"], dict(t.D.state_dict()))
    for name, opt in (("optim_G", t.opt_G), ("optim_D", t.opt_D)):
        assert int(state[name]["steps"]) == 4
        assert sorted(state[name]) == sorted(opt.state_dict())
        assert_trees_equal(state[name], opt.state_dict())
    np.testing.assert_array_equal(state["rng"]["noise"], t.noise_rng.state())
    np.testing.assert_array_equal(state["fixed_noise"], t.fixed_noise)
    assert int(state["data_order"]["epoch"]) == 1
    np.testing.assert_array_equal(state["data_order"]["order"], t.loader.order(1))


def test_keep_last_prunes_old_checkpoints(tmp_path):
    trainer(tmp_path, max_steps=5, checkpoint_every=1, keep_last=2).run()
    assert [step for step, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [4, 5]


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    t = trainer(tmp_path, max_steps=2)
    t.run()
    good = tmp_path / "checkpoints/ckpt_000002.npz"
    good_bytes = good.read_bytes()

    def savez_then_crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half a checkpoint")                   # some bytes reach the temp file
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint.np, "savez", savez_then_crash)
    t.train_step(t.loader.get_batch(0, 2))
    with pytest.raises(OSError, match="simulated"):
        t.save()                                                      # would be ckpt_000003
    t.step = 2
    with pytest.raises(OSError, match="simulated"):
        t.save()                                                      # overwriting ckpt_000002 itself
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["ckpt_000000.npz", "ckpt_000002.npz"]
    assert good.read_bytes() == good_bytes
    assert checkpoint.load(good)["step"] == 2


# --- divergence ------------------------------------------------------------------------------
class LossThatTurnsNaN:
    """Wraps the trainer's BCE-with-logits: returns NaN once the trainer has done ``after`` steps."""

    def __init__(self, trainer, after):
        self.inner, self.trainer, self.after = trainer.loss, trainer, after

    def __call__(self, logits, target):
        value = self.inner(logits, target)
        return float("nan") if self.trainer.step >= self.after else value

    def backward(self):
        return self.inner.backward()


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    t = trainer(tmp_path, max_steps=6)
    t.loss = LossThatTurnsNaN(t, after=3)       # steps 1-3 are fine; step 4 diverges
    with pytest.raises(DivergenceError, match="diverged at step 4") as info:
        t.run()
    assert "--lr" in str(info.value) and "checkpoint" in str(info.value)
    assert [step for step, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [0, 2]
    assert checkpoint.load(tmp_path / "checkpoints/ckpt_000002.npz")["step"] == 2


def test_a_non_finite_weight_is_never_saved(tmp_path):
    t = trainer(tmp_path, max_steps=2)
    t.run()
    t.D.main[0].weight.data[0, 0, 0, 0] = np.inf
    t.step = 3
    with pytest.raises(DivergenceError, match=r"weight main\.0\.weight is not finite"):
        t.save()
    assert [step for step, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [0, 2]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflow on the way to inf is the point
def test_a_huge_learning_rate_diverges_with_a_clear_error(tmp_path):
    t = trainer(tmp_path, max_steps=20, lr=1e30, checkpoint_every=1)
    with pytest.raises(DivergenceError, match="not finite|diverged"):
        t.run()
    last = run_folder.latest(tmp_path / "checkpoints")
    if last is not None:                                    # whatever was saved is finite
        state = checkpoint.load(last)
        assert all(np.isfinite(v).all() for v in list(state["G"].values()) + list(state["D"].values()))


# --- presets and options ---------------------------------------------------------------------
def test_seed003_preset_gives_uniform_z_lr_3e4_batch_64():
    config = make_config("seed003")
    assert (config["z_dist"], config["lr"], config["batch_size"]) == ("uniform", 3e-4, 64)
    assert (config["beta1"], config["nz"], config["real_label"]) == (0.5, 100, 1.0)
    assert make_config("dcgan")["z_dist"] == "normal" and make_config("dcgan")["lr"] == 2e-4
    assert make_config("seed003", lr=1e-4, batch_size=None)["lr"] == 1e-4    # explicit overrides win, None keeps


def test_seed003_trains_on_uniform_noise(tmp_path, monkeypatch):
    seen, original = [], dcgan.sample_noise

    def spy(rng, n, nz, z_dist):
        z = original(rng, n, nz, z_dist)
        seen.append((z_dist, float(np.abs(z).max())))
        return z

    monkeypatch.setattr(dcgan, "sample_noise", spy)
    t = trainer(tmp_path, preset="seed003", batch_size=4, max_steps=1)
    t.train_step(t.loader.get_batch(0, 0))
    assert [dist for dist, _ in seen] == ["uniform", "uniform"]          # the fixed grid noise, then the step's z
    assert all(biggest <= 1.0 for _, biggest in seen)
    assert t.config["lr"] == 3e-4 and t.opt_G.lr == 3e-4 and t.opt_D.lr == 3e-4


def test_unknown_options_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="unknown preset 'dcgan2'"):
        make_config("dcgan2")
    with pytest.raises(ValueError, match="unknown training option 'learning_rate'"):
        make_config(learning_rate=1e-3)
    for bad in ({"real_label": 0.0}, {"real_label": 1.1}, {"lr": -1.0}, {"batch_size": 0}, {"z_dist": "cauchy"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            make_config(**bad)


def test_too_few_images_for_one_batch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch of 4"):
        trainer(tmp_path, faces=FACES[:3])


def test_label_smoothing_targets_real_images_at_0_9(tmp_path):
    t = trainer(tmp_path, real_label=0.9)
    calls = []

    class Recorder:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, logits, target):
            value = self.inner(logits, target)
            calls.append((np.array(logits), target, float(value)))
            return value

        def backward(self):
            return self.inner.backward()

    t.loss = Recorder(t.loss)
    t.train_step(t.loader.get_batch(0, 0))
    assert [target for _, target, _ in calls] == [0.9, 0.0, 1.0]       # D on real, D on fake, G (never smoothed)
    logits, _, value = calls[0]
    x = logits.astype(np.float64)
    bce = np.mean(np.maximum(x, 0) - 0.9 * x + np.log1p(np.exp(-np.abs(x))))   # BCE-with-logits, target 0.9
    assert value == pytest.approx(bce, rel=1e-5)


# --- outputs -----------------------------------------------------------------------------------
def test_a_run_writes_its_log_plot_samples_gif_and_config(tmp_path):
    trainer(tmp_path, max_steps=4, log_every=2, sample_every=2).run()
    rows = logs.read_log(tmp_path / "loss_log.csv")
    assert [row["step"] for row in rows] == [2, 4]
    assert list(rows[0]) == list(train.LOG_FIELDS)
    assert all(math.isfinite(row[k]) for row in rows for k in train.LOG_FIELDS)
    assert rows[1]["epoch"] == pytest.approx(4 / 3)
    with Image.open(tmp_path / "loss_plot.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 100
    grids = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert grids == ["step_000002.png", "step_000004.png"]
    with Image.open(tmp_path / "samples/step_000002.png") as grid:
        assert grid.size == (4 * 66 + 2, 66 + 2)                       # 4 faces in a row, 2 px padding
    with Image.open(tmp_path / "training.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2
    assert json.loads((tmp_path / "config.json").read_text())["max_steps"] == 4


def test_the_accuracy_is_the_share_of_images_d_gets_right_averaged_like_the_losses(tmp_path, monkeypatch):
    """d_acc_real: real images with D(x) > 0.5; d_acc_fake: generated ones with D(G(z)) < 0.5; d_acc: both."""
    t = trainer(tmp_path, max_steps=3, log_every=3)
    logits = []
    forward = type(t.D).forward

    def recording_forward(D, images):
        out = forward(D, images)
        logits.append(np.array(out).reshape(-1))
        return out
    monkeypatch.setattr(type(t.D), "forward", recording_forward)
    t.run()
    real, fake = logits[0::3], logits[1::3]           # each step: D(real), D(fake), then D(fake) for G's step
    want_real = np.mean([np.mean(1 / (1 + np.exp(-r)) > 0.5) for r in real])
    want_fake = np.mean([np.mean(1 / (1 + np.exp(-f)) < 0.5) for f in fake])
    row, = logs.read_log(tmp_path / "loss_log.csv")
    assert row["d_acc_real"] == pytest.approx(want_real) and row["d_acc_fake"] == pytest.approx(want_fake)
    assert row["d_acc"] == pytest.approx((want_real + want_fake) / 2)
    with Image.open(tmp_path / "loss_plot.png") as plot:
        assert plot.size[1] >= 700                    # three panels: losses, D's outputs, D's accuracy


def test_a_run_logged_before_the_accuracy_resumes_and_keeps_its_columns(tmp_path):
    trainer(tmp_path / "old", max_steps=3, log_every=1, checkpoint_every=2).run()
    log = tmp_path / "old/loss_log.csv"
    old_fields = [f for f in train.LOG_FIELDS if f not in logs.ACCURACY_FIELDS]
    rows = logs.read_log(log)
    log.write_text("".join(",".join(str(row[k]) for k in old_fields) + "\n" for row in [dict(zip(old_fields,
                                                                                                 old_fields))] + rows))
    again = resume(tmp_path / "old", dataset=FACES, verbose=False, max_steps=4)
    again.run()
    resumed = logs.read_log(log)
    assert [row["step"] for row in resumed] == [1, 2, 3, 4]
    assert list(resumed[-1]) == old_fields
    with Image.open(viz.plot_losses(log, tmp_path / "plot.png")) as image:
        assert image.size[1] < 700                     # no accuracy panel for a log without it


def test_a_checkpoint_window_without_accuracies_is_read_as_unknown():
    stats = np.array([[1.0, 2.0, 0.6, 0.4]])           # what a checkpoint saved before the accuracy holds
    padded = logs.pad_stats(stats)
    assert padded.shape == (1, len(logs.STAT_KEYS))
    assert padded[0, :4].tolist() == [1.0, 2.0, 0.6, 0.4] and np.isnan(padded[0, 4:]).all()


# --- the `train` command -----------------------------------------------------------------------
def write_face_folder(folder, faces=FACES):
    folder.mkdir(parents=True)
    for i, face in enumerate(faces):
        Image.fromarray(face).save(folder / f"{i:06d}.png")
    return folder


def test_train_command_trains_resumes_and_uses_the_preset(tmp_path, capsys):
    data = write_face_folder(tmp_path / "faces")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "seed003", "--batch-size", "4",
            "--ngf", "4", "--ndf", "4", "--nz", "8", "--seed", "0", "--max-steps", "2",
            "--log-every", "1", "--sample-every", "2", "--checkpoint-every", "2", "--real-label", "0.9"]
    assert main(args) == 0
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert (config["z_dist"], config["lr"], config["batch_size"], config["real_label"]) == ("uniform", 3e-4, 4, 0.9)
    assert main(["train", "--resume", str(tmp_path / "run"), "--max-steps", "3"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert [step for step, _ in run_folder.list_checkpoints(tmp_path / "run/checkpoints")] == [0, 2, 3]
    assert [row["step"] for row in logs.read_log(tmp_path / "run/loss_log.csv")] == [1, 2, 3]


def test_train_command_without_data_explains_what_to_pass(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "run")]) == 2
    assert "missing.zip does not exist" in capsys.readouterr().err


# --- Ctrl-C ------------------------------------------------------------------------------
def test_ctrl_c_mid_step_finishes_the_step_saves_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    import os
    import signal
    straight = trainer(tmp_path / "straight", max_steps=6, log_every=3, checkpoint_every=100)
    straight.run()

    t = Trainer(tiny(tmp_path / "split", max_steps=6, log_every=3, checkpoint_every=100), dataset=FACES)
    step = t.train_step

    def step_with_ctrl_c(real):                    # Ctrl-C arrives in the middle of the 5th step,
        if t.step == 4:                            # after D's update and before G's
            t.opt_D.step = lambda original=t.opt_D.step: (original(), os.kill(os.getpid(), signal.SIGINT))
        return step(real)
    monkeypatch.setattr(t, "train_step", step_with_ctrl_c)
    before = signal.getsignal(signal.SIGINT)       # SIG_IGN when pytest was started in the background
    with pytest.raises(KeyboardInterrupt):
        t.run()
    assert "stopping after this step" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before                          # the handler is put back
    assert sorted(p.name for p in (tmp_path / "split/checkpoints").iterdir()) == ["ckpt_000000.npz",
                                                                                 "ckpt_000005.npz"]
    assert [row["step"] for row in log_without_timing(tmp_path / "split")] == [3]   # steps 4-5 are in the checkpoint

    again = resume(tmp_path / "split", dataset=FACES, verbose=False, max_steps=6)
    assert again.step == 5
    again.run()
    assert log_without_timing(tmp_path / "split") == log_without_timing(tmp_path / "straight")   # rows 3, 6
    a = checkpoint.load(tmp_path / "straight/checkpoints/ckpt_000006.npz")
    b = checkpoint.load(tmp_path / "split/checkpoints/ckpt_000006.npz")
    assert_trees_equal(a, b, skip=("config",))


# --- FID during training: keep the best ------------------------------------------------------


def test_fid_every_logs_plots_and_keeps_the_best_checkpoint_apart_from_pruning(tmp_path, monkeypatch):
    from tinygan import fid
    monkeypatch.setattr(fid, "fid_inception_v3", lambda *args, **kwargs: TinyFeatures())
    scores = iter([5.0, 3.0, 4.0, 6.0])
    true_fid = fid.statistics_to_fid
    monkeypatch.setattr(fid, "statistics_to_fid", lambda *stats: (true_fid(*stats), next(scores))[1])
    t = trainer(tmp_path, max_steps=4, fid_every=1, fid_n=6, fid_real_n=8, checkpoint_every=1, keep_last=1)
    t.run()
    rows = logs.read_log(tmp_path / "fid_log.csv")
    assert [(r["step"], r["fid"], r["n_fake"], r["n_real"], r["generator"]) for r in rows] == [
        (1, 5.0, 6, 8, "ema"), (2, 3.0, 6, 8, "ema"), (3, 4.0, 6, 8, "ema"), (4, 6.0, 6, 8, "ema")]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.npz", "ckpt_000004.npz"]
    best = checkpoint.load(tmp_path / "checkpoints/best.npz")
    assert best["step"] == 2 and best["best"] == {"step": 2, "fid": 3.0}
    assert checkpoint.load(tmp_path / "checkpoints/ckpt_000004.npz")["best"] == {"step": 2, "fid": 3.0}
    assert run_folder.find_checkpoint(tmp_path).name == "ckpt_000004.npz"      # resume never picks best.npz
    with Image.open(tmp_path / "fid_plot.png") as plot:
        assert plot.format == "PNG"
    assert int(checkpoint.load(tmp_path / "fid_reference.npz")["n"]) == 8


def test_fid_raw_scores_the_raw_g_beside_the_averaged_one_and_changes_no_training(tmp_path, monkeypatch):
    from tinygan import fid
    monkeypatch.setattr(fid, "fid_inception_v3", lambda *args, **kwargs: TinyFeatures())
    plain = trainer(tmp_path / "plain", max_steps=4, fid_every=2, fid_n=6, fid_real_n=8)
    plain.run()
    both = trainer(tmp_path / "both", max_steps=4, fid_every=2, fid_n=6, fid_real_n=8, fid_raw=True)
    both.run()
    rows = logs.read_log(tmp_path / "both/fid_log.csv")
    assert [(r["step"], r["generator"]) for r in rows] == [(2, "ema"), (2, "raw"), (4, "ema"), (4, "raw")]
    assert rows[0]["fid"] != rows[1]["fid"]                                   # two different generators
    plain_rows = logs.read_log(tmp_path / "plain/fid_log.csv")
    assert [r["fid"] for r in plain_rows] == [rows[0]["fid"], rows[2]["fid"]]  # the averaged G's scores agree
    assert log_without_timing(tmp_path / "both") == log_without_timing(tmp_path / "plain")
    assert_trees_equal(checkpoint.load(tmp_path / "plain/checkpoints/ckpt_000004.npz"),
                       checkpoint.load(tmp_path / "both/checkpoints/ckpt_000004.npz"), skip=("config",))
    with pytest.raises(ValueError, match="fid_raw must be true or false"):
        make_config(fid_raw="yes")


def test_held_out_faces_measure_d_as_a_judge_and_change_no_training(tmp_path):
    faces = face_images(40)                                   # a tenth, 4 faces, is held out
    judged = Trainer(tiny(tmp_path / "judged", judge_held_out=9), dataset=faces, verbose=False)
    assert len(judged.loader.images) == 36 and np.array_equal(judged.monitor.judge.held_out, faces[36:])
    judged.run()
    rows = logs.read_log(tmp_path / "judged/judge_log.csv")
    assert [row["step"] for row in rows] == [2, 4] and all(row["n_real"] == row["n_fake"] == 4 for row in rows)
    assert all(0 <= row[key] <= 1 for row in rows for key in ("real_called_real", "fake_called_fake", "accuracy"))
    plain = Trainer(tiny(tmp_path / "plain"), dataset=faces[:36], verbose=False)   # the same 36 faces, no judge
    plain.run()
    assert log_without_timing(tmp_path / "judged") == log_without_timing(tmp_path / "plain")
    assert_trees_equal(checkpoint.load(tmp_path / "plain/checkpoints/ckpt_000004.npz"),
                       checkpoint.load(tmp_path / "judged/checkpoints/ckpt_000004.npz"), skip=("config",))
    assert not (tmp_path / "plain/judge_log.csv").exists()

    (tmp_path / "judged/checkpoints/ckpt_000004.npz").unlink()          # resumed from step 2: the same rows
    again = resume(tmp_path / "judged", dataset=faces, verbose=False)
    assert again.step == 2 and again.monitor.judge is not None
    again.run()
    assert [row["step"] for row in logs.read_log(tmp_path / "judged/judge_log.csv")] == [2, 4]
    assert logs.read_log(tmp_path / "judged/judge_log.csv") == rows
    with Image.open(tmp_path / "judged/loss_plot.png") as plot:
        assert plot.size[1] > 700                                       # the accuracy panel, with the judge's dots


def test_a_run_from_before_the_held_out_faces_resumes_training_on_every_face(tmp_path):
    trainer(tmp_path / "old", max_steps=2).run()
    path = tmp_path / "old/checkpoints/ckpt_000002.npz"
    state = checkpoint.load(path)
    del state["config"]["judge_held_out"]
    checkpoint.save(path, state)
    again = resume(tmp_path / "old", dataset=FACES, verbose=False, max_steps=4)
    assert again.config["judge_held_out"] == 0 and again.monitor.judge is None and len(again.loader.images) == len(FACES)
