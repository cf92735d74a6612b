"""tinygan export and tinygan import: models to and from the PyTorch DCGAN tutorial's layout (tinygan.model_files)."""
from pathlib import Path

from .. import model_files
from ..dcgan import Z_DISTS
from ..options import HelpFormatter, add_checkpoint


def add_export(sub):
    p = sub.add_parser("export", help="write G and D as PyTorch-layout state_dicts (.npz)",
                       formatter_class=HelpFormatter,
                       description="Write a checkpoint's G and D as .npz files whose keys and shapes are those of "
                                   "the PyTorch DCGAN tutorial's state_dicts (numpy.load reads them).")
    add_checkpoint(p, what="training")
    p.add_argument("--out", default="export", help="output folder")
    p.set_defaults(func=export)


def export(args):
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a folder for generator_torch.npz (and "
                         "discriminator_torch.npz)")
    G = model_files.load_generator(args.checkpoint, raw=args.raw)
    g_path = model_files.export_torch(G, out / "generator_torch.npz")
    print(f"wrote {g_path}: load with "
          "netG.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(...).items()})")
    try:
        D = model_files.load_discriminator(args.checkpoint, which="gan")      # the D the GAN trained against
    except ValueError:
        print(f"{args.checkpoint or 'the pretrained file'} holds no discriminator: wrote the generator only")
        return 0
    print(f"wrote {model_files.export_torch(D, out / 'discriminator_torch.npz')}")
    return 0


def add_import(sub):
    p = sub.add_parser("import", help="turn a PyTorch-layout generator state_dict (.npz) into a tinygan file",
                       formatter_class=HelpFormatter,
                       description="Read a generator trained elsewhere (the PyTorch DCGAN tutorial's layout, saved "
                                   "as .npz) and write it as a tinygan generator file that generate and the demo use.")
    p.add_argument("state_dict", help=".npz with keys main.0.weight, main.1.weight, ... (PyTorch DCGAN tutorial)")
    p.add_argument("--out", default="generator.npz", help="tinygan generator file")
    p.add_argument("--z-dist", choices=Z_DISTS, default=Z_DISTS[0], help="noise the model was trained on")
    p.set_defaults(func=import_generator)


def import_generator(args):
    import numpy as np

    from .. import checkpoint
    state = checkpoint.load(args.state_dict)
    G = model_files.generator_from_state_dict(state, z_dist=args.z_dist)
    model_files.save_generator(G, args.out, dtype=np.float32, provenance={"imported_from": str(args.state_dict)})
    print(f"wrote {args.out} (nz={G.config['nz']}, ngf={G.config['ngf']}, {G.config['image_size']}px)")
    return 0
