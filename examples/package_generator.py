"""Turn a training checkpoint into a small generator file to share with students, with a judge.

The file keeps G's weights (the averaged G_ema when the checkpoint has one) and D's, in float16 (half the
bytes; the faces are indistinguishable), plus the model config and where it came from: the data, the steps,
the wall time, the machine and the data's terms of use. Everyone can then run ``python -m tinygan generate -c
generator.npz`` and ``judge`` without the data or the optimiser states.

With --data (the faces G was trained on) it also makes a judge (tinygan.judge): a copy of D fine-tuned for
--judge-steps steps against the frozen G on mixed batches of real and generated faces, so that in eval mode
it calls real photos real and G's faces fake, and a check of what is no face photo at all. The last
--judge-held-out faces of the data are kept out of that and score it; the .json says how it was made and what
it scored. ``judge`` uses that judge; the D the GAN trained against stays in the file too (lesson 14 and
``load_discriminator(path, which="gan")``).

The source may also be a generator file with D (such as tinygan/pretrained/generator.npz): G and D are kept
as they are and a new judge is fitted.

    python examples/package_generator.py runs/celeba/checkpoints/ckpt_000780.npz --out generator.npz \\
        --data celeba.tar --wall-time "55 min" --machine "2-core CPU"
"""
import copy
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402
from tinygan import judge, model_files  # noqa: E402
from tinygan.data import CELEBA_CROP, FaceDataset  # noqa: E402
from tinygan.options import free_output, positive_int  # noqa: E402

CELEBA_TERMS = ("Trained on CelebA images (Liu et al., ICCV 2015, MMLAB CUHK), which may be used for "
                "non-commercial research and educational purposes only. The generated faces belong to no real "
                "person but the model was learned from real photographs: do not use it commercially.")


def build_parser():
    parser = _common.make_parser(__doc__)
    parser.add_argument("source", help="a training checkpoint (ckpt_*.npz), a run directory, or a generator file "
                                       "with D (re-packaged with a new judge)")
    parser.add_argument("--out", default="generator.npz", help="output file")
    parser.add_argument("--data", default=_common.default_data(),
                        help="the faces G was trained on (folder, .zip, .tar), to fit the judge; without it the "
                             "file has no judge and `judge` uses the GAN's own D")
    parser.add_argument("--judge-steps", type=positive_int, default=judge.JUDGE_STEPS,
                        help="the judge's fine-tuning steps")
    parser.add_argument("--judge-held-out", type=positive_int, default=1000,
                        help="the last faces of --data, kept out of the judge's fine-tuning to score it")
    parser.add_argument("--judge-batch-size", type=positive_int, default=judge.JUDGE_BATCH,
                        help="real faces per fine-tuning batch (and as many fakes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the judge's batches and noise")
    parser.add_argument("--wall-time", default="", help="how long the training took, for the provenance")
    parser.add_argument("--machine", default=platform.processor() or platform.machine(),
                        help="what it was trained on")
    parser.add_argument("--note", default="", help="anything else worth knowing (e.g. the FID)")
    parser.add_argument("--raw", action="store_true", help="ship the raw G, not the averaged G_ema")
    _common.add_backend_argument(parser)
    return parser


PATH_OPTIONS = ("out", "data", "fid_weights")       # training options that hold a path


def without_machine_paths(config):
    """A training config as it ships: each path reduced to its file or folder name (the folders of the machine
    that trained it are nobody else's)."""
    return {key: Path(str(value)).name if key in PATH_OPTIONS and value else value for key, value in config.items()}


def provenance_of(tree, path, args):
    """Where the file comes from: a checkpoint's config and steps, or a generator file's own provenance."""
    if tree.get("format") == model_files.GENERATOR_FORMAT:
        return dict(tree.get("provenance", {}))
    if "G" not in tree or "config" not in tree:
        _common.fail(f"{path} is neither a tinygan training checkpoint nor a generator file (no G/ or config)")
    config = without_machine_paths(tree["config"])
    return {
        "source_checkpoint": Path(path).name,
        "data": config.get("data"), "images_limit": config.get("limit"),
        "steps": int(tree["step"]), "batch_size": config.get("batch_size"),
        "epochs": round(int(tree["step"]) / max(1, len(tree["data_order"]["order"]) // config["batch_size"]), 2),
        "generator": "raw G" if args.raw or "G_ema" not in tree else "G_ema, the average of G's weights (tinygan.ema)",
        "training_config": config, "wall_time": args.wall_time, "machine": args.machine,
        "note": args.note, "terms": CELEBA_TERMS,
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    try:
        free_output(args.out)                      # before minutes of fine-tuning, not after
        tree, path = model_files.load_tree(args.source)
        provenance = provenance_of(tree, path, args)
        G, D = model_files.load_generator(path, raw=args.raw), model_files.load_discriminator(path, which="gan")
        fitted = None
        if args.data:
            crop = provenance.get("training_config", {}).get("crop", CELEBA_CROP)    # G's own training crop
            dataset = FaceDataset(args.data, image_size=G.config["image_size"], crop=crop)
            judge_D = copy.deepcopy(D)                                   # fine-tuned; D stays as it was
            print(f"fitting a judge: {args.judge_steps} steps on {len(dataset) - args.judge_held_out} faces, "
                  f"the last {args.judge_held_out} held out")
            judge_D, faces, report = judge.make_judge(G, judge_D, dataset.images, args.judge_held_out,
                                                      args.judge_steps, args.judge_batch_size, seed=args.seed)
            provenance["judge"] = dict(report, data=Path(args.data).name)
            fitted = (judge_D, faces)
            score = report["score"]
            print(f"judge on held-out faces: {score['real_called_real']:.1%} of {score['n_real']} real faces called "
                  f"real, {score['fake_called_fake']:.1%} of {score['n_fake']} fresh fakes called fake")
    except (OSError, ValueError) as err:
        _common.fail(str(err))
    out, about = _common.save_generator_file(G, args.out, provenance, D, fitted)
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB, float16, G, D{' and the judge' if fitted else ''}) "
          f"and {about}")
    if not fitted:
        print("no --data: the file has no judge, so `judge` will use the GAN's own D (a poor judge, see "
              "tinygan/judge.py)")
    print(f"try it: python -m tinygan generate -c {out} --out faces.png")


if __name__ == "__main__":
    main()
