"""The tinygan command line: ``python -m tinygan COMMAND ...`` (or ``tinygan COMMAND``).

    train        train the face DCGAN on CelebA (see --help)
    generate     faces from a checkpoint (or the pretrained generator), one per seed
    interpolate  a strip or GIF along a slerp path between seeds
    arithmetic   z arithmetic: mean(A) - mean(B) + mean(C)
    judge        D's probability that images are real
    gif          the training-progress GIF of a run
    export       a checkpoint's G and D as PyTorch-layout state_dicts (.npz)
    import       a PyTorch-layout generator state_dict (.npz) as a tinygan generator file
    fid          Frechet Inception Distance (and KID) between real and generated faces
"""
import argparse
import sys
from pathlib import Path

JUDGE_WARNING = ("A GAN's discriminator is a weak detector: it only learned to tell real faces from the fakes of "
                 "one generator during training, and its score drifts as training goes on. It is NOT a deepfake "
                 "detector; never use it to decide whether a real photo is genuine.")


def parse_seeds(text):
    """'0-7' -> [0..7]; '1,5,9' -> [1, 5, 9]; mixes allowed: '0-3,10'."""
    seeds = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                seeds += list(range(int(lo), int(hi) + 1))
            elif part.strip():
                seeds.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must look like '0-7' or '1,5,9', got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected one or more non-negative seeds, got {text!r}")
    return seeds


def _add_checkpoint(p, required=False, what="generator"):
    p.add_argument("--checkpoint", "-c", required=required,
                   help=f"training checkpoint, run directory or {what} .npz"
                        + ("" if required else " (default: the pretrained generator shipped with tinygan)"))
    p.add_argument("--backend", choices=("numpy", "cupy"), help="array backend (default: numpy)")


def _select_backend(args):
    if getattr(args, "backend", None):
        from . import backend
        backend.use(args.backend)


def cmd_generate(args):
    from . import sampling, viz
    G = sampling.load_generator(args.checkpoint)
    seeds = args.seeds or list(range(args.seed, args.seed + args.n))
    faces = sampling.generate_images(G, seeds)
    if args.separate:
        pattern = viz.save_seed_images(faces, seeds, args.out)
        print(f"wrote {len(seeds)} faces (seeds {seeds[0]}..{seeds[-1]}) as {pattern}")
    else:
        viz.save_grid(faces, args.out, nrow=args.nrow)
        print(f"wrote a grid of {len(seeds)} faces (seeds {seeds[0]}..{seeds[-1]}) to {args.out}")
    return 0


def cmd_interpolate(args):
    from . import sampling, viz
    G = sampling.load_generator(args.checkpoint)
    faces = sampling.interpolate(G, args.seeds, steps=args.steps, method=args.method)
    if str(args.out).lower().endswith(".gif"):
        frames = list(faces) + list(faces[::-1]) if args.bounce else list(faces)
        viz.save_gif(frames, args.out, duration_ms=args.duration)
    else:
        viz.save_grid(faces, args.out, nrow=args.steps)
    print(f"wrote {len(faces)} faces along a {args.method} path through seeds {args.seeds} to {args.out}")
    return 0


def cmd_arithmetic(args):
    import numpy as np

    from . import sampling, viz
    G = sampling.load_generator(args.checkpoint)
    groups, result = sampling.vector_arithmetic(G, args.a, args.b, args.c)
    width = max(len(g) for g in groups) + 1
    rows = []
    for faces, mean_face in zip(groups, result[:3]):       # each group's faces, then the face of its mean z
        blank = np.zeros((width - 1 - len(faces),) + faces.shape[1:], np.uint8)
        rows += [faces, blank, mean_face[None]]
    answer = np.zeros((width,) + result.shape[1:], np.uint8)
    answer[-1] = result[3]
    viz.save_grid(np.concatenate(rows + [answer]), args.out, nrow=width)
    print(f"wrote {args.out}: rows A={args.a}, B={args.b}, C={args.c} (last column: the face of each mean z); "
          f"bottom right: mean(A) - mean(B) + mean(C)")
    return 0


def cmd_judge(args):
    from . import data, sampling
    D = sampling.load_discriminator(args.checkpoint)
    size = D.config["image_size"]
    images, names = [], []
    for path in args.images:
        images.append(data.load_image(path, image_size=size, crop=args.crop))
        names.append(path)
    import numpy as np
    probs = sampling.judge(D, np.stack(images))
    print(JUDGE_WARNING)
    for name, p in zip(names, probs):
        print(f"{p:6.3f}  {'real' if p >= 0.5 else 'fake'}  {name}")
    return 0


