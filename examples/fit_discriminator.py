"""Give a generator file a judge: train a fresh D against the frozen G.

``judge`` needs a discriminator. A file written by package_generator.py --data carries a judge made from
the D of the same run (tinygan.judge). A file that holds G only (an older one, or one whose run is gone)
gets one here: a new D, DCGAN-initialised, learns with the Radford et al. settings to tell the training faces
from the faces of the frozen G, on mixed batches of both (so that its BatchNorm statistics in eval mode suit
real and generated faces alike, see tinygan/judge.py). The output file holds that G, unchanged, and this D as
its judge, with the provenance saying so.

Such a D is not the one G was trained against. It is still no deepfake detector: it knows the training faces
and this one generator, nothing else.

The last --held-out images of the data are kept out of training; the script ends by scoring them and as many
new fakes with the finished D, in eval mode, as judge uses it, and prints how often D is right.

    python examples/fit_discriminator.py g_only.npz --data celeba.tar --out generator.npz
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import _common  # noqa: E402
from tinygan import backend, judge, model_files  # noqa: E402
from tinygan.options import free_output, positive_int  # noqa: E402
from tinygan.data import CELEBA_CROP, FaceDataset  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__)
    p.add_argument("generator", help="a generator file (or checkpoint) whose G is kept as it is")
    p.add_argument("--data", default=_common.default_data(), help="the faces G was trained on (folder, .zip, .tar)")
    p.add_argument("--out", required=True, help="the generator file to write, with G and the new D")
    p.add_argument("--steps", type=positive_int, default=300, help="D updates, each on a mixed batch")
    p.add_argument("--batch-size", type=positive_int, default=64, help="real images per step (and as many fakes)")
    p.add_argument("--held-out", type=positive_int, default=1000,
                   help="the last images of the data, kept for the score")
    p.add_argument("--seed", type=int, default=0, help="seed of D's initial weights, the batches and the noise")
    _common.add_backend_argument(p)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    if not args.data:
        _common.fail("no data: pass --data PATH (the faces G was trained on)")
    try:
        free_output(args.out)                      # before minutes of training, not after
        tree, path = model_files.load_tree(args.generator)
        G = model_files.load_generator(path)
        model = model_files.model_config_of(tree, path)
        provenance = dict(tree.get("provenance", {}))
        crop = provenance.get("training_config", {}).get("crop", CELEBA_CROP)    # G's own training crop
        dataset = FaceDataset(args.data, image_size=model.image_size, crop=crop)
        D = model.discriminator(rng=backend.default_rng([args.seed, 0]))
        D, faces, report = judge.make_judge(G, D, dataset.images, args.held_out, args.steps, args.batch_size,
                                            seed=args.seed)
    except (OSError, ValueError) as err:
        _common.fail(str(err))
    score = report["score"]
    print(f"held out: {score['real_called_real']:.1%} of {score['n_real']} real faces called real "
          f"(mean D(x) {score['mean_p_real']:.3f}), {score['fake_called_fake']:.1%} of as many fakes called fake "
          f"(mean D(G(z)) {score['mean_p_fake']:.3f})")
    provenance["judge"] = dict(report, data=Path(args.data).name,
                               how="a fresh D trained against this frozen G (fit_discriminator.py), not the D of "
                                   "G's own run: " + report["how"].replace("the GAN's D fine-tuned", "trained"))
    out, about = _common.save_generator_file(G, args.out, provenance, None, (D, faces))
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB, G and its judge) and {about}")
    print(f"try it: python -m tinygan judge -c {out} photo.jpg")


if __name__ == "__main__":
    main()
