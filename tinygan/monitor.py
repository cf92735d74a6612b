"""What a training run shows while it trains: the progress line, sample grids, plots, FID, the GIF.

``Trainer.run`` calls these small functions at fixed points; none of them
changes the training itself, so a run with other monitoring (lesson 13's) trains
exactly the same networks.
"""
import math
from pathlib import Path

import numpy as np

from . import checkpoint, viz

FID_FIELDS = ("step", "epoch", "fid", "n_fake", "n_real", "generator")


def format_duration(seconds):
    """3725 -> '1h02m', 65 -> '1m05s'."""
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def progress_line(trainer, row, eta_seconds):
    """``epoch 3/10 step 180/780 | D 0.712 G 2.841 | D(x) 0.68 D(G(z)) 0.25 acc 0.81 | 31.0 img/s | ETA 41m20s``.

    acc: D's accuracy, the share of real and generated images it tells apart (0.5: it guesses).
    """
    per_epoch = len(trainer.loader)
    epochs = math.ceil(trainer.total_steps / per_epoch)
    return (f"epoch {(trainer.step - 1) // per_epoch + 1}/{epochs} step {trainer.step}/{trainer.total_steps} | "
            f"D {row['d_loss']:.3f} G {row['g_loss']:.3f} | D(x) {row['d_real']:.2f} D(G(z)) {row['d_fake']:.2f} "
            f"acc {row['d_acc']:.2f} | {row['img_per_s']:.1f} img/s | ETA {format_duration(eta_seconds)}")


def sample_grid_path(run_dir, step):
    return Path(run_dir) / "samples" / f"step_{step:06d}.png"


def save_samples(trainer):
    """The sampling generator's faces for the fixed noise as samples/step_N.png, and the loss plot."""
    images = trainer.sampling_generator()(trainer.fixed_noise)
    trainer.G.train()
    path = viz.save_grid(images, sample_grid_path(trainer.out, trainer.step))
    if trainer.log.path.exists():
        viz.plot_losses(trainer.log.path, trainer.out / "loss_plot.png", title="DCGAN losses")
    return path


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
    """FID of the sampling generator every ``fid_every`` steps, logged to fid_log.csv and plotted.

    The reference is the first ``fid_real_n`` training images; their Inception
    statistics are computed once per run and kept in the run folder
    (``fid_reference.npz``). The fakes are the faces of seeds 0 .. fid_n - 1, the
    same z every time, so that two scores differ by the generator only.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self.log = checkpoint.LossLog(trainer.out / "fid_log.csv", FID_FIELDS)
        self._reference = None

    def reference(self):
        """(mu, sigma, n) of the first fid_real_n training images."""
        from . import fid
        if self._reference is None:
            t = self.trainer
            images = getattr(t.dataset, "images", t.dataset)
            n = min(t.config["fid_real_n"], len(images))
            path = t.out / "fid_reference.npz"
            stored = checkpoint.load(path) if path.is_file() else None
            if stored is not None and int(stored["n"]) == n:
                self._reference = stored["mu"], stored["sigma"], n
            else:
                t.say(f"FID: Inception features of the first {n} training images (once per run)")
                model = fid.fid_inception_v3(t.config["fid_weights"], verbose=t.verbose)
                features = fid.images_to_features(np.asarray(images[:n]), model=model, verbose=t.verbose)
                mu, sigma = fid.features_to_statistics(features)
                checkpoint.save(path, {"n": n, "mu": mu, "sigma": sigma})
                self._reference = mu, sigma, n
        return self._reference

    def score(self):
        """FID of the trainer's sampling generator now (and of the raw G with ``fid_raw``); logs and plots it.
        Returns (fid, row) of the sampling generator."""
        t = self.trainer
        score, row = self._score(t.sampling_generator(), "ema" if t.ema is not None else "raw")
        if t.config.get("fid_raw") and t.ema is not None:
            self._score(t.G.eval(), "raw")              # _score puts G back in train mode
        rows = self.log.read()
        curve = {name: ([r["step"] for r in rows if r["generator"] == name],
                        [r["fid"] for r in rows if r["generator"] == name]) for name in ("ema", "raw")}
        if t.ema is None:
            viz.plot_fid(*curve["raw"], t.out / "fid_plot.png")
        else:
            viz.plot_fid(*curve["ema"], t.out / "fid_plot.png", label="averaged G (EMA)",
                         others={"raw G": curve["raw"]} if curve["raw"][0] else None)
        return score, row

    def _score(self, generator, name):
        """FID of one generator on the fixed seeds, logged as a row of fid_log.csv."""
        from . import fid
        from .sampling import generate_images
        t = self.trainer
        mu, sigma, n_real = self.reference()
        fakes = generate_images(generator, range(t.config["fid_n"]))
        t.G.train()
        model = fid.fid_inception_v3(t.config["fid_weights"], verbose=t.verbose)
        features = fid.images_to_features(fakes, model=model)
        score = fid.statistics_to_fid(mu, sigma, *fid.features_to_statistics(features))
        row = {"step": t.step, "epoch": t.step / len(t.loader), "fid": score, "n_fake": t.config["fid_n"],
               "n_real": n_real, "generator": name}
        self.log.append(row)
        return score, row
