"""Checkpoints: exact round trips, atomic writes, no pickle, latest/prune, the loss log."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygan import checkpoint, logs, run_folder


def small_arrays(dtype):
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))


def assert_same_array(got, want):
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)   # NaN == NaN here


def example_tree():
    return {
        "step": 400,
        "lr": 2e-4,
        "resumed": False,
        "name": "faces",
        "config": {"nz": 100, "ngf": 64, "betas": [0.5, 0.999], "note": None},
        "G": {"main.0.weight": np.ones((4, 3, 2, 2), np.float32), "main.1.running_mean": np.zeros(3, np.float32)},
        "optim_G": {"m": {"0": np.full(5, 0.25, np.float32)}, "t": 400},
        "rng": np.array([2**64 - 1, 0, 7, 1, 0, 0], dtype=np.uint64),
    }


@settings(deadline=None, max_examples=25)
@given(f32=small_arrays(np.float32), i64=small_arrays(np.int64),
       u64=small_arrays(np.uint64), flags=small_arrays(np.bool_),
       scalar=st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text()))
def test_round_trip_keeps_values_and_dtypes(f32, i64, u64, flags, scalar):
    tree = {"G": {"w": f32, "sub": {"count": i64}}, "optim_G": {"m.3": u64, "t": scalar},
            "mask": flags, "config": {"nz": 100, "title": "faces"}}
    with tempfile.TemporaryDirectory() as tmp:
        back = checkpoint.load(checkpoint.save(Path(tmp) / "ckpt_000001.npz", tree))
    assert_same_array(back["G"]["w"], f32)
    assert_same_array(back["G"]["sub"]["count"], i64)
    assert_same_array(back["optim_G"]["m.3"], u64)
    assert_same_array(back["mask"], flags)
    assert back["optim_G"]["t"] == scalar and type(back["optim_G"]["t"]) is type(scalar)
    assert back["config"] == {"nz": 100, "title": "faces"}


def test_round_trip_of_a_training_state(tmp_path):
    tree = example_tree()
    back = checkpoint.load(checkpoint.save(tmp_path / "ckpt_000400.npz", tree))
    assert back["config"] == tree["config"]
    assert (back["step"], back["lr"], back["resumed"], back["name"]) == (400, 2e-4, False, "faces")
    assert back["G"]["main.0.weight"].dtype == np.float32      # float32 stays float32
    assert back["optim_G"]["t"] == 400
    assert_same_array(back["rng"], tree["rng"])


def test_keys_are_flattened_with_slashes_and_config_is_a_json_string(tmp_path):
    path = checkpoint.save(tmp_path / "ckpt_000400.npz", example_tree())
    with np.load(path, allow_pickle=False) as npz:
        assert {"G/main.0.weight", "optim_G/m/0", "optim_G/t", "config"} <= set(npz.files)
        assert npz["config"].dtype.kind == "U" and npz["config"].shape == ()


def test_no_extension_is_appended_and_permissions_follow_umask(tmp_path):
    path = checkpoint.save(tmp_path / "ckpt_000001.npz", {"x": np.zeros(2, np.float32)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_000001.npz"]
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert path.stat().st_mode == plain.stat().st_mode


@pytest.mark.parametrize("target", ["savez", "replace"])
def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch, target):
    path = tmp_path / "ckpt_000400.npz"
    checkpoint.save(path, {"w": np.arange(3, dtype=np.float32)})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(np, "savez", crash) if target == "savez" else monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(path, {"w": np.zeros(3, dtype=np.float32)})
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(tmp_path / "ckpt_000800.npz", {"w": np.zeros(3, dtype=np.float32)})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt_000400.npz"]   # no temp file left either
    assert run_folder.latest(tmp_path) == path


def test_truncated_file_is_refused(tmp_path):
    path = checkpoint.save(tmp_path / "ckpt_000400.npz", example_tree())
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="ckpt_000400.npz is not a valid tinygan checkpoint"):
            checkpoint.load(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt_000001.npz"):
        checkpoint.load(tmp_path / "ckpt_000001.npz")


def test_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.zeros(2, np.float32), obj=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="pickled object array.*allow_pickle=False"):
        checkpoint.load(path)


def test_saving_an_object_array_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dtype object"):
        checkpoint.save(tmp_path / "c.npz", {"obj": np.array([None], dtype=object)})


@pytest.mark.parametrize("tree", [{"a/b": np.zeros(1)}, {"": 1}, {"x": object()}, {"file": 1}, {"x": {"a": {1, 2}}}])
def test_bad_trees_are_refused(tmp_path, tree):
    with pytest.raises(ValueError):
        checkpoint.save(tmp_path / "c.npz", tree)


def test_step_path_latest_and_prune(tmp_path):
    assert run_folder.latest(tmp_path) is None
    assert run_folder.latest(tmp_path / "missing") is None
    assert run_folder.step_path(tmp_path, 400) == tmp_path / "ckpt_000400.npz"
    for step in (1200, 400, 800, 2000000):
        checkpoint.save(run_folder.step_path(tmp_path, step), {"step": step})
    unrelated = ["ckpt_abc.npz", ".ckpt_009999.npz.x1y2.tmp", "notes.txt", "best_009999.npz"]
    for name in unrelated:
        (tmp_path / name).write_text("keep me")
    assert run_folder.latest(tmp_path) == tmp_path / "ckpt_2000000.npz"   # by step, not by name

    deleted = run_folder.prune(tmp_path, keep_last=2)
    assert sorted(p.name for p in deleted) == ["ckpt_000400.npz", "ckpt_000800.npz"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(unrelated + ["ckpt_001200.npz", "ckpt_2000000.npz"])
    with pytest.raises(ValueError, match="keep_last"):
        run_folder.prune(tmp_path, keep_last=0)


def test_prune_after_each_save_keeps_the_newest(tmp_path):
    for step in range(0, 500, 100):
        checkpoint.save(run_folder.step_path(tmp_path, step), {"step": step})
        run_folder.prune(tmp_path, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_000300.npz", "ckpt_000400.npz"]
    assert checkpoint.load(run_folder.latest(tmp_path))["step"] == 400


def test_loss_log_append_read_and_truncate(tmp_path):
    path = tmp_path / "logs" / "losses.csv"
    log = logs.CsvLog(path, ["step", "d_loss", "g_loss"])
    for step in range(0, 600, 100):
        log.append({"step": step, "d_loss": np.float32(0.5), "g_loss": step / 1000})
    assert path.read_text().count("step") == 1                     # header written once
    assert log.read()[2] == {"step": 200, "d_loss": 0.5, "g_loss": 0.2}

    with open(path, "a") as f:                                     # a crash mid-row
        f.write("6")
    log.truncate_after(300)
    resumed = logs.CsvLog(path, ["step", "d_loss", "g_loss"])
    for step in (400, 500):
        resumed.append({"step": step, "d_loss": np.float32(0.5), "g_loss": step / 1000})

    fresh = logs.CsvLog(tmp_path / "fresh.csv", ["step", "d_loss", "g_loss"])
    for step in range(0, 600, 100):
        fresh.append({"step": step, "d_loss": np.float32(0.5), "g_loss": step / 1000})
    assert path.read_bytes() == fresh.path.read_bytes()


def test_loss_log_refuses_mismatched_rows_and_headers(tmp_path):
    log = logs.CsvLog(tmp_path / "l.csv", ["step", "d_loss"])
    with pytest.raises(ValueError, match="expected"):
        log.append({"step": 1})
    log.append({"step": 1, "d_loss": 0.1})
    other = logs.CsvLog(tmp_path / "l.csv", ["step", "g_loss"])    # checked when it writes
    with pytest.raises(ValueError, match="columns"):
        other.append({"step": 2, "g_loss": 0.1})
    with pytest.raises(ValueError, match="'step'"):
        logs.CsvLog(tmp_path / "m.csv", ["d_loss"])
