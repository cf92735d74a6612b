"""tinygan train and tinygan gif: a training run, and the GIF of its sample grids."""
from ..options import DocstringHelpFormatter, HelpFormatter, add_backend, positive_float, positive_int
from ..run_folder import GIF, SAMPLE_PATTERN


def add_train(sub):
    from ..config import OPTIONS, PRESETS
    from ..download import CELEBA_HELP
    p = sub.add_parser("train", help="train the face DCGAN", formatter_class=DocstringHelpFormatter,
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
    p.set_defaults(func=train)


def train(args):
    from .. import run_folder, train
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
            from ..synthetic import cartoon_face_folder
            config["data"] = str(cartoon_face_folder(args.cartoon_faces))
        trainer = train.Trainer(config)
    try:
        trainer.run(minutes=args.minutes, overwrite=args.overwrite)
    except train.TrainingStopped as stop:
        return 128 + stop.signum
    except KeyboardInterrupt:                 # a second Ctrl-C: stopped at once, nothing more saved
        return 130
    return 0


def add_gif(sub):
    p = sub.add_parser("gif", help="GIF of a run's sample grids", formatter_class=HelpFormatter,
                       description=f"Animate a run's fixed-noise sample grids ({SAMPLE_PATTERN}), step by step, "
                                   "with the step written on each frame.")
    p.add_argument("run", help=f"run folder (with {SAMPLE_PATTERN})")
    p.add_argument("--out", help=f"output GIF (default: RUN/{GIF})")
    p.add_argument("--every", type=positive_int, default=1, help="use every k-th grid")
    p.add_argument("--duration", type=positive_int, default=300, help="frame time in ms")
    p.set_defaults(func=gif)


def gif(args):
    from ..monitor import make_training_gif
    out = make_training_gif(args.run, every=args.every, duration_ms=args.duration, out=args.out)
    print(f"wrote {out}")
    return 0
