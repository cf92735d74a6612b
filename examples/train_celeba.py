"""Train the 64x64 face DCGAN (Radford et al. 2016) on CelebA.

    python examples/train_celeba.py --data ~/data/img_align_celeba.zip --epochs 5
    python examples/train_celeba.py --resume runs/celeba            # go on where it stopped
    python examples/train_celeba.py --quick                         # a few seconds: tiny model, 4 steps

Where to get CelebA: download img_align_celeba.zip (1.4 GB, 202,599 aligned
faces) from the official page https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html
or the Kaggle mirror (jessicali9530/celeba-dataset), and pass the zip as it is
to --data. The full instructions, with the checksum, are printed at the end of
--help (they are tinygan.download.CELEBA_HELP). CelebA is for non-commercial
research and education only.

The first run decodes every image once into a uint8 cache next to the data;
later runs start at once. Every --checkpoint-every steps the run writes a
checkpoint with everything needed to continue bit-identically (--resume), a
grid of faces from fixed noise (samples/), the loss log and its plot; at the
end, a GIF of the grids. Ctrl-C finishes the current step and saves a checkpoint before it stops.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import _common  # noqa: E402
from tinygan import train  # noqa: E402
from tinygan.download import CELEBA_HELP  # noqa: E402

QUICK = {"nz": 32, "ngf": 8, "ndf": 8, "batch_size": 8, "max_steps": 4, "limit": 64, "log_every": 1,
         "sample_every": 2, "checkpoint_every": 2, "n_samples": 16}


def build_parser():
    p = _common.make_parser(__doc__, epilog=CELEBA_HELP)
    _common.add_data_argument(p)                                  # --data, --synthetic
    p.add_argument("--out", default="runs/celeba", help="run directory: checkpoints/, samples/, loss_log.csv, ...")
    p.add_argument("--preset", default="dcgan", choices=sorted(train.PRESETS),
                   help="dcgan: Adam 2e-4, batch 128, z ~ N(0, I); seed003: z ~ U(-1, 1), lr 3e-4, batch 64")
    p.add_argument("--epochs", type=int, help=f"passes over the data (default: {train.DEFAULTS['epochs']}; "
                                              "on --resume, the run's own)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in all (overrides --epochs)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the preset's, 128 or 64)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the preset's, 2e-4 or 3e-4)")
    p.add_argument("--limit", type=int, help="train on the first N images only (default: all)")
    p.add_argument("--seed", type=int, help=f"seeds the weights, the noise and the batch order "
                                            f"(default: {train.DEFAULTS['seed']})")
    p.add_argument("--checkpoint-every", type=int,
                   help=f"steps between checkpoints (default: {train.DEFAULTS['checkpoint_every']})")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue a run from its newest checkpoint")
    _common.add_backend_argument(p)
    p.add_argument("--quick", action="store_true",
                   help=f"a tiny model for a few steps, to check that everything works: {QUICK}")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    options = {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size, "lr": args.lr,
               "limit": args.limit, "seed": args.seed, "checkpoint_every": args.checkpoint_every}
    synthetic = args.synthetic or (args.quick and not args.data)
    dataset = None
    if synthetic:
        n = args.limit or (QUICK["limit"] if args.quick else 1024)
        dataset = _common.synthetic_faces(n)
        print(f"training on {n} synthetic faces (drawn by examples/_common.py), not on CelebA")
    elif not args.data and not args.resume:
        _common.fail("no training data: pass --data PATH (a CelebA folder, .zip or .tar), set $TINYGAN_DATA, "
                     f"or use --synthetic.\n\n{CELEBA_HELP}")
    try:
        if args.resume:
            trainer = train.resume(args.resume, dataset=dataset, **options)
        else:
            if args.quick:
                options = {**QUICK, **{k: v for k, v in options.items() if v is not None}}
            config = train.make_config(args.preset, data=None if synthetic else args.data, out=args.out, **options)
            trainer = train.Trainer(config, dataset=dataset)
        trainer.run()
    except train.DivergenceError as err:
        _common.fail(str(err))
    except (ValueError, FileNotFoundError) as err:
        _common.fail(str(err))
    except KeyboardInterrupt:
        return 130
    out = trainer.out
    print(f"trained {trainer.step} steps; the run is in {out}")
    print(f"  continue:        python examples/train_celeba.py --resume {out} --epochs N")
    print(f"  generate faces:  python examples/generate_faces.py --checkpoint {out}")
    print(f"  training GIF:    {trainer.folder.gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
