"""tinygan judge: D's probability that photos are real, and its accuracy on folders (tinygan.judge)."""
import argparse
from pathlib import Path

from .. import judge, model_files
from ..images import parse_eyes, parse_numbers
from ..options import HelpFormatter, add_backend, free_output, image_format, positive_int


def box_option(text):
    """--box LEFT,TOP,SIDE -> (left, top, side)."""
    try:
        return parse_numbers(text, 3, "--box LEFT,TOP,SIDE")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def eyes_option(text):
    """--eyes XL,YL,XR,YR -> ((xl, yl), (xr, yr))."""
    try:
        return parse_eyes(text, "--eyes XL,YL,XR,YR")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_framing(p):
    """--crop, --box and --eyes: how a photo is framed for D (and for `project`): tinygan.images."""
    p.add_argument("--crop", type=float, help="centred crop as a fraction of the width (default: CelebA's 128/178 "
                                              "for photos, none for images of the model's size)")
    p.add_argument("--box", type=box_option, metavar="LEFT,TOP,SIDE",
                   help="frame the face by hand: the square (in the photo's pixels) that D judges, resized")
    p.add_argument("--eyes", type=eyes_option, metavar="XL,YL,XR,YR",
                   help="frame the face as CelebA's alignment did: the two eyes (either first) in the photo's pixels; "
                        "the photo is turned until they are level and cropped so they sit where the training "
                        "faces have theirs")


def check_files(paths, folder_hint=" (it is a folder)"):
    """A ValueError for the first path that is no file."""
    for path in paths:
        if not Path(path).expanduser().is_file():
            raise ValueError(f"{path} is not an image file" + (folder_hint if Path(path).expanduser().is_dir()
                                                               else ""))


def framed_photos(paths, image_size, args):
    """Each photo framed for D as --crop, --box and --eyes say (tinygan.images.load_for_judging): a list of
    (uint8 (S, S, 3), how it was framed in words)."""
    from ..data import load_for_judging
    return [load_for_judging(path, image_size, args.crop, args.box, args.eyes) for path in paths]


def add_judge(sub):
    p = sub.add_parser("judge", help="D's probability that images are real (not a deepfake detector)",
                       description="Score images with a trained discriminator. " + judge.JUDGE_WARNING,
                       formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", "-c", help="training checkpoint, run folder or generator file with D "
                   "(default: the discriminator shipped beside the pretrained generator)")
    add_backend(p)
    p.add_argument("images", nargs="*", help="image files: a photo is cropped and resized like the training data; "
                                             "an image of the model's size (a generated face) is judged as it is")
    p.add_argument("--real", metavar="SOURCE", help="a folder (.zip, .tar) of real faces: print the share D calls "
                                                    "real")
    p.add_argument("--fake", metavar="SOURCE", help="a folder (.zip, .tar) of generated faces (e.g. `generate "
                                                    "--separate`): print the share D calls fake")
    p.add_argument("--limit", type=positive_int, help="judge only the first N images (by name) of --real and --fake")
    add_framing(p)
    p.add_argument("--explain", metavar="OUT.png", help="write where D looks: the gradient of its logit with "
                                                        "respect to the pixels, over the face")
    p.add_argument("--which", choices=model_files.WHICH_D, default=model_files.WHICH_D[0],
                   help="the D fitted for judging where the file has one, or the D the GAN trained against")
    p.set_defaults(func=judge_images)


def judge_images(args):
    import numpy as np

    from .. import data
    if not args.images and not (args.real or args.fake):
        raise ValueError("nothing to judge: give image files, or --real / --fake folders (or .zip/.tar)")
    if (args.box or args.eyes or args.explain) and len(args.images) != 1:
        raise ValueError("--box, --eyes and --explain frame or explain one photo: give exactly one image file")
    D = model_files.load_discriminator(args.checkpoint, which=args.which)
    face_model = model_files.load_face_model(args.checkpoint) if D.role == "judge" else None
    check_files(args.images, " (it is a folder: pass it as --real or --fake for D's accuracy on it)")
    for option, source in (("--real", args.real), ("--fake", args.fake)):
        if source is not None and not Path(source).expanduser().exists():
            raise ValueError(f"{option} {source} does not exist; expected a folder of images, a .zip or a .tar")
    explain = args.explain and image_format(free_output(args.explain, "--explain"), "--explain")
    size = D.config["image_size"]
    framed = framed_photos(args.images, size, args)
    print(judge.JUDGE_WARNING)
    if D.role == "gan":
        print("note: this is the D the GAN trained against, not a judge fitted for judging, and in eval mode it "
              "calls most real photos fake (see tinygan/judge.py; examples/package_generator.py --data fits one)")
    if args.images:
        faces = np.stack([face for face, _ in framed])
        for name, answer, (_, how) in zip(args.images, judge.judge_faces(D, faces, face_model), framed):
            print(f"{answer['probability']:6.3f}  {answer['verdict']:10s}  {name}  ({how})")
            if not answer["is_face"]:
                print(f"        {judge.NOT_A_FACE}")
        if explain:
            from .. import viz
            picture = judge.saliency_picture(faces[0], judge.saliency(D, faces[0]))
            viz.save_image(picture, args.explain, fmt=explain)
            print(f"wrote {args.explain}: the face as D sees it, |dlogit/dpixel| (where a change would move D's "
                  "verdict most), and the two laid over each other")
    shares = []
    for source, real in ((args.real, True), (args.fake, False)):
        if source is None:
            continue
        result = judge.judge_folder(D, source, real, size, args.crop, args.limit)
        right, probs, skipped = result["right"], result["probabilities"], result["skipped"]
        shares.append(right.mean())
        kind, verdict = ("real", "real") if real else ("generated", "fake")
        print(f"{kind} faces ({source}): D calls {int(right.sum())} of {len(right)} {verdict} "
              f"({100 * right.mean():.1f}%); mean D {probs.mean():.3f}")
        if skipped:
            print(data.skipped_summary(skipped, len(result["names"]) + len(skipped), source))
    if len(shares) == 2:
        print(f"D's accuracy, real and generated together: {100 * np.mean(shares):.1f}% (the mean of the two "
              "shares; a D that guesses scores 50%)")
    return 0
