"""An exponential moving average (EMA) of the generator's weights.

GAN training does not settle on one point: G's weights keep circling as G and D
react to each other, and any single iterate carries the wobble of its last few
steps (blotches, colour casts). The average of the weights over a stretch of
training paints smoother, better faces than the iterates it averages (Yazici et
al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"; StyleGAN's
``G_ema``). It costs one pass over G's weights per step and changes nothing in
training itself: G and D never see the average.

After training step t (t = 1, 2, ...), for every weight w of G:

    w_ema <- beta_t w_ema + (1 - beta_t) w,      beta_t = min(decay, (1 + t) / (10 + t))

The warm-up (1 + t) / (10 + t) makes the average forget fast early on, so early
samples are not stuck near the random initial weights. It averages roughly the
last tenth of the steps so far, until the window reaches 1 / (1 - decay) steps.

BatchNorm. G's running statistics describe the activations of the *raw* weights,
not of the averaged ones, so copying or averaging them would be wrong. The EMA
generator measures its own: ``recalibrate_batchnorm`` runs fixed noise through it
in train mode and sets each running mean and variance to the exact average of the
batch statistics (SWA's ``bn_update``, Izmailov et al. 2018). Eval mode then uses
statistics that belong to the weights.
"""
import numpy as np

from . import backend
from .nn import BatchNorm2d

CALIBRATION_BATCHES = 8      # x 128 noise vectors: enough for the per-channel means and variances
CALIBRATION_BATCH_SIZE = 128


class EMA:
    """The running average of ``model``'s parameters (buffers are recalibrated, not averaged).

    decay: the largest weight of the old average in an update (see the warm-up above).
    """

    def __init__(self, model, decay=0.999):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA: decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.shadow = [p.data.copy() for p in model.parameters()]
        self.updates = 0

    def beta(self):
        """The weight of the old average in the next update."""
        t = self.updates + 1
        return min(self.decay, (1 + t) / (10 + t))

    def update(self, model):
        """w_ema <- w_ema + (1 - beta) (w - w_ema), for every parameter of ``model``."""
        weight_of_new = np.float32(1.0 - self.beta())
        for average, p in zip(self.shadow, model.parameters()):
            average += weight_of_new * (p.data - average)
        self.updates += 1

    def copy_to(self, model):
        """Put the averaged weights into ``model`` (a network of the same shape)."""
        for average, p in zip(self.shadow, model.parameters()):
            p.data[...] = average

    def state_dict(self):
        return {"updates": int(self.updates), "decay": self.decay}

    def load_state_dict(self, state, averaged_model):
        """Restore from ``state_dict()`` and a model that holds the averaged weights."""
        self.updates, self.decay = int(state["updates"]), float(state["decay"])
        for average, p in zip(self.shadow, averaged_model.parameters()):
            average[...] = p.data


def recalibrate_batchnorm(model, batches):
    """Set every BatchNorm's running statistics to the average over ``batches`` of inputs.

    With momentum 1/k for the k-th batch, running <- (1 - 1/k) running + (1/k) batch
    is the plain mean of the k batch statistics. Leaves the model in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    momenta = [bn.momentum for bn in norms]
    model.train()
    try:
        for k, batch in enumerate(batches, start=1):
            for bn in norms:
                bn.momentum = 1.0 / k
            model(batch)
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        model.free_activations()              # no backward follows
        model.eval()
    return model


def calibration_noise(G, seed):
    """The fixed noise batches that recalibrate an averaged generator (the same for a given seed)."""
    rng = backend.default_rng([seed, 3])
    return [G.sample_noise(rng, CALIBRATION_BATCH_SIZE) for _ in range(CALIBRATION_BATCHES)]


class AveragedGenerator:
    """The averaged G as a generator that paints: the EMA of G's weights, copied into a generator of its own
    (``painter``) with its BatchNorm recalibrated, at most once per training step.

    G: the generator being trained; model: its ModelConfig (builds the painter); seed: the run's seed (the
    calibration noise).
    """

    def __init__(self, G, model, decay, seed):
        self.ema, self.seed = EMA(G, decay), seed
        self.painter = model.generator(rng=0).eval()
        self.painted_step = None                 # the step whose averaged weights the painter holds

    def update(self, G):
        self.ema.update(G)

    def at_step(self, step):
        """The painter in eval mode, holding the average of the weights up to ``step``."""
        if self.painted_step != step:
            self.ema.copy_to(self.painter)
            recalibrate_batchnorm(self.painter, calibration_noise(self.painter, self.seed))
            self.painted_step = step
        return self.painter

    def state(self, step):
        """What a checkpoint keeps: the painter's weights and statistics ("G_ema") and the EMA's counters."""
        return {"G_ema": self.at_step(step).state_dict(), "ema": self.ema.state_dict()}

    def load_state(self, state, G):
        """Continue from a checkpoint; one from before the EMA starts averaging from ``G`` as it is now."""
        if "G_ema" not in state:
            self.ema, self.painted_step = EMA(G, self.ema.decay), None
            return
        self.painter.load_state_dict(state["G_ema"])
        self.ema.load_state_dict(state["ema"], self.painter)
        self.painted_step = int(state["step"])
