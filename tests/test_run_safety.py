"""Training runs that cannot lose work: killed runs resume exactly, a run folder belongs to one run,
resumes write where they are pointed, divergence stops cleanly, and every fault is one `error:` line."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinygan import checkpoint, health, logs, run_folder, train
from tinygan.cli import main
from tinygan.train import DivergenceError, resume

from helpers import FACES, assert_trees_equal, face_images, trainer

HERE = Path(__file__).resolve().parent
TINY = ["--ngf", "4", "--ndf", "4", "--nz", "8", "--batch-size", "4"]


def face_folder(folder, n=24):
    folder.mkdir(parents=True)
    for i, face in enumerate(face_images(n, seed=3)):
        Image.fromarray(face).save(folder / f"{i:04d}.png")
    return folder


def train_args(data, out, steps=8):
    return ["--data", str(data), "--out", str(out), *TINY, "--max-steps", str(steps), "--log-every", "3",
            "--sample-every", "4", "--checkpoint-every", "2", "--keep-last", "10"]


def run_tool(when, args, cwd):
    """tests/train_and_stop.py in a new process, with its own cache folder."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", TINYGAN_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, str(HERE / "train_and_stop.py"), when, "--", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def log_text_without_timing(run):
    """The loss log as text with the img_per_s column (wall-clock speed) removed: the rest must match byte for byte."""
    lines = (run / "loss_log.csv").read_text().splitlines()
    return "\n".join(",".join(line.split(",")[:-1]) for line in lines)


