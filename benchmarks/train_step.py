"""Training and generation speed of the full 64x64 DCGAN, and the peak memory.

One training step is what tinygan.train.Trainer.train_step does: G forward,
D forward + backward on a real and a fake batch, Adam on D, D forward +
backward (input gradient only) and G backward, Adam on G. The batch comes from
the real BatchLoader (gather, flip, uint8 -> float), fed here from random
uint8 images so no dataset is needed. Each batch size runs in its own process,
so its peak resident memory (RSS) is its own.

    python benchmarks/train_step.py [--steps 6] [--batches 64 128]
    python benchmarks/train_step.py --backend cupy --steps 20     # on a GPU; compare with
    python benchmarks/torch_train_step.py --device cuda --batch 128
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
from tinygan import backend, sampling, train  # noqa: E402
from tinygan.dcgan import Generator  # noqa: E402


def sync():
    if backend.name() == "cupy":
        backend.xp.cuda.Device().synchronize()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux reports KiB


def measure_training(batch, steps, warmup=2):
    images = np.random.default_rng(0).integers(0, 256, (max(4 * batch, 512), 64, 64, 3), dtype=np.uint8)
    trainer = train.Trainer(train.make_config(batch_size=batch, out="/tmp/tinygan-bench"), dataset=images,
                            verbose=False)
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
    G = Generator(rng=0).eval()              # speed does not depend on the weights
    sampling.generate_images(G, range(batch), batch_size=batch)       # warm up
    t0 = time.perf_counter()
    sampling.generate_images(G, range(n), batch_size=batch)
    sync()
    return n / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per batch size (default: %(default)s)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128], help="batch sizes (default: 64 128)")
    parser.add_argument("--backend", help="numpy or cupy (default: TINYGAN_BACKEND or numpy)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)   # internal: measure one batch size
    args = parser.parse_args()
    if args.backend:
        backend.use(args.backend)
    if args.child:
        print(json.dumps(measure_training(args.child, args.steps)))
        return
    print(f"backend: {backend.name()}; full DCGAN-64 training step (G and D updates), median of {args.steps} steps")
    for batch in args.batches:
        cmd = [sys.executable, __file__, "--child", str(batch), "--steps", str(args.steps),
               "--backend", backend.name()]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(f"batch {batch:4d}: {result['img_per_s']:6.1f} img/s (best step {result['best_img_per_s']:.1f}), "
              f"peak RSS {result['peak_rss_mb']:.0f} MB")
        if batch == 128 and backend.name() == "cupy":
            print(f"RESULT training at batch 128 on the GPU: {result['img_per_s']:.1f} img/s (bar: half of PyTorch "
                  "fp32 on the same GPU: python benchmarks/torch_train_step.py --device cuda --batch 128)")
        elif batch == 128:
            print(f"RESULT training at batch 128: {result['img_per_s']:.1f} img/s (bar: 30), "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB (bar: 2048)")
    rate = measure_generation()
    print(f"RESULT generation: {rate:.0f} faces/s (eval mode, batch 256, one seed per face; bar: 300)")


if __name__ == "__main__":
    main()
