"""Where the time of one DCGAN-64 training step goes, phase by phase, next to what the GEMMs alone would take.

Each phase is a set of functions of the fast path (or the library) timed by a wrapper
while the real Trainer.train_step runs; the step's own wall time is measured on the
same steps, and what no wrapper saw is "other" (Python, reshapes, small arrays).

    phase          what it is
    GEMM           every matrix product of the fast path (tinygan.nn.fast_gemm: gemm, multiply)
    unfold / fold  im2col's and col2im's copies (the RGB layers' channels-first ones, the 1x1 ends)
    Winograd       the stride-2 convs' transforms (tinygan.nn.fast_winograd): tiles, outputs, weights
    conv, rest     what else the convs' group loops do: bias, dW's partial sums, dbias
    elementwise    LeakyReLU, ReLU, Tanh forward and backward
    BatchNorm      BatchNorm forward and backward (their sums and affine passes)
    loss           BCE-with-logits forward and backward, D's sigmoid outputs
    optimizer      Adam's updates of G and D, the EMA update
    data           the batch (gather, flip, uint8 -> float) and the noise

The stride-2 convs of 4 or more channels make 9 products where im2col makes 16 (Winograd's F(2, 2), lesson 12):
the GEMM FLOPs below are the products actually made. The convs run on both threads at once, a group of images at
a time (tinygan.nn.cpu.over_groups); inside them the clock adds up each thread's seconds per phase and shares the
loop's wall time out in those proportions.

The last column divides the step's GEMM FLOPs by this machine's float32 matmul
rate (a 4096x4096 product, measured in the same run): the time the step would take
if it were nothing but matrix products at full speed. What separates the step from
that line is the headroom.

    python benchmarks/step_phases.py [--batch 128] [--steps 4]
"""
import argparse
import collections
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import backend, blas, data, ema, losses, nn, optim, train  # noqa: E402
from tinygan.options import add_backend, use_backend  # noqa: E402
from tinygan.dcgan import Generator  # noqa: E402
from tinygan.nn import activations, fast, fast_gemm, fast_winograd as winograd  # noqa: E402

from layers import matmul_ceiling, sync  # noqa: E402

PHASES = {
    "GEMM": [(fast, "gemm"), (fast, "multiply"), (fast_gemm, "multiply"),     # fast_gemm's: add_product's
             (winograd, "multiply")],
    "unfold (im2col)": [(fast, "im2col"), (fast, "unfold"), (fast, "unfold_channels_first")],
    "fold (col2im)": [(fast, "fold"), (fast, "fold_channels_first")],
    "Winograd transforms": [(winograd, "_image_tiles"), (winograd, "_output_tiles"), (winograd, "_tiles_to_outputs"),
                            (winograd, "_tiles_to_images"), (winograd, "weight_tiles"),
                            (winograd, "weight_gradient")],
    "conv, rest": [],
    "elementwise": [(fast, "leaky_relu_forward"), (fast, "relu_forward"), (fast, "slope_backward"),
                    (activations.Tanh, "forward"), (activations.Tanh, "backward")],
    "BatchNorm": [(fast, "batchnorm_forward"), (fast, "batchnorm_backward")],
    "loss": [(losses.BCEWithLogitsLoss, "forward"), (losses.BCEWithLogitsLoss, "backward"),
             (train, "sigmoid")],
    "optimizer": [(optim.Adam, "step"), (ema.EMA, "update")],
    "data": [(data.BatchLoader, "get_batch"), (Generator, "sample_noise")],
}


