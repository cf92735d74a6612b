"""tinygan generate, interpolate and arithmetic: faces from seeds (tinygan.sampling)."""
from pathlib import Path

from .. import model_files, sampling
from ..options import HelpFormatter, add_checkpoint, free_output, image_format, parse_seeds, positive_int, whole_number

MAX_GRID = 10_000       # faces in one grid image (6,600 pixels square)


def add_generate(sub):
    p = sub.add_parser("generate", help="generate faces, one per seed", formatter_class=HelpFormatter,
                       description="Paint faces with a generator: one face per seed, the same seed always the same "
                                   "face. A grid image, one image for one seed, or one PNG per face (--separate).")
    add_checkpoint(p)
    p.add_argument("--n", type=positive_int, default=64, help="number of faces")
    p.add_argument("--seed", type=int, default=0, help="first seed (faces use seed, seed+1, ...)")
    p.add_argument("--seeds", type=parse_seeds, help="explicit seeds, e.g. '3,14,15' or '0-9'; a z file from "
                                                     "`project` counts as a seed: 'me.npy,3'")
    p.add_argument("--out", help="image file (.png, .jpg, ...): a grid, or one face for one seed (default: "
                                 "faces.png); with --separate a folder (default: faces)")
    p.add_argument("--separate", action="store_true", help="one PNG per face in the folder --out")
    p.add_argument("--nrow", type=positive_int, default=8, help="faces per grid row")
    p.set_defaults(func=generate)


def generate(args):
    from .. import viz
    args.out = args.out or ("faces" if args.separate else "faces.png")
    if args.separate:
        if Path(args.out).is_file():
            raise ValueError(f"--out {args.out} is a file; with --separate it must be a folder")
    else:
        fmt = image_format(free_output(args.out))
    count, most = len(args.seeds) if args.seeds else args.n, sampling.MAX_FACES if args.separate else MAX_GRID
    if count > most:
        more = "" if args.separate else f"; --separate writes up to {sampling.MAX_FACES:,}"
        raise ValueError(f"{count:,} faces are too many for one {'call' if args.separate else 'grid'} "
                         f"(at most {most:,}{more})")
    G = model_files.load_generator(args.checkpoint, raw=args.raw)
    seeds = args.seeds or list(range(args.seed, args.seed + args.n))
    faces = sampling.generate_images(G, seeds)
    if args.separate:
        pattern = viz.save_seed_images(faces, seeds, args.out)
        print(f"wrote {len(seeds)} faces ({seed_range(seeds)}) as {pattern}")
    elif len(seeds) == 1:
        viz.save_image(faces[0], args.out, fmt)
        print(f"wrote the face of {seed_range(seeds)} ({faces.shape[2]}x{faces.shape[1]}) to {args.out}")
    else:
        viz.save_grid(faces, args.out, nrow=args.nrow, fmt=fmt)
        print(f"wrote a grid of {len(seeds)} faces ({seed_range(seeds)}) to {args.out}")
    return 0


def seed_range(seeds):
    """'seed 3', 'seeds 0..63', or, with z files among them, 'seeds me, 3, 4'."""
    if len(seeds) == 1:
        return f"seed {sampling.seed_name(seeds[0])}"
    if all(isinstance(seed, int) for seed in seeds):
        return f"seeds {seeds[0]}..{seeds[-1]}"
    names = [sampling.seed_name(seed) for seed in seeds]
    return "seeds " + ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def add_interpolate(sub):
    p = sub.add_parser("interpolate", help="faces along a path between seeds", formatter_class=HelpFormatter,
                       description="Walk through z from seed to seed (slerp: along the sphere where the noise lives) "
                                   "and paint the faces on the way: a strip image or a GIF.")
    add_checkpoint(p)
    p.add_argument("--seeds", type=parse_seeds, default="0,1", help="two or more seeds to pass through; z files "
                                                                     "from `project` too: 'me.npy,42'")
    p.add_argument("--steps", type=lambda text: whole_number(text, 2, 1000), default=10,
                   help="faces per leg, 2-1000")
    p.add_argument("--method", choices=sampling.PATHS, default=sampling.PATHS[0], help="path in z space")
    p.add_argument("--out", default="interpolation.png", help=".png (or .jpg) strip, or .gif animation")
    p.add_argument("--duration", type=positive_int, default=120, help="GIF frame time in ms")
    p.add_argument("--bounce", action="store_true", help="GIF plays forwards then backwards")
    p.set_defaults(func=interpolate)


def interpolate(args):
    from .. import viz
    gif = str(args.out).lower().endswith(".gif")
    fmt = None if gif else image_format(free_output(args.out))
    G = model_files.load_generator(args.checkpoint, raw=args.raw)
    faces = sampling.interpolate(G, args.seeds, steps=args.steps, method=args.method)
    if gif:
        frames = list(faces) + list(faces[::-1]) if args.bounce else list(faces)
        viz.save_gif(frames, args.out, duration_ms=args.duration)
    else:
        viz.save_grid(faces, args.out, nrow=args.steps, fmt=fmt)
    print(f"wrote {len(faces)} faces along a {args.method} path through "
          f"{', '.join(map(sampling.seed_name, args.seeds))} to {args.out}")
    return 0


def add_arithmetic(sub):
    p = sub.add_parser("arithmetic", help="face arithmetic on averaged z: A - B + C", formatter_class=HelpFormatter,
                       description="Radford et al.'s demo: pick seeds whose faces show a concept, e.g. A = smiling "
                                   "women, B = neutral women, C = neutral men; mean(A) - mean(B) + mean(C) then "
                                   "tends to be a smiling man. Browse faces with `generate` to choose the seeds.")
    add_checkpoint(p)
    for name in "abc":
        p.add_argument(f"--{name}", type=parse_seeds, required=True,
                       help=f"seeds (or z files from `project`) of group {name.upper()}")
    p.add_argument("--out", default="arithmetic.png", help="output image")
    p.set_defaults(func=arithmetic)


def arithmetic(args):
    from .. import viz
    fmt = image_format(free_output(args.out))
    G = model_files.load_generator(args.checkpoint, raw=args.raw)
    groups, result = sampling.vector_arithmetic(G, args.a, args.b, args.c)
    viz.save_grid(sampling.arithmetic_picture(groups, result), args.out, nrow=max(len(g) for g in groups) + 1,
                  fmt=fmt)
    a, b, c = (",".join(map(sampling.seed_name, group)) for group in (args.a, args.b, args.c))
    print(f"wrote {args.out}: rows A={a}, B={b}, C={c} (last column: the face of each mean z); "
          f"bottom right: mean(A) - mean(B) + mean(C)")
    return 0