def cmd_gif(args):
    from . import viz
    run = Path(args.run)
    frames = sorted((run / "samples").glob("step_*.png"))
    if not frames:
        raise FileNotFoundError(f"no sample grids (samples/step_*.png) in {run}")
    frames = frames[::max(1, args.every)]
    captions = [f"step {int(p.stem.split('_')[1])}" for p in frames]
    out = Path(args.out) if args.out else run / "training.gif"
    viz.save_gif(frames, out, duration_ms=args.duration, captions=captions)
    print(f"wrote {out} ({len(frames)} frames)")
    return 0


def cmd_export(args):
    from . import sampling
    out = Path(args.out)
    G = sampling.load_generator(args.checkpoint)
    g_path = sampling.export_torch(G, out / "generator_torch.npz")
    print(f"wrote {g_path}: load with netG.load_state_dict({{k: torch.from_numpy(v) for k, v in np.load(...).items()}})")
    try:
        D = sampling.load_discriminator(args.checkpoint)
    except ValueError:
        return 0
    print(f"wrote {sampling.export_torch(D, out / 'discriminator_torch.npz')}")
    return 0


def cmd_import(args):
    import numpy as np

    from . import sampling
    with np.load(args.state_dict, allow_pickle=False) as f:
        state = dict(f)
    G = sampling.generator_from_state_dict(state, z_dist=args.z_dist)
    sampling.save_generator(G, args.out, dtype=np.float32, provenance={"imported_from": str(args.state_dict)})
    print(f"wrote {args.out} (nz={G.config['nz']}, ngf={G.config['ngf']}, {G.config['image_size']}px)")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    from .train import add_train_command
    add_train_command(sub)

    p = sub.add_parser("generate", help="generate faces, one per seed",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_checkpoint(p)
    p.add_argument("--n", type=int, default=64, help="number of faces")
    p.add_argument("--seed", type=int, default=0, help="first seed (faces use seed, seed+1, ...)")
    p.add_argument("--seeds", type=parse_seeds, help="explicit seeds, e.g. '3,14,15' or '0-9'")
    p.add_argument("--out", default="faces.png", help="grid PNG, or a folder with --separate")
    p.add_argument("--separate", action="store_true", help="one PNG per face in the folder --out")
    p.add_argument("--nrow", type=int, default=8, help="faces per grid row")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("interpolate", help="faces along a path between seeds",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_checkpoint(p)
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1], help="two or more seeds to pass through")
    p.add_argument("--steps", type=int, default=10, help="faces per leg")
    p.add_argument("--method", choices=("slerp", "linear"), default="slerp", help="path in z space")
    p.add_argument("--out", default="interpolation.png", help=".png strip or .gif animation")
    p.add_argument("--duration", type=int, default=120, help="GIF frame time in ms")
    p.add_argument("--bounce", action="store_true", help="GIF plays forwards then backwards")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("arithmetic", help="face arithmetic on averaged z: A - B + C",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Radford et al.'s demo: pick seeds whose faces show a concept, e.g. A = smiling "
                                   "women, B = neutral women, C = neutral men; mean(A) - mean(B) + mean(C) then "
                                   "tends to be a smiling man. Browse faces with `generate` to choose the seeds.")
    _add_checkpoint(p)
    for name in "abc":
        p.add_argument(f"--{name}", type=parse_seeds, required=True, help=f"seeds of group {name.upper()}")
    p.add_argument("--out", default="arithmetic.png", help="output PNG")
    p.set_defaults(func=cmd_arithmetic)

    p = sub.add_parser("judge", help="D's probability that images are real (not a deepfake detector)",
                       description="Score images with a trained discriminator. " + JUDGE_WARNING,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_checkpoint(p, required=True, what="training")
    p.add_argument("images", nargs="+", help="image files (cropped and resized like the training data)")
    p.add_argument("--crop", type=float, default=128 / 178, help="centred crop as a fraction of the width")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("gif", help="GIF of a run's sample grids", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run directory (with samples/step_*.png)")
    p.add_argument("--out", help="output GIF (default: RUN/training.gif)")
    p.add_argument("--every", type=int, default=1, help="use every k-th grid")
    p.add_argument("--duration", type=int, default=300, help="frame time in ms")
    p.set_defaults(func=cmd_gif)

    p = sub.add_parser("export", help="write G and D as PyTorch-layout state_dicts (.npz)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_checkpoint(p, required=True, what="training")
    p.add_argument("--out", default="export", help="output folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="turn a PyTorch-layout generator state_dict (.npz) into a tinygan file",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("state_dict", help=".npz with keys main.0.weight, main.1.weight, ... (PyTorch DCGAN tutorial)")
    p.add_argument("--out", default="generator.npz", help="tinygan generator file")
    p.add_argument("--z-dist", choices=("normal", "uniform"), default="normal", help="noise the model was trained on")
    p.set_defaults(func=cmd_import)

    from .fid import add_fid_command
    add_fid_command(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    _select_backend(args)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"tinygan {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
