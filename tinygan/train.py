"""The GAN training loop: alternate D and G steps, watch, checkpoint, resume.

One step on a real batch x and noise z (Goodfellow et al. 2014, with the
non-saturating generator loss; Radford et al. 2016 settings):

    D step:  maximise log D(x) + log(1 - D(G(z)))   i.e. BCE(D(x), 1) + BCE(D(G(z)), 0)
    G step:  maximise log D(G(z))                    i.e. BCE(D(G(z)), 1)

D returns logits, so every BCE is the stable BCE-with-logits. In the D step
G(z) is a constant (we never backpropagate into G). In the G step D is a fixed
function: we pass the gradient through it to G(z) but do not accumulate dL/dW
for D, which saves a third of D's backward work.

Everything that decides the next step is in a checkpoint: both networks (with
BatchNorm running statistics), both Adam states, the step, the noise RNG state
and the config. The batch order is a pure function of (seed, epoch), so resuming
continues bit-identically, as if the run had never stopped.
"""
import contextlib
import json
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import backend, checkpoint, viz
from .dcgan import ModelConfig
from .ema import EMA, calibration_noise, recalibrate_batchnorm
from .losses import BCEWithLogitsLoss
from .nn import sigmoid
from .optim import Adam

DEFAULTS = {
    "data": None,            # CelebA folder, .zip or .tar, or any folder of face images
    "out": "runs/dcgan",     # where samples, logs and checkpoints go
    "image_size": 64,
    "crop": 128 / 178,       # centred square crop, as a fraction of the image width
    "flip": True,            # random horizontal flips
    "limit": None,           # use only the first N images (small-data experiments)
    "nz": 100, "ngf": 64, "ndf": 64,
    "batch_size": 128,
    "lr": 2e-4, "beta1": 0.5, "beta2": 0.999,
    "z_dist": "normal",      # "normal": z ~ N(0, I); "uniform": z ~ U(-1, 1)
    "real_label": 1.0,       # < 1 gives one-sided label smoothing (Salimans et al. 2016 use 0.9)
    "epochs": 10,
    "max_steps": None,       # stop after this many steps in total (overrides epochs)
    "seed": 0,
    "log_every": 10,         # steps between loss-log rows and progress lines
    "sample_every": 100,     # steps between fixed-noise sample grids
    "checkpoint_every": 200,
    "keep_last": 3,          # checkpoints kept on disk
    "n_samples": 64,         # images in the fixed-noise grid
    "ema_decay": 0.999,      # EMA of G's weights (tinygan.ema); 0 turns it off
    "fid_every": 0,          # steps between FID scores of the sampling G (0: never); keeps checkpoints/best.npz
    "fid_n": 1000,           # generated faces per FID score during training
    "fid_real_n": 5000,      # real faces (the first of the data set) for FID's reference statistics
    "fid_weights": None,     # FID Inception weights (.npz/.pth/.pt); None: tinygan.fid's default search
}

PRESETS = {
    "dcgan": {},             # Radford et al.: Adam 2e-4, beta1 0.5, batch 128, z ~ N(0, I)
    "seed003": {"z_dist": "uniform", "lr": 3e-4, "batch_size": 64},   # the 'seed 003' variant
}

LOG_FIELDS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "img_per_s")
FID_FIELDS = ("step", "epoch", "fid", "n_fake", "n_real", "generator")


class DivergenceError(RuntimeError):
    """Raised when a loss or a weight becomes NaN or infinite."""


