"""The GAN training loop: alternate D and G steps, checkpoint, resume.

One step on a real batch x and noise z (Goodfellow et al. 2014, with the
non-saturating generator loss; Radford et al. 2016 settings):

    D step:  maximise log D(x) + log(1 - D(G(z)))   i.e. BCE(D(x), 1) + BCE(D(G(z)), 0)
    G step:  maximise log D(G(z))                    i.e. BCE(D(G(z)), 1)

D returns logits, so every BCE is the stable BCE-with-logits. In the D step
G(z) is a constant (we never backpropagate into G). In the G step D is a fixed
function: we pass the gradient through it to G(z) but do not accumulate dL/dW
for D, which saves a third of D's backward work. After the G step the running
average of G's weights is updated (tinygan.ema); that average paints the samples.

Everything that decides the next step is in a checkpoint: both networks (with
BatchNorm running statistics), the averaged G, both Adam states, the step, the
noise RNG state, the unfinished log window and the config. The batch order is a
pure function of (seed, epoch), so resuming continues bit-identically, as if the
run had never stopped.

A run folder belongs to one run. ``run()`` locks it for its lifetime, refuses
to start a new run where another run's checkpoints or log are, writes only
inside it, and saves a checkpoint at step 0, so that a run killed at any moment
can be resumed. What the run shows while it trains (progress line, grids, plots,
FID, GIF) lives in tinygan.monitor; the settings and their checks in tinygan.config; taking over the run
folder in tinygan.run_folder; the divergence rule in tinygan.health. Lesson 13 builds the step itself.
"""
import contextlib
import json
import signal
import time
from pathlib import Path

import numpy as np

from . import backend, checkpoint, files, monitor, run_folder
from .augment import DiffAugment
from .config import DEFAULTS, OPTIONS, PRESETS, make_config, model_config, validate_config  # noqa: F401
from .health import (LOSS_STOP, LOSS_WARNING, WEIGHT_RMS_STOP, WEIGHT_RMS_WARNING,  # noqa: F401
                     DivergenceError, check_health)
from .run_folder import RUN_FILES, holds_a_run, run_folder_of  # noqa: F401
from .ema import EMA, calibration_noise, recalibrate_batchnorm
from .losses import BCEWithLogitsLoss
from .nn import sigmoid
from .optim import Adam
from .viz import ACCURACY_FIELDS       # a log started before the accuracy was logged lacks them

# d_real, d_fake: mean D(x) and D(G(z)). d_acc_real, d_acc_fake: D's accuracy, the share of real images it
# calls real (D(x) > 0.5) and of generated ones it calls fake (D(G(z)) < 0.5); d_acc: both together.
LOG_FIELDS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake", "d_acc",
              "img_per_s")
HEALTH_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")      # a non-finite one stops the run
STAT_KEYS = HEALTH_KEYS + ("d_acc_real", "d_acc_fake")       # what train_step returns, in this order

