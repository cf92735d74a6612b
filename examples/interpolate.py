"""Walk through the generator's latent space: faces along a slerp path between seeds, as a strip and a GIF.

    python examples/interpolate.py --seeds 3,14 --steps 10
    python examples/interpolate.py --checkpoint runs/celeba --seeds 0,7,21,0 --gif loop.gif   # a loop

Why slerp? z ~ N(0, I) in 100 dimensions lies close to a sphere of radius
sqrt(100) = 10 (its norm varies by only about 0.7). The straight line between
two such points cuts through the inside of the sphere, where |z| is smaller
than G ever saw in training; at the midpoint |z| is about 10 / sqrt(2). The
spherical path stays near the sphere (exactly on it when both ends have the
same norm). The strip shows both: the slerp
path in the top row and the straight line in the bottom row, and the script
prints |z| at the middle of the first leg for each.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import numpy as np  # noqa: E402

import _common  # noqa: E402
from tinygan import sampling, viz  # noqa: E402
from tinygan.options import parse_seeds  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__)
    _common.add_generator_argument(p)
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1], help="two or more seeds to pass through, e.g. '3,14'")
    p.add_argument("--steps", type=int, default=10, help="faces per leg, both seeds' faces included")
    p.add_argument("--out", default="interpolation.png", help="strip PNG: slerp on top, straight line below")
    p.add_argument("--gif", default="interpolation.gif", help="animated GIF of the slerp path ('' for none)")
    p.add_argument("--duration", type=int, default=100, help="GIF frame time in ms")
    p.add_argument("--no-bounce", dest="bounce", action="store_false", help="GIF plays forwards only")
    _common.add_backend_argument(p)
    p.add_argument("--quick", action="store_true",
                   help="5 steps; with no --checkpoint and no pretrained generator, a tiny one trained for seconds")
    return p


def midpoint_norms(G, seeds):
    """|z| of the two first seeds and of the middle of the slerp and of the straight path between them."""
    z0, z1 = sampling.noise_for_seeds(seeds[:2], G.config["nz"], G.config["z_dist"])
    norm = lambda z: float(np.linalg.norm(z))   # noqa: E731
    return norm(z0), norm(z1), norm(sampling.slerp(z0, z1, 0.5)), norm(0.5 * z0 + 0.5 * z1)


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    if len(args.seeds) < 2 or args.steps < 2:
        _common.fail(f"need at least 2 seeds and --steps >= 2, got seeds {args.seeds} and --steps {args.steps}")
    steps = min(args.steps, 5) if args.quick else args.steps
    G, source, _keep = _common.generator_or_quick(args)

    on_sphere = sampling.interpolate(G, args.seeds, steps=steps, method="slerp")    # uint8 (M, 64, 64, 3)
    straight = sampling.interpolate(G, args.seeds, steps=steps, method="linear")
    viz.save_grid(np.concatenate([on_sphere, straight]), args.out, nrow=len(on_sphere))
    print(f"interpolated through seeds {args.seeds} with G from {source}, {steps} faces per leg; "
          f"wrote {args.out} (top: slerp, bottom: straight line)")
    if args.gif:
        frames = list(on_sphere) + (list(on_sphere[-2:0:-1]) if args.bounce else [])
        viz.save_gif(frames, args.gif, duration_ms=args.duration)
        print(f"wrote {args.gif} ({len(frames)} frames, {args.duration} ms each)")
    n0, n1, n_slerp, n_line = midpoint_norms(G, args.seeds)
    print(f"|z| of seed {args.seeds[0]}: {n0:.2f}, of seed {args.seeds[1]}: {n1:.2f}; half-way between them "
          f"|z| is {n_slerp:.2f} on the slerp path and {n_line:.2f} on the straight line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
