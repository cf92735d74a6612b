"""Does tinygan's FID agree with the reference? Features and FID against the TorchScript Inception.

The reference is the TorchScript FID Inception in ../shared/weights run by PyTorch,
on the same uint8 faces, preprocessed as pytorch-fid does (F.interpolate bilinear,
align_corners=False, then 2x - 1). Both FIDs use the same Fréchet code, so the FID
difference measures only the features. Targets: feature relative error <= 1e-3,
FID within 0.5%. Needs torch (CPU is fine) and the shared faces. On a busy
machine, OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 keeps both from fighting for cores.

    python benchmarks/fid_agreement.py [--n-features 64] [--n-fid 500] [--batch-size 32]
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import fid  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
WEIGHTS = SHARED / "weights" / fid.TORCHSCRIPT_NAME
DATA = SHARED / "data"


def torch_features(images, batch_size):
    import torch
    net = torch.jit.load(str(WEIGHTS), map_location="cpu").eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(np.array(images[i:i + batch_size])).permute(0, 3, 1, 2).float() / 255
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(net(x * 2 - 1).numpy())
    return np.concatenate(out)


def both_features(images, batch_size, model):
    start = time.perf_counter()
    ours = fid.images_to_features(images, batch_size=batch_size, model=model)
    middle = time.perf_counter()
    theirs = torch_features(images, batch_size)
    end = time.perf_counter()
    print(f"  {len(images)} images: tinygan {len(images) / (middle - start):.1f} images/s, "
          f"torch {len(images) / (end - middle):.1f} images/s")
    return ours, theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-features", type=int, default=64, help="faces for the feature comparison")
    parser.add_argument("--n-fid", type=int, default=500, help="faces per set for the FID comparison")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--cache-dir", help="cache for weights and face crops (default: $TINYGAN_CACHE or "
                                            "~/.cache/tinygan)")
    args = parser.parse_args()
    model = fid.fid_inception_v3(WEIGHTS, cache=args.cache_dir)
    aligned = DATA / "celeba_align_89x109_10k.tar"
    faces = np.asarray(fid.load_images(aligned, n=2 * args.n_fid, cache=args.cache_dir, verbose=False))

    print(f"features of the first {args.n_features} faces of {aligned.name} (64x64 training crop):")
    ours, theirs = both_features(faces[:args.n_features], args.batch_size, model)
    rel = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
    worst = np.max(np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1))
    print(f"  relative error ||ours - torch|| / ||torch||: {rel:.2e} (worst single image {worst:.2e}); "
          f"target <= 1e-3")

    n = args.n_fid
    print(f"FID between faces [0, {n}) and [{n}, {2 * n}) of {aligned.name}:")
    ours, theirs = both_features(faces[:2 * n], args.batch_size, model)
    fid_ours = fid.statistics_to_fid(*fid.features_to_statistics(ours[:n]), *fid.features_to_statistics(ours[n:]))
    fid_ref = fid.statistics_to_fid(*fid.features_to_statistics(theirs[:n]),
                                    *fid.features_to_statistics(theirs[n:]))
    print(f"  tinygan {fid_ours:.6f}, torch features {fid_ref:.6f}: relative difference "
          f"{abs(fid_ours - fid_ref) / fid_ref:.1e} (target <= 5e-3)")
    try:
        from scipy import linalg
    except ImportError:
        return
    (mu1, s1), (mu2, s2) = fid.features_to_statistics(theirs[:n]), fid.features_to_statistics(theirs[n:])
    covmean = linalg.sqrtm(s1 @ s2).real
    scipy_fid = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    print(f"  pytorch-fid's formula (scipy sqrtm) on the torch features: {scipy_fid:.6f}")


if __name__ == "__main__":
    main()
