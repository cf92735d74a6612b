"""What a training run shows while it trains: the progress line, sample grids, plots, FID, the GIF.

``Trainer.run`` calls its RunMonitor at fixed points, handing it the values it shows
(a step, images, a generator); none of them changes the training itself, so a run with
other monitoring (lesson 13's) trains exactly the same networks.
"""
import contextlib
import math

import numpy as np

from . import backend, checkpoint, viz
from .logs import FID_FIELDS, JUDGE_FIELDS, CsvLog, read_log
from .run_folder import SAMPLE_PATTERN, RunFolder


def format_duration(seconds):
    """3725 -> '1h02m', 65 -> '1m05s'."""
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def start_line(config, n_images, judge, steps_per_epoch, step, total_steps, minutes, out):
    """What a run says as it starts: the data, the batches, the steps it will train and where it writes."""
    budget = f", or {minutes:g} minutes" if minutes else ""
    held_out = f" ({len(judge.held_out)} more held out to measure D as a judge)" if judge is not None else ""
    return (f"training a {config['image_size']}x{config['image_size']} DCGAN on {n_images} images{held_out} "
            f"({steps_per_epoch} batches of {config['batch_size']} per epoch) for {total_steps - step} steps "
            f"(to step {total_steps}{budget}), backend {backend.name()}; writing to {out}")


def progress_line(step, total_steps, steps_per_epoch, row, eta_seconds):
    """``epoch 3/10 step 180/780 | D 0.712 G 2.841 | D(x) 0.68 D(G(z)) 0.25 acc 0.81 | 31.0 img/s | ETA 41m20s``.

    row: the losses, D's mean outputs and accuracy, and img/s. acc: D's accuracy, the share of real
    and generated images it tells apart (0.5: it guesses).
    """
    epochs = math.ceil(total_steps / steps_per_epoch)
    return (f"epoch {(step - 1) // steps_per_epoch + 1}/{epochs} step {step}/{total_steps} | "
            f"D {row['d_loss']:.3f} G {row['g_loss']:.3f} | D(x) {row['d_real']:.2f} D(G(z)) {row['d_fake']:.2f} "
            f"acc {row['d_acc']:.2f} | {row['img_per_s']:.1f} img/s | ETA {format_duration(eta_seconds)}")


class RunMonitor:
    """What a run writes besides its loss log and checkpoints: sample grids and the loss plot, FID scores (and
    the best one so far), D as a judge on held-out faces, and the closing line.

    folder: the RunFolder; config: the run's settings; images: its faces (N, S, S, 3) uint8, of which
    ``held_out`` (the last ones) are never trained on; epoch_steps: the steps of an epoch (the logs' epochs);
    G: the generator in training; averaged: its
    tinygan.ema.AveragedGenerator (None: G paints); say: where messages go; verbose: Inception's progress.
    """

    def __init__(self, folder, config, images, *, held_out, epoch_steps, G, averaged, say, verbose):
        self.folder, self.G, self.averaged, self.say = folder, G, averaged, say
        self.fid_raw, self.epoch_steps = config["fid_raw"], epoch_steps
        self.fid = FIDTracker(folder, images, config["fid_weights"], config["fid_n"], config["fid_real_n"], say=say,
                              verbose=verbose)
        self.judge = JudgeTracker(folder, images[len(images) - held_out:]) if held_out else None
        self.best = None                         # {"step", "fid"} of checkpoints/best.npz

    def logs(self):
        return [self.fid.log] + ([self.judge.log] if self.judge is not None else [])

    @contextlib.contextmanager
    def painting(self, step, raw=False):
        """The generator that paints at ``step``, in eval mode: the averaged one (its BatchNorm recalibrated once
        per step, tinygan.ema) where there is one and not ``raw``, else G, which is back in train mode after the
        block."""
        try:
            yield self.averaged.at_step(step) if self.averaged is not None and not raw else self.G.eval()
        finally:
            self.G.train()

    def write_samples(self, step, noise):
        """The grid of the faces painted from ``noise`` at ``step`` and the loss plot (with D's accuracy as a
        judge where there is a judge log)."""
        with self.painting(step) as G:
            path = viz.save_grid(G(noise), self.folder.sample(step))
        if self.folder.loss_log.exists():
            judge_log = self.folder.judge_log
            viz.plot_losses(self.folder.loss_log, self.folder.loss_plot, title="DCGAN losses",
                            judge_rows=read_log(judge_log) if judge_log.is_file() else None)
        return path

    def score_fid(self, step, save_best):
        """FID of the painting generator (and of the raw G too with fid_raw), logged and said; when it is the best
        so far, ``save_best()`` writes the best checkpoint first. Returns the score."""
        with self.painting(step) as G:
            generators = {"ema" if self.averaged is not None else "raw": G}
            if self.fid_raw and self.averaged is not None:
                generators["raw"] = self.G.eval()
            score, row = self.fid.score(step, step / self.epoch_steps, generators)
        is_best = self.best is None or score < self.best["fid"]
        if is_best:
            self.best = {"step": step, "fid": score}
            save_best()
        best = self.folder.best.relative_to(self.folder.root)
        self.say(f"FID {score:.1f} at step {step} ({row['n_fake']} faces of the {row['generator']} G vs "
                 f"{row['n_real']} real)" + (f" - the best so far: saved {best}" if is_best else
                                            f"; the best is {self.best['fid']:.1f} at step {self.best['step']}"))
        return score

    def score_judge(self, step, D):
        """D's eval-mode accuracy on the held-out faces and fresh fakes of the painting generator (JudgeTracker),
        logged and said."""
        if self.judge is None:
            return None
        with self.painting(step) as G:
            row = self.judge.score(step, step / self.epoch_steps, D, G)
        self.say(f"D as a judge at step {step} (eval mode, one image at a time): {row['real_called_real']:.0%} "
                 f"of {row['n_real']} held-out real faces called real, {row['fake_called_fake']:.0%} of as many fresh "
                 "fakes called fake")
        return row

    def finish(self, step):
        folder = self.folder
        self.say(f"done: step {step}. Samples in {folder.samples}, loss log {folder.loss_log}, plot "
                 f"{folder.loss_plot}, GIF {make_training_gif(folder.root)}, checkpoints in {folder.checkpoints}")


