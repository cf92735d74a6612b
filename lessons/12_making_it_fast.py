# %% [markdown]
# # Lesson 12: making it fast
#
# The layers of lessons 02-10 are the *reference path*: NCHW, one thread, written to be read.
# Training a face GAN on a CPU needs more speed than that, so the layers call one of two sets of array
# functions with the same names and signatures: `tinygan/nn/reference.py`, the textbook, and
# `tinygan/nn/fast.py`, the *fast path*, which computes the same numbers. The layers take the fast path
# unless `with tinygan.nn.using_path("reference"):` or `TINYGAN_PATH=reference` chooses the reference
# path, and the test suite holds every fast function to its reference on random shapes
# (`tests/test_fast_path.py`).
#
# This lesson takes one of D's layers, a 4x4 stride-2 conv from 64 to 128 channels on 32x32 maps,
# and makes it faster one idea at a time. Each step prints its speed-up next to a check that it
# still computes what the previous step computed.
#
# 1. **Naive loops**: one small dot product per output pixel (`tinygan/nn/naive.py`).
# 2. **im2col** (lesson 04): kh*kw strided slice copies, then one matrix product at BLAS speed.
# 3. **NHWC memory**: the tensors keep their NCHW *shape*, but their memory is (N, H, W, C). Then the
#    C numbers of one pixel are adjacent, and im2col copies runs of floats instead of single floats.
#    A conv returns an NCHW view of NHWC memory; elementwise NumPy ops keep the memory order of their
#    input, so the next conv reads NHWC memory without a transpose.
# 4. **Threads over the batch**: NumPy copies an array slice in C, *without* holding Python's global
#    interpreter lock (GIL). So two Python threads that each copy half of the batch really run at the
#    same time on two cores, and im2col/col2im's copies get up to twice as fast on a 2-core CPU.
#    Whether a whole layer gains depends on how much of its time is in those copies: the matrix
#    product already runs on every core (in BLAS's own threads), so a layer dominated by its product
#    gains little. Measure before you believe a trick.
# 5. **Skip what nobody needs**: in the G step D is frozen (lesson 13), so its backward needs dL/dx
#    but not dL/dW: one of the two big matrix products of a conv's backward disappears.
# 6. **Eval BatchNorm as one affine map**: with fixed statistics, gamma (x - mean) / sqrt(var + eps)
#    + beta is x * scale + shift per channel: two passes over memory instead of four.
# 7. **Blocks of kernel offsets**: at stride 2, a 2x2 block of offsets tiles the image, so im2col is
#    4 copies of runs of 2C floats instead of 16 copies of runs of C.
# 8. **Keep the big work arrays**: a fresh array costs a page fault per page the first time it is
#    written; the columns a layer keeps from the last step cost nothing.
# 9. **No branch per element**: LeakyReLU's backward as arithmetic instead of a choice.
# 10. **Let BLAS's threads sleep**: OpenBLAS's idle threads spin after every product and take the cores
#    from the copies that follow it.
# 11. **A group of images at a time**: unfold a few images and multiply their columns at once, while they
#    are still in the cache, instead of sending the whole batch's columns to memory and back.
# 12. **Fewer multiplications**: steps 3-11 make im2col's 16 products per 2x2 tile of outputs faster;
#    Winograd's F(2, 2) makes 9, with additions around them (the fast path's way for D's and G's stride-2 layers).
#
# A trick is worth having when it saves time where the time goes; `benchmarks/train_step.py` and
# `benchmarks/layers.py` print the whole picture for both paths, and `benchmarks/step_phases.py` splits
# one training step into its phases (matrix products, copies, elementwise work, BatchNorm, Adam, data)
# next to what the matrix products alone would take at the machine's full speed.

# %%
"""Lesson 12: making it fast. The speed tricks of tinygan's fast path, one at a time, each checked."""
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, nn  # noqa: E402
from tinygan.nn import cpu, fast, fast_im2col, fast_winograd  # noqa: E402
from tinygan.nn.reference import conv2d, conv2d_adjoint, conv2d_weight_grad  # noqa: E402
from tinygan.nn.naive import naive_conv2d  # noqa: E402

