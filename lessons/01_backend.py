# %% [markdown]
# # Lesson 01: the array backend
#
# A neural network is arithmetic on arrays. NumPy does that arithmetic on the CPU and CuPy does it
# on an NVIDIA GPU. CuPy copies NumPy's API, so one body of code can serve both, as long as it never
# names `numpy` itself. It asks instead:
#
#     xp = get_array_module(x)      # numpy or cupy, whichever x lives in
#     y = xp.exp(x)                 # runs where x lives
#
# Three rules follow from that.
#
# 1. One backend is active: `backend.use("numpy")` or `backend.use("cupy")`, and `backend.xp` names it.
#    Arrays cross between host and device only at the edges: `to_device(a)` on the way in,
#    `to_numpy(a)` on the way out (to plot, save or print).
# 2. Random numbers are drawn on the host by NumPy's PCG64 generator and then moved to the device.
#    So a seed means the same bytes on the CPU and on the GPU. (NumPy and CuPy would draw different
#    numbers from the same seed with their own generators.)
# 3. Training arrays are float32. They take half the memory and bandwidth of float64, and a GPU is
#    many times faster in float32. float32 has a relative precision of eps = 2^-23, about 1.2e-7,
#    so 1 + 1e-8 == 1 in float32. That is why gradient checks (lesson 02) run in float64 instead,
#    where eps is 2^-52.
#
# Read `tinygan/backend.py` (Generator, to_device, to_numpy, get_array_module): it is the only file
# that imports CuPy. Proved below: the same seed gives the same bytes and another seed does not; a
# round trip to the device is bit-exact; and on a GPU, CuPy's matmul matches NumPy's.

# %%
"""Lesson 01: the array backend, NumPy on the CPU or CuPy on a GPU."""
import hashlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend  # noqa: E402

def fingerprint(a):
    """SHA-256 of an array's bytes, wherever it lives (first 12 hex digits)."""
    return hashlib.sha256(backend.to_numpy(a).tobytes()).hexdigest()[:12]


def time_matmul(xp, a, b, repeats=3):
    """Best-of-n seconds for a @ b (the GPU is asynchronous: wait for it before reading the clock)."""
    sync = xp.cuda.Device().synchronize if xp is not np else (lambda: None)
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return best


# %%
lesson = Lesson("01_backend", __doc__)
args = lesson.parse()
xp = backend.xp
n = 128 if args.quick else 1024
print(f"active backend: {backend.name()} (backend.xp is the module {xp.__name__})")

# %% [markdown]
# ## 1. The same seed gives the same bytes

# %%
print("\n1. The same seed gives the same bytes")
noise_a = backend.default_rng(args.seed).normal((n, n))          # (n, n) float32 on the active backend
noise_b = backend.default_rng(args.seed).normal((n, n))
noise_c = backend.default_rng(args.seed + 1).normal((n, n))
lesson.check("dtype of a drawn array", noise_a.dtype, noise_a.dtype == np.float32, "should be float32")
lesson.check(f"sha256 of seed {args.seed}, drawn twice", f"{fingerprint(noise_a)} == {fingerprint(noise_b)}",
             fingerprint(noise_a) == fingerprint(noise_b), "should be equal")
lesson.check(f"sha256 of seed {args.seed + 1}", fingerprint(noise_c), fingerprint(noise_c) != fingerprint(noise_a),
             "should differ from the one above")
host = backend.to_numpy(noise_a)
back = backend.to_device(host)
lesson.check("sha256 after to_numpy -> to_device", fingerprint(back), fingerprint(back) == fingerprint(noise_a),
             "should equal the original's: the round trip is bit-exact")
lesson.check("get_array_module(array) is backend.xp", backend.get_array_module(noise_a).__name__,
             backend.get_array_module(noise_a) is xp, f"should be {xp.__name__}")
