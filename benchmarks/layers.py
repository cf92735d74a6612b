"""Speed of every conv / convT layer of the 64x64 DCGAN, forward + backward, against the machine's ceiling.

The ceiling is this machine's own float32 matrix-product speed (a large square
matmul, measured in the same run). A convolution layer does 2*N*Ho*Wo*O*C*kh*kw
FLOPs forward and twice that backward (one product for dL/dx, one for dL/dW). Those are the FLOPs of
im2col's products: the fast path's stride-2 layers of 4 or more channels make 9/16 of them (Winograd's
F(2, 2), tinygan.nn.fast_winograd), so their GFLOP/s are "im2col-equivalent" and can pass the ceiling.

    python benchmarks/layers.py [--batch 128] [--repeat 5] [--paths fast reference]

Both paths are timed by default (tinygan.nn.paths): the fast path and the reference path.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import backend, blas, nn  # noqa: E402
from tinygan.nn import fast  # noqa: E402
from tinygan.options import add_backend, use_backend  # noqa: E402

# (kind, in_channels, out_channels, input size) with kernel 4; stride 1 / padding 0 for the 1x1 <-> 4x4 ends.
DCGAN_LAYERS = [
    ("G convT", 100, 512, 1, 1, 0),
    ("G convT", 512, 256, 4, 2, 1),
    ("G convT", 256, 128, 8, 2, 1),
    ("G convT", 128, 64, 16, 2, 1),
    ("G convT", 64, 3, 32, 2, 1),
    ("D conv", 3, 64, 64, 2, 1),
    ("D conv", 64, 128, 32, 2, 1),
    ("D conv", 128, 256, 16, 2, 1),
    ("D conv", 256, 512, 8, 2, 1),
    ("D conv", 512, 1, 4, 1, 0),
]


def sync():
    if backend.name() == "cupy":
        backend.xp.cuda.Device().synchronize()


def best_time(fn, repeat):
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_ceiling(n=4096, repeat=3):
    """GFLOP/s of a large square float32 matrix product: the most this machine's BLAS can do."""
    rng = backend.default_rng(0)
    a, b = rng.normal((n, n)), rng.normal((n, n))
    return 2 * n ** 3 / best_time(lambda: a @ b, repeat) / 1e9


def in_network_memory(x):
    """x in the memory order a layer gets inside the DCGAN: NHWC on the fast path (each fast layer's output
    is an NCHW view of NHWC memory), NCHW on the reference path."""
    return fast.nchw(backend.xp.ascontiguousarray(fast.nhwc(x))) if nn.path() == "fast" else x


def layer_benchmark(kind, cin, cout, size, stride, padding, batch, repeat):
    rng = backend.default_rng(0)
    layer_cls = nn.ConvTranspose2d if "convT" in kind else nn.Conv2d
    layer = layer_cls(cin, cout, 4, stride, padding, bias=False, rng=rng)
    x = in_network_memory(rng.normal((batch, cin, size, size)))
    y = layer(x)
    grad = in_network_memory(rng.normal(y.shape))
    ho, wo = y.shape[2:]
    pixels = batch * (size * size if "convT" in kind else ho * wo)
    flops = 3 * 2 * pixels * cin * cout * 16          # forward + dL/dx + dL/dW
    first_layer = kind == "D conv" and cin == 3       # D never needs the gradient of the images

    def step():
        layer(x)
        layer.backward(grad, need_input_grad=not first_layer)
    if first_layer:
        flops = flops * 2 // 3
    return best_time(step, repeat), flops, tuple(y.shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats, best is kept (default: %(default)s)")
    parser.add_argument("--paths", nargs="+", choices=nn.PATHS, default=list(nn.PATHS),
                        help="layer paths to time (default: both)")
    add_backend(parser)
    args = parser.parse_args()
    blas.restart_with_blas_threads_asleep()             # as `python -m tinygan train` runs
    use_backend(args.backend)
    ceiling = matmul_ceiling()
    print(f"backend: {backend.name()}, batch {args.batch}, float32")
    print(f"ceiling: 4096x4096 float32 matmul = {ceiling:.1f} GFLOP/s")
    for path in args.paths:
        print(f"\n{path} path\n{'layer':<10}{'in -> out':>22}{'fwd+bwd ms':>12}{'GFLOP':>8}{'GFLOP/s':>9}{'% ceil':>8}")
        total_t = total_f = 0.0
        for kind, cin, cout, size, stride, padding in DCGAN_LAYERS:
            with nn.using_path(path):
                t, flops, out_shape = layer_benchmark(kind, cin, cout, size, stride, padding, args.batch, args.repeat)
            total_t += t
            total_f += flops
            shapes = f"{cin}x{size}x{size} -> {out_shape[1]}x{out_shape[2]}x{out_shape[3]}"
            print(f"{kind:<10}{shapes:>22}{t * 1e3:>12.1f}{flops / 1e9:>8.2f}{flops / t / 1e9:>9.1f}"
                  f"{100 * flops / t / 1e9 / ceiling:>7.0f}%")
        rate = total_f / total_t / 1e9
        print(f"{'all layers':<32}{total_t * 1e3:>12.1f}{total_f / 1e9:>8.2f}{rate:>9.1f}{100 * rate / ceiling:>7.0f}%")
        print(f"RESULT {path} path, all DCGAN conv/convT layers fwd+bwd: {rate:.1f} GFLOP/s = "
              f"{100 * rate / ceiling:.0f}% of the {ceiling:.0f} GFLOP/s matmul ceiling")


if __name__ == "__main__":
    main()
