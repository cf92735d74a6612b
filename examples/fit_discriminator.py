"""Give a generator file a discriminator: train a fresh D against the frozen G.

``judge`` needs a discriminator. A file written by package_generator.py carries the
D of the same checkpoint as its G. A file that holds G only (an older one, or one
whose run is gone) gets one here: a new D, DCGAN-initialised, learns with the
Radford et al. settings to tell the training faces from the faces of the frozen G,
and the output file holds that G, unchanged, and this D, with the provenance saying so.

Such a D is not the one G was trained against. G never learned to fool it, so it
separates G's faces from real ones far better than the D at the end of a GAN run
(which is close to 0.5 on everything). It is still no deepfake detector: it knows
the training faces and this one generator, nothing else.

The last --held-out images of the data are kept out of training; the script ends
by scoring them and as many new fakes with the finished D, in eval mode, as judge
uses it, and prints how often D is right.

    python examples/fit_discriminator.py tinygan/pretrained/generator.npz --data celeba.tar --out generator.npz
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import numpy as np  # noqa: E402

import _common  # noqa: E402
from tinygan import backend, sampling  # noqa: E402
from tinygan.options import free_output, positive_int  # noqa: E402
from tinygan.data import CELEBA_CROP, BatchLoader, FaceDataset  # noqa: E402
from tinygan.losses import BCEWithLogitsLoss  # noqa: E402
from tinygan.optim import Adam  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__)
    p.add_argument("generator", help="a generator file (or checkpoint) whose G is kept as it is")
    p.add_argument("--data", default=_common.default_data(), help="the faces G was trained on (folder, .zip, .tar)")
    p.add_argument("--out", required=True, help="the generator file to write, with G and the new D")
    p.add_argument("--steps", type=positive_int, default=300, help="D updates, each on a real and a fake batch")
    p.add_argument("--batch-size", type=positive_int, default=64, help="real images per step (and as many fakes)")
    p.add_argument("--held-out", type=positive_int, default=1000,
                   help="the last images of the data, kept for the score")
    p.add_argument("--seed", type=int, default=0, help="seed of D's initial weights, the batches and the noise")
    _common.add_backend_argument(p)
    return p


def train_discriminator(G, D, images, steps, batch_size, seed, say=print):
    """``steps`` Adam steps of BCE(D(x), 1) + BCE(D(G(z)), 0); G only runs forward (eval mode)."""
    loader = BatchLoader(images, batch_size, seed=seed)
    noise_rng = backend.default_rng([seed, 1])
    opt, loss = Adam(D.parameters(), 2e-4, (0.5, 0.999)), BCEWithLogitsLoss()
    D.train()
    step, epoch = 0, 0
    while step < steps:
        for real in loader.epoch(epoch):
            fake = G(G.sample_noise(noise_rng, batch_size))
            opt.zero_grad()
            d_loss = loss(D(real), 1.0)
            D.backward(loss.backward(), need_input_grad=False)
            d_loss = d_loss + loss(D(fake), 0.0)
            D.backward(loss.backward(), need_input_grad=False)
            opt.step()
            step += 1
            if step % 50 == 0 or step == steps:
                say(f"step {step}/{steps}  D loss {float(d_loss):.3f}")
            if step == steps:
                break
        epoch += 1
    return D.eval()


def held_out_accuracy(G, D, real_uint8, seed):
    """D's mean verdict on held-out real faces and on as many fakes from seeds nobody used yet."""
    fake_uint8 = sampling.generate_images(G, range(10 ** 6 + seed, 10 ** 6 + seed + len(real_uint8)))
    p_real, p_fake = sampling.judge(D, real_uint8), sampling.judge(D, fake_uint8)
    return {"real_called_real": float(np.mean(p_real > 0.5)), "fake_called_fake": float(np.mean(p_fake < 0.5)),
            "mean_p_real": float(p_real.mean()), "mean_p_fake": float(p_fake.mean())}


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    if not args.data:
        _common.fail("no data: pass --data PATH (the faces G was trained on)")
    try:
        free_output(args.out)                      # before minutes of training, not after
        tree, path = sampling.load_tree(args.generator)
        G = sampling.load_generator(path)
        model = sampling.model_config_of(tree, path)
        provenance = dict(tree.get("provenance", {}))
        crop = provenance.get("training_config", {}).get("crop", CELEBA_CROP)    # G's own training crop
        dataset = FaceDataset(args.data, image_size=model.image_size, crop=crop)
    except (OSError, ValueError) as err:
        _common.fail(str(err))
    if len(dataset) < args.held_out + args.batch_size:
        _common.fail(f"{args.data} has {len(dataset)} images: fewer than --held-out {args.held_out} "
                     f"plus one batch of {args.batch_size}")
    train_images, held_out = dataset.images[:-args.held_out], dataset.images[-args.held_out:]

    D = model.discriminator(rng=backend.default_rng([args.seed, 0]))
    train_discriminator(G, D, train_images, args.steps, args.batch_size, args.seed)
    score = held_out_accuracy(G, D, held_out, args.seed)
    print(f"held out: {score['real_called_real']:.1%} of {len(held_out)} real faces called real "
          f"(mean D(x) {score['mean_p_real']:.3f}), {score['fake_called_fake']:.1%} of as many fakes called fake "
          f"(mean D(G(z)) {score['mean_p_fake']:.3f})")

    provenance["discriminator"] = {
        "how": "trained afterwards against this frozen G (fit_discriminator.py): not the D of G's own run",
        "data": str(args.data), "train_images": len(train_images), "steps": args.steps,
        "batch_size": args.batch_size, "optimizer": "Adam lr 2e-4, betas (0.5, 0.999)", "seed": args.seed,
        "held_out_images": len(held_out), "held_out_score": {k: round(v, 4) for k, v in score.items()},
    }
    out, about = _common.save_generator_file(G, args.out, provenance, D)
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB, G and D) and {about}")
    print(f"try it: python -m tinygan judge -c {out} photo.jpg")


if __name__ == "__main__":
    main()
