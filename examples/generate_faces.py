"""Generate faces with a trained DCGAN generator, one face per seed.

    python examples/generate_faces.py                                  # 64 faces from the pretrained generator
    python examples/generate_faces.py --checkpoint runs/celeba --seeds 0-15 --out faces.png
    python examples/generate_faces.py --seeds 7,42,1234 --separate --out faces/   # one PNG per seed

Seed s always gives the same face: its z is drawn from a generator seeded with
s alone, and G runs in eval mode (BatchNorm uses its running statistics), so a
face does not depend on the other faces in the batch. Note the seeds of the
faces you like; `interpolate.py` walks between them.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import _common  # noqa: E402
from tinygan import sampling, viz  # noqa: E402
from tinygan.options import parse_seeds  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__)
    _common.add_generator_argument(p)
    p.add_argument("--n", type=int, default=64, help="number of faces, seeds --seed .. --seed + n - 1")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--seeds", type=parse_seeds, help="explicit seeds instead, e.g. '0-15' or '3,14,15'")
    p.add_argument("--out", default="faces.png", help="grid PNG, or a folder with --separate")
    p.add_argument("--separate", action="store_true", help="one PNG per face, --out/seed_000042.png")
    p.add_argument("--nrow", type=int, default=8, help="faces per grid row")
    _common.add_backend_argument(p)
    p.add_argument("--quick", action="store_true",
                   help="16 faces; with no --checkpoint and no pretrained generator, a tiny one trained for seconds")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    if args.n < 1:
        _common.fail(f"--n must be at least 1, got {args.n}")
    G, source, _keep = _common.generator_or_quick(args)
    seeds = args.seeds or list(range(args.seed, args.seed + (min(args.n, 16) if args.quick else args.n)))
    faces = sampling.generate_images(G, seeds)                      # uint8 (N, 64, 64, 3)
    size = G.config["image_size"]
    if args.separate:
        pattern = viz.save_seed_images(faces, seeds, args.out)
        print(f"generated {len(seeds)} faces of {size}x{size} from {source}; wrote {pattern}")
    else:
        viz.save_grid(faces, args.out, nrow=args.nrow)
        print(f"generated {len(seeds)} faces of {size}x{size} from {source}; wrote the grid {args.out}")
    print(f"seeds: {seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else f"seeds: {seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