def make_config(preset="dcgan", **overrides):
    """DEFAULTS, then the named preset, then explicit overrides (None means 'keep')."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    config = dict(DEFAULTS, **PRESETS[preset])
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown training option {key!r}; expected one of {sorted(DEFAULTS)}")
        if value is not None:
            config[key] = value
    return validate_config(config)


def validate_config(config):
    positive = ("nz", "ngf", "ndf", "batch_size", "epochs", "log_every", "sample_every", "checkpoint_every",
                "keep_last", "n_samples", "fid_n", "fid_real_n")
    for key in positive:
        if not isinstance(config[key], (int, np.integer)) or config[key] < 1:
            raise ValueError(f"training option {key} must be a positive integer, got {config[key]!r}")
    if not isinstance(config["fid_every"], (int, np.integer)) or config["fid_every"] < 0:
        raise ValueError(f"training option fid_every must be an integer >= 0, got {config['fid_every']!r}")
    if not (config["ema_decay"] == 0 or 0 < config["ema_decay"] < 1):
        raise ValueError(f"training option ema_decay must be 0 (off) or in (0, 1), got {config['ema_decay']!r}")
    model_config(config)                   # nz, ngf, ndf, image_size, z_dist within their ranges
    if not config["lr"] > 0:
        raise ValueError(f"training option lr must be > 0, got {config['lr']!r}")
    if not 0 < config["real_label"] <= 1:
        raise ValueError(f"training option real_label must be in (0, 1], got {config['real_label']!r}")
    return config


def model_config(config):
    """The networks' part of a training config, as the ModelConfig that rebuilds them."""
    return ModelConfig(nz=config["nz"], ngf=config["ngf"], ndf=config["ndf"], image_size=config["image_size"],
                       z_dist=config["z_dist"])


def format_duration(seconds):
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


@contextlib.contextmanager
def interrupts_between_steps(say):
    """Make Ctrl-C (SIGINT) stop training *between* steps.

    A KeyboardInterrupt in the middle of a step could leave D updated and G
    not, and a checkpoint of that state would not resume exactly. Inside this
    block the first Ctrl-C only raises a flag, which the loop checks before each
    step; a second one interrupts at once (nothing more is saved then). Yields
    the check. Outside the main thread no handler can be installed (Python
    delivers signals to the main thread only), and the check is always False.
    """
    pressed = []

    def on_sigint(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)
        say("\nCtrl-C: stopping after this step and saving a checkpoint (press Ctrl-C again to stop at once)")

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:                  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