class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training after a step; a checkpoint was saved."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interrupts_between_steps(say):
    """Make Ctrl-C (SIGINT) and SIGTERM stop training *between* steps.

    A KeyboardInterrupt in the middle of a step could leave D updated and G
    not, and a checkpoint of that state would not resume exactly. Inside this
    block the first signal only records itself, and the loop checks before each
    step; a second one interrupts at once (nothing more is saved then). SIGTERM is
    what job schedulers, `timeout` and container shutdowns send. Yields the check,
    which returns the signal number or None. Outside the main thread no handler
    can be installed (Python delivers signals to the main thread only).
    """
    received = []

    def on_signal(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        say(f"\n{name}: stopping after this step and saving a checkpoint (send it again to stop at once)")

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    except ValueError:                  # not the main thread
        yield lambda: None
        return
    try:
        yield lambda: received[0] if received else None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Trainer:
    """Owns G, D, their optimisers and the data; ``run()`` trains, ``save()`` checkpoints.

    config: a training config (see DEFAULTS and make_config); dataset: a FaceDataset
    or a uint8 array (N, S, S, 3), else the config's ``data`` is loaded; verbose: print
    progress. Building a Trainer writes nothing; ``run()`` does.
    """

    def __init__(self, config, dataset=None, verbose=True):
        from .data import BatchLoader, FaceDataset   # data pulls in Pillow; only training needs it
        self.config = validate_config(dict(DEFAULTS, **config))
        c = self.config
        self.verbose = verbose
        self.out = Path(c["out"])
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file; expected a folder for the run")
        if dataset is None:
            if not c["data"]:
                raise ValueError("no training data: pass --data PATH (a CelebA folder, .zip or .tar)")
            dataset = FaceDataset(c["data"], image_size=c["image_size"], crop=c["crop"], limit=c["limit"],
                                  verbose=verbose)
        if len(dataset) < c["batch_size"]:
            raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of {c['batch_size']}; "
                             "lower --batch-size")
        self.dataset = dataset
        images = getattr(dataset, "images", dataset)
        held_out = min(c["judge_held_out"], len(images) // 10)       # the last faces, never trained on
        self.loader = BatchLoader(images[:len(images) - held_out], c["batch_size"], seed=c["seed"], flip=c["flip"])
        self.judge = monitor.JudgeTracker(self.out, images[len(images) - held_out:]) if held_out else None
        self.model = model_config(c)
        init_rng = backend.default_rng([c["seed"], 0])
        self.G = self.model.generator(init_rng)
        self.D = self.model.discriminator(init_rng)
        # The averaged generator (tinygan.ema): it paints the samples, and it is what generate uses.
        self.ema = EMA(self.G, c["ema_decay"]) if c["ema_decay"] else None
        self.G_ema = self.model.generator(rng=0).eval() if self.ema else None
        self._G_ema_step = None                  # the step whose averaged weights G_ema holds
        betas = (c["beta1"], c["beta2"])
        self.opt_G = Adam(self.G.parameters(), c["lr"], betas)
        self.opt_D = Adam(self.D.parameters(), c["lr"], betas)
        self.loss = BCEWithLogitsLoss()
        self.noise_rng = backend.default_rng([c["seed"], 1])
        # DiffAugment (tinygan.augment): D sees real and fake images only through the same random augmentation.
        self.augment = DiffAugment(c["augment"], rng=backend.default_rng([c["seed"], 4])) if c["augment"] else None
        self.fixed_noise = self.G.sample_noise(backend.default_rng([c["seed"], 2]), c["n_samples"])
        self.step = 0
        self.window, self.window_seconds = [], 0.0   # the steps since the last log row, and their time
        self.log = checkpoint.LossLog(self.out / "loss_log.csv", LOG_FIELDS, optional=ACCURACY_FIELDS)
        self.fid = monitor.FIDTracker(self.out, getattr(dataset, "images", dataset), c["fid_weights"], c["fid_n"],
                                      c["fid_real_n"], say=self.say, verbose=self.verbose)
        self.best = None                         # {"step", "fid"} of checkpoints/best.npz
        self.last_healthy = None                 # the newest checkpoint saved with no sign of trouble
        self.warning = None                      # the first sign of trouble since the last checkpoint
        self.resumed_from = None                 # the run folder a resumed trainer continues

    # --- one step ---------------------------------------------------------------
    def train_step(self, real):
        """One D update and one G update; returns the step's losses and D's mean outputs."""
        c, G, D, loss = self.config, self.G, self.D, self.loss
        z = G.sample_noise(self.noise_rng, real.shape[0])
        fake = G(z)                                                     # (N, 3, 64, 64)

        augment = self.augment if self.augment is not None else (lambda images: images)   # what D sees

        # D step: real images towards real_label, fakes towards 0. G(z) is a constant here.
        self.opt_D.zero_grad()
        real_logits = D(augment(real))
        d_loss_real = loss(real_logits, c["real_label"])
        D.backward(loss.backward(), need_input_grad=False)
        fake_logits = D(augment(fake))
        d_loss_fake = loss(fake_logits, 0.0)
        D.backward(loss.backward(), need_input_grad=False)
        self.opt_D.step()

        # G step (non-saturating): make the updated D call the fakes real.
        self.opt_G.zero_grad()
        D.requires_grad_(False)
        g_logits = D(augment(fake))
        g_loss = loss(g_logits, 1.0)
        grad_fake = D.backward(loss.backward())                        # dL/dG(z), through a fixed D
        if self.augment is not None:
            grad_fake = self.augment.backward(grad_fake)               # ... and back through the augmentation
        D.requires_grad_(True)
        G.backward(grad_fake, need_input_grad=False)
        self.opt_G.step()
        if self.ema is not None:
            self.ema.update(G)
        self.step += 1

        # 0-d arrays on the backend: reading them would wait for the GPU, so run() reads a
        # whole window of steps at once, at log time.
        # D(x) > 0.5 exactly where the logit is > 0
        return {"d_loss": d_loss_real + d_loss_fake, "g_loss": g_loss,
                "d_real": sigmoid(real_logits).mean(), "d_fake": sigmoid(fake_logits).mean(),
                "d_acc_real": (real_logits > 0).mean(), "d_acc_fake": (fake_logits < 0).mean()}

    def read_stats(self, window):
        """Step stats (device scalars) -> a float row of means; DivergenceError at the first non-finite step."""
        values = self._window_values(window)
        bad = ~np.isfinite(values[:, :len(HEALTH_KEYS)]).all(axis=1)
        if bad.any():
            step = self.step - len(window) + int(np.argmax(bad)) + 1
            losses = dict(zip(HEALTH_KEYS, values[np.argmax(bad)].tolist()))
            raise DivergenceError(f"training diverged at step {step}: {losses}. {self._where_to_resume()}")
        stats = dict(zip(STAT_KEYS, values.mean(axis=0).tolist()))
        stats["d_acc"] = (stats["d_acc_real"] + stats["d_acc_fake"]) / 2     # real and fake batches are equal
        return stats

    @staticmethod
    def _window_values(window):
        """(steps, len(STAT_KEYS)) float64 array of a window's stats, read from the device in one go."""
        xp = backend.xp
        stacked = xp.stack([xp.stack([xp.asarray(w[k], dtype=np.float64) for k in STAT_KEYS]) for w in window])
        return backend.to_numpy(stacked)

    # --- the loop ---------------------------------------------------------------
    @property
    def total_steps(self):
        return planned_steps(self.config, len(self.loader.images))

    def run(self, minutes=None, overwrite=False, on_sample=None):
        """Train until total_steps (or ``minutes`` have passed); returns the last log row.

        Writes samples, logs and checkpoints into the run folder, which it locks while it
        runs. A new run refuses a folder that holds another run's checkpoints or log,
        unless ``overwrite``. ``on_sample(trainer)`` is called after each sample grid.
        """
        if self.step >= self.total_steps:          # a finished run: nothing is trained, nothing rewritten
            self.say(nothing_left(self.out, self.step, self.config))
            return None
        with files.RunLock(self.out):
            self._prepare_folder(overwrite)
            try:
                return self._loop(minutes, on_sample)
            except OSError as err:
                raise OSError(err.errno, f"training stopped at step {self.step}: {err.strerror or err}"
                                         f"{'' if err.filename is None else f' ({err.filename})'}") from None

    def _prepare_folder(self, overwrite):
        """Take the run folder (tinygan.run_folder), drop log rows past the checkpoint, write config.json."""
        c = self.config
        run_folder.take_over(self.out, self.resumed_from, overwrite, self.say)
        self.log.truncate_after(self.step)           # rows a crashed run wrote after its checkpoint
        self.fid.log.truncate_after(self.step)
        if self.judge is not None:
            self.judge.log.truncate_after(self.step)
        files.write_text(self.out / "config.json", json.dumps(c, indent=2))
        if self.step == 0 and checkpoint.latest(self.out / "checkpoints") is None:
            self.save()                               # step 0: a run killed at any moment can be resumed

    def _loop(self, minutes, on_sample):
        c, per_epoch = self.config, len(self.loader)
        budget = f", or {minutes:g} minutes" if minutes else ""
        held_out = f" ({len(self.judge.held_out)} more held out to measure D as a judge)" if self.judge else ""
        self.say(f"training a {c['image_size']}x{c['image_size']} DCGAN on {len(self.loader.images)} images{held_out} "
                 f"({per_epoch} batches of {c['batch_size']} per epoch) for {self.total_steps - self.step} steps "
                 f"(to step {self.total_steps}{budget}), backend {backend.name()}; writing to {self.out}")
        t_start = t_window = time.perf_counter() - self.window_seconds
        start_step, row = self.step, None
        deadline = t_start + 60 * minutes if minutes is not None else float("inf")
        with interrupts_between_steps(self.say) as stop_requested:
            while self.step < self.total_steps:
                signum = stop_requested()
                if signum is not None or time.perf_counter() > deadline:
                    self.window_seconds = time.perf_counter() - t_window
                    path = self.save()
                    if signum is None:
                        if self.step % c["sample_every"]:             # the faces it ends with
                            self.write_samples(on_sample)
                        self.say(f"time budget of {minutes:g} minutes used at step {self.step}; saved {path}. "
                                 f"Continue with --resume {self.out}")
                        self.finish()
                        return row
                    self.say(f"stopped at step {self.step}; saved {path}. Continue with --resume {self.out}")
                    raise TrainingStopped(signum)
                epoch, index = divmod(self.step, per_epoch)
                self.window.append(self.train_step(self.loader.get_batch(epoch, index)))
                now = time.perf_counter()
                steps_per_s = (self.step - start_step) / (now - t_start)
                eta = min((self.total_steps - self.step) / steps_per_s, max(deadline - now, 0))
                if self.step % c["log_every"] == 0 or self.step == self.total_steps:
                    row = self._log_window(now - t_window)
                    self.say(monitor.progress_line(self.step, self.total_steps, per_epoch, row, eta))
                    t_window = now
                elif self.step == start_step + 1:             # a first progress line at once
                    first = dict(self.read_stats(self.window[-1:]), img_per_s=c["batch_size"] / (now - t_start))
                    self.say(monitor.progress_line(self.step, self.total_steps, per_epoch, first, eta))
                if self.step % c["sample_every"] == 0 or self.step == self.total_steps:
                    self.write_samples(on_sample)
                if c["fid_every"] and (self.step % c["fid_every"] == 0 or self.step == self.total_steps):
                    self.score_fid()
                if self.step % c["checkpoint_every"] == 0 or self.step == self.total_steps:
                    judging = time.perf_counter()
                    self.score_judge()
                    spent = time.perf_counter() - judging          # the judge's seconds are not training's
                    t_start, t_window = t_start + spent, t_window + spent
                    self.window_seconds = time.perf_counter() - t_window
                    self.save()
        if self.step >= self.total_steps:
            self.finish()
        return row

    def write_samples(self, on_sample=None):
        """The fixed-noise grid of this step (samples/), painted by sampling_generator(); then ``on_sample``."""
        faces = self.sampling_generator()(self.fixed_noise)
        self.G.train()
        monitor.save_samples(faces, self.out, self.step, self.log.path)
        if on_sample is not None:
            on_sample(self)

    def _log_window(self, seconds):
        """One log row: the means over the steps since the last row; then the health check."""
        row = {"step": self.step, "epoch": self.step / len(self.loader), **self.read_stats(self.window),
               "img_per_s": len(self.window) * self.config["batch_size"] / seconds}
        self.log.append(row)
        self.window, self.window_seconds = [], 0.0
        self._check(row)
        return row

    def _check(self, row):
        """Stop at the stop limits (DivergenceError); remember the first warning since the last checkpoint."""
        networks = {"G": self.G, "D": self.D}
        problems = check_health(row, networks, LOSS_STOP, WEIGHT_RMS_STOP)
        if problems:
            raise DivergenceError(f"training blew up at step {self.step}: {'; '.join(problems)} (it stops at a loss "
                                  f"above {LOSS_STOP:g} or a weight RMS above {WEIGHT_RMS_STOP:g}; a healthy DCGAN "
                                  f"stays far below both). Nothing was saved. {self._where_to_resume()}")
        problems = check_health(row, networks, LOSS_WARNING, WEIGHT_RMS_WARNING)
        if problems and self.warning is None:
            self.warning = f"step {self.step}: {'; '.join(problems)}"
            self.say(f"warning: {self.warning} (above the warning limits {LOSS_WARNING:g} and "
                     f"{WEIGHT_RMS_WARNING:g}); checkpoints are not counted as healthy until it passes")

    def _where_to_resume(self):
        if self.last_healthy is None:
            return "No checkpoint was saved before the trouble began; start again with a lower --lr or another --seed."
        path = checkpoint.step_path(self.out / "checkpoints", self.last_healthy)
        which = " (step 0: the untrained networks)" if self.last_healthy == 0 else ""
        return (f"The last checkpoint saved before the trouble began is kept: {path}{which}. Start again from it "
                f"with a lower learning rate (--resume {path} --lr ...) or another --seed.")

    def say(self, text):
        if self.verbose:
            print(text, flush=True)

    def finish(self):
        self.say(f"done: step {self.step}. Samples in {self.out / 'samples'}, loss log {self.log.path}, "
                 f"plot {self.out / 'loss_plot.png'}, GIF {monitor.make_training_gif(self.out)}, "
                 f"checkpoints in {self.out / 'checkpoints'}")

    # --- the generator that paints ------------------------------------------------
    def sampling_generator(self):
        """The generator that paints samples, in eval mode: the EMA one if there is one, else G.

        The EMA weights are copied in and BatchNorm recalibrated once per step (tinygan.ema).
        Put G back in train mode with ``G.train()`` after using G itself.
        """
        if self.ema is None:
            return self.G.eval()
        if self._G_ema_step != self.step:
            self.ema.copy_to(self.G_ema)
            recalibrate_batchnorm(self.G_ema, calibration_noise(self.G_ema, self.config["seed"]))
            self._G_ema_step = self.step
        return self.G_ema

    def score_fid(self):
        """FID now (tinygan.monitor.FIDTracker); writes checkpoints/best.npz when it is the best so far."""
        generators = {"ema" if self.ema is not None else "raw": self.sampling_generator()}
        if self.config.get("fid_raw") and self.ema is not None:
            generators["raw"] = self.G.eval()
        score, row = self.fid.score(self.step, self.step / len(self.loader), generators)
        self.G.train()
        is_best = self.best is None or score < self.best["fid"]
        if is_best:
            self.best = {"step": self.step, "fid": score}
            checkpoint.save(self.out / "checkpoints" / "best.npz", self.state())
        self.say(f"FID {score:.1f} at step {self.step} ({row['n_fake']} faces of the {row['generator']} G vs "
                 f"{row['n_real']} real)" + (" - the best so far: saved checkpoints/best.npz" if is_best else
                                            f"; the best is {self.best['fid']:.1f} at step {self.best['step']}"))
        return score

    def score_judge(self):
        """D's eval-mode accuracy on the held-out faces and fresh fakes (tinygan.monitor.JudgeTracker)."""
        if self.judge is None:
            return None
        row = self.judge.score(self.step, self.step / len(self.loader), self.D, self.sampling_generator())
        self.G.train()
        self.say(f"D as a judge at step {self.step} (eval mode, one image at a time): {row['real_called_real']:.0%} "
                 f"of {row['n_real']} held-out real faces called real, {row['fake_called_fake']:.0%} of as many fresh "
                 "fakes called fake")
        return row

    # --- checkpoints ------------------------------------------------------------
    def state(self):
        epoch = self.step // len(self.loader)
        state = {"format": "tinygan-dcgan-train", "step": self.step, "config": self.config,
                 "model": self.model.to_dict(), "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "optim_G": self.opt_G.state_dict(), "optim_D": self.opt_D.state_dict(),
                 "rng": {"noise": self.noise_rng.state(),
                         **({"augment": self.augment.rng.state()} if self.augment is not None else {})},
                 "fixed_noise": backend.to_numpy(self.fixed_noise),
                 "data_order": {"epoch": epoch, "order": self.loader.order(epoch)}}
        if self.ema is not None:
            state["G_ema"] = self.sampling_generator().state_dict()
            state["ema"] = self.ema.state_dict()
        if self.window:                     # the unfinished log row: resumed, it logs the same means
            state["log_window"] = {"stats": self._window_values(self.window), "seconds": self.window_seconds}
        for key in ("best", "last_healthy"):
            if getattr(self, key) is not None:
                state[key] = getattr(self, key)
        return state

    def save(self):
        """Write checkpoints/ckpt_<step>.npz atomically, keeping the last ``keep_last`` and the last healthy one.

        Nothing is saved when a weight is not finite or past the stop limits (DivergenceError).
        """
        self._check(None)
        path = checkpoint.step_path(self.out / "checkpoints", self.step)
        previous_healthy = self.last_healthy
        if self.warning is None:
            self.last_healthy = self.step                # this checkpoint counts as healthy
        protect = {previous_healthy} if self.warning is not None and previous_healthy is not None else set()
        try:
            checkpoint.save(path, self.state(), keep_last=self.config["keep_last"], protect=protect)
        except OSError as err:
            self.last_healthy = previous_healthy
            previous = checkpoint.latest(path.parent)
            kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
            raise OSError(err.errno, f"could not write checkpoint {path}: {err.strerror or err}; {kept}") from None
        self.warning = None
        return path

    def load_state(self, state):
        """Continue from a checkpoint's state (the networks, optimisers, noise, log window, ...)."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None and "G_ema" in state:
            self.G_ema.load_state_dict(state["G_ema"])
            self.ema.load_state_dict(state["ema"], self.G_ema)
            self._G_ema_step = int(state["step"])
        elif self.ema is not None:          # a checkpoint from before the EMA: start averaging here
            self.ema = EMA(self.G, self.config["ema_decay"])
        self.opt_G.load_state_dict(state["optim_G"])
        self.opt_D.load_state_dict(state["optim_D"])
        self.noise_rng.set_state(state["rng"]["noise"])
        if self.augment is not None and "augment" in state["rng"]:
            self.augment.rng.set_state(state["rng"]["augment"])
        self.fixed_noise = backend.to_device(state["fixed_noise"])
        self.step = int(state["step"])
        order = state["data_order"]
        if not np.array_equal(order["order"], self.loader.order(int(order["epoch"]))):
            raise ValueError(f"the data differs from the data this checkpoint was trained on "
                             f"({self.config['data']}): the batch order of epoch {order['epoch']} does not match")
        window = state.get("log_window")
        stats = pad_window_stats(window["stats"]) if window else []
        self.window = [dict(zip(STAT_KEYS, row)) for row in stats]
        self.window_seconds = float(window["seconds"]) if window else 0.0
        self.best = state.get("best")
        self.last_healthy = state.get("last_healthy")


def planned_steps(config, training_images):
    """The steps a run trains in all: --max-steps, else --epochs full batches over its training images."""
    return config["max_steps"] or config["epochs"] * (training_images // config["batch_size"])


def pad_window_stats(stats):
    """A checkpoint's unfinished log window, (steps, k) stats, as (steps, len(STAT_KEYS)): a checkpoint from
    before the accuracy was logged holds 4 stats a step, and the rest are unknown (NaN)."""
    stats = np.asarray(stats, dtype=np.float64)
    return np.pad(stats, ((0, 0), (0, len(STAT_KEYS) - stats.shape[1])), constant_values=np.nan)


def nothing_left(where, step, config):
    """What to say when a resumed run has no step left: how to give it more (--epochs only counts without
    --max-steps, which wins)."""
    more = f"--max-steps N (more than {step:,})" + ("" if config["max_steps"] else
                                                    f" or --epochs N (more than {config['epochs']})")
    return f"{where} is at step {step:,}, the last of this run: nothing is left to train. To train on, resume with {more}"


class RunFinished(Exception):
    """resume(..., finished_ok=False) of a run that has no step left to train: the message says how to go on."""


def resume(path, dataset=None, verbose=True, out=None, overwrite=False, finished_ok=True, **overrides):
    """Rebuild a Trainer from a checkpoint (file or run folder) and its stored config.

    The run continues in the run folder it was resumed from, or in ``out``: never in a
    folder named inside the checkpoint. In a run folder, a newest checkpoint that does
    not load (truncated by a full disk, say) is skipped for the one before it. Before any
    data is decoded it refuses a folder that is locked or holds another run (tinygan.run_folder),
    and with ``finished_ok=False`` a run with no step left (RunFinished).
    """
    if Path(path).is_dir() and not checkpoint.list_checkpoints(Path(path) / "checkpoints") and (
            Path(path) / "config.json").is_file():
        raise ValueError(f"{path} holds a run that was stopped before its first checkpoint was written: there is "
                         "nothing to resume; start it again with the same command (without --resume)")
    state, ckpt, skipped = checkpoint.load_newest(path)
    for bad, reason in skipped:
        print(f"skipping {bad}: {reason}")
    if state.get("format") != "tinygan-dcgan-train":
        raise ValueError(f"{ckpt} is not a tinygan training checkpoint (format {state.get('format')!r})")
    source = run_folder_of(ckpt)
    config = {key: value for key, value in dict(state["config"]).items() if key in DEFAULTS}
    config.setdefault("judge_held_out", 0)        # a run from before the option trained on every face
    config.update({key: value for key, value in overrides.items() if value is not None})
    config["out"] = str(out if out is not None else source)
    try:
        validate_config(dict(DEFAULTS, **config))
    except ValueError as err:
        raise ValueError(f"{ckpt} holds an invalid config: {err}") from None
    run_folder.refuse(config["out"], source, overwrite)
    step, steps = int(state["step"]), planned_steps(config, len(state["data_order"]["order"]))
    if not finished_ok and step >= steps:
        raise RunFinished(nothing_left(ckpt, step, config))
    trainer = Trainer(config, dataset=dataset, verbose=verbose)
    trainer.load_state(state)
    trainer.resumed_from = source
    trainer.say(f"resumed from {ckpt} at step {trainer.step}" + (f"; writing to {trainer.out}" if out else ""))
    return trainer
