"""The tinygan command line: python -m tinygan COMMAND ... (or: tinygan COMMAND).

    train        train the face DCGAN on CelebA (see --help)
    generate     faces from a checkpoint (or the pretrained generator), one per seed
    interpolate  a strip or GIF along a slerp path between seeds
    arithmetic   z arithmetic: mean(A) - mean(B) + mean(C)
    judge        D's probability that images are real
    gif          the training-progress GIF of a run
    export       a checkpoint's G and D as PyTorch-layout state_dicts (.npz)
    import       a PyTorch-layout generator state_dict (.npz) as a tinygan generator file
    fid          Frechet Inception Distance (and KID) between real and generated faces
    demo         a local web page: paint, walk, do arithmetic, judge a photo, watch a run
    course       the lessons as homework: student copies (assign) and a grader (grade)

Every command checks its arguments before doing anything expensive, and any
error is one line, "tinygan COMMAND: error: ...", with exit status 2.
"""
import argparse
import sys
from pathlib import Path

from . import sampling
from .images import parse_eyes, parse_numbers
from .options import (HelpFormatter, add_backend, free_output, parse_seeds, port_number, positive_float,
                      positive_int, use_backend, whole_number)
from .sampling import JUDGE_WARNING, MAX_FACES  # noqa: F401 - the CLI's names for them

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


IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


# --- arguments shared by several commands ------------------------------------------

MAX_GRID = 10_000       # faces in one grid image (6,600 pixels square)


def add_checkpoint(p, what="generator"):
    p.add_argument("--checkpoint", "-c", help=f"training checkpoint, run folder or {what} .npz "
                   "(default: the pretrained generator shipped with tinygan)")
    p.add_argument("--raw", action="store_true", help="use a checkpoint's raw G, not its averaged G (G_ema)")
    add_backend(p)


def image_format(path, what="--out"):
    """The Pillow format for an output file's suffix; ValueError for a suffix tinygan does not write."""
    fmt = IMAGE_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{what} {path}: cannot tell the image format from its suffix; "
                         f"expected one of {', '.join(IMAGE_SUFFIXES)}")
    return fmt


# --- commands ------------------------------------------------------------------------

def cmd_train(args):
    from . import run_folder, train
    options = {key: getattr(args, key) for key in train.DEFAULTS if hasattr(args, key)}
    if args.resume:
        if args.cartoon_faces:
            raise ValueError("--cartoon-faces starts a new run; a resumed run trains on the data it started with")
        try:
            trainer = train.resume(args.resume, out=options.pop("out"), overwrite=args.overwrite, finished_ok=False,
                                   **{k: v for k, v in options.items() if v is not None})
        except train.RunFinished as finished:
            print(finished)
            return 0
    else:
        if args.cartoon_faces and options.get("data"):
            raise ValueError("--data and --cartoon-faces both name the training faces; give one of them")
        config = train.make_config(args.preset, **options)
        run_folder.refuse(config["out"], None, args.overwrite)        # before a single image is decoded or drawn
        if args.cartoon_faces:
            from .synthetic import cartoon_face_folder
            config["data"] = str(cartoon_face_folder(args.cartoon_faces))
        trainer = train.Trainer(config)
    try:
        trainer.run(minutes=args.minutes, overwrite=args.overwrite)
    except train.TrainingStopped as stop:
        return 128 + stop.signum
    except KeyboardInterrupt:                 # a second Ctrl-C: stopped at once, nothing more saved
        return 130
    return 0


