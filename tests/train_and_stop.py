"""Run `tinygan train` in this process, and stop it at a chosen point: used by tests/test_run_safety.py.

    python tests/train_and_stop.py WHEN -- TRAIN-ARGUMENTS...

WHEN is one of
    never          train to the end
    step:K         SIGKILL in the middle of step K + 1 (after D's update, before G's)
    save:K         SIGKILL half-way through writing checkpoint ckpt_K (some bytes are on disk)
    cache:K        SIGKILL after K images were decoded into the data cache
    sigterm:K      SIGTERM in the middle of step K + 1 (the run should finish the step, save and exit 143)
Exits with the command's status (or dies by the signal).
"""
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tinygan import checkpoint, data, optim  # noqa: E402
from tinygan.cli import main  # noqa: E402

when, _, *train_args = sys.argv[1:]
kind, _, at = when.partition(":")
at = int(at or 0)

if kind in ("step", "sigterm"):
    signum = signal.SIGKILL if kind == "step" else signal.SIGTERM
    adam_step = optim.Adam.step
    updates = {"D": 0}

    def step_then_signal(self):
        adam_step(self)
        if self.params[0].data.ndim == 4 and self.params[0].data.shape[1] == 3:   # D's optimiser (RGB input)
            updates["D"] += 1
            if updates["D"] == at + 1:
                os.kill(os.getpid(), signum)
    optim.Adam.step = step_then_signal
elif kind == "save":
    save = checkpoint.save
    savez = checkpoint.np.savez

    def save_and_die(path, tree, **kwargs):
        if Path(path).name == f"ckpt_{at:06d}.npz":
            def half_then_kill(handle, **arrays):
                handle.write(b"PK\x03\x04" + b"\0" * 1000)          # some bytes reach the temp file
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            checkpoint.np.savez = half_then_kill
        try:
            return save(path, tree, **kwargs)
        finally:
            checkpoint.np.savez = savez
    checkpoint.save = save_and_die
elif kind == "cache":
    decode = data._decode
    decoded = {"n": 0}

    def decode_then_die(raw, size, crop):
        decoded["n"] += 1
        if decoded["n"] > at:
            os.kill(os.getpid(), signal.SIGKILL)
        return decode(raw, size, crop)
    data._decode = decode_then_die
elif kind != "never":
    sys.exit(f"unknown WHEN {when!r}")

sys.exit(main(["train", *train_args]))