class JudgeTracker:
    """How good a judge D is, every checkpoint: its eval-mode accuracy on real faces kept out of training
    (``held_out``, uint8 (N, S, S, 3)) and on as many fresh fakes of the painting generator, logged to
    judge_log.csv and drawn into the loss plot beside the train-mode d_acc."""

    def __init__(self, folder, held_out):
        self.held_out = held_out
        self.log = CsvLog(folder.judge_log, JUDGE_FIELDS)

    def score(self, step, epoch, D, G):
        """Log one row for D (any mode; put back as it was) and the generator G (eval mode)."""
        from .judge import accuracy, fresh_fakes
        row = dict(accuracy(D, self.held_out, fresh_fakes(G, len(self.held_out))), step=step, epoch=epoch)
        self.log.append(row)
        return row


def make_training_gif(run_dir, every=1, duration_ms=300, out=None):
    """training.gif from a run's sample grids (every ``every``-th one), each captioned with its step."""
    folder = RunFolder(run_dir)
    grids = folder.sample_grids()[::max(1, every)]
    if not grids:
        raise FileNotFoundError(f"no sample grids ({SAMPLE_PATTERN}) in {run_dir}")
    return viz.save_gif([path for _, path in grids], out or folder.gif, duration_ms=duration_ms,
                        captions=[f"step {step}" for step, _ in grids])


class FIDTracker:
    """FID of a run's generators every ``fid_every`` steps, logged to fid_log.csv and plotted as fid_plot.png.

    folder: the RunFolder; real_images: the training images (N, H, W, 3) uint8, of which the first
    ``n_real`` are the reference; weights: the Inception weights (None: the default download);
    n_fake: faces per score; say: where messages go; verbose: whether Inception reports its progress.
    The reference's Inception statistics are computed once per run and kept in the run folder
    (``fid_reference.npz``). The fakes are the faces of seeds 0 .. n_fake - 1, the same z every time,
    so that two scores differ by the generator only.
    """

    def __init__(self, folder, real_images, weights, n_fake, n_real, say=print, verbose=True):
        self.folder, self.real_images, self.weights = folder, real_images, weights
        self.n_fake, self.n_real = n_fake, min(n_real, len(real_images))
        self.say, self.verbose = say, verbose
        self.log = CsvLog(folder.fid_log, FID_FIELDS)
        self._reference = None

    def reference(self):
        """(mu, sigma, n) of the first n_real training images."""
        from . import fid
        if self._reference is None:
            n, path = self.n_real, self.folder.fid_reference
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
            viz.plot_fid(*curve["raw"], self.folder.fid_plot)
        else:
            viz.plot_fid(*curve["ema"], self.folder.fid_plot, label="averaged G (EMA)",
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
