"""Training and generation speed of the full 64x64 DCGAN, and the peak memory.

One training step is what tinygan.train.Trainer.train_step does: G forward,
D forward + backward on a real and a fake batch, Adam on D, D forward +
backward (input gradient only) and G backward, Adam on G. The batch comes from
the real BatchLoader (gather, flip, uint8 -> float), fed here from random
uint8 images so no dataset is needed. Each batch size runs in its own process,
so its peak resident memory (RSS) is its own.

    python benchmarks/train_step.py [--steps 6] [--batches 64 128] [--paths fast reference]
    python benchmarks/train_step.py --backend cupy --steps 20     # on a GPU; compare with
    python benchmarks/torch_train_step.py --device cuda --batch 128

Both paths of the layers are timed by default (tinygan.nn.paths): the fast path, which
training uses, and the reference path, the textbook code, so that the table shows
what the speed tricks buy (lesson 12 takes them one at a time).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import backend, blas, nn, sampling, train  # noqa: E402
from tinygan.options import add_backend, use_backend  # noqa: E402
from tinygan.dcgan import Generator  # noqa: E402


def sync():
    if backend.name() == "cupy":
        backend.xp.cuda.Device().synchronize()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux reports KiB


def measure_training(batch, steps, warmup=2):
    images = np.random.default_rng(0).integers(0, 256, (max(4 * batch, 512), 64, 64, 3), dtype=np.uint8)
    trainer = train.Trainer(train.make_config(batch_size=batch, out="/tmp/tinygan-bench"), dataset=images,
                            verbose=False)       # nothing is written: the steps run without Trainer.run
    times = []
    for step in range(warmup + steps):
        epoch, index = divmod(step, len(trainer.loader))
        t0 = time.perf_counter()
        trainer.train_step(trainer.loader.get_batch(epoch, index))
        sync()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    return {"batch": batch, "img_per_s": batch / float(np.median(times)), "best_img_per_s": batch / min(times),
            "peak_rss_mb": peak_rss_mb()}


def measure_generation(n=1024, batch=256):
    """Faces/s of G alone (noise in, float images on the host out: what torch_train_step.py --generation
    times for PyTorch) and of sampling.generate_images (one seeded z per face, uint8 faces out)."""
    G = Generator(rng=0).eval()              # speed does not depend on the weights
    rng = backend.default_rng(0)
    sampling.generate_images(G, range(batch), batch_size=batch)       # warm up
    t0 = time.perf_counter()
    for _ in range(0, n, batch):
        backend.to_numpy(G(G.sample_noise(rng, batch)))
    t1 = time.perf_counter()
    sampling.generate_images(G, range(n), batch_size=batch)
    t2 = time.perf_counter()
    return {"forward": n / (t1 - t0), "faces": n / (t2 - t1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per batch size (default: %(default)s)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128], help="batch sizes (default: 64 128)")
    parser.add_argument("--paths", nargs="+", choices=nn.PATHS, default=list(nn.PATHS),
                        help="layer paths to time (default: both)")
    add_backend(parser)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)   # internal: measure one batch size
    parser.add_argument("--generation", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_backend(args.backend)
    if args.child or args.generation:
        with nn.using_path(args.paths[0]):
            print(json.dumps(measure_training(args.child, args.steps) if args.child else measure_generation()))
        return

    # as `python -m tinygan train` runs: OpenBLAS's idle threads asleep unless the environment says otherwise
    environment = {**blas.BLAS_THREADS_ASLEEP, **os.environ}

    def child(path, *flags):
        cmd = [sys.executable, __file__, "--steps", str(args.steps), "--backend", backend.name(), "--paths", path,
               *flags]
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=environment).stdout)

    settings = ", ".join(f"{key}={environment[key]}" for key in blas.BLAS_THREADS_ASLEEP)
    print(f"backend: {backend.name()}; full DCGAN-64 training step (G and D updates), median of {args.steps} steps; "
          f"each in its own process ({settings})")
    for path in args.paths:
        for batch in args.batches:
            result = child(path, "--child", str(batch))
            print(f"{path:9s} batch {batch:4d}: {result['img_per_s']:6.1f} img/s (best step "
                  f"{result['best_img_per_s']:.1f}), peak RSS {result['peak_rss_mb']:.0f} MB")
            if batch == 128 and backend.name() == "cupy":
                print(f"RESULT {path} path, training at batch 128 on the GPU: {result['img_per_s']:.1f} img/s "
                      "(bar: half of PyTorch fp32 on the same GPU: "
                      "python benchmarks/torch_train_step.py --device cuda --batch 128)")
            elif batch == 128:
                print(f"RESULT {path} path, training at batch 128: {result['img_per_s']:.1f} img/s, "
                      f"peak RSS {result['peak_rss_mb']:.0f} MB")
        generation = child(path, "--generation")
        print(f"RESULT {path} path, generation: G alone {generation['forward']:.0f} faces/s (eval mode, batch 256; "
              f"compare torch_train_step.py --generation), generate_images {generation['faces']:.0f} faces/s "
              "(one seed per face, uint8 out)")


if __name__ == "__main__":
    main()