def final_state(run, step=8):
    state = checkpoint.load(run / "checkpoints" / f"ckpt_{step:06d}.npz")
    state["config"] = {k: v for k, v in state["config"].items() if k != "out"}
    return state


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted 8-step run, the reference for every crash below."""
    root = tmp_path_factory.mktemp("straight")
    data = face_folder(root / "faces")
    result = run_tool("never", train_args(data, root / "run"), root)
    assert result.returncode == 0, result.stderr
    return root, data


# --- the crash test ----------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["step:4", "step:1", "save:4", "save:0", "cache:10", "sigterm:5"])
def test_a_killed_run_resumes_to_the_same_weights_and_log(when, straight, tmp_path):
    root, data = straight
    args = train_args(data, tmp_path / "run")
    stopped = run_tool(when, args, tmp_path)
    if when.startswith("sigterm"):
        assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
        assert "SIGTERM: stopping after this step" in stopped.stdout
        assert run_folder.latest(tmp_path / "run/checkpoints").name == "ckpt_000006.npz"   # finished step 6, saved
    else:
        assert stopped.returncode == -signal.SIGKILL, stopped.stdout + stopped.stderr
    if when.startswith("cache"):
        assert not (tmp_path / "run").exists()                 # killed before the run began: start it again
        again = run_tool("never", args, tmp_path)
        assert "removed 1 unfinished cache file(s) of killed runs" in again.stdout
    elif when == "save:0":                                     # killed before its first checkpoint was whole
        resumed = run_tool("never", ["--resume", str(tmp_path / "run")], tmp_path)
        assert resumed.returncode == 2 and "start it again with the same command" in resumed.stderr
        again = run_tool("never", args, tmp_path)               # the folder holds only its config: a clean start
    else:
        again = run_tool("never", ["--resume", str(tmp_path / "run")], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert log_text_without_timing(tmp_path / "run") == log_text_without_timing(root / "run")
    assert_trees_equal(final_state(tmp_path / "run"), final_state(root / "run"))
    leftovers = [p.name for p in (tmp_path / "run").rglob("*.tmp")]
    leftovers += [p.name for p in (tmp_path / "cache").glob("*.tmp")]
    assert leftovers == []
    if when.startswith("save"):
        assert "removed 1 unfinished file(s) of a killed run" in again.stdout


# --- 1. resume writes into the folder it was resumed from ----------------------------------------
def test_resuming_a_copy_writes_into_the_copy_and_never_touches_the_original(tmp_path):
    trainer(tmp_path / "original", max_steps=4, keep_last=2).run()
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    before = {p: p.read_bytes() for p in (tmp_path / "original").rglob("*") if p.is_file() and p.name != ".lock"}
    again = resume(tmp_path / "copy", dataset=FACES, verbose=False, max_steps=6)
    assert again.out == (tmp_path / "copy").resolve()
    again.run()
    after = {p: p.read_bytes() for p in (tmp_path / "original").rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before
    assert run_folder.latest(tmp_path / "copy/checkpoints").name == "ckpt_000006.npz"


def test_a_crafted_checkpoint_cannot_name_where_it_writes_or_prunes(tmp_path):
    victim = tmp_path / "victim"
    trainer(victim, max_steps=4, checkpoint_every=1).run()
    victim_files = {p: p.read_bytes() for p in victim.rglob("*") if p.is_file() and p.name != ".lock"}
    trainer(tmp_path / "mine", max_steps=2).run()
    path = tmp_path / "mine/checkpoints/ckpt_000002.npz"
    state = checkpoint.load(path)
    state["config"].update(out=str(victim), keep_last=1)
    checkpoint.save(path, state)
    again = resume(tmp_path / "mine", dataset=FACES, verbose=False, max_steps=5)
    again.run()
    assert {p: p.read_bytes() for p in victim.rglob("*") if p.is_file() and p.name != ".lock"} == victim_files
    assert [s for s, _ in run_folder.list_checkpoints(tmp_path / "mine/checkpoints")] == [5]  # keep_last 1, in mine


def test_resume_with_out_starts_a_new_folder_with_the_logs_up_to_the_checkpoint(tmp_path):
    trainer(tmp_path / "a", max_steps=4).run()
    again = resume(tmp_path / "a", dataset=FACES, verbose=False, out=tmp_path / "b", max_steps=6)
    again.run()
    assert [r["step"] for r in logs.read_log(tmp_path / "b/loss_log.csv")] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in logs.read_log(tmp_path / "a/loss_log.csv")] == [1, 2, 3, 4]


# --- 2. a folder that holds a run --------------------------------------------------------------
def test_a_new_run_is_refused_where_another_run_is(tmp_path):
    trainer(tmp_path, max_steps=2).run()
    with pytest.raises(ValueError, match="already holds a training run.*--resume.*--overwrite.*--out"):
        trainer(tmp_path, max_steps=3, seed=1).run()
    assert [s for s, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [0, 2]
    fresh = trainer(tmp_path, max_steps=3, seed=1)
    fresh.run(overwrite=True)
    assert [s for s, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [0, 2, 3]
    assert [r["step"] for r in logs.read_log(tmp_path / "loss_log.csv")] == [1, 2, 3]
    assert checkpoint.load(tmp_path / "checkpoints/ckpt_000003.npz")["config"]["seed"] == 1


def test_a_folder_with_only_a_config_is_started_cleanly(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seed": 5}))
    trainer(tmp_path, max_steps=2).run()
    assert json.loads((tmp_path / "config.json").read_text())["max_steps"] == 2


def test_the_cli_says_resume_or_overwrite(tmp_path, capsys):
    data = face_folder(tmp_path / "faces")
    args = ["train", *train_args(data, tmp_path / "run", steps=2)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "--resume" in err and "--overwrite" in err
    assert main(args + ["--overwrite"]) == 0


# --- 3. one run per folder at a time --------------------------------------------------------------
def test_a_second_run_in_a_locked_folder_is_refused_with_the_holders_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from tinygan.files import RunLock; from tinygan.run_folder import RunFolder; "
                               "RunLock(RunFolder(sys.argv[2]).lock).acquire(); "
                               "print('locked', flush=True); time.sleep(60)", str(HERE.parent), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RuntimeError, match=f"in use by another training run \\(PID {holder.pid}\\)"):
            trainer(tmp_path, max_steps=2).run()
        assert not (tmp_path / "checkpoints").exists()
    finally:
        holder.send_signal(signal.SIGKILL)                   # the lock dies with its process ...
        holder.wait()
    trainer(tmp_path, max_steps=2).run()                     # ... so no stale lock is left behind


# --- 4. divergence ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_blown_up_run_stops_with_one_error_line_and_keeps_its_good_checkpoint(tmp_path, capsys):
    data = face_folder(tmp_path / "faces")
    assert main(["train", *train_args(data, tmp_path / "run", steps=50), "--lr", "1e6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: training blew up" in err
    assert "ckpt_000000.npz" in err                          # the untrained networks: the last healthy one
    for _, path in run_folder.list_checkpoints(tmp_path / "run/checkpoints"):
        state = checkpoint.load(path)
        rms = max(float(np.sqrt(np.mean(v.astype(np.float64) ** 2))) for net in ("G", "D") for v in state[net].values())
        assert rms < health.WEIGHT_RMS_STOP, path              # nothing past the limit was ever saved


class LossWithTrouble:
    """The trainer's loss, plus ``extra`` from step ``after`` on: above the warning limit, below the stop limit."""

    def __init__(self, t, after, extra):
        self.inner, self.t, self.after, self.extra = t.loss, t, after, extra

    def __call__(self, logits, target):
        return self.inner(logits, target) + (self.extra if self.t.step >= self.after else 0.0)

    def backward(self):
        return self.inner.backward()


