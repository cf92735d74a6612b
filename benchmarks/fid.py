"""Speed of FID feature extraction: images/s through preprocessing + the FID Inception-v3.

Inception-v3 at 299x299 costs about 5.7 GMAC (11.4 GFLOP) per image, so
images/s x 11.4 is the GFLOP/s the whole network sustains; compare it with
the machine's own float32 matrix-product speed, measured in the same run.
Timings are the best of ``--repeat`` runs: other work on the machine only
ever makes a run slower.

    python benchmarks/fid.py [--batch-sizes 16 32 64] [--repeat 3] [--layers] [--torch]

``--torch`` times the TorchScript reference (PyTorch, same preprocessing) in the
same run, the fair comparison on a machine that others are using too. The CPU
column is process time per image: with one BLAS thread
(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1) it barely depends on other load.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import backend, fid  # noqa: E402
from tinygan.options import add_backend, use_backend  # noqa: E402
from tinygan.nn.reference import conv2d  # noqa: E402

GMAC_PER_IMAGE = 5.7
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / fid.TORCHSCRIPT_NAME


def sync():
    if backend.name() == "cupy":
        backend.xp.cuda.Device().synchronize()


def best_time(fn, repeat, clock=time.perf_counter):
    fn()                                     # warm-up: allocations, BLAS threads
    sync()
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        sync()
        best = min(best, clock() - start)
    return best


def torch_reference(weights_path):
    """The TorchScript FID Inception with pytorch-fid's preprocessing, as a function of uint8 images."""
    import torch
    net = torch.jit.load(str(weights_path), map_location="cpu").eval()

    def features(images):
        with torch.no_grad():
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            return net(x * 2 - 1)
    return features


def matmul_gflops(repeat):
    xp = backend.xp
    a = xp.ones((2048, 2048), dtype=np.float32)
    return 2 * 2048 ** 3 / best_time(lambda: a @ a, repeat) / 1e9


def layer_table(model, batch_size, repeat):
    """Time every conv of the network alone: the fast path's inference conv against the reference conv2d."""
    x = fid.preprocess(np.zeros((batch_size, 64, 64, 3), np.uint8))
    inputs = {}

    def record(conv):
        original = conv.forward

        def forward(x):
            inputs.setdefault(conv, x)
            return original(x)
        conv.forward = forward
        return original

    originals = {conv: record(conv) for conv in model.conv_layers().values()}
    model(x)
    for conv, original in originals.items():
        conv.forward = original
    rows = []
    for name, conv in model.conv_layers().items():
        xin = inputs[conv]
        w, b = conv.weight.data, conv.bias.data
        fast = best_time(lambda: conv(xin), repeat)
        plain = best_time(lambda: backend.xp.maximum(conv2d(xin, w, conv.stride, conv.padding)[0]
                                                     + b.reshape(1, -1, 1, 1), 0), repeat)
        rows.append((name, tuple(xin.shape[1:]), tuple(w.shape), fast, plain))
    print(f"\n{'conv':32s} {'input':>16s} {'weight':>20s} {'fast ms':>9s} {'reference ms':>12s}")
    for name, shape, wshape, fast, plain in rows:
        print(f"{name:32s} {str(shape):>16s} {str(wshape):>20s} {fast * 1e3:9.1f} {plain * 1e3:12.1f}")
    total_fast, total_plain = sum(r[3] for r in rows), sum(r[4] for r in rows)
    print(f"{'all convs':32s} {'':16s} {'':20s} {total_fast * 1e3:9.1f} {total_plain * 1e3:12.1f}  "
          f"(batch {batch_size})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64], help="batch sizes to time")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per batch size (best is reported)")
    parser.add_argument("--image-size", type=int, default=64, help="side of the uint8 input images")
    parser.add_argument("--layers", action="store_true", help="also time every conv: fast path vs the reference conv")
    add_backend(parser)
    parser.add_argument("--weights", default=os.environ.get("TINYGAN_FID_WEIGHTS", str(SHARED_WEIGHTS)),
                        help="FID weights: the TorchScript .pt (needed for --torch), a pytorch-fid .pth or a .npz "
                             "(default: $TINYGAN_FID_WEIGHTS, else ../shared/weights/ beside the repository)")
    parser.add_argument("--torch", action="store_true", help="also time the TorchScript reference")
    args = parser.parse_args()
    use_backend(args.backend)
    model = fid.fid_inception_v3(args.weights)
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    print(f"backend {backend.name()}, float32 matmul ceiling {matmul_gflops(args.repeat):.0f} GFLOP/s, "
          f"BLAS threads {threads}, {os.cpu_count()} CPUs")
    images = np.random.default_rng(0).integers(0, 256, (max(args.batch_sizes), args.image_size,
                                                         args.image_size, 3), dtype=np.uint8)
    runners = {"tinygan": lambda batch: fid.images_to_features(batch, batch_size=len(batch), model=model)}
    if args.torch:
        runners["torch"] = torch_reference(args.weights)
    print(f"{'':8s} {'batch':>6s} {'images/s':>9s} {'GFLOP/s':>8s} {'CPU ms/img':>11s}   "
          f"(preprocess {args.image_size}px uint8 -> 299, Inception-v3, best of {args.repeat})")
    for batch_size in args.batch_sizes:
        batch = images[:batch_size]
        for name, run in runners.items():
            seconds = best_time(lambda: run(batch), args.repeat)
            cpu = best_time(lambda: run(batch), 1, clock=time.process_time)
            rate = batch_size / seconds
            print(f"{name:8s} {batch_size:6d} {rate:9.2f} {rate * 2 * GMAC_PER_IMAGE:8.0f} "
                  f"{cpu / batch_size * 1e3:11.0f}")
    if args.layers:
        layer_table(model, min(args.batch_sizes), args.repeat)


if __name__ == "__main__":
    main()
