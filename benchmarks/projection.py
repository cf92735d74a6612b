"""How well tinygan.projection finds photos in the generator, against the best of many random seeds.

For each photo (the first --crops test-split face crops, framed with the whole width, and the first --train
aligned training faces, with the training crop): the projection's distance (tinygan.projection.Likeness, the
default feature weight) and PSNR against the photo, beside the seed among --random random seeds whose face is
closest under the same distance; the seconds each projection took. With --weights, each feature weight is
projected too, and every projection is also measured by a distance none of them optimised: the L2 distance
of FID Inception features (2048 numbers) between face and photo. Writes a picture, one photo per column: the
photos, the best random seeds, then the projections (a row per weight).

    python benchmarks/projection.py [--crops 10] [--train 10] [--random 10000] [--weights 1,0]
    python benchmarks/projection.py --folder MY_PHOTOS --train 5        # your own photos
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import model_files, projection, sampling, viz  # noqa: E402
from tinygan.data import load_source_for_judging, to_float  # noqa: E402
from tinygan.options import DocstringHelpFormatter, default_data, default_fid_weights  # noqa: E402

CROPS = "celeba_testsplit_facecrops_dev5k.tar"


def photos(args):
    """The photos, framed for the model (uint8 (N, 64, 64, 3)), and their names."""
    if args.folder:
        images, names, _ = load_source_for_judging(args.folder, 64, None, args.train)
        return images, names
    data = Path(args.data)
    crops, crop_names, _ = load_source_for_judging(data.parent / CROPS, 64, 1.0, args.crops)
    train, train_names, _ = load_source_for_judging(data, 64, None, args.train)
    return np.concatenate([crops[:args.crops], train[:args.train]]), crop_names + train_names


def best_random(G, likenesses, n, chunk=250):
    """For each likeness, the seed in 0..n-1 whose face is closest, and that distance. (All likenesses share
    one D: each chunk's features are computed once.)"""
    best = [(np.inf, -1)] * len(likenesses)
    for start in range(0, n, chunk):
        seeds = list(range(start, min(n, start + chunk)))
        faces = G(sampling.noise_for_seeds(seeds, G.config["nz"], G.config["z_dist"]))
        features = max(likenesses, key=lambda likeness: len(likeness.taps)).features(faces)
        for k, likeness in enumerate(likenesses):
            dist = likeness.distances(faces, features)
            i = int(np.argmin(dist))
            if dist[i] < best[k][0]:
                best[k] = (float(dist[i]), seeds[i])
        print(f"\rrandom seeds: {start + len(seeds)}/{n}", end="", flush=True)
    print()
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    p.add_argument("--checkpoint", help="generator file with D (default: the shipped one)")
    p.add_argument("--data", default=default_data(), help="the aligned training faces (.tar); the test-split "
                                                          f"crops are {CROPS} beside it")
    p.add_argument("--crops", type=int, default=10, help="test-split face crops")
    p.add_argument("--train", type=int, default=10, help="aligned training faces")
    p.add_argument("--folder", help="the first --train images of this folder (.zip, .tar) instead, with the "
                                    "training crop")
    p.add_argument("--random", type=int, default=10_000, help="random seeds to search")
    p.add_argument("--steps", type=int, default=projection.STEPS)
    p.add_argument("--weights", default=str(projection.FEATURE_WEIGHT),
                   help="feature weights to project with, comma-separated; the first is compared with random seeds")
    p.add_argument("--fid-weights", default=default_fid_weights(), help="FID Inception weights (TorchScript)")
    p.add_argument("--out", default="projection.png", help="the picture")
    args = p.parse_args()
    if not args.data:
        p.error("no --data: pass the aligned CelebA .tar (with the test-split crops beside it)")
    weights = [float(w) for w in args.weights.split(",")]
    G = model_files.load_generator(args.checkpoint)
    D = model_files.load_discriminator(args.checkpoint)
    images, names = photos(args)
    print(f"{len(images)} photos: {names[0]} ... {names[-1]}; D is the file's {D.role}; steps {args.steps}")

    likenesses = [projection.Likeness(to_float(photo[None]), D, w) for w in weights for photo in images]
    started = time.perf_counter()
    found = best_random(G, likenesses, args.random)
    print(f"searched {args.random:,} random seeds in {time.perf_counter() - started:.0f} s")
    best = {w: found[i * len(images):(i + 1) * len(images)] for i, w in enumerate(weights)}
    random_faces = sampling.generate_images(G, [seed for _, seed in best[weights[0]]])

    results = {w: [] for w in weights}
    for k, photo in enumerate(images):
        for w in weights:
            started = time.perf_counter()
            result = projection.project(G, photo, D, steps=args.steps, feature_weight=w)
            result["seconds"] = time.perf_counter() - started
            results[w].append(result)
        r, (distance, seed) = results[weights[0]][k], best[weights[0]][k]
        print(f"{names[k]:42s} projection d {r['distance']:.4f} PSNR {r['psnr']:5.2f} dB ({r['seconds']:.1f} s) | "
              f"best random seed {seed:5d} d {distance:.4f} PSNR {projection.psnr(random_faces[k], photo):5.2f}",
              flush=True)

    print()
    for w in weights:
        wins = sum(r["distance"] < b[0] for r, b in zip(results[w], best[w]))
        print(f"RESULT feature weight {w:g}: the projection is closer than the best of {args.random:,} random seeds "
              f"on {wins} of {len(images)} photos (median distance {np.median([r['distance'] for r in results[w]]):.4f}"
              f" against {np.median([b[0] for b in best[w]]):.4f}); "
              f"median {np.median([r['seconds'] for r in results[w]]):.1f} s per photo")

    columns = [images, random_faces] + [np.stack([r["face"] for r in results[w]]) for w in weights]
    if args.fid_weights:
        from tinygan.fid.preprocess import images_to_features
        from tinygan.fid.weights import fid_inception_v3
        model = fid_inception_v3(args.fid_weights, download=False, verbose=False)
        features = [images_to_features(c, model=model) for c in columns]
        labels = [f"best random seed (weight {weights[0]:g})"] + [f"projection, feature weight {w:g}" for w in weights]
        far = np.stack([np.linalg.norm(f - features[0], axis=1) for f in features[1:]])     # (columns, photos)
        closest = np.argmin(far[1:], axis=0)                                            # among the projections
        for k, (label, faces) in enumerate(zip(labels, columns[1:])):
            psnrs = [projection.psnr(a, b) for a, b in zip(faces, images)]
            wins = f"; the closest projection on {int((closest == k - 1).sum())} photos" if k else ""
            print(f"RESULT {label:36s} Inception L2 to the photo: median {np.median(far[k]):.2f}, mean "
                  f"{far[k].mean():.2f}{wins}; PSNR median {np.median(psnrs):.2f} dB")
    viz.save_grid(np.concatenate(columns), args.out, nrow=len(images))
    print(f"wrote {args.out}: one photo per column; rows: the photos, the best random seeds, the projections"
          + (f" (feature weights {', '.join(f'{w:g}' for w in weights)})" if len(weights) > 1 else ""))


if __name__ == "__main__":
    main()
