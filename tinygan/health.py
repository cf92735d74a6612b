"""When a training run has blown up: the divergence rule, checked once per log row, and which checkpoints count
as healthy (HealthWatch)."""
import contextlib

import numpy as np

from . import backend
from .logs import HEALTH_KEYS

# The divergence rule (check_health). A healthy DCGAN's logged losses (means over a log
# window) stay below about 25 (early on, when D wins, G's loss reaches 20-25), and its
# weights' root-mean-square stays below about 3 (convs start at 0.02, BatchNorm's gamma
# at 1). Past the warning limits a checkpoint is not counted as healthy; past the stop
# limits training stops. A blown-up run (--lr 1e6) passes them within a step or two.
LOSS_WARNING, LOSS_STOP = 50.0, 100.0
WEIGHT_RMS_WARNING, WEIGHT_RMS_STOP = 10.0, 100.0


class DivergenceError(RuntimeError):
    """Raised when training blows up: a loss or weight that is not finite or past the stop limits."""


def check_health(row, networks, loss_limit, rms_limit):
    """Problems (a list of texts) of a log row and the networks' weights, against two limits.

    A loss (window mean) above ``loss_limit``, or a weight tensor whose root-mean-square
    is above ``rms_limit`` or not finite, is a problem. Reading the weights costs one
    pass over them, so this runs once per log row, not every step.
    """
    problems = [f"{key} = {row[key]:.4g}" for key in ("d_loss", "g_loss")
                if row is not None and not row[key] <= loss_limit]
    for net_name, net in networks.items():
        xp = backend.get_array_module(net.parameters()[0].data)
        rms = xp.stack([xp.sqrt(xp.mean(p.data.astype(np.float64) ** 2)) for p in net.parameters()])
        rms = backend.to_numpy(rms)
        worst = int(np.argmax(np.where(np.isfinite(rms), rms, np.inf)))
        name = [n for n, _ in net.named_parameters()][worst]
        if not np.isfinite(rms[worst]):
            problems.append(f"{net_name}'s weight {name} is not finite")
        elif rms[worst] > rms_limit:
            problems.append(f"the root-mean-square of {net_name}'s weight {name} is {rms[worst]:.4g}")
    return problems


class HealthWatch:
    """Which checkpoints are healthy, and where to start again when a run blows up.

    A log window past the stop limits stops the run (DivergenceError, naming the last healthy checkpoint); past
    the warning limits, the checkpoint that follows is not counted as healthy (and the healthy one before it is
    kept) until a window passes clean. ``checkpoint_of(step)`` names the file of a step; ``say`` prints.
    """

    def __init__(self, checkpoint_of, say):
        self.checkpoint_of, self.say = checkpoint_of, say
        self.last_healthy = None                 # the step of the newest checkpoint saved with no sign of trouble
        self.warning = None                      # the first sign of trouble since the last checkpoint

    def check_finite(self, values, last_step):
        """DivergenceError at the first step of a window's values (tinygan.logs.LogWindow) with a non-finite stat."""
        bad = ~np.isfinite(values[:, :len(HEALTH_KEYS)]).all(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            losses = dict(zip(HEALTH_KEYS, values[first].tolist()))
            raise DivergenceError(f"training diverged at step {last_step - len(values) + first + 1}: {losses}. "
                                  f"{self.where_to_resume()}")

    def check(self, step, row, networks):
        """Stop at the stop limits (DivergenceError); remember the first warning since the last checkpoint.
        ``row`` is a log row (None: the weights only)."""
        problems = check_health(row, networks, LOSS_STOP, WEIGHT_RMS_STOP)
        if problems:
            raise DivergenceError(f"training blew up at step {step}: {'; '.join(problems)} (it stops at a loss "
                                  f"above {LOSS_STOP:g} or a weight RMS above {WEIGHT_RMS_STOP:g}; a healthy DCGAN "
                                  f"stays far below both). Nothing was saved. {self.where_to_resume()}")
        problems = check_health(row, networks, LOSS_WARNING, WEIGHT_RMS_WARNING)
        if problems and self.warning is None:
            self.warning = f"step {step}: {'; '.join(problems)}"
            self.say(f"warning: {self.warning} (above the warning limits {LOSS_WARNING:g} and "
                     f"{WEIGHT_RMS_WARNING:g}); checkpoints are not counted as healthy until it passes")

    def where_to_resume(self):
        if self.last_healthy is None:
            return "No checkpoint was saved before the trouble began; start again with a lower --lr or another --seed."
        path = self.checkpoint_of(self.last_healthy)
        which = " (step 0: the untrained networks)" if self.last_healthy == 0 else ""
        return (f"The last checkpoint saved before the trouble began is kept: {path}{which}. Start again from it "
                f"with a lower learning rate (--resume {path} --lr ...) or another --seed.")

    @contextlib.contextmanager
    def saving(self, step, networks):
        """Around writing the checkpoint of ``step``: first the weights of ``networks`` ({name: module}) are
        checked (DivergenceError: nothing is saved); the checkpoint counts as healthy unless a warning came since
        the last one; yields the steps whose checkpoints must not be pruned. A failed write changes nothing."""
        self.check(step, None, networks)
        previous = self.last_healthy
        if self.warning is None:
            self.last_healthy = step
        try:
            yield {previous} if self.warning is not None and previous is not None else set()
        except BaseException:
            self.last_healthy = previous
            raise
        self.warning = None