def cmd_generate(args):
    from . import viz
    args.out = args.out or ("faces" if args.separate else "faces.png")
    if args.separate:
        if Path(args.out).is_file():
            raise ValueError(f"--out {args.out} is a file; with --separate it must be a folder")
    else:
        fmt = image_format(free_output(args.out))
    count, most = len(args.seeds) if args.seeds else args.n, MAX_FACES if args.separate else MAX_GRID
    if count > most:
        more = "" if args.separate else f"; --separate writes up to {MAX_FACES:,}"
        raise ValueError(f"{count:,} faces are too many for one {'call' if args.separate else 'grid'} "
                         f"(at most {most:,}{more})")
    G = sampling.load_generator(args.checkpoint, raw=args.raw)
    seeds = args.seeds or list(range(args.seed, args.seed + args.n))
    faces = sampling.generate_images(G, seeds)
    if args.separate:
        pattern = viz.save_seed_images(faces, seeds, args.out)
        print(f"wrote {len(seeds)} faces (seeds {seeds[0]}..{seeds[-1]}) as {pattern}")
    elif len(seeds) == 1:
        viz.save_image(faces[0], args.out, fmt)
        print(f"wrote the face of seed {seeds[0]} ({faces.shape[2]}x{faces.shape[1]}) to {args.out}")
    else:
        viz.save_grid(faces, args.out, nrow=args.nrow, fmt=fmt)
        print(f"wrote a grid of {len(seeds)} faces (seeds {seeds[0]}..{seeds[-1]}) to {args.out}")
    return 0


def cmd_interpolate(args):
    from . import viz
    gif = str(args.out).lower().endswith(".gif")
    fmt = None if gif else image_format(free_output(args.out))
    G = sampling.load_generator(args.checkpoint, raw=args.raw)
    faces = sampling.interpolate(G, args.seeds, steps=args.steps, method=args.method)
    if gif:
        frames = list(faces) + list(faces[::-1]) if args.bounce else list(faces)
        viz.save_gif(frames, args.out, duration_ms=args.duration)
    else:
        viz.save_grid(faces, args.out, nrow=args.steps, fmt=fmt)
    print(f"wrote {len(faces)} faces along a {args.method} path through seeds {args.seeds} to {args.out}")
    return 0


def cmd_arithmetic(args):
    from . import viz
    fmt = image_format(free_output(args.out))
    G = sampling.load_generator(args.checkpoint, raw=args.raw)
    groups, result = sampling.vector_arithmetic(G, args.a, args.b, args.c)
    viz.save_grid(sampling.arithmetic_picture(groups, result), args.out, nrow=max(len(g) for g in groups) + 1,
                  fmt=fmt)
    print(f"wrote {args.out}: rows A={args.a}, B={args.b}, C={args.c} (last column: the face of each mean z); "
          f"bottom right: mean(A) - mean(B) + mean(C)")
    return 0


def cmd_judge(args):
    import numpy as np

    from . import data, judge
    if not args.images and not (args.real or args.fake):
        raise ValueError("nothing to judge: give image files, or --real / --fake folders (or .zip/.tar)")
    if (args.box or args.eyes or args.explain) and len(args.images) != 1:
        raise ValueError("--box, --eyes and --explain frame or explain one photo: give exactly one image file")
    D = sampling.load_discriminator(args.checkpoint, which=args.which)
    face_model = sampling.load_face_model(args.checkpoint) if D.role == "judge" else None
    for path in args.images:
        if not Path(path).is_file():
            raise ValueError(f"{path} is not an image file" + (" (it is a folder: pass it as --real or --fake "
                                                               "for D's accuracy on it)" if Path(path).is_dir()
                                                               else ""))
    for option, source in (("--real", args.real), ("--fake", args.fake)):
        if source is not None and not Path(source).expanduser().exists():
            raise ValueError(f"{option} {source} does not exist; expected a folder of images, a .zip or a .tar")
    explain = args.explain and image_format(free_output(args.explain, "--explain"), "--explain")
    size = D.config["image_size"]
    framed = [data.load_for_judging(path, size, args.crop, args.box, args.eyes) for path in args.images]
    print(JUDGE_WARNING)
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
            from . import viz
            picture = judge.saliency_picture(faces[0], judge.saliency(D, faces[0]))
            viz.save_image(picture, args.explain, fmt=explain)
            print(f"wrote {args.explain}: the face as D sees it, |dlogit/dpixel| (where a change would move D's "
                  "verdict most), and the two laid over each other")
    shares = []
    for source, real in ((args.real, True), (args.fake, False)):
        if source is None:
            continue
        images, names, skipped = data.load_source_for_judging(source, size, args.crop, args.limit)
        probs = sampling.judge(D, images)
        right = judge.called_real(probs) if real else ~judge.called_real(probs)
        shares.append(right.mean())
        kind, verdict = ("real", "real") if real else ("generated", "fake")
        print(f"{kind} faces ({source}): D calls {int(right.sum())} of {len(right)} {verdict} "
              f"({100 * right.mean():.1f}%); mean D {probs.mean():.3f}")
        if skipped:
            print(data.skipped_summary(skipped, len(names) + len(skipped), source))
    if len(shares) == 2:
        print(f"D's accuracy, real and generated together: {100 * np.mean(shares):.1f}% (the mean of the two "
              "shares; a D that guesses scores 50%)")
    return 0


