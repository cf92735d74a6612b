"""Turn a training checkpoint into a small generator file to share with students.

The file keeps G's weights (the averaged G_ema when the checkpoint has one) and
D's, in float16 (half the bytes; the faces are indistinguishable), plus the model
config and where it came from: the data, the steps, the wall time, the machine and
the data's terms of use. Everyone can then run ``python -m tinygan generate -c
generator.npz`` and ``judge`` without the data or the optimiser states.

    python examples/package_generator.py runs/celeba/checkpoints/ckpt_000780.npz --out generator.npz \\
        --wall-time "55 min" --machine "2-core CPU"
"""
import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402
from tinygan import sampling  # noqa: E402

CELEBA_TERMS = ("Trained on CelebA images (Liu et al., ICCV 2015, MMLAB CUHK), which may be used for "
                "non-commercial research and educational purposes only. The generated faces belong to no real "
                "person but the model was learned from real photographs: do not use it commercially.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a training checkpoint (ckpt_*.npz) or a run directory")
    parser.add_argument("--out", default="generator.npz", help="output file (default: %(default)s)")
    parser.add_argument("--wall-time", default="", help="how long the training took, for the provenance")
    parser.add_argument("--machine", default=platform.processor() or platform.machine(),
                        help="what it was trained on (default: %(default)s)")
    parser.add_argument("--note", default="", help="anything else worth knowing (e.g. the FID)")
    parser.add_argument("--raw", action="store_true", help="ship the raw G, not the averaged G_ema")
    args = parser.parse_args()

    try:
        tree, path = sampling.load_tree(args.checkpoint)
        if "G" not in tree or "config" not in tree:
            _common.fail(f"{path} is not a tinygan training checkpoint (no G/ or config)")
        config = tree["config"]
        G, D = sampling.load_generator(path, raw=args.raw), sampling.load_discriminator(path)
    except (OSError, ValueError) as err:
        _common.fail(str(err))
    provenance = {
        "source_checkpoint": Path(path).name,
        "data": str(config.get("data")), "images_limit": config.get("limit"),
        "steps": int(tree["step"]), "batch_size": config.get("batch_size"),
        "epochs": round(int(tree["step"]) / max(1, _dataset_size(tree) // config["batch_size"]), 2),
        "generator": "raw G" if args.raw or "G_ema" not in tree else "G_ema, the average of G's weights (tinygan.ema)",
        "training_config": config, "wall_time": args.wall_time, "machine": args.machine,
        "note": args.note, "terms": CELEBA_TERMS,
    }
    out, about = _common.save_generator_file(G, args.out, provenance, D)
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB, float16, G and D) and {about}")
    print(f"try it: python -m tinygan generate -c {out} --out faces.png")


def _dataset_size(tree):
    """Images per epoch, from the stored data order of the checkpoint."""
    return len(tree["data_order"]["order"])


if __name__ == "__main__":
    main()