class Trainer:
    """Owns G, D, their optimisers and the data; ``run()`` trains, ``save()`` checkpoints."""

    def __init__(self, config, dataset=None, verbose=True):
        from .data import BatchLoader, FaceDataset   # data pulls in Pillow; only training needs it
        self.config = validate_config(dict(DEFAULTS, **config))
        c = self.config
        self.verbose = verbose
        self.out = Path(c["out"])
        if dataset is None:
            if not c["data"]:
                raise ValueError("no training data: pass --data PATH (a CelebA folder, .zip or .tar)")
            dataset = FaceDataset(c["data"], image_size=c["image_size"], crop=c["crop"], limit=c["limit"],
                                  verbose=verbose)
        if len(dataset) < c["batch_size"]:
            raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of {c['batch_size']}; "
                             "lower --batch-size")
        self.dataset = dataset
        self.loader = BatchLoader(dataset, c["batch_size"], seed=c["seed"], flip=c["flip"])
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
        self.fixed_noise = self.G.sample_noise(backend.default_rng([c["seed"], 2]), c["n_samples"])
        self.step = 0
        self.log = checkpoint.LossLog(self.out / "loss_log.csv", LOG_FIELDS)
        self.fid_log = checkpoint.LossLog(self.out / "fid_log.csv", FID_FIELDS)
        self.best = None                         # {"step", "fid"} of checkpoints/best.npz
        self._fid_reference = None

    # --- one step ---------------------------------------------------------------
    def train_step(self, real):
        """One D update and one G update; returns the step's losses and D's mean outputs."""
        c, G, D, loss = self.config, self.G, self.D, self.loss
        z = G.sample_noise(self.noise_rng, real.shape[0])
        fake = G(z)                                                     # (N, 3, 64, 64)

        # D step: real images towards real_label, fakes towards 0. G(z) is a constant here.
        self.opt_D.zero_grad()
        real_logits = D(real)
        d_loss_real = loss(real_logits, c["real_label"])
        D.backward(loss.backward(), need_input_grad=False)
        fake_logits = D(fake)
        d_loss_fake = loss(fake_logits, 0.0)
        D.backward(loss.backward(), need_input_grad=False)
        self.opt_D.step()

        # G step (non-saturating): make the updated D call the fakes real.
        self.opt_G.zero_grad()
        D.requires_grad_(False)
        g_logits = D(fake)
        g_loss = loss(g_logits, 1.0)
        grad_fake = D.backward(loss.backward())                        # dL/dG(z), through a fixed D
        D.requires_grad_(True)
        G.backward(grad_fake, need_input_grad=False)
        self.opt_G.step()
        if self.ema is not None:
            self.ema.update(G)
        self.step += 1

        # 0-d arrays on the backend: reading them would wait for the GPU, so run() reads a
        # whole window of steps at once, at log time.
        return {"d_loss": d_loss_real + d_loss_fake, "g_loss": g_loss,
                "d_real": sigmoid(real_logits).mean(), "d_fake": sigmoid(fake_logits).mean()}

    def read_stats(self, window):
        """Step stats (device scalars) -> a float row of means; DivergenceError at the first non-finite step."""
        xp = backend.xp
        keys = list(window[0])
        values = backend.to_numpy(xp.stack([xp.stack([xp.asarray(w[k]) for k in keys]) for w in window]))
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            step = self.step - len(window) + int(np.argmax(bad)) + 1
            losses = dict(zip(keys, values[np.argmax(bad)].tolist()))
            raise DivergenceError(f"training diverged at step {step}: {losses}. The last good checkpoint in "
                                  f"{self.out / 'checkpoints'} is kept; try a lower --lr or another --seed.")
        return dict(zip(keys, values.mean(axis=0).tolist()))

    # --- the loop ---------------------------------------------------------------
    @property
    def total_steps(self):
        c = self.config
        return c["max_steps"] if c["max_steps"] else c["epochs"] * len(self.loader)

    def run(self):
        """Train until total_steps, writing samples, logs and checkpoints; returns the last stats row."""
        c, per_epoch = self.config, len(self.loader)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(self.config, indent=2))
        self.say(f"training a {c['image_size']}x{c['image_size']} DCGAN on {len(self.dataset)} images "
                 f"({per_epoch} batches of {c['batch_size']} per epoch) for {self.total_steps} steps, "
                 f"backend {backend.name()}; writing to {self.out}")
        window, t_window, start_step, t_start = [], time.perf_counter(), self.step, time.perf_counter()
        row = None

        def log_window():                  # one log row: the means over the steps since the last row
            now = time.perf_counter()
            row = {"step": self.step, "epoch": self.step / per_epoch, **self.read_stats(window),
                   "img_per_s": len(window) * c["batch_size"] / (now - t_window)}
            self.log.append(row)
            return row, now

        with interrupts_between_steps(self.say) as interrupted:
            while self.step < self.total_steps:
                if interrupted():
                    if window:
                        log_window()       # the steps since the last row, so that the log misses none
                    path = self.save()
                    self.say(f"interrupted at step {self.step}; saved {path}. Continue with --resume {self.out}")
                    raise KeyboardInterrupt
                epoch, index = divmod(self.step, per_epoch)
                window.append(self.train_step(self.loader.get_batch(epoch, index)))
                if self.step % c["log_every"] == 0 or self.step == self.total_steps:
                    row, now = log_window()
                    overall = (self.step - start_step) / (now - t_start)
                    self.progress(row, (self.total_steps - self.step) / overall)
                    window, t_window = [], now
                if self.step % c["sample_every"] == 0 or self.step == self.total_steps:
                    self.save_samples()
                if c["fid_every"] and (self.step % c["fid_every"] == 0 or self.step == self.total_steps):
                    self.evaluate_fid()
                if self.step % c["checkpoint_every"] == 0 or self.step == self.total_steps:
                    self.save()
        self.finish()
        return row

    def progress(self, row, eta_seconds):
        per_epoch = len(self.loader)
        epochs = math.ceil(self.total_steps / per_epoch)
        self.say(f"epoch {(self.step - 1) // per_epoch + 1}/{epochs} step {self.step}/{self.total_steps} | "
                 f"D {row['d_loss']:.3f} G {row['g_loss']:.3f} | D(x) {row['d_real']:.2f} D(G(z)) "
                 f"{row['d_fake']:.2f} | {row['img_per_s']:.1f} img/s | ETA {format_duration(eta_seconds)}")

    def say(self, text):
        if self.verbose:
            print(text, flush=True)

    # --- outputs ----------------------------------------------------------------
    def sample_grid_path(self, step):
        return self.out / "samples" / f"step_{step:06d}.png"

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

    def save_samples(self):
        """A grid of the sampling generator's faces for the fixed noise, and the loss plot."""
        images = self.sampling_generator()(self.fixed_noise)
        self.G.train()
        viz.save_grid(images, self.sample_grid_path(self.step))
        if self.log.path.exists():
            viz.plot_losses(self.log.path, self.out / "loss_plot.png", title="DCGAN losses")

    def evaluate_fid(self):
        """FID of the sampling generator (fid_n faces, seeds 0..) against the first fid_real_n real faces.

        Logs it to fid_log.csv, plots fid_plot.png, and writes checkpoints/best.npz when it is the best so far.
        """
        from . import fid
        from .sampling import generate_images
        c = self.config
        if self._fid_reference is None:
            self._fid_reference = self._fid_reference_statistics()
        mu, sigma, n_real = self._fid_reference
        G = self.sampling_generator()
        fakes = generate_images(G, range(c["fid_n"]))
        self.G.train()
        model = fid.fid_inception_v3(c["fid_weights"], verbose=self.verbose)
        score = fid.statistics_to_fid(mu, sigma, *fid.features_to_statistics(fid.images_to_features(fakes, model=model)))
        which = "ema" if self.ema is not None else "raw"
        self.fid_log.append({"step": self.step, "epoch": self.step / len(self.loader), "fid": score,
                             "n_fake": c["fid_n"], "n_real": n_real, "generator": which})
        rows = self.fid_log.read()
        viz.plot_fid([r["step"] for r in rows], [r["fid"] for r in rows], self.out / "fid_plot.png")
        is_best = self.best is None or score < self.best["fid"]
        if is_best:
            self.best = {"step": self.step, "fid": score}
            checkpoint.save(self.out / "checkpoints" / "best.npz", self.state())
        self.say(f"FID {score:.1f} at step {self.step} ({c['fid_n']} faces of the {which} G vs {n_real} real)"
                 + (" - best so far, saved checkpoints/best.npz" if is_best else
                    f"; best {self.best['fid']:.1f} at step {self.best['step']}"))
        return score

    def _fid_reference_statistics(self):
        """(mu, sigma, n) of the first fid_real_n training images, cached in the run folder."""
        from . import fid
        images = getattr(self.dataset, "images", self.dataset)
        n = min(self.config["fid_real_n"], len(images))
        path = self.out / "fid_reference.npz"
        if path.is_file():
            stored = checkpoint.load(path)
            if int(stored["n"]) == n:
                return stored["mu"], stored["sigma"], n
        self.say(f"FID: Inception features of the first {n} training images (once per run)")
        model = fid.fid_inception_v3(self.config["fid_weights"], verbose=self.verbose)
        mu, sigma = fid.features_to_statistics(fid.images_to_features(images[:n], model=model, verbose=self.verbose))
        checkpoint.save(path, {"n": n, "mu": mu, "sigma": sigma})
        return mu, sigma, n

    def finish(self):
        frames = sorted((self.out / "samples").glob("step_*.png"))
        if frames:
            captions = [f"step {int(p.stem.split('_')[1])}" for p in frames]
            viz.save_gif(frames, self.out / "training.gif", duration_ms=300, captions=captions)
        self.say(f"done: step {self.step}. Samples in {self.out / 'samples'}, loss log {self.log.path}, "
                 f"plot {self.out / 'loss_plot.png'}, GIF {self.out / 'training.gif'}, "
                 f"checkpoints in {self.out / 'checkpoints'}")

    # --- checkpoints ------------------------------------------------------------
    def state(self):
        epoch = self.step // len(self.loader)
        state = {"format": "tinygan-dcgan-train", "step": self.step, "config": self.config,
                 "model": self.model.to_dict(), "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "optim_G": self.opt_G.state_dict(), "optim_D": self.opt_D.state_dict(),
                 "rng": {"noise": self.noise_rng.state()},
                 "fixed_noise": backend.to_numpy(self.fixed_noise),
                 "data_order": {"epoch": epoch, "order": self.loader.order(epoch)}}
        if self.ema is not None:
            state["G_ema"] = self.sampling_generator().state_dict()
            state["ema"] = self.ema.state_dict()
        if self.best is not None:
            state["best"] = self.best
        return state

    def save(self):
        """Write checkpoints/ckpt_<step>.npz atomically, keeping the last ``keep_last``."""
        for name, p in list(self.G.named_parameters()) + list(self.D.named_parameters()):
            if not bool(backend.get_array_module(p.data).isfinite(p.data).all()):
                raise DivergenceError(f"weight {name} is not finite at step {self.step}; not saving. The last good "
                                      f"checkpoint in {self.out / 'checkpoints'} is kept.")
        path = checkpoint.step_path(self.out / "checkpoints", self.step)
        checkpoint.save(path, self.state(), keep_last=self.config["keep_last"])
        return path

    def load_state(self, state):
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None and "G_ema" in state:
            self.G_ema.load_state_dict(state["G_ema"])
            self.ema.load_state_dict(state["ema"], self.G_ema)
            self._G_ema_step = int(state["step"])
        elif self.ema is not None:          # a checkpoint from before the EMA: start averaging here
            self.ema = EMA(self.G, self.config["ema_decay"])
        self.best = state.get("best")
        self.opt_G.load_state_dict(state["optim_G"])
        self.opt_D.load_state_dict(state["optim_D"])
        self.noise_rng.set_state(state["rng"]["noise"])
        self.fixed_noise = backend.to_device(state["fixed_noise"])
        self.step = int(state["step"])
        order = state["data_order"]
        if not np.array_equal(order["order"], self.loader.order(int(order["epoch"]))):
            raise ValueError(f"the data differs from the data this checkpoint was trained on "
                             f"({self.config['data']}): the batch order of epoch {order['epoch']} does not match")
        self.log.truncate_after(self.step)    # rows written after the checkpoint will be written again
        self.fid_log.truncate_after(self.step)


