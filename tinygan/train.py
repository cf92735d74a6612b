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
can be resumed. Beside the loop: what the run shows while it trains (progress line, grids, plots, FID, GIF) in
tinygan.monitor; the settings and their checks in tinygan.config; the run folder's files and taking it over in
tinygan.run_folder; the log's columns and window in tinygan.logs; the divergence rule and the healthy checkpoints
in tinygan.health; stopping between steps in tinygan.stopping. Lesson 13 builds d_step and g_step itself and
checks them against these.
"""
import functools
import json
import time
from pathlib import Path


from . import backend, checkpoint, files, logs, monitor, run_folder
from .augment import DiffAugment
from .config import DEFAULTS, OPTIONS, PRESETS, make_config, model_config, validate_config  # noqa: F401
from .ema import AveragedGenerator
from .health import DivergenceError, HealthWatch  # noqa: F401
from .logs import LOG_FIELDS
from .losses import BCEWithLogitsLoss
from .nn import sigmoid
from .optim import Adam
from .run_folder import RunFolder
from .stopping import TrainingStopped, interrupts_between_steps


def d_step(D, opt_D, loss, real, fake, real_label=1.0, augment=None):
    """One D update: real faces towards ``real_label`` (1, or less with one-sided label smoothing), the fakes
    towards 0; G(z) is a constant here. D sees both only through ``augment`` where given (tinygan.augment).

    Returns (L_D, D's logits on the real batch, on the fake batch)."""
    see = augment if augment is not None else (lambda images: images)
    opt_D.zero_grad()
    real_logits = D(see(real))
    d_loss = loss(real_logits, real_label)
    D.backward(loss.backward(), need_input_grad=False)          # D's gradients add up over the two batches
    fake_logits = D(see(fake))
    d_loss = d_loss + loss(fake_logits, 0.0)
    D.backward(loss.backward(), need_input_grad=False)
    opt_D.step()
    return d_loss, real_logits, fake_logits


def g_step(G, D, opt_G, loss, fake, augment=None):
    """One G update through a fixed D, with the non-saturating loss L_G = BCE(D(G(z)), 1). Returns L_G.

    D passes the gradient on to G(z) but accumulates no dL/dW of its own (a third of its backward saved)."""
    opt_G.zero_grad()
    D.requires_grad_(False)
    g_logits = D(augment(fake) if augment is not None else fake)
    g_loss = loss(g_logits, 1.0)
    grad_fake = D.backward(loss.backward())                        # dL/dG(z), through a fixed D
    if augment is not None:
        grad_fake = augment.backward(grad_fake)                    # ... and back through the augmentation
    G.backward(grad_fake, need_input_grad=False)
    D.requires_grad_(True)
    opt_G.step()
    return g_loss


class Trainer:
    """Owns G, D, their optimisers and the data; ``run()`` trains, ``save()`` checkpoints. config: a training config
    (DEFAULTS, make_config); dataset: a FaceDataset or uint8 (N, S, S, 3), else the config's ``data`` is loaded;
    verbose: print progress. Building a Trainer writes nothing; ``run()`` does."""

    def __init__(self, config, dataset=None, verbose=True):
        from .data import BatchLoader
        c = self.config = validate_config(dict(DEFAULTS, **config))
        self.verbose, self.out, self.folder = verbose, Path(c["out"]), RunFolder(c["out"])
        self.say = functools.partial(print, flush=True) if verbose else (lambda text: None)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file; expected a folder for the run")
        self.dataset = dataset = training_faces(c, dataset, verbose)
        images = getattr(dataset, "images", dataset)
        held_out = min(c["judge_held_out"], len(images) // 10)       # the last faces, never trained on
        self.loader = BatchLoader(images[:len(images) - held_out], c["batch_size"], seed=c["seed"], flip=c["flip"])
        self.model = model_config(c)
        init_rng = backend.default_rng([c["seed"], 0])
        self.G, self.D = self.model.generator(init_rng), self.model.discriminator(init_rng)
        # The averaged generator (tinygan.ema): it paints the samples, and it is what generate uses.
        self.ema = AveragedGenerator(self.G, self.model, c["ema_decay"], c["seed"]) if c["ema_decay"] else None
        self.opt_G = Adam(self.G.parameters(), c["lr"], (c["beta1"], c["beta2"]))
        self.opt_D = Adam(self.D.parameters(), c["lr"], (c["beta1"], c["beta2"]))
        self.loss = BCEWithLogitsLoss()
        self.noise_rng = backend.default_rng([c["seed"], 1])
        # DiffAugment (tinygan.augment): D sees real and fake images only through the same random augmentation.
        self.augment = DiffAugment(c["augment"], rng=backend.default_rng([c["seed"], 4])) if c["augment"] else None
        self.fixed_noise = self.G.sample_noise(backend.default_rng([c["seed"], 2]), c["n_samples"])
        self.step, self.window, self.resumed_from = 0, logs.LogWindow(), None
        self.log = logs.CsvLog(self.folder.loss_log, LOG_FIELDS, optional=logs.ACCURACY_FIELDS)
        self.monitor = monitor.RunMonitor(self.folder, c, images, held_out=held_out, epoch_steps=len(self.loader),
                                          G=self.G, averaged=self.ema, say=self.say, verbose=verbose)
        self.health = HealthWatch(self.folder.checkpoint, self.say)

    def train_step(self, real):
        """One D update and one G update (d_step, g_step); returns the step's losses and D's outputs, as 0-d
        arrays on the backend: reading them would wait for a GPU, so the loop reads a window of steps at once."""
        z = self.G.sample_noise(self.noise_rng, real.shape[0])
        fake = self.G(z)                                                # (N, 3, 64, 64), used by both updates
        d_loss, real_logits, fake_logits = d_step(self.D, self.opt_D, self.loss, real, fake,
                                                  self.config["real_label"], self.augment)
        g_loss = g_step(self.G, self.D, self.opt_G, self.loss, fake, self.augment)
        if self.ema is not None:
            self.ema.update(self.G)
        self.step += 1
        return {"d_loss": d_loss, "g_loss": g_loss,                     # D(x) > 0.5 exactly where the logit is > 0
                "d_real": sigmoid(real_logits).mean(), "d_fake": sigmoid(fake_logits).mean(),
                "d_acc_real": (real_logits > 0).mean(), "d_acc_fake": (fake_logits < 0).mean()}

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
        with files.RunLock(self.folder.lock):
            run_folder.take_over(self.out, self.resumed_from, overwrite, self.say)
            for log in [self.log] + self.monitor.logs():
                log.truncate_after(self.step)     # rows a crashed run wrote after its checkpoint
            files.write_text(self.folder.config, json.dumps(self.config, indent=2))
            if self.step == 0 and not self.folder.checkpoint_files():
                self.save()                       # step 0: a run killed at any moment can be resumed
            try:
                return self._loop(minutes, on_sample)
            except OSError as err:
                raise OSError(err.errno, f"training stopped at step {self.step}: {err.strerror or err}"
                                         f"{'' if err.filename is None else f' ({err.filename})'}") from None

    def _loop(self, minutes, on_sample):
        c, per_epoch, total = self.config, len(self.loader), self.total_steps
        self.say(monitor.start_line(c, len(self.loader.images), self.monitor.judge, per_epoch, self.step, total,
                                    minutes, self.out))
        t_start = t_window = time.perf_counter() - self.window.seconds
        start_step, row = self.step, None
        deadline = t_start + 60 * minutes if minutes is not None else float("inf")
        with interrupts_between_steps(self.say) as stop_requested:
            while self.step < total:
                signum = stop_requested()
                if signum is not None or time.perf_counter() > deadline:
                    self.window.seconds = time.perf_counter() - t_window
                    self._stop_early(signum, minutes, on_sample)
                    return row
                self.window.add(self.train_step(self.loader.get_batch(*divmod(self.step, per_epoch))))
                now, last = time.perf_counter(), self.step == total
                eta = min((total - self.step) * (now - t_start) / (self.step - start_step), max(deadline - now, 0))
                if self.step % c["log_every"] == 0 or last:
                    row = self._log_row(now - t_window)
                    self.say(monitor.progress_line(self.step, total, per_epoch, row, eta))
                    t_window = now
                elif self.step == start_step + 1:             # a first progress line at once
                    values = self.window.values(last=1)
                    self.health.check_finite(values, self.step)
                    first = dict(logs.means(values), img_per_s=c["batch_size"] / (now - t_start))
                    self.say(monitor.progress_line(self.step, total, per_epoch, first, eta))
                if self.step % c["sample_every"] == 0 or last:
                    self.write_samples(on_sample)
                if c["fid_every"] and (self.step % c["fid_every"] == 0 or last):
                    self.monitor.score_fid(self.step, lambda: checkpoint.save(self.folder.best, self.state()))
                if self.step % c["checkpoint_every"] == 0 or last:
                    judging = time.perf_counter()
                    self.monitor.score_judge(self.step, self.D)
                    spent = time.perf_counter() - judging          # the judge's seconds are not training's
                    t_start, t_window = t_start + spent, t_window + spent
                    self.window.seconds = time.perf_counter() - t_window
                    self.save()
        self.monitor.finish(self.step)
        return row

    def _stop_early(self, signum, minutes, on_sample):
        """Ctrl-C, SIGTERM or the time budget: save, and say how to go on (TrainingStopped for a signal)."""
        path = self.save()
        if signum is not None:
            self.say(f"stopped at step {self.step}; saved {path}. Continue with --resume {self.out}")
            raise TrainingStopped(signum)
        if self.step % self.config["sample_every"]:                # the faces it ends with
            self.write_samples(on_sample)
        self.say(f"time budget of {minutes:g} minutes used at step {self.step}; saved {path}. "
                 f"Continue with --resume {self.out}")
        self.monitor.finish(self.step)

    def _log_row(self, seconds):
        """One log row: the means over the steps since the last row; then the health check."""
        values = self.window.values()
        self.health.check_finite(values, self.step)
        row = {"step": self.step, "epoch": self.step / len(self.loader), **logs.means(values),
               "img_per_s": len(values) * self.config["batch_size"] / seconds}
        self.log.append(row)
        self.window.clear()
        self.health.check(self.step, row, {"G": self.G, "D": self.D})
        return row

    def painting(self, raw=False):
        """``with trainer.painting() as G:`` the generator that paints now (the averaged one unless ``raw``), in
        eval mode; G trains on after the block (tinygan.monitor.RunMonitor.painting)."""
        return self.monitor.painting(self.step, raw)

    def write_samples(self, on_sample=None):
        """The fixed-noise grid of this step (samples/); then ``on_sample(trainer)``."""
        self.monitor.write_samples(self.step, self.fixed_noise)
        if on_sample is not None:
            on_sample(self)

    # --- checkpoints ------------------------------------------------------------
    def state(self):
        """Everything that decides the next step, as a checkpoint's tree."""
        state = {"format": "tinygan-dcgan-train", "step": self.step, "config": self.config,
                 "model": self.model.to_dict(), "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "optim_G": self.opt_G.state_dict(), "optim_D": self.opt_D.state_dict(),
                 "rng": {"noise": self.noise_rng.state(),
                         **({"augment": self.augment.rng.state()} if self.augment is not None else {})},
                 "fixed_noise": backend.to_numpy(self.fixed_noise),
                 "data_order": self.loader.state(self.step)}
        if self.ema is not None:
            state.update(self.ema.state(self.step))
        extras = {"log_window": self.window.state(),     # the unfinished log row: resumed, it logs the same means
                  "best": self.monitor.best, "last_healthy": self.health.last_healthy}
        return dict(state, **{key: value for key, value in extras.items() if value is not None})

    def save(self):
        """Write checkpoints/ckpt_<step>.npz atomically, keeping the last ``keep_last`` and the last healthy one.

        Nothing is saved when a weight is not finite or past the stop limits (DivergenceError).
        """
        path = self.folder.checkpoint(self.step)
        try:
            with self.health.saving(self.step, {"G": self.G, "D": self.D}) as protect:
                checkpoint.save(path, self.state())
                run_folder.prune(self.folder.checkpoints, self.config["keep_last"], protect=protect)
        except OSError as err:
            previous = run_folder.latest(self.folder.checkpoints)
            kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
            raise OSError(err.errno, f"could not write checkpoint {path}: {err.strerror or err}; {kept}") from None
        return path

    def load_state(self, state):
        """Continue from a checkpoint's state (the networks, optimisers, noise, log window, ...)."""
        for part, key in ((self.G, "G"), (self.D, "D"), (self.opt_G, "optim_G"), (self.opt_D, "optim_D")):
            part.load_state_dict(state[key])
        if self.ema is not None:
            self.ema.load_state(state, self.G)
        self.noise_rng.set_state(state["rng"]["noise"])
        if self.augment is not None and "augment" in state["rng"]:
            self.augment.rng.set_state(state["rng"]["augment"])
        self.fixed_noise = backend.to_device(state["fixed_noise"])
        self.step = int(state["step"])
        self.loader.check_state(state["data_order"], self.config["data"])
        self.window.load_state(state.get("log_window"))
        self.monitor.best, self.health.last_healthy = state.get("best"), state.get("last_healthy")


def training_faces(config, dataset, verbose):
    """The faces a run trains on: ``dataset`` (a FaceDataset or uint8 (N, S, S, 3)), else the config's data,
    decoded and cached (tinygan.data, which loads Pillow: only training from files needs it)."""
    if dataset is None:
        from .data import FaceDataset
        if not config["data"]:
            raise ValueError("no training data: pass --data PATH (a CelebA folder, .zip or .tar)")
        dataset = FaceDataset(config["data"], image_size=config["image_size"], crop=config["crop"],
                              limit=config["limit"], verbose=verbose)
    if len(dataset) < config["batch_size"]:
        raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of {config['batch_size']}; "
                         "lower --batch-size")
    return dataset


def planned_steps(config, training_images):
    """The steps a run trains in all: --max-steps, else --epochs full batches over its training images."""
    return config["max_steps"] or config["epochs"] * (training_images // config["batch_size"])


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
    if run_folder.stopped_before_first_checkpoint(path):
        raise ValueError(f"{path} holds a run that was stopped before its first checkpoint was written: there is "
                         "nothing to resume; start it again with the same command (without --resume)")
    state, ckpt, skipped = run_folder.load_newest(path)
    for bad, reason in skipped:
        print(f"skipping {bad}: {reason}")
    if state.get("format") != "tinygan-dcgan-train":
        raise ValueError(f"{ckpt} is not a tinygan training checkpoint (format {state.get('format')!r})")
    source = run_folder.run_folder_of(ckpt)
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