def cmd_gif(args):
    from .monitor import make_training_gif
    out = make_training_gif(args.run, every=args.every, duration_ms=args.duration, out=args.out)
    print(f"wrote {out}")
    return 0


def cmd_export(args):
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a folder for generator_torch.npz (and "
                         "discriminator_torch.npz)")
    G = sampling.load_generator(args.checkpoint, raw=args.raw)
    g_path = sampling.export_torch(G, out / "generator_torch.npz")
    print(f"wrote {g_path}: load with "
          "netG.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(...).items()})")
    try:
        D = sampling.load_discriminator(args.checkpoint, which="gan")      # the D the GAN trained against
    except ValueError:
        print(f"{args.checkpoint or 'the pretrained file'} holds no discriminator: wrote the generator only")
        return 0
    print(f"wrote {sampling.export_torch(D, out / 'discriminator_torch.npz')}")
    return 0


def cmd_import(args):
    import numpy as np

    from . import checkpoint
    state = checkpoint.load(args.state_dict)
    G = sampling.generator_from_state_dict(state, z_dist=args.z_dist)
    sampling.save_generator(G, args.out, dtype=np.float32, provenance={"imported_from": str(args.state_dict)})
    print(f"wrote {args.out} (nz={G.config['nz']}, ngf={G.config['ngf']}, {G.config['image_size']}px)")
    return 0


def cmd_fid(args):
    from . import fid
    if args.n < 2 or (args.n_real is not None and args.n_real < 2):
        raise ValueError(f"-n and --n-real must be at least 2, got {args.n} and {args.n_real}")
    for option, path in (("--real", args.real), ("--fake", args.fake)):
        if not Path(path).exists():
            raise ValueError(f"{option} {path} does not exist")
    if args.n < fid.MIN_SAMPLES:
        print(f"warning: n={args.n} < {fid.MIN_SAMPLES}: the covariance is rank-deficient and FID is strongly "
              f"biased upwards; compare FIDs only at the same n")
    result = fid.fid_between(args.real, args.fake, n=args.n, image_size=args.image_size, crop=args.crop,
                             preprocessing=args.preprocessing, batch_size=args.batch_size, weights=args.weights,
                             cache=args.cache_dir, seed=args.seed, n_real=args.n_real, raw=args.raw)
    print(f"FID {result['fid']:.3f}  (n={result['n_real']} real vs {result['n']} fake, {args.preprocessing})")
    spread = f" +- {result['kid_std'] * 1e3:.3f}" if result["kid_subsets"] > 1 else " (one subset: every image)"
    print(f"KID {result['kid'] * 1e3:.3f}{spread} x 1e-3")
    return 0


def cmd_demo(args):
    from .demo import serve
    return serve(args.run, host=args.host, port=args.port, raw=args.raw)


def cmd_course_assign(args):
    from .course import grade
    written = grade.assign(args.out, args.lessons, teacher=args.teacher)
    print(f"wrote {len(written) // 2} lessons for students to {args.out} (each as .py and .ipynb); hand out the "
          f"folder, then grade it with: python -m tinygan course grade FOLDER")
    return 0


def cmd_course_grade(args):
    from .course import grade
    folders = grade.submissions(args.folders)
    teacher = grade.teacher_folder(args.teacher)
    lessons = grade.lesson_files(teacher)                # read once: a student's code cannot change them midway
    sandbox = grade.Sandbox(args.timeout, args.memory, private=[teacher])
    print(sandbox.describe())
    graded = [(folder, grade.grade_or_say(folder, teacher, sandbox, lessons)) for folder in folders]
    if args.csv:
        every = [g for _, grades in graded for g in grades]
        print(f"wrote {grade.write_csv(every, args.csv)} ({len(folders)} student{'s' * (len(folders) > 1)})")
    for folder, grades in graded:                     # each student's table ends with their total
        if len(folders) > 1:
            print(f"\n== {folder.name} ==")
        print("\n".join(grade.table(grades)))
        print("total: {} / {} points".format(*grade.total(grades)))
    return 0


