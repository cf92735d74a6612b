"""What a training run shows while it trains: the progress line, sample grids, plots, FID, the GIF.

``Trainer.run`` calls these small functions at fixed points, handing them the values
they show (a step, a row of the loss log, images, a generator); none of them changes
the training itself, so a run with other monitoring (lesson 13's) trains exactly the
same networks.
"""
import math
from pathlib import Path

import numpy as np

from . import checkpoint, viz

FID_FIELDS = ("step", "epoch", "fid", "n_fake", "n_real", "generator")
# D as a judge (tinygan.judge.accuracy): eval mode, one image at a time, on held-out real faces and fresh fakes
JUDGE_FIELDS = ("step", "epoch", "real_called_real", "fake_called_fake", "accuracy", "mean_p_real", "mean_p_fake",
                "n_real", "n_fake")


def format_duration(seconds):
    """3725 -> '1h02m', 65 -> '1m05s'."""
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def progress_line(step, total_steps, steps_per_epoch, row, eta_seconds):
    """``epoch 3/10 step 180/780 | D 0.712 G 2.841 | D(x) 0.68 D(G(z)) 0.25 acc 0.81 | 31.0 img/s | ETA 41m20s``.

    row: the losses, D's mean outputs and accuracy, and img/s. acc: D's accuracy, the share of real
    and generated images it tells apart (0.5: it guesses).
    """
    epochs = math.ceil(total_steps / steps_per_epoch)
    return (f"epoch {(step - 1) // steps_per_epoch + 1}/{epochs} step {step}/{total_steps} | "
            f"D {row['d_loss']:.3f} G {row['g_loss']:.3f} | D(x) {row['d_real']:.2f} D(G(z)) {row['d_fake']:.2f} "
            f"acc {row['d_acc']:.2f} | {row['img_per_s']:.1f} img/s | ETA {format_duration(eta_seconds)}")


def sample_grid_path(run_dir, step):
    return Path(run_dir) / "samples" / f"step_{step:06d}.png"


def save_samples(images, run_dir, step, loss_log_path):
    """Faces (N, 3, H, W) in [-1, 1] as the grid samples/step_N.png, and the loss log's plot (with D's accuracy
    as a judge, from judge_log.csv where there is one) as loss_plot.png."""
    path = viz.save_grid(images, sample_grid_path(run_dir, step))
    if Path(loss_log_path).exists():
        judge_log = Path(run_dir) / "judge_log.csv"
        viz.plot_losses(loss_log_path, Path(run_dir) / "loss_plot.png", title="DCGAN losses",
                        judge_rows=checkpoint.read_loss_log(judge_log) if judge_log.is_file() else None)
    return path


class JudgeTracker:
    """How good a judge D is, every checkpoint: its eval-mode accuracy on real faces kept out of training
    (``held_out``, uint8 (N, S, S, 3)) and on as many fresh fakes of the painting generator, logged to
    judge_log.csv and drawn into the loss plot beside the train-mode d_acc."""

    def __init__(self, run_dir, held_out):
        self.held_out = held_out
        self.log = checkpoint.LossLog(Path(run_dir) / "judge_log.csv", JUDGE_FIELDS)

    def score(self, step, epoch, D, G):
        """Log one row for D (any mode; put back as it was) and the generator G (eval mode)."""
        from .judge import accuracy, fresh_fakes
        row = dict(accuracy(D, self.held_out, fresh_fakes(G, len(self.held_out))), step=step, epoch=epoch)
        self.log.append(row)
        return row


def make_training_gif(run_dir, every=1, duration_ms=300, out=None):
    """training.gif from a run's sample grids (every ``every``-th one), each captioned with its step."""
    run_dir = Path(run_dir)
    frames = sorted((run_dir / "samples").glob("step_*.png"))[::max(1, every)]
    if not frames:
        raise FileNotFoundError(f"no sample grids (samples/step_*.png) in {run_dir}")
    captions = [f"step {int(p.stem.split('_')[1])}" for p in frames]
    return viz.save_gif(frames, Path(out) if out else run_dir / "training.gif", duration_ms=duration_ms,
                        captions=captions)


class FIDTracker:
    """FID of a run's generators every ``fid_every`` steps, logged to fid_log.csv and plotted as fid_plot.png.

    run_dir: the run folder; real_images: the training images (N, H, W, 3) uint8, of which the first
    ``n_real`` are the reference; weights: the Inception weights (None: the default download);
    n_fake: faces per score; say: where messages go; verbose: whether Inception reports its progress.
    The reference's Inception statistics are computed once per run and kept in the run folder
    (``fid_reference.npz``). The fakes are the faces of seeds 0 .. n_fake - 1, the same z every time,
    so that two scores differ by the generator only.
    """

    def __init__(self, run_dir, real_images, weights, n_fake, n_real, say=print, verbose=True):
        self.run_dir, self.real_images, self.weights = Path(run_dir), real_images, weights
        self.n_fake, self.n_real = n_fake, min(n_real, len(real_images))
        self.say, self.verbose = say, verbose
        self.log = checkpoint.LossLog(self.run_dir / "fid_log.csv", FID_FIELDS)
        self._reference = None

    def reference(self):
        """(mu, sigma, n) of the first n_real training images."""
        from . import fid
        if self._reference is None:
            n, path = self.n_real, self.run_dir / "fid_reference.npz"
            stored = checkpoint.load(path) if path.is_file() else None
            if stored is not None and int(stored["n"]) == n:
                self._reference = stored["mu"], stored["sigma"], n
            else:
                self.say(f"FID: Inception features of the first {n} training images (once per run)")
                model = fid.fid_inception_v3(self.weights, verbose=self.verbose)
                features = fid.images_to_features(np.asarray(self.real_images[:n]), model=model,
                                                  verbose=self.verbose)
                mu, sigma = fid.features_to_statistics(features)
                checkpoint.save(path, {"n": n, "mu": mu, "sigma": sigma})
                self._reference = mu, sigma, n
        return self._reference

    def score(self, step, epoch, generators):
        """FID of each of ``generators`` ({"ema" or "raw": a generator in eval mode}) at this step, logged and
        plotted. Returns (fid, row) of the first."""
        scores = [self._score(generator, name, step, epoch) for name, generator in generators.items()]
        rows = self.log.read()
        curve = {name: ([r["step"] for r in rows if r["generator"] == name],
                        [r["fid"] for r in rows if r["generator"] == name]) for name in ("ema", "raw")}
        if not curve["ema"][0]:
            viz.plot_fid(*curve["raw"], self.run_dir / "fid_plot.png")
        else:
            viz.plot_fid(*curve["ema"], self.run_dir / "fid_plot.png", label="averaged G (EMA)",
                         others={"raw G": curve["raw"]} if curve["raw"][0] else None)
        return scores[0]

    def _score(self, generator, name, step, epoch):
        """FID of one generator on the fixed seeds, logged as a row of fid_log.csv."""
        from . import fid
        from .sampling import generate_images
        mu, sigma, n_real = self.reference()
        fakes = generate_images(generator, range(self.n_fake))
        model = fid.fid_inception_v3(self.weights, verbose=self.verbose)
        features = fid.images_to_features(fakes, model=model)
        score = fid.statistics_to_fid(mu, sigma, *fid.features_to_statistics(features))
        row = {"step": step, "epoch": epoch, "fid": score, "n_fake": self.n_fake, "n_real": n_real,
               "generator": name}
        self.log.append(row)
        return score, row