def resume(path, dataset=None, verbose=True, **overrides):
    """Rebuild a Trainer from a checkpoint (file or run directory) and its stored config."""
    ckpt = checkpoint.find_checkpoint(path)
    state = checkpoint.load(ckpt)
    if state.get("format") != "tinygan-dcgan-train":
        raise ValueError(f"{ckpt} is not a tinygan training checkpoint (format {state.get('format')!r})")
    config = dict(state["config"])
    for key, value in overrides.items():
        if value is not None:
            config[key] = value
    trainer = Trainer(config, dataset=dataset, verbose=verbose)
    trainer.load_state(state)
    trainer.say(f"resumed from {ckpt} at step {trainer.step}")
    return trainer


def add_train_command(subparsers):
    p = subparsers.add_parser("train", help="train the face DCGAN",
                              description="Train the 64x64 face DCGAN (Radford et al.) on CelebA or any face folder.")
    p.add_argument("--data", help="CelebA img_align_celeba folder, .zip or .tar, or a folder of face images")
    p.add_argument("--out", help=f"output directory (default: {DEFAULTS['out']})")
    p.add_argument("--preset", default="dcgan", choices=sorted(PRESETS),
                   help="named settings: dcgan = Radford et al.; seed003 = uniform z, lr 3e-4, batch 64 "
                        "(default: %(default)s)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue a run from its newest checkpoint")
    for key in ("epochs", "max_steps", "batch_size", "nz", "ngf", "ndf", "image_size", "limit", "seed",
                "log_every", "sample_every", "checkpoint_every", "keep_last", "fid_every", "fid_n", "fid_real_n"):
        p.add_argument("--" + key.replace("_", "-"), type=int, help=f"(default: {DEFAULTS[key]})")
    p.add_argument("--fid-weights", help="FID Inception weights for --fid-every (default: tinygan.fid's search)")
    for key in ("lr", "beta1", "beta2", "real_label", "crop", "ema_decay"):
        p.add_argument("--" + key.replace("_", "-"), type=float, help=f"(default: {DEFAULTS[key]:.4g})")
    p.add_argument("--z-dist", choices=("normal", "uniform"), help="noise distribution (default: normal)")
    p.add_argument("--no-flip", dest="flip", action="store_false", default=None, help="no random horizontal flips")
    p.add_argument("--backend", choices=backend.BACKENDS, help="numpy (CPU) or cupy (GPU) (default: numpy)")
    p.set_defaults(func=_train_main)


def _train_main(args):
    if args.backend:
        backend.use(args.backend)
    options = {k: getattr(args, k) for k in DEFAULTS if hasattr(args, k)}
    try:
        if args.resume:
            trainer = resume(args.resume, **{k: v for k, v in options.items() if v is not None})
        else:
            trainer = Trainer(make_config(args.preset, **options))
        trainer.run()
    except DivergenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0

