"""A training run's settings: every option once (default, kind, help), the presets, and their checks.

``python -m tinygan train``'s flags (tinygan.cli), ``DEFAULTS`` and the option list in README.md are made from
``OPTIONS``. A config is a plain dict of these names; it is stored in every checkpoint and in the run
folder's config.json, and rebuilds the run.
"""
import numpy as np

from .augment import parse_policy
from .images import CELEBA_CROP
from .dcgan import Z_DISTS, ModelConfig
from .run_folder import BEST, CHECKPOINTS, JUDGE_LOG


class Option:
    """One training option: its name in the config (``--name-with-dashes`` on the command line), its default, its
    kind (int, float, str, bool, or a tuple of the allowed words) and its help."""

    def __init__(self, name, default, kind, help, metavar=None):
        self.name, self.default, self.kind, self.help, self.metavar = name, default, kind, help, metavar

    @property
    def flag(self):
        return "--" + ("no-" if self.kind is bool and self.default else "") + self.name.replace("_", "-")

    def shown_default(self):
        """The default as the help shows it, or None where there is nothing to show."""
        if self.kind is bool or self.default is None or self.default == "":
            return None
        return f"{self.default:.4g}" if self.kind is float else str(self.default)


# Every training option, described once. DEFAULTS, the flags of `python -m tinygan train` (tinygan.cli) and
# the option list in README.md are all made from this table.
OPTIONS = (
    Option("data", None, str, "CelebA img_align_celeba folder, .zip or .tar, or any folder of face images"),
    Option("out", "runs/dcgan", str, "the run folder: samples, logs, checkpoints"),
    Option("image_size", 64, int, "64 or 128 pixels"),
    Option("crop", CELEBA_CROP, float, "centred square crop as a fraction of the image width (128/178: "
           "CelebA's usual face crop)"),
    Option("flip", True, bool, "no random horizontal flips"),
    Option("limit", None, int, "use only the first N images (small-data experiments)"),
    Option("nz", 100, int, "length of the noise vector z"),
    Option("ngf", 64, int, "G's width (channels)"),
    Option("ndf", 64, int, "D's width (channels)"),
    Option("batch_size", 128, int, "images per step"),
    Option("lr", 2e-4, float, "Adam's learning rate"),
    Option("beta1", 0.5, float, "Adam's beta1"),
    Option("beta2", 0.999, float, "Adam's beta2"),
    Option("z_dist", "normal", Z_DISTS, "noise distribution: z ~ N(0, I) or z ~ U(-1, 1)"),
    Option("real_label", 1.0, float, "target for real images; 0.9 gives one-sided label smoothing (Salimans et "
           "al. 2016)"),
    Option("epochs", 10, int, "passes over the data"),
    Option("max_steps", None, int, "stop after this many steps in total (overrides --epochs)"),
    Option("seed", 0, int, "seed of the weights, the noise, the batch order and the flips: the same seed trains "
           "the same networks"),
    Option("log_every", 10, int, "steps between loss-log rows and progress lines"),
    Option("sample_every", 100, int, "steps between fixed-noise sample grids"),
    Option("checkpoint_every", 200, int, "steps between checkpoints"),
    Option("keep_last", 3, int, "checkpoints kept (the last healthy one is also kept, see check_health)"),
    Option("n_samples", 64, int, "images in the fixed-noise grid"),
    Option("ema_decay", 0.999, float, "decay of the average of G's weights (tinygan.ema); 0 turns it off"),
    Option("augment", "", str, "DiffAugment for small data: D sees real and fake faces only through the same "
           "random augmentation, e.g. 'color,translation,cutout' (tinygan.augment; default: none)", "POLICY"),
    Option("judge_held_out", 500, int, "real faces (the last of --data, at most a tenth of it) kept out of "
           "training: at every checkpoint D's eval-mode accuracy on them and on as many fresh fakes goes to "
           f"{JUDGE_LOG}, beside the train-mode d_acc (0: keep none, as the shipped generator's run did)"),
    Option("fid_every", 0, int, f"steps between FID scores during training (0: never); keeps {CHECKPOINTS}/{BEST}"),
    Option("fid_n", 1000, int, "generated faces per FID score"),
    Option("fid_real_n", 5000, int, "real faces (the first of --data) for FID's reference statistics"),
    Option("fid_weights", None, str, "FID Inception weights for --fid-every (.npz/.pth/.pt; default: "
           "tinygan.fid's search)"),
    Option("fid_raw", False, bool, "with --fid-every, also score the raw G (not only the averaged one): the raw "
           "and averaged curves side by side, at twice FID's time"),
)
DEFAULTS = {option.name: option.default for option in OPTIONS}


def options_markdown():
    """The option list of README.md, made from OPTIONS."""
    lines = ["| option | default | what it sets |", "| --- | --- | --- |"]
    for option in OPTIONS:
        kind = "/".join(option.kind) if isinstance(option.kind, tuple) else ""
        default = option.shown_default() or kind or "-"
        lines.append(f"| `{option.flag}` | {default} | {option.help} |")
    return "\n".join(lines)


PRESETS = {
    "dcgan": {},             # Radford et al.: Adam 2e-4, beta1 0.5, batch 128, z ~ N(0, I)
    "seed003": {"z_dist": "uniform", "lr": 3e-4, "batch_size": 64},   # the 'seed 003' variant
}


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
    """Check every value before anything expensive happens; returns the config."""
    positive = ("nz", "ngf", "ndf", "batch_size", "epochs", "log_every", "sample_every", "checkpoint_every",
                "keep_last", "n_samples", "fid_n", "fid_real_n")
    for key in positive + ("max_steps", "limit", "fid_every", "seed", "judge_held_out"):
        value = config[key]
        if key in ("max_steps", "limit") and value is None:
            continue
        low = 1 if key in positive + ("max_steps", "limit") else 0
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"training option {key} must be an integer >= {low}, got {value!r}")
    if not (config["ema_decay"] == 0 or 0 < config["ema_decay"] < 1):
        raise ValueError(f"training option ema_decay must be 0 (off) or in (0, 1), got {config['ema_decay']!r}")
    model_config(config)                   # nz, ngf, ndf, image_size, z_dist within their ranges
    if not config["lr"] > 0:
        raise ValueError(f"training option lr must be > 0, got {config['lr']!r}")
    parse_policy(config["augment"])
    if not isinstance(config["fid_raw"], (bool, np.bool_)):
        raise ValueError(f"training option fid_raw must be true or false, got {config['fid_raw']!r}")
    if not 0 < config["real_label"] <= 1:
        raise ValueError(f"training option real_label must be in (0, 1], got {config['real_label']!r}")
    return config


def model_config(config):
    """The networks' part of a training config, as the ModelConfig that rebuilds them."""
    return ModelConfig(nz=config["nz"], ngf=config["ngf"], ndf=config["ndf"], image_size=config["image_size"],
                       z_dist=config["z_dist"])