lesson = Lesson("12_making_it_fast", __doc__)
lesson.parser.add_argument("--batch", type=int, default=None, help="images per batch (default: 64; --quick: 4)")
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)
batch = args.batch or (4 if args.quick else 64)
repeats = 2 if args.quick else 5


def best_time(work):
    """The best of a few runs, in seconds: other work on the machine only ever makes a run slower."""
    work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        if backend.name() == "cupy":
            xp.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def relative_difference(a, b):
    a, b = backend.to_numpy(a).astype(np.float64), backend.to_numpy(b).astype(np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


x = rng.normal((batch, 64, 32, 32))                                   # float32, as in training
weight = rng.normal((128, 64, 4, 4), std=0.02)
table = []


def report(step, seconds, images, previous, difference, tolerance):
    """One row of the table: time per image, speed-up over the previous step, and its equality check."""
    per_image = seconds / images
    speedup = table[-1][1] / per_image if table else 1.0
    table.append((step, per_image))
    print(f"  {step:46s} {per_image * 1e3:9.3f} ms/image   {speedup:6.1f}x the step before")
    lesson.check(f"{step}: max relative difference from {previous}", difference, difference <= tolerance,
                 f"should be <= {tolerance:g}")

# %% [markdown]
# ## 1-2. From naive loops to im2col and one matrix product

# %%
print("\n1-2. Conv forward: naive loops, then im2col (the reference path)")
few = 1 if args.quick else 2                                          # the loops are slow: time one or two images
start = time.perf_counter()
naive = naive_conv2d(backend.to_numpy(x[:few]), backend.to_numpy(weight), None, (2, 2), (1, 1))
seconds = time.perf_counter() - start
table.append(("naive loops", seconds / few))
print(f"  {'naive loops (tinygan/nn/naive.py)':46s} {seconds / few * 1e3:9.3f} ms/image")
reference = conv2d(x, weight, (2, 2), (1, 1))[0]
report("im2col + matrix product (reference path)", best_time(lambda: conv2d(x, weight, (2, 2), (1, 1))), batch,
       "the naive loops", relative_difference(reference[:few], naive), 1e-5)

# %% [markdown]
# ## 3-4. NHWC memory, then threads over the batch
# `fast.conv2d_forward` is the fast path's conv: the reference path's `conv2d_forward` with the same
# arguments. In a `with cpu.using_threads(1):` block it runs on NHWC memory in one thread; with one
# thread per core it splits im2col's copies over the batch.

# %%
print("\n3-4. NHWC memory, then threads")
x_nhwc = fast.nchw(xp.ascontiguousarray(fast.nhwc(x)))                # the same values, NHWC memory
threads = max(2, os.cpu_count() or 1)


def fast_conv():
    with fast_winograd.im2col_only():      # steps 3-11 make im2col faster; step 12 takes another way
        return fast.conv2d_forward(x_nhwc, weight, None, (2, 2), (1, 1))[0]


with cpu.using_threads(1):
    nhwc_y = fast_conv()
    report("NHWC memory, 1 thread", best_time(fast_conv), batch, "the reference path",
           relative_difference(nhwc_y, reference), 1e-5)
with cpu.using_threads(threads):
    report(f"NHWC memory, {threads} threads over the batch", best_time(fast_conv), batch, "1 thread",
           relative_difference(fast_conv(), nhwc_y), 0.0)
# The matrix product runs in BLAS's own threads already; what the extra threads speed up is
# the unfold, NumPy's strided copies, which run while the GIL is released:
unfold = fast.nhwc(x_nhwc)


def fast_im2col_of_unfold(work_arrays=None):
    return fast.im2col(unfold, (4, 4), (2, 2), (1, 1), work_arrays)


with cpu.using_threads(1):
    cols = fast_im2col_of_unfold()
    table.append(("im2col's copies alone, 1 thread", best_time(fast_im2col_of_unfold) / batch))
    print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
with cpu.using_threads(threads):
    report(f"im2col's copies alone, {threads} threads", best_time(fast_im2col_of_unfold), batch, "1 thread",
           relative_difference(fast_im2col_of_unfold(), cols), 0.0)

# %% [markdown]
# ## 5. The G step's frozen D: skip dL/dW
# A conv's backward is two matrix products of the same size as its forward: one for dL/dW, one for
# dL/dx. In the G step only dL/dx flows on (to G), so the layer skips the first when its weight does
# not require a gradient (`D.requires_grad_(False)` in `tinygan/train.py: g_step`).

# %%
print("\n5. Backward of the frozen D: dL/dx only")
layer = nn.Conv2d(64, 128, 4, 2, 1, bias=False, rng=0)
layer.weight.data[...] = weight


def backward(requires_grad):
    layer.requires_grad_(requires_grad)
    with nn.using_path("fast"), fast_winograd.im2col_only():
        layer(x_nhwc)
        return layer.backward(g)


g = rng.normal((batch, 128, 16, 16))
full_dx = backward(True)
seconds_full = best_time(lambda: backward(True))
table.append(("forward + backward, dL/dW and dL/dx", seconds_full / batch))
print(f"  {table[-1][0]:46s} {seconds_full / batch * 1e3:9.3f} ms/image")
report("forward + backward, dL/dx only (D frozen)", best_time(lambda: backward(False)), batch, "the full backward",
       relative_difference(backward(False), full_dx), 0.0)
reference_dx = conv2d_adjoint(g, weight, (32, 32), (2, 2), (1, 1))
lesson.check("fast dL/dx against the reference path's conv2d_adjoint", relative_difference(full_dx, reference_dx),
             relative_difference(full_dx, reference_dx) <= 1e-5, "should be <= 1e-5")
reference_dw = conv2d_weight_grad(g, conv2d(x, weight, (2, 2), (1, 1))[1])
layer.weight.grad = None
backward(True)
lesson.check("fast dL/dW against the reference path's conv2d_weight_grad",
             relative_difference(layer.weight.grad, reference_dw),
             relative_difference(layer.weight.grad, reference_dw) <= 1e-5, "should be <= 1e-5")

# %% [markdown]
# ## 6. Eval BatchNorm as one affine map

# %%
print("\n6. BatchNorm in eval mode (sampling)")
bn = nn.BatchNorm2d(128).eval()
bn.running_mean[...], bn.running_var[...] = rng.normal((128,)), rng.uniform((128,), 0.5, 2.0)
h = rng.normal((batch, 128, 16, 16))
with nn.using_path("reference"):
    four_passes = bn(h)
    table.append(("eval BatchNorm, (x - mean) / std * gamma + beta", best_time(lambda: bn(h)) / batch))
print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
with nn.using_path("fast"):
    report("eval BatchNorm, x * scale + shift", best_time(lambda: bn(h)), batch, "the formula",
           relative_difference(bn(h), four_passes), 1e-5)

# %% [markdown]
# ## 7. Copy blocks of kernel offsets, not one offset at a time
# Step 3's im2col makes one strided copy per kernel offset: 16 for a 4x4 kernel, each moving runs of C
# floats. At stride 2, offsets i and i + 1 of neighbouring output pixels read *neighbouring, disjoint*
# rows (2 ho + i and 2 ho + i + 1), and the same holds for columns: a 2x2 block of offsets tiles the
# image. So one copy moves a whole block for every pixel at once, in runs of 2C floats, and 4 copies
# do what 16 did (`fast_im2col.stride_blocks`). Below, the 16-copy version is written out and timed against
# the library's, both on one thread.

# %%
print("\n7. im2col in blocks of stride x stride kernel offsets")


def im2col_per_offset(x_nhwc, kernel, stride, padding):
    """Step 3's im2col on NHWC memory: one strided copy per kernel offset."""
    n, h, w, c = x_nhwc.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype)
    xpad[:, ph:ph + h, pw:pw + w] = x_nhwc
    cols = xp.empty((n, ho, wo, kh, kw, c), dtype=x_nhwc.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = xpad[:, i:i + sh * ho:sh, j:j + sw * wo:sw]
    return cols


print(f"  blocks of a 4x4 kernel at stride 2 (i0, j0, rows, columns): "
      f"{list(fast_im2col.stride_blocks((4, 4), (2, 2)))}")
with cpu.using_threads(1):
    per_offset = im2col_per_offset(unfold, (4, 4), (2, 2), (1, 1))
    table.append(("im2col, 16 copies (one per offset), 1 thread",
                  best_time(lambda: im2col_per_offset(unfold, (4, 4), (2, 2), (1, 1))) / batch))
    print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
    report("im2col, 4 copies (one per block), 1 thread", best_time(fast_im2col_of_unfold), batch, "16 copies",
           relative_difference(fast_im2col_of_unfold(), per_offset), 0.0)

# %% [markdown]
# ## 8. Keep the big work arrays from step to step
# A fresh array is only *promised* memory: the kernel maps and zeroes each page the first time it is
# written. For the columns of this layer (134 MB at batch 128) that costs about as much as the copy into
# them. A layer on the fast path keeps its work arrays in `layer.work_arrays` (`cpu.WorkArrays`; since step 11,
# each thread's columns and canvas for one group of images) and writes over them in the next step: they never
# leave the layer, so nobody else can hold them.
# Outputs that *do* leave a layer are always fresh arrays.

# %%
print("\n8. im2col into a fresh array, then into a kept one")
table.append(("im2col, a fresh array every call", best_time(fast_im2col_of_unfold) / batch))
print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
work_arrays = cpu.WorkArrays()
report("im2col into the layer's kept buffer", best_time(lambda: fast_im2col_of_unfold(work_arrays)), batch,
       "a fresh array", relative_difference(fast_im2col_of_unfold(work_arrays), per_offset), 0.0)

# %% [markdown]
# ## 9. LeakyReLU's backward without a branch
# dL/dx = g where y > 0, a g elsewhere. Written as a choice (`np.where`, `copyto(where=)`), the CPU
# *branches* on every element, and on D's activations the sign is a coin flip: it guesses wrong half the
# time, and every wrong guess throws away work. As arithmetic there is nothing to guess: the slope
# max([y > 0], a) is 1 or a exactly (`fast.slope_backward`), then one product with g.

# %%
print("\n9. LeakyReLU backward: a branch per element, then arithmetic")
with nn.using_path("fast"):
    y = nn.LeakyReLU(0.2)(rng.normal((batch, 128, 16, 16)))
g_act = rng.normal(y.shape)


def backward_with_a_branch():
    dx = g_act * np.float32(0.2)
    xp.copyto(dx, g_act, where=y > 0)
    return dx


table.append(("LeakyReLU backward, copyto(where=y > 0)", best_time(backward_with_a_branch) / batch))
print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
report("LeakyReLU backward, g * max([y > 0], a)", best_time(lambda: fast.slope_backward(y, g_act, 0.2)), batch,
       "the branch", relative_difference(fast.slope_backward(y, g_act, 0.2), backward_with_a_branch()), 0.0)

# %% [markdown]
# ## 10. BLAS's own threads, spinning after every product
# After a matrix product it spread over its threads, OpenBLAS keeps them awake for about 0.1 s, spinning in
# case another product comes. In a training step the copies and elementwise passes come right after a
# product, so the spinning threads take a share of the cores from them. OpenBLAS reads
# `OPENBLAS_THREAD_TIMEOUT` once, when NumPy loads it, so a notebook whose NumPy is loaded cannot change it
# (`python -m tinygan train` restarts itself with it set). What a library can change is who multiplies:
# `fast.gemm` splits a large product over the fast path's own threads, and OpenBLAS computes each part on one
# thread (`tinygan.blas.one_thread`); a small product (D's last layer: one logit per image) runs on the calling
# thread alone. Both cores multiply, and OpenBLAS's threads never wake, so nothing spins. Below, fresh Python processes run "a product, then im2col's copies" a few times: NumPy's own
# product with OpenBLAS's threads spinning, the same with them asleep, and `fast.gemm`'s product.

# %%
print("\n10. im2col right after a matrix product, with OpenBLAS's idle threads spinning, then asleep")
import json  # noqa: E402
import subprocess  # noqa: E402

after_a_product = f"""
import json, sys, time
sys.path[:0] = {[str(HERE.parent)]!r}
import numpy as np
from tinygan.nn import fast
a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
x = np.random.default_rng(1).random(({batch}, 32, 32, 64), dtype=np.float32)
times = []
for _ in range({repeats + 2}):
    {{product}}
    start = time.perf_counter()
    fast.im2col(x, (4, 4), (2, 2), (1, 1))
    times.append(time.perf_counter() - start)
print(json.dumps(min(times)))
"""


def im2col_after_a_product(blas_timeout, product="a @ a"):
    environment = dict(os.environ, OPENBLAS_THREAD_TIMEOUT=blas_timeout)
    environment.pop("OPENBLAS_NUM_THREADS", None)           # the test suite runs lessons with 1 BLAS thread
    result = subprocess.run([sys.executable, "-c", after_a_product.replace("{product}", product)], env=environment,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


table.append(("im2col after a product, BLAS threads spinning", im2col_after_a_product("28") / batch))
print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
report("im2col after a product, BLAS threads asleep", im2col_after_a_product("4"), batch,
       "the same copies", 0.0, 0.0)
report("im2col after fast.gemm's product, one BLAS thread per part", im2col_after_a_product("28", "fast.gemm(a, a)"),
       batch, "the same copies", 0.0, 0.0)
print("  (on a quiet machine with more free cores than BLAS threads the two are close: the spin only"
      " hurts when the cores are shared)")

# %% [markdown]
# ## 11. A group of images at a time, while its columns are in the cache
# Steps 3-8 unfold the whole batch, then multiply: the columns of this layer (16 times the layer's input: 134 MB
# at batch 128) go out to main memory and come back for the product, and a backward would read them again for
# dL/dW and write and read as many dcols for dL/dx. The fast conv (`fast.conv2d_forward`) unfolds a group of a
# few images (about 2 MB of columns, the size of a core's L2 cache), multiplies them at once, then takes the
# next group, each thread its own part of the batch (`cpu.over_groups`). Its backward unfolds each group again
# rather than keep the batch's columns (a copy within the cache is cheaper than a trip to memory and back), and
# folds each group's dcols as soon as the product has made them: a training step at batch 128 needs half the
# memory (0.73 GB instead of 1.4). The whole step is not measurably faster (the products dominate it); the
# layer's forward alone is, below: the whole batch's unfold and one product, against the fast conv, both on
# every thread.

# %%
print("\n11. Unfold the whole batch, then multiply; or a group of images at a time")
wmat = fast.weight_matrix(weight).T                                    # (kh*kw*C, O)


def whole_batch_then_product():
    cols = fast.im2col(unfold, (4, 4), (2, 2), (1, 1), work_arrays)    # the batch's columns, in a kept array
    return fast.gemm(cols.reshape(-1, wmat.shape[0]), wmat)


group_images = max(1, cpu.GROUP_ROWS // (16 * 16), cpu.GROUP_BYTES // (16 * 16 * wmat.shape[0] * 4))
print(f"  columns of the whole batch: {batch * 16 * 16 * wmat.shape[0] * 4 / 2 ** 20:.0f} MB; of a group of "
      f"{group_images} images: {group_images * 16 * 16 * wmat.shape[0] * 4 / 2 ** 20:.0f} MB per thread")
with cpu.using_threads(threads):
    whole = whole_batch_then_product()
    table.append(("unfold the whole batch, then one product", best_time(whole_batch_then_product) / batch))
    print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
    report("a group at a time (fast.conv2d_forward)", best_time(fast_conv), batch, "the whole batch",
           relative_difference(fast.nhwc(fast_conv()).reshape(whole.shape), whole), 1e-6)

# %% [markdown]
# ## 12. Fewer multiplications: Winograd's F(2, 2)
# Steps 3-11 make the same 16 multiplications per output pixel, input and output channel faster. This one makes
# fewer (`tinygan/nn/fast_winograd.py`). Two exact rewrites:
#
# * **Space to depth.** Pad x by 1 and read pixel (2r + a, 2s + b) as channel (a, b, c) of pixel (r, s): an image
#   half as high and wide with 4C channels, and the 4x4 kernel at stride 2 becomes a 2x2 kernel at stride 1.
# * **Winograd's F(2, 2).** Two outputs of a 2-tap filter from 3 inputs take 3 products instead of 4:
#   y0 = (d0 - d1) g0 + d1 (g0 + g1) and y1 = d1 (g0 + g1) + (d2 - d1) g1. On both axes, a 2x2 tile of outputs
#   takes 9 products instead of 16. With channels each "product" is a matrix product over all tiles,
#   (tiles, 4C) @ (4C, O): 9 of them, each a quarter of im2col's rows. 9/16 of the work.
#
# The backward runs the same steps backwards (each linear map transposed), with 9 products for dL/dx and 9 for
# dL/dW; a transposed conv is the adjoint of a conv, so its forward is the conv's backward-data steps. The
# transforms only add and subtract: the float32 error is a plain conv's. What they cost is the copies and
# additions around the products; below, this layer's forward and forward + backward with im2col (step 11,
# `fast_winograd.im2col_only()`) against Winograd's way, both on every thread.

# %%
print("\n12. 16 products per tile (im2col), or Winograd's 9")

d0, d1, d2, g0, g1 = 2.0, -3.0, 5.0, 7.0, 11.0
m = ((d0 - d1) * g0, d1 * (g0 + g1), (d2 - d1) * g1)                    # 3 products
lesson.check("F(2, 2): 3 products give both outputs of a 2-tap filter", (m[0] + m[1], m[1] + m[2]),
             (m[0] + m[1], m[1] + m[2]) == (d0 * g0 + d1 * g1, d1 * g0 + d2 * g1), "d0 g0 + d1 g1, d1 g0 + d2 g1")
layer.requires_grad_(True)


def winograd_conv():
    return fast.conv2d_forward(x_nhwc, weight, None, (2, 2), (1, 1))[0]


def forward_and_backward():
    with nn.using_path("fast"):
        layer(x_nhwc)
        return layer.backward(g)


with cpu.using_threads(threads):
    table.append(("forward, im2col (16 products per tile)", best_time(fast_conv) / batch))
    print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
    report("forward, Winograd (9 products per tile)", best_time(winograd_conv), batch, "im2col",
           relative_difference(winograd_conv(), fast_conv()), 1e-5)
    table.append(("forward + backward (dL/dx, dL/dW), im2col", best_time(lambda: backward(True)) / batch))
    print(f"  {table[-1][0]:46s} {table[-1][1] * 1e3:9.3f} ms/image")
    seconds = best_time(forward_and_backward)
    layer.weight.grad = None                                           # the timed runs added theirs up
    report("forward + backward, Winograd", seconds, batch, "im2col", relative_difference(forward_and_backward(),
                                                                                          full_dx), 1e-5)
    lesson.check("Winograd's dL/dW against the reference path's conv2d_weight_grad",
                 relative_difference(layer.weight.grad, reference_dw),
                 relative_difference(layer.weight.grad, reference_dw) <= 1e-5, "should be <= 1e-5")

# %% [markdown]
# ## The whole training step, on each path

# %%
print("\nA whole DCGAN training step (G and D updates), reference path against fast path")
from tinygan.train import Trainer, make_config  # noqa: E402

faces = np.random.default_rng(args.seed).integers(0, 256, (2 * batch, 64, 64, 3), dtype=np.uint8)
width = 16 if args.quick else 64
step_times = {}
for path in ("reference", "fast"):
    with nn.using_path(path):
        trainer = Trainer(make_config(out=str(lesson.out / "unused"), ngf=width, ndf=width, batch_size=batch,
                                      ema_decay=0), dataset=faces, verbose=False)
        real = trainer.loader.get_batch(0, 0)
        step_times[path] = best_time(lambda: trainer.train_step(real))
    print(f"  {path:9s} path: {batch / step_times[path]:7.1f} images/s (ngf = ndf = {width}, batch {batch})")
print(f"  the fast path trains {step_times['reference'] / step_times['fast']:.1f}x as fast")

# %%
fig, axes = lesson.figure(1, 1, size=(9, 1.5 + 0.3 * len(table)))
names, per_image = zip(*table)
axes[0, 0].barh(range(len(names)), [t * 1e3 for t in per_image], color="tab:blue")
axes[0, 0].set(yticks=range(len(names)), yticklabels=names, xscale="log", xlabel="ms per image (log scale)",
               title=f"D's 64 -> 128 conv (32x32 -> 16x16), batch {batch}")
axes[0, 0].invert_yaxis()
lesson.save_figure(fig, "speedups.png")
lesson.finish()