class PhaseClock:
    """Wraps each phase's functions with a timer; the wrappers add up seconds (and GEMM FLOPs).

    Inside a conv's group loop (fast.over_groups, two threads at once) the timers add up thread seconds, and
    the loop's wall time is shared out over its phases in proportion to them ("conv, rest": what no wrapper
    inside saw)."""

    def __init__(self):
        self.seconds = collections.Counter()
        self.gemm_flops = 0
        self.on = False
        self.in_groups = None          # thread seconds per phase while a group loop runs, else None
        self.lock = threading.Lock()

    def add(self, phase, seconds):
        with self.lock:
            if self.in_groups is not None:
                self.in_groups[phase] += seconds
            else:
                self.seconds[phase] += seconds

    def wrap(self, phase, owner, name):
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            if not clock.on:
                return original(*args, **kwargs)
            if clock.in_groups is None:
                sync()
            start = time.perf_counter()
            result = original(*args, **kwargs)
            if clock.in_groups is None:
                sync()
            clock.add(phase, time.perf_counter() - start)
            if phase == "GEMM":
                a, b = args[0], args[1]
                with clock.lock:
                    clock.gemm_flops += 2 * int(np.prod(a.shape)) * b.shape[-1]      # a stack: each matrix
            return result
        setattr(owner, name, timed)

    def wrap_group_loop(self, owner):
        original, clock = owner.over_groups, self

        def timed(x, work, *args, **kwargs):
            if not clock.on:
                return original(x, work, *args, **kwargs)

            def timed_work(images, arrays):
                start = time.perf_counter()
                work(images, arrays)
                clock.add("group work", time.perf_counter() - start)
            sync()
            clock.in_groups, start = collections.Counter(), time.perf_counter()
            try:
                return original(x, timed_work, *args, **kwargs)
            finally:
                sync()
                wall, inside, clock.in_groups = time.perf_counter() - start, clock.in_groups, None
                thread_seconds = max(inside.pop("group work", 0), 1e-12)
                inside["conv, rest"] = max(thread_seconds - sum(inside.values()), 0)
                for phase, seconds in inside.items():
                    clock.seconds[phase] += wall * seconds / thread_seconds
        owner.over_groups = timed

    def install(self):
        for phase, places in PHASES.items():
            for owner, name in places:
                self.wrap(phase, owner, name)
        for owner in (fast, winograd):
            self.wrap_group_loop(owner)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps (default: %(default)s)")
    add_backend(parser)
    args = parser.parse_args()
    blas.restart_with_blas_threads_asleep()             # as `python -m tinygan train` runs
    use_backend(args.backend)
    ceiling = matmul_ceiling()
    images = np.random.default_rng(0).integers(0, 256, (max(4 * args.batch, 512), 64, 64, 3), dtype=np.uint8)
    trainer = train.Trainer(train.make_config(batch_size=args.batch, out="/tmp/tinygan-bench"), dataset=images,
                            verbose=False)         # nothing is written: the steps run without Trainer.run
    clock = PhaseClock()
    clock.install()
    wall = []
    with nn.using_path("fast"):
        for step in range(2 + args.steps):          # 2 warm-up steps: buffers allocated, caches filled
            clock.on = step >= 2
            epoch, index = divmod(step, len(trainer.loader))
            sync()
            start = time.perf_counter()
            trainer.train_step(trainer.loader.get_batch(epoch, index))
            sync()
            if clock.on:
                wall.append(time.perf_counter() - start)
    step_ms = 1e3 * sum(wall) / args.steps
    rows = [(phase, 1e3 * clock.seconds[phase] / args.steps) for phase in PHASES]
    rows.append(("other (Python, reshapes, small arrays)", step_ms - sum(ms for _, ms in rows)))
    gemm_ideal_ms = 1e3 * clock.gemm_flops / args.steps / (ceiling * 1e9)
    print(f"backend {backend.name()}, batch {args.batch}, mean of {args.steps} steps; "
          f"float32 matmul ceiling {ceiling:.0f} GFLOP/s (4096x4096)")
    print(f"{'phase':<40}{'ms':>9}{'share':>8}")
    for phase, ms in rows:
        print(f"{phase:<40}{ms:>9.1f}{100 * ms / step_ms:>7.0f}%")
    print(f"{'whole step':<40}{step_ms:>9.1f}{100:>7.0f}%   ({args.batch / step_ms * 1e3:.1f} img/s)")
    gemm_ms = rows[0][1]
    print(f"\nGEMMs: {clock.gemm_flops / args.steps / 1e9:.1f} GFLOP a step, {gemm_ms:.0f} ms = "
          f"{clock.gemm_flops / args.steps / gemm_ms / 1e6:.0f} GFLOP/s; at the ceiling they would take "
          f"{gemm_ideal_ms:.0f} ms")
    print(f"RESULT step at batch {args.batch}: {step_ms:.0f} ms, of which GEMM {gemm_ms:.0f} ms "
          f"({100 * gemm_ms / step_ms:.0f}%); GEMMs alone at {ceiling:.0f} GFLOP/s: {gemm_ideal_ms:.0f} ms "
          f"= {args.batch / gemm_ideal_ms * 1e3:.0f} img/s, the limit of this way of computing the step")


if __name__ == "__main__":
    main()