TEACHER_HELP = "folder of the teacher's lessons (default: the lessons installed with tinygan)"


def add_course_command(sub):
    from .course.grade import MEMORY_MB, TIMEOUT
    p = sub.add_parser("course", help="the lessons as homework: student copies, and a grader",
                       description="The lessons as homework. 'assign' writes the students' copies (the marked "
                                   "parts stubbed out), 'grade' runs each part's checks and prints the points.")
    course = p.add_subparsers(dest="course_command", required=True, help="assign or grade")
    q = course.add_parser("assign", help="write the students' copies of the lessons (.py and .ipynb)",
                          formatter_class=HelpFormatter)
    q.add_argument("lessons", nargs="*", help="lessons to write, e.g. 02 04_conv_im2col (default: all)")
    q.add_argument("--out", required=True, help="folder for the students' copies (no file in it is overwritten)")
    q.add_argument("--teacher", help=TEACHER_HELP)
    q.set_defaults(func=cmd_course_assign)
    q = course.add_parser("grade", help="grade a student's folder of lessons (or a folder of students' folders)",
                          formatter_class=HelpFormatter)
    q.add_argument("folders", nargs="+", help="a student's folder, or a folder with one folder per student")
    q.add_argument("--csv", help="also write the grade book as CSV: student, lesson, part, points, ...")
    q.add_argument("--timeout", type=positive_int, default=TIMEOUT, help="seconds for the checks of one part")
    q.add_argument("--memory", type=positive_int, default=MEMORY_MB, help="MB of memory (address space) for the "
                   "process that runs one part")
    q.add_argument("--teacher", help=TEACHER_HELP)
    q.add_argument("--quick", action="store_true", help="accepted for CI scripts; every check is small already "
                   "(the whole course grades in seconds)")
    q.set_defaults(func=cmd_course_grade)


# --- the parser -------------------------------------------------------------------------

def add_train_command(sub):
    from .download import CELEBA_HELP
    from .config import OPTIONS, PRESETS
    p = sub.add_parser("train", help="train the face DCGAN", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train the 64x64 face DCGAN (Radford et al.) on CelebA or any folder, .zip or .tar "
                                   "of face photos. Every option defaults to the paper's setting.",
                       epilog=CELEBA_HELP)
    p.add_argument("--preset", default="dcgan", choices=sorted(PRESETS),
                   help="named settings: dcgan = Radford et al. (Adam 2e-4, beta1 0.5, batch 128, z ~ N(0, I)); "
                        "seed003 = the variant of the DCGAN code's 'seed 003' samples: z ~ U(-1, 1), lr 3e-4, "
                        "batch 64 (default: dcgan)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue a run from its newest checkpoint that loads; "
                   "it writes into that run's folder (or --out)")
    p.add_argument("--overwrite", action="store_true", help="start a new run in --out even if it holds another run "
                   "(deletes that run's checkpoints, samples and logs)")
    p.add_argument("--minutes", type=positive_float, help="stop after this many minutes (a checkpoint is saved; "
                   "--resume goes on), whatever --epochs or --max-steps say")
    p.add_argument("--cartoon-faces", type=positive_int, metavar="N", help="train on N cartoon faces that tinygan "
                   "draws (tinygan.synthetic) instead of --data: a first run with no download")
    for option in OPTIONS:                # every value None: an option not given keeps the preset's or the run's
        default = option.shown_default()
        help_text = option.help + (f" (default: {default})" if default and "default" not in option.help else "")
        if option.kind is bool:
            p.add_argument(option.flag, dest=option.name, action="store_false" if option.default else "store_true",
                           default=None, help=help_text)
        elif isinstance(option.kind, tuple):
            p.add_argument(option.flag, choices=option.kind, help=help_text)
        else:
            p.add_argument(option.flag, type=option.kind, metavar=option.metavar, help=help_text)
    add_backend(p)
    p.set_defaults(func=cmd_train)


