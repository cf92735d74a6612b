"""What a run shows (tinygan.monitor), given values rather than a trainer: the progress line, sample grids and
the loss plot, FID tracking."""
import pytest
from PIL import Image

from tinygan import backend, fid, logs, monitor
from tinygan.config import DEFAULTS
from tinygan.dcgan import Generator
from tinygan.run_folder import RunFolder

from helpers import TinyFeatures, face_images


def test_the_progress_line_says_where_the_run_is():
    row = {"d_loss": 0.7123, "g_loss": 2.8406, "d_real": 0.681, "d_fake": 0.249, "d_acc": 0.8125, "img_per_s": 31.04}
    assert monitor.progress_line(180, 780, 78, row, 2480.4) == (
        "epoch 3/10 step 180/780 | D 0.712 G 2.841 | D(x) 0.68 D(G(z)) 0.25 acc 0.81 | 31.0 img/s | ETA 41m20s")
    assert monitor.progress_line(78, 780, 78, row, 3725).startswith("epoch 1/10 step 78/780 ")   # the last of epoch 1
    assert monitor.progress_line(79, 80, 78, row, 0).startswith("epoch 2/2 step 79/80 ")
    assert monitor.format_duration(3725) == "1h02m" and monitor.format_duration(-3) == "0m00s"


def test_sample_grids_and_the_loss_plot_come_from_arrays(tmp_path):
    folder = RunFolder(tmp_path)
    G = Generator(nz=4, ngf=8, rng=0)
    runs = monitor.RunMonitor(folder, DEFAULTS, face_images(4, 64), held_out=0, epoch_steps=10, G=G, averaged=None,
                              say=print, verbose=False)
    path = runs.write_samples(12, G.sample_noise(backend.default_rng(0), 4))      # no log yet: no plot
    assert path == folder.sample(12) == tmp_path / "samples" / "step_000012.png" and G.training
    assert path.is_file() and not (tmp_path / "loss_plot.png").exists()
    log = logs.CsvLog(folder.loss_log, ("step", "d_loss", "g_loss"))
    for step in (1, 2):
        log.append({"step": step, "d_loss": 1.0 / step, "g_loss": 2.0})
    runs.write_samples(13, G.sample_noise(backend.default_rng(0), 4))
    with Image.open(tmp_path / "loss_plot.png") as plot:
        assert plot.format == "PNG"
    assert monitor.make_training_gif(tmp_path).name == "training.gif"


def test_the_fid_tracker_scores_generators_it_is_handed(tmp_path, monkeypatch):
    monkeypatch.setattr(fid, "fid_inception_v3", lambda *args, **kwargs: TinyFeatures())
    said = []
    tracker = monitor.FIDTracker(RunFolder(tmp_path), face_images(10, 64), weights=None, n_fake=6, n_real=50, say=said.append,
                                 verbose=False)
    G = Generator(rng=0).eval()
    score, row = tracker.score(3, 1.5, {"ema": G, "raw": Generator(rng=1).eval()})
    assert row == {"step": 3, "epoch": 1.5, "fid": score, "n_fake": 6, "n_real": 10, "generator": "ema"}
    assert said == ["FID: Inception features of the first 10 training images (once per run)"]
    rows = logs.read_log(tmp_path / "fid_log.csv")
    assert [(r["step"], r["generator"]) for r in rows] == [(3, "ema"), (3, "raw")] and rows[0]["fid"] != rows[1]["fid"]
    assert (tmp_path / "fid_plot.png").is_file()
    again = monitor.FIDTracker(RunFolder(tmp_path), face_images(10, 64), None, 6, 50, say=said.append, verbose=False)
    assert again.score(4, 2.0, {"ema": G})[0] == pytest.approx(score)    # the same G, the same seeds
    assert len(said) == 1                                                # the reference was read back