def test_pruning_never_deletes_the_last_checkpoint_saved_before_the_trouble(tmp_path):
    t = trainer(tmp_path, max_steps=7, checkpoint_every=1, keep_last=1)
    t.loss = LossWithTrouble(t, after=3, extra=30.0)      # from step 4 on, D's loss is ~60 (warning limit 50)
    t.run()
    assert [s for s, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [3, 7]
    assert checkpoint.load(tmp_path / "checkpoints/ckpt_000007.npz")["last_healthy"] == 3


def test_nan_at_the_first_step_names_the_step_0_checkpoint_and_claims_nothing_else(tmp_path):
    t = trainer(tmp_path, max_steps=3)
    t.loss = LossWithTrouble(t, after=0, extra=float("nan"))
    with pytest.raises(DivergenceError, match="diverged at step 1") as info:
        t.run()
    assert "ckpt_000000.npz" in str(info.value) and "untrained" in str(info.value)
    assert [s for s, _ in run_folder.list_checkpoints(tmp_path / "checkpoints")] == [0]


def test_without_any_checkpoint_the_message_says_so(tmp_path):
    t = trainer(tmp_path, max_steps=3)
    t.health.last_healthy = None
    assert "No checkpoint was saved before the trouble began" in t.health.where_to_resume()


# --- 5. a truncated newest checkpoint -------------------------------------------------------------------
def test_resume_skips_a_truncated_newest_checkpoint_and_says_why(tmp_path, capsys):
    trainer(tmp_path, max_steps=6).run()
    newest = tmp_path / "checkpoints/ckpt_000006.npz"
    newest.write_bytes(newest.read_bytes()[:5000])
    again = resume(tmp_path, dataset=FACES, verbose=False)
    assert again.step == 4
    out = capsys.readouterr().out
    assert f"skipping {newest}" in out and "not a valid tinygan checkpoint" in out


# --- faults that are one error line ------------------------------------------------------------------------
def test_a_full_disk_while_saving_is_one_error_line_and_the_previous_checkpoint_survives(tmp_path, monkeypatch,
                                                                                         capsys):
    data = face_folder(tmp_path / "faces")
    savez = checkpoint.np.savez
    calls = []

    def full_after_two(handle, **arrays):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return savez(handle, **arrays)
    monkeypatch.setattr(checkpoint.np, "savez", full_after_two)
    assert main(["train", *train_args(data, tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert "could not write checkpoint" in err and "ckpt_000002.npz is intact" in err
    assert [s for s, _ in run_folder.list_checkpoints(tmp_path / "run/checkpoints")] == [0, 2]
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_bad_output_folders_are_one_error_line(tmp_path, capsys):
    data = face_folder(tmp_path / "faces")
    (tmp_path / "a_file").write_text("x")
    assert main(["train", *train_args(data, tmp_path / "a_file")]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err
    assert main(["train", *train_args(data, tmp_path / "a_file" / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_error_line(tmp_path, capsys):
    data = face_folder(tmp_path / "faces")
    (tmp_path / "ro").mkdir(mode=0o555)
    assert main(["train", *train_args(data, tmp_path / "ro" / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Permission denied" in err


def test_settings_are_checked_before_the_data_is_decoded(tmp_path, capsys):
    data = face_folder(tmp_path / "faces")
    cache = Path(os.environ["TINYGAN_CACHE"])
    before = set(cache.glob("*")) if cache.exists() else set()
    for option, value, words in (("--image-size", "48", "image_size must be one of"),
                                 ("--max-steps", "-5", "max_steps must be an integer >= 1"),
                                 ("--ngf", str(10 ** 7), "ngf must be an int in 1..1024")):
        assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), option, value]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
    assert (set(cache.glob("*")) if cache.exists() else set()) == before    # nothing was decoded
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_asking_for_an_absurd_model_is_refused_before_allocating(tmp_path, capsys):
    trainer(tmp_path / "run", max_steps=2).run()
    path = tmp_path / "run/checkpoints/ckpt_000002.npz"
    state = checkpoint.load(path)
    state["config"]["ngf"] = 10 ** 7
    checkpoint.save(path, state)
    assert main(["train", "--resume", str(path)]) == 2
    err = capsys.readouterr().err
    assert "holds an invalid config" in err and "ngf" in err and err.count("\n") == 1


def test_import_of_a_truncated_or_pickled_npz_is_one_error_line_naming_the_file(tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, **{"main.0.weight": np.zeros((8, 32, 4, 4), np.float32)})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    for bad, words in ((truncated, "not a valid tinygan checkpoint"), (pickled, "never unpickles")):
        assert main(["import", str(bad), "--out", str(tmp_path / "g.npz")]) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and words in err and err.count("\n") == 1, err


def test_hostile_fid_weights_are_one_error_line_and_nothing_runs(tmp_path, capsys):
    import pickle
    import zipfile
    sentinel = tmp_path / "pwned"

    class SystemCall:
        def __reduce__(self):
            return os.system, (f"touch {sentinel}",)
    hostile = tmp_path / "hostile.pt"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("x/data.pkl", pickle.dumps({"w": SystemCall()}, protocol=2))
    inconsistent = tmp_path / "inconsistent.pt"
    with zipfile.ZipFile(inconsistent, "w") as archive:
        archive.writestr("x/data.pkl", b"\x80\x02}q\x00.")                # an empty dict: no weights at all
    faces = face_folder(tmp_path / "faces", n=4)
    for weights, words in ((hostile, "not a usable FID weight file"), (inconsistent, "does not look like FID")):
        assert main(["fid", "--real", str(faces), "--fake", str(faces), "-n", "2", "--weights", str(weights),
                     "--cache-dir", str(tmp_path / "cache")]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
    assert not sentinel.exists()


# --- clean-up after crashes ----------------------------------------------------------------------------
def test_temp_files_of_a_killed_checkpoint_write_are_removed_on_the_next_start(tmp_path, capsys):
    t = trainer(tmp_path, max_steps=2)
    t.run()
    finished = subprocess.Popen(["true"])
    finished.wait()
    orphan = tmp_path / "checkpoints" / f".ckpt_000004.npz.{finished.pid}.0123456789ab.tmp"
    orphan.write_bytes(b"half")
    again = resume(tmp_path, dataset=FACES, max_steps=3)
    again.run()
    assert not orphan.exists()
    assert "removed 1 unfinished file(s) of a killed run" in capsys.readouterr().out


def test_the_loss_log_rows_after_a_resume_average_the_same_steps(tmp_path):
    trainer(tmp_path / "straight", max_steps=6, log_every=4, checkpoint_every=100).run()
    trainer(tmp_path / "split", max_steps=6, log_every=4, checkpoint_every=3).run()
    (tmp_path / "split/checkpoints/ckpt_000006.npz").unlink()      # "crash" after step 6 was logged
    window = checkpoint.load(tmp_path / "split/checkpoints/ckpt_000003.npz")["log_window"]
    assert window["stats"].shape == (3, len(logs.STAT_KEYS))       # steps 1-3: not logged yet at step 3
    resume(tmp_path / "split", dataset=FACES, verbose=False).run()

    def rows_of(run):
        rows = logs.read_log(run / "loss_log.csv")
        return [{k: v for k, v in r.items() if k != "img_per_s"} for r in rows]
    rows, want = rows_of(tmp_path / "split"), rows_of(tmp_path / "straight")
    assert rows == want and [r["step"] for r in rows] == [4, 6]


def test_folder_refusals_come_before_the_data_is_decoded(tmp_path, capsys, monkeypatch):
    """Another run's folder, a locked folder, a finished run: refused before one image is decoded, and a refusal
    is the only thing said (no 'resumed from' before the lock's error)."""
    data = face_folder(tmp_path / "faces")
    assert main(["train", *train_args(data, tmp_path / "run", steps=2)]) == 0
    capsys.readouterr()
    from tinygan import data as data_module

    def no_decoding(*args, **kwargs):
        raise AssertionError("the data was loaded before the refusal")
    monkeypatch.setattr(data_module, "FaceDataset", no_decoding)
    assert main(["train", *train_args(data, tmp_path / "run", steps=4)]) == 2                # another run's folder
    assert "already holds a training run" in capsys.readouterr().err
    plot = (tmp_path / "run" / "loss_plot.png").stat().st_mtime_ns
    assert main(["train", "--resume", str(tmp_path / "run")]) == 0                           # finished
    out = capsys.readouterr().out
    assert "nothing is left to train" in out and "--max-steps N (more than 2)" in out and "resumed" not in out
    assert "--epochs" not in out                       # --max-steps bounds this run: more epochs would not help
    assert (tmp_path / "run" / "loss_plot.png").stat().st_mtime_ns == plot                 # nothing rewritten
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from tinygan.files import RunLock; from tinygan.run_folder import RunFolder; "
                               "RunLock(RunFolder(sys.argv[2]).lock).acquire(); "
                               "print('locked', flush=True); time.sleep(60)", str(HERE.parent), str(tmp_path / "run")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", "--resume", str(tmp_path / "run"), "--max-steps", "4"]) == 2
        captured = capsys.readouterr()
        assert f"PID {holder.pid}" in captured.err and captured.out == ""
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_time_budget_ends_a_run_like_its_last_step(tmp_path, capsys):
    """--minutes: the run stops at the budget with a checkpoint, its plot and its GIF, and says how to go on."""
    data = face_folder(tmp_path / "faces")
    assert main(["train", *train_args(data, tmp_path / "run", steps=1000), "--minutes", "0.0001"]) == 0
    out = capsys.readouterr().out
    assert "time budget of 0.0001 minutes used" in out and f"--resume {tmp_path / 'run'}" in out and "done:" in out
    step = run_folder.list_checkpoints(tmp_path / "run" / "checkpoints")[-1][0]
    assert (tmp_path / "run" / "training.gif").is_file() and (tmp_path / "run" / "samples" / f"step_{step:06d}.png").is_file()
    assert run_folder.list_checkpoints(tmp_path / "run" / "checkpoints")


def test_cartoon_faces_train_with_no_data_at_hand(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYGAN_CACHE", str(tmp_path / "cache"))
    assert main(["train", "--cartoon-faces", "40", "--out", str(tmp_path / "run"), *TINY, "--max-steps", "2",
                 "--judge-held-out", "0"]) == 0
    assert "drawing 40 cartoon faces" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").glob("cartoon_faces_40_seed0/*.jpg"))) == 40
    assert main(["train", "--cartoon-faces", "40", "--data", "x", "--out", str(tmp_path / "b")]) == 2
    assert "give one of them" in capsys.readouterr().err
