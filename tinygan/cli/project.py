"""tinygan project: find photos in the generator, each as a z file that every seed option takes
(tinygan.projection)."""
import argparse
import sys
import time
from pathlib import Path

from .. import model_files, projection, sampling
from ..options import HelpFormatter, add_checkpoint, positive_int, whole_number
from .judge import add_framing, check_files, framed_photos


def feature_weight(text):
    """--features: a float >= 0, else argparse's one line."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_project(sub):
    p = sub.add_parser("project", help="find the face G paints closest to a photo: its z, as a seed file",
                       formatter_class=HelpFormatter,
                       description="Project photos into the generator: Adam on z through G's own backward pass, "
                                   "from the best of a few random seeds, z kept on the sphere where G's noise "
                                   "lies (tinygan/projection.py). Each photo is framed as `judge` frames it. "
                                   "Writes NAME.npy (its z: pass it wherever a seed goes, e.g. `interpolate "
                                   "--seeds NAME.npy,42`), NAME.png (the face) and NAME_steps.png (the photo, "
                                   "then the face every --every steps) into --out.")
    add_checkpoint(p, "generator (with D for the feature distance)")
    p.add_argument("photos", nargs="+", help="photo files (a face, framed as for `judge`)")
    p.add_argument("--out", default="projected", help="folder for the z files and pictures (made if missing)")
    p.add_argument("--steps", type=lambda text: whole_number(text, 0, 100_000), default=projection.STEPS,
                   help="Adam steps per photo")
    p.add_argument("--features", type=feature_weight, default=projection.FEATURE_WEIGHT,
                   help="weight of D's inner features in the distance (0: pixels only)")
    p.add_argument("--every", type=positive_int, default=20, help="steps between the faces of NAME_steps.png")
    p.add_argument("--seed", type=lambda text: whole_number(text, 0), default=0, help="seed of the random starts")
    add_framing(p)
    p.set_defaults(func=project)


def check_outputs(out, names, photos):
    """The files each photo's projection writes, (NAME.npy, NAME.png, NAME_steps.png) in ``out``; a ValueError if
    two of them are one file (names that differ only in case count as one, as on macOS and Windows), or if one
    is a photo being projected."""
    written = [tuple(out / f"{name}{ending}" for ending in (".npy", ".png", "_steps.png")) for name in names]
    seen = {}
    for photo, files in zip(photos, written):
        for path in files:
            other = seen.setdefault(str(path).lower(), photo)
            if other != photo:
                raise ValueError(f"{other} and {photo} would both write {path}; project them into different "
                                 "folders or rename one")
    inputs = {Path(photo).expanduser().resolve() for photo in photos}
    for files in written:
        for path in files:
            if path.resolve() in inputs:
                raise ValueError(f"{path} is a photo being projected; writing there would replace it (choose "
                                 "another --out)")
    return written


def project(args):
    from .. import viz
    check_files(args.photos)
    if (args.box or args.eyes) and len(args.photos) != 1:
        raise ValueError("--box and --eyes frame one photo: give exactly one photo")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out} is a file; expected a folder")
    names = [Path(photo).stem for photo in args.photos]
    written = check_outputs(out, names, args.photos)
    G = model_files.load_generator(args.checkpoint, raw=args.raw)
    D = None
    if args.features:
        try:
            D = model_files.load_discriminator(args.checkpoint)
        except ValueError as err:
            print(f"note: no discriminator for the feature distance ({err}); the distance is pixels only")
    framed = framed_photos(args.photos, G.config["image_size"], args)
    out.mkdir(parents=True, exist_ok=True)
    for k, (photo, (face, how)) in enumerate(zip(args.photos, framed)):
        label = f"[{k + 1}/{len(framed)}] {photo}"
        started = time.perf_counter()

        def report(step, distance, best_face):
            line = (f"{label}: step {step}/{args.steps}, distance {distance:.4f}, "
                    f"PSNR {projection.psnr(best_face, face):.2f} dB, {time.perf_counter() - started:.0f} s")
            print("\r" + line if sys.stdout.isatty() else line, end="" if sys.stdout.isatty() else "\n",
                  flush=True)

        result = projection.project(G, face, D, steps=args.steps, feature_weight=args.features, seed=args.seed,
                                    every=args.every, report=report)
        if sys.stdout.isatty():
            print()
        z_file, face_file, steps_file = written[k]
        sampling.save_z(result["z"], z_file)
        viz.save_image(result["face"], face_file)
        viz.save_strip([face] + result["frames"], steps_file)
        print(f"wrote {z_file} (z), {face_file} and {steps_file}: distance {result['distance']:.4f}, "
              f"PSNR {result['psnr']:.2f} dB ({how}; {time.perf_counter() - started:.0f} s)")
    print(f"use a z file as a seed: python -m tinygan interpolate --seeds '{written[0][0]},42' --out walk.gif")
    return 0
