"""Make a GIF of a training run: the grid of faces from the same fixed noise, step after step.

    python examples/make_training_gif.py runs/celeba                       # -> runs/celeba/training.gif
    python examples/make_training_gif.py runs/celeba --max-frames 40 --out progress.gif

The trainer saves a grid from the same 64 noise vectors every --sample-every
steps (samples/step_000400.png, ...), so each face in the grid follows one z
as G learns: blobs, then face-shaped blobs, then faces. The trainer writes
this GIF at the end of a run; this script remakes it at any time, for example
while the run is still going, with fewer frames or another speed.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import numpy as np  # noqa: E402

import _common  # noqa: E402
from tinygan import viz  # noqa: E402
from tinygan.run_folder import SAMPLE_PATTERN, RunFolder  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__)
    p.add_argument("run", nargs="?", help=f"run directory holding {SAMPLE_PATTERN} (required unless --quick)")
    p.add_argument("--out", help=f"output GIF (default: RUN/{RunFolder('RUN').gif.name}; with --quick, "
                                 f"{RunFolder('RUN').gif.name})")
    p.add_argument("--max-frames", type=int, default=60,
                   help="use at most this many grids, evenly spaced, always with the first and the last")
    p.add_argument("--duration", type=int, default=250, help="frame time in ms")
    p.add_argument("--hold", type=int, default=4, help="show the last grid this many frames long")
    p.add_argument("--quick", action="store_true", help="with no RUN, make one: a tiny DCGAN trained for 4 steps")
    return p


def pick_frames(paths, most):
    """At most ``most`` of ``paths``, evenly spaced, the first and the last always included."""
    if len(paths) <= most:
        return list(paths)
    keep = np.unique(np.round(np.linspace(0, len(paths) - 1, most)).astype(int))
    return [paths[i] for i in keep]


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.max_frames < 2 or args.hold < 1:
        _common.fail(f"--max-frames must be >= 2 and --hold >= 1, got {args.max_frames} and {args.hold}")
    keep = None
    if args.run is None:
        if not args.quick:
            _common.fail("pass the run directory (the --out of train_celeba.py), or use --quick")
        run, keep = _common.quick_run(steps=4, sample_every=1)
        out = Path(args.out or RunFolder(run).gif.name)
    else:
        run = Path(args.run)
        out = Path(args.out) if args.out else RunFolder(run).gif
    grids = RunFolder(run).sample_grids()                    # [(step, path)], by step
    if not grids:
        _common.fail(f"no sample grids ({SAMPLE_PATTERN}) in {run}; is it a run directory of train_celeba.py?")
    picked = pick_frames(grids, args.max_frames)
    frames, steps = [path for _, path in picked], [step for step, _ in picked]
    frames += [frames[-1]] * (args.hold - 1)
    captions = [f"step {step:,}" for step in steps] + [f"step {steps[-1]:,}"] * (args.hold - 1)
    viz.save_gif(frames, out, duration_ms=args.duration, captions=captions)
    print(f"made a GIF of {len(steps)} of the {len(grids)} sample grids in {run / 'samples'} "
          f"(steps {steps[0]:,} to {steps[-1]:,}); wrote {out}")
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
