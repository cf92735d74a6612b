"""When a training run has blown up: the divergence rule, checked once per log row."""
import numpy as np

from . import backend

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