def add_fid_command(sub):
    from .fid import MIN_SAMPLES, PREPROCESSING
    p = sub.add_parser("fid", help="Frechet Inception Distance (and KID) between real and generated faces",
                       formatter_class=HelpFormatter,
                       description="FID with pytorch-fid's Inception-v3 weights (read without torch). The reals are "
                                   "cropped and resized like the training data; their statistics are cached.")
    p.add_argument("--real", required=True, help="folder, .zip or .tar of real face images")
    p.add_argument("--fake", required=True,
                   help="folder/.zip/.tar of generated images, or a checkpoint .npz / run folder / generator file")
    p.add_argument("-n", type=int, default=MIN_SAMPLES, help="generated images (FID is biased upwards for small n)")
    p.add_argument("--n-real", type=int, help="real images, the first of --real (default: n)")
    p.add_argument("--raw", action="store_true", help="score a checkpoint's raw G, not its averaged G_ema")
    p.add_argument("--batch-size", type=int, default=32, help="images per Inception forward pass")
    p.add_argument("--preprocessing", choices=PREPROCESSING, default="pytorch-fid",
                   help="resize and scaling convention (see tinygan.fid.preprocess)")
    p.add_argument("--weights", help="FID weights .npz/.pth/.pt (default: $TINYGAN_FID_WEIGHTS, the cache, "
                                     "else download pytorch-fid's file)")
    p.add_argument("--image-size", type=int, default=64, help="side the real images are resized to first")
    p.add_argument("--crop", type=float, help="centre crop of the reals as a fraction of the width "
                                              "(default: the training crop, 128/178)")
    p.add_argument("--seed", type=int, default=0, help="first seed when --fake is a checkpoint")
    p.add_argument("--cache-dir", help="cache for weights and statistics (default: $TINYGAN_CACHE, "
                                       "$XDG_CACHE_HOME/tinygan or ~/.cache/tinygan)")
    add_backend(p)
    p.set_defaults(func=cmd_fid)


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_command(sub)
    add_course_command(sub)

    p = sub.add_parser("generate", help="generate faces, one per seed", formatter_class=HelpFormatter,
                       description="Paint faces with a generator: one face per seed, the same seed always the same "
                                   "face. A grid image, one image for one seed, or one PNG per face (--separate).")
    add_checkpoint(p)
    p.add_argument("--n", type=positive_int, default=64, help="number of faces")
    p.add_argument("--seed", type=int, default=0, help="first seed (faces use seed, seed+1, ...)")
    p.add_argument("--seeds", type=parse_seeds, help="explicit seeds, e.g. '3,14,15' or '0-9'")
    p.add_argument("--out", help="image file (.png, .jpg, ...): a grid, or one face for one seed (default: "
                                 "faces.png); with --separate a folder (default: faces)")
    p.add_argument("--separate", action="store_true", help="one PNG per face in the folder --out")
    p.add_argument("--nrow", type=positive_int, default=8, help="faces per grid row")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("interpolate", help="faces along a path between seeds", formatter_class=HelpFormatter,
                       description="Walk through z from seed to seed (slerp: along the sphere where the noise lives) "
                                   "and paint the faces on the way: a strip image or a GIF.")
    add_checkpoint(p)
    p.add_argument("--seeds", type=parse_seeds, default="0,1", help="two or more seeds to pass through")
    p.add_argument("--steps", type=lambda text: whole_number(text, 2, 1000), default=10,
                   help="faces per leg, 2-1000")
    p.add_argument("--method", choices=("slerp", "linear"), default="slerp", help="path in z space")
    p.add_argument("--out", default="interpolation.png", help=".png (or .jpg) strip, or .gif animation")
    p.add_argument("--duration", type=positive_int, default=120, help="GIF frame time in ms")
    p.add_argument("--bounce", action="store_true", help="GIF plays forwards then backwards")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("arithmetic", help="face arithmetic on averaged z: A - B + C", formatter_class=HelpFormatter,
                       description="Radford et al.'s demo: pick seeds whose faces show a concept, e.g. A = smiling "
                                   "women, B = neutral women, C = neutral men; mean(A) - mean(B) + mean(C) then "
                                   "tends to be a smiling man. Browse faces with `generate` to choose the seeds.")
    add_checkpoint(p)
    for name in "abc":
        p.add_argument(f"--{name}", type=parse_seeds, required=True, help=f"seeds of group {name.upper()}")
    p.add_argument("--out", default="arithmetic.png", help="output image")
    p.set_defaults(func=cmd_arithmetic)

    p = sub.add_parser("judge", help="D's probability that images are real (not a deepfake detector)",
                       description="Score images with a trained discriminator. " + JUDGE_WARNING,
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
    p.add_argument("--crop", type=float, help="centred crop as a fraction of the width (default: CelebA's 128/178 "
                                              "for photos, none for images of the model's size)")
    p.add_argument("--box", type=box_option, metavar="LEFT,TOP,SIDE",
                   help="frame the face by hand: the square (in the photo's pixels) that D judges, resized")
    p.add_argument("--eyes", type=eyes_option, metavar="XL,YL,XR,YR",
                   help="frame the face as CelebA's alignment did: the two eyes (either first) in the photo's pixels; "
                        "the photo is turned until they are level and cropped so they sit where the training "
                        "faces have theirs")
    p.add_argument("--explain", metavar="OUT.png", help="write where D looks: the gradient of its logit with "
                                                        "respect to the pixels, over the face")
    p.add_argument("--which", choices=("judge", "gan"), default="judge",
                   help="the D fitted for judging where the file has one, or the D the GAN trained against")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("gif", help="GIF of a run's sample grids", formatter_class=HelpFormatter,
                       description="Animate a run's fixed-noise sample grids (samples/step_*.png), step by step, "
                                   "with the step written on each frame.")
    p.add_argument("run", help="run folder (with samples/step_*.png)")
    p.add_argument("--out", help="output GIF (default: RUN/training.gif)")
    p.add_argument("--every", type=positive_int, default=1, help="use every k-th grid")
    p.add_argument("--duration", type=positive_int, default=300, help="frame time in ms")
    p.set_defaults(func=cmd_gif)

    p = sub.add_parser("export", help="write G and D as PyTorch-layout state_dicts (.npz)",
                       formatter_class=HelpFormatter,
                       description="Write a checkpoint's G and D as .npz files whose keys and shapes are those of "
                                   "the PyTorch DCGAN tutorial's state_dicts (numpy.load reads them).")
    add_checkpoint(p, what="training")
    p.add_argument("--out", default="export", help="output folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="turn a PyTorch-layout generator state_dict (.npz) into a tinygan file",
                       formatter_class=HelpFormatter,
                       description="Read a generator trained elsewhere (the PyTorch DCGAN tutorial's layout, saved "
                                   "as .npz) and write it as a tinygan generator file that generate and the demo use.")
    p.add_argument("state_dict", help=".npz with keys main.0.weight, main.1.weight, ... (PyTorch DCGAN tutorial)")
    p.add_argument("--out", default="generator.npz", help="tinygan generator file")
    p.add_argument("--z-dist", choices=("normal", "uniform"), default="normal", help="noise the model was trained on")
    p.set_defaults(func=cmd_import)

    add_fid_command(sub)

    p = sub.add_parser("demo", help="a local web page to paint faces, walk, judge a photo and watch a run",
                       formatter_class=HelpFormatter,
                       description="A web page served from this machine (Python's own HTTP server): paint faces, "
                                   "walk between them, do face arithmetic, judge a photo, and watch a run train.")
    p.add_argument("run", nargs="?", help="run folder or checkpoint (default: the pretrained generator and its D)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (only this machine by default; any "
                   "other needs the token printed in the URL)")
    p.add_argument("--port", type=port_number, default=8000, help="port, 0-65535 (0: any free port)")
    p.add_argument("--raw", action="store_true", help="use a checkpoint's raw G, not its averaged G_ema")
    add_backend(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        use_backend(getattr(args, "backend", None))
        return args.func(args)
    except (ValueError, OSError, RuntimeError, MemoryError) as err:
        command = " ".join(filter(None, (args.command, getattr(args, "course_command", None))))
        print(f"tinygan {command}: error: {error_message(err)}", file=sys.stderr)
        return 2


def error_message(err):
    """One line for an error: an OSError's text without its '[Errno N]' prefix."""
    if isinstance(err, MemoryError):
        return f"out of memory ({err or 'an array was too large'})"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f": {err.filename}" if err.filename else "")
    return " ".join(str(err).split()) or type(err).__name__