lesson.check("mean of N(0, 1) draws", float(host.mean()), abs(host.mean()) < 5 / n, f"should be 0 +- {5 / n:.2g}")
lesson.check("std of N(0, 1) draws", float(host.std()), abs(host.std() - 1) < 5 / n, f"should be 1 +- {5 / n:.2g}")

# %% [markdown]
# ## 2. float32 rounds off what float64 keeps

# %%
print("\n2. float32 rounds off what float64 keeps")
one32, one64 = np.float32(1) + np.float32(1e-8), np.float64(1) + np.float64(1e-8)
lesson.check("float32: 1 + 1e-8 == 1", bool(one32 == 1), one32 == 1, "should be True: 1e-8 < eps32/2 = 6e-8")
lesson.check("float64: 1 + 1e-8 == 1", bool(one64 == 1), one64 != 1, "should be False: eps64 = 2.2e-16")

# %% [markdown]
# ## 3. NumPy and (if there is a GPU) CuPy on the same input arrays
# The two libraries draw different random numbers, so they are compared on the *same* arrays,
# copied to the GPU. A GPU runs asynchronously: the timer waits for it before reading the clock.

# %%
print("\n3. NumPy and (if there is a GPU) CuPy on the same input arrays")
a_host, b_host = host, backend.to_numpy(noise_c)
cpu_seconds = time_matmul(np, a_host, b_host)
print(f"  NumPy matmul {n}x{n} @ {n}x{n}: {cpu_seconds * 1e3:.1f} ms ({2 * n ** 3 / cpu_seconds / 1e9:.1f} GFLOP/s)")
timings = {"NumPy (CPU)": cpu_seconds}
if backend.gpu_available():
    previous = backend.name()
    cp = backend.use("cupy")
    a_gpu, b_gpu = backend.to_device(a_host), backend.to_device(b_host)     # the SAME arrays, copied over
    gpu_seed = backend.default_rng(args.seed).normal((n, n))
    lesson.check("sha256 of the seed drawn for the GPU", fingerprint(gpu_seed), fingerprint(gpu_seed) ==
                 fingerprint(noise_a), "should equal the CPU's")
    product_cpu, product_gpu = a_host @ b_host, backend.to_numpy(a_gpu @ b_gpu)
    err = float(np.abs(product_cpu - product_gpu).max() / np.abs(product_cpu).max())
    lesson.check("CuPy matmul vs NumPy matmul, max relative difference", err, err < 1e-5,
                 "should be < 1e-5: float32 sums in a different order")
    timings["CuPy (GPU)"] = time_matmul(cp, a_gpu, b_gpu)
    print(f"  CuPy matmul: {timings['CuPy (GPU)'] * 1e3:.2f} ms, {cpu_seconds / timings['CuPy (GPU)']:.0f}x NumPy")
    backend.use(previous)
else:
    print("  no usable GPU here (CuPy is not installed or sees no device): skipping the CuPy part")

# %% [markdown]
# ## The picture: three seeded noise images and their histogram

# %%
fig, axes = lesson.figure(1, 4, size=(3.2, 3.2))
for ax, arr, title in zip(axes[0], (noise_a, noise_b, noise_c),
                          (f"seed {args.seed}", f"seed {args.seed} again", f"seed {args.seed + 1}")):
    ax.imshow(backend.to_numpy(arr)[:64, :64], cmap="gray", vmin=-3, vmax=3)
    ax.set_title(f"{title}\nsha256 {fingerprint(arr)}", fontsize=8)
    ax.axis("off")
ax = axes[0, 3]
ax.hist(host.ravel(), bins=60, density=True, color="tab:blue", alpha=0.6, label="draws")
grid = np.linspace(-4, 4, 200)
ax.plot(grid, np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi), color="black", label="N(0, 1)")
ax.set_title("; ".join(f"{k} {v * 1e3:.1f} ms" for k, v in timings.items()) + f"\nfor a {n}x{n} matmul", fontsize=8)
ax.legend(fontsize=7)
lesson.save_figure(fig, "seeded_noise.png")
lesson.finish()
