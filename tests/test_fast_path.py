"""The fast path (tinygan.nn.fast) computes what the reference path computes, on the same arrays.

For random shapes, strides, paddings and channel counts (1-5 channels: the RGB convT case
and the NHWC case), each fast layer's output and every gradient must equal the reference
layer's: relative error at most 1e-12 in float64 and 1e-5 in float32.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygan import nn
from tinygan.fid.conv import conv2d_relu
from tinygan.nn import cpu, fast, fast_gemm, fast_winograd, paths, reference as F

from strategies import conv_cases

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def rel_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-30)
    return float(np.abs(a - b).max(initial=0) / scale)


def both_paths(make_layer, x, upstream, dtype, training=True, need_input_grad=True, frozen=False):
    """(output, input gradient, parameter gradients) of the same layer on each path."""
    results = {}
    for path in nn.PATHS:
        with nn.using_path(path):
            layer = make_layer().astype(dtype).train(training)
            layer.requires_grad_(not frozen)
            y = layer(x.astype(dtype))
            dx = layer.backward(upstream.astype(dtype), need_input_grad=need_input_grad)
            grads = {name: None if p.grad is None else p.grad.copy() for name, p in layer.named_parameters()}
            buffers = {name: b.copy() for name, b in layer.named_buffers()}
            results[path] = (np.array(y), None if dx is None else np.array(dx), grads, buffers)
    return results


def assert_paths_agree(results, dtype, grad_scales=None):
    """Outputs, input gradients, parameter gradients and buffers equal to TOLERANCE[dtype], relative to the
    largest value; ``grad_scales`` may name a larger scale for a parameter gradient that is a sum whose
    terms cancel (the two paths add in different orders: their rounding is relative to the terms)."""
    fast_result, reference = results["fast"], results["reference"]
    tol = TOLERANCE[dtype]
    grad_scales = grad_scales or {}
    assert fast_result[0].dtype == reference[0].dtype == dtype
    assert rel_error(fast_result[0], reference[0]) <= tol, "forward"
    if reference[1] is None:
        assert fast_result[1] is None
    else:
        assert rel_error(fast_result[1], reference[1]) <= tol, "input gradient"
    for name, grad in reference[2].items():
        assert (grad is None) == (fast_result[2][name] is None), name
        if grad is not None:
            error = rel_error(fast_result[2][name], grad)
            if name in grad_scales:
                error *= max(np.abs(grad).max(initial=0), 1e-30) / max(grad_scales[name], 1e-30)
            assert error <= tol, name
    for name, value in reference[3].items():
        assert rel_error(fast_result[3][name], value) <= tol, name


def normal(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(deadline=None, max_examples=60)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16), need_input_grad=st.booleans(), frozen=st.booleans())
def test_conv2d(dtype, c, seed, need_input_grad, frozen):
    x = normal((c["n"], c["cin"]) + c["hw"], seed)
    out_hw = [F.conv_output_size(s, k, st_, p) for s, k, st_, p in zip(c["hw"], c["kernel"], c["stride"], c["padding"])]
    upstream = normal((c["n"], c["cout"], *out_hw), seed + 1)
    results = both_paths(lambda: nn.Conv2d(c["cin"], c["cout"], c["kernel"], c["stride"], c["padding"],
                                           bias=c["bias"], rng=seed), x, upstream, dtype,
                         need_input_grad=need_input_grad, frozen=frozen)
    assert_paths_agree(results, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(deadline=None, max_examples=60)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16), data=st.data())
def test_conv_transpose2d(dtype, c, seed, data):
    (sh, sw) = c["stride"]
    output_padding = (data.draw(st.integers(0, sh - 1)), data.draw(st.integers(0, sw - 1)))
    h, w = (max(1, s - 3) for s in c["hw"])
    layer = lambda: nn.ConvTranspose2d(c["cin"], c["cout"], c["kernel"], c["stride"], c["padding"],  # noqa: E731
                                       output_padding, bias=c["bias"], rng=seed)
    out_hw = layer().output_hw(h, w)
    assume(min(out_hw) >= 1)
    x = normal((c["n"], c["cin"], h, w), seed)
    upstream = normal((c["n"], c["cout"]) + out_hw, seed + 1)
    assert_paths_agree(both_paths(layer, x, upstream, dtype), dtype)


@pytest.mark.parametrize("kind, cin, cout", [("conv", 5, 4), ("conv", 3, 4), ("convT", 5, 4), ("convT", 4, 3)],
                         ids=["conv", "conv from RGB", "convT", "convT to RGB"])
@pytest.mark.parametrize("need_input_grad, frozen", [(True, False), (False, False), (True, True)])
def test_a_conv_over_several_groups_and_threads_equals_the_reference(kind, cin, cout, need_input_grad, frozen,
                                                                     monkeypatch):
    """The fast convs work a group of images at a time, each thread on its part of the batch (cpu.over_groups),
    and add dW and db up group by group and thread by thread. With one image per group, 6 images on two threads
    are 6 groups in 2 parts; the output and every gradient must still be the reference's (float64), for Winograd's
    tiles (4 or more channels, tinygan.nn.fast_winograd) and for an RGB image's channels-first columns."""
    from tinygan import blas
    functions = blas.thread_functions()
    if functions is None:
        pytest.skip("no OpenBLAS in this process: the groups run on one thread")
    monkeypatch.setattr(cpu, "GROUP_ROWS", 1)
    monkeypatch.setattr(cpu, "GROUP_BYTES", 1)
    seen, ways, real = [], set(), cpu.over_groups

    def counting(way):
        def loop(x, work, *args, **kwargs):
            ways.add(way)
            return real(x, lambda images, arrays: seen.append((images, id(arrays))) or work(images, arrays), *args,
                        **kwargs)
        return loop
    monkeypatch.setattr(fast, "over_groups", counting("im2col"))
    monkeypatch.setattr(fast_winograd, "over_groups", counting("winograd"))
    set_threads, get_threads = functions
    held = get_threads()
    set_threads(2)
    try:
        with cpu.using_threads(2):
            layer = nn.Conv2d if kind == "conv" else nn.ConvTranspose2d
            x = normal((6, cin, 8, 8), 1)
            y_shape = (6, cout, 4, 4) if kind == "conv" else (6, cout, 16, 16)
            results = both_paths(lambda: layer(cin, cout, 4, 2, 1, rng=0), x, normal(y_shape, 2), np.float64,
                                 need_input_grad=need_input_grad, frozen=frozen)
    finally:
        set_threads(held)
    assert_paths_agree(results, np.float64)
    assert sorted(images.start for images, _ in seen) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]   # forward, backward
    assert len({part for _, part in seen}) == 2                    # two parts, each with its own work arrays
    assert ways == ({"im2col"} if min(cin, cout) <= 3 else {"winograd"})    # RGB: im2col; else Winograd's way


@pytest.mark.parametrize("kernel, cin, size", [(4, 5, 6), (4, 5, 8), (1, 5, 6), (4, 1, 6), (4, 3, 6)])
def test_a_fast_backward_uses_the_weight_of_its_forward(kernel, cin, size):
    """A fast conv keeps its weight matrix from the forward for the backward (as autograd keeps its tensors), for
    every shape alike (a 1x1 kernel's matrix would be a view of the weight): a change to the weight in between
    does not reach the backward (an 8x8 image with 5 channels takes Winograd's way: its weight's tiles are kept).
    Its dL/dW comes in the weight's own memory order."""
    with nn.using_path("fast"):
        conv = nn.Conv2d(cin, 4, kernel, 1 if kernel == 1 else 2, 0 if kernel == 1 else 1, rng=0).astype(np.float64)
        x = normal((2, cin, size, size), 0)
        y = conv(x)
        g = normal(y.shape, 1)
        twin = nn.Conv2d(cin, 4, kernel, conv.stride, conv.padding, rng=0).astype(np.float64)
        twin(x)
        conv.weight.data *= 2                                  # between the forward and its backward
        np.testing.assert_array_equal(conv.backward(g), twin.backward(g))
        assert conv.weight.grad.flags.c_contiguous


@pytest.mark.parametrize("kind, cout", [("conv", 4), ("convT", 4), ("convT", 3)])
def test_a_float64_upstream_gradient_gives_float64_gradients_on_both_paths(kind, cout):
    layer = (lambda: nn.Conv2d(5, cout, 4, 2, 1, rng=0)) if kind == "conv" else (
        lambda: nn.ConvTranspose2d(5, cout, 4, 2, 1, rng=0))
    x = normal((2, 5, 8, 8), 0).astype(np.float32)
    for path in nn.PATHS:
        with nn.using_path(path):
            made = layer()
            y = made(x)
            dx = made.backward(normal(y.shape, 1))             # float64
            assert dx.dtype == made.weight.grad.dtype == made.bias.grad.dtype == np.float64, path


@pytest.mark.parametrize("cin", [3, 5])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients_on_both_paths(cin):
    for layer in (lambda: nn.Conv2d(cin, 4, 4, 2, 1, rng=0), lambda: nn.ConvTranspose2d(cin, 4, 4, 2, 1, rng=0)):
        x = normal((0, cin, 8, 8), 0)
        out_shape = layer()(x.astype(np.float32)).shape
        assert_paths_agree(both_paths(layer, x, normal(out_shape, 1), np.float64), np.float64)


@pytest.mark.parametrize("kind", ["conv", "convT"])
def test_a_layer_reused_on_other_sizes_gives_what_a_fresh_layer_gives(kind):
    """A layer keeps its columns and canvas from call to call (cpu.WorkArrays). A call on another
    image size, even one with the same canvas (33 and 32 rows both give 16 output rows at stride 2),
    must not see what the last call left in them."""
    with nn.using_path("fast"):
        make = (lambda: nn.Conv2d(3, 4, 4, 2, 1, rng=0)) if kind == "conv" else (lambda: nn.ConvTranspose2d(3, 4, 4, 2,
                                                                                                            1, rng=0))
        kept = make()
        for size in (33, 32, 9, 32):
            x = normal((2, 3, size, size), size).astype(np.float32)
            y = kept(x)
            upstream = normal(y.shape, size + 1).astype(np.float32)
            fresh = make()
            expected = fresh(x)
            np.testing.assert_array_equal(y, expected)
            np.testing.assert_array_equal(kept.backward(upstream), fresh.backward(upstream))
            np.testing.assert_array_equal(kept.weight.grad, fresh.weight.grad)
            kept.zero_grad()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(deadline=None, max_examples=40)
@given(n=st.integers(1, 4), c=st.integers(1, 5), h=st.integers(1, 5), w=st.integers(1, 5), training=st.booleans(),
       affine=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_batchnorm2d(dtype, n, c, h, w, training, affine, seed):
    assume(n * h * w >= 3 or not training)     # with 2 values a channel dL/dx is O(eps): all cancellation
    x = normal((n, c, h, w), seed) * 3 + 1

    def layer():
        bn = nn.BatchNorm2d(c, affine=affine)
        rng = np.random.default_rng(seed)
        bn.load_state_dict({"running_mean": rng.normal(size=c), "running_var": rng.uniform(0.5, 2, size=c)},
                           strict=False)
        if affine:
            bn.load_state_dict({"weight": rng.uniform(0.5, 1.5, c), "bias": rng.normal(size=c)}, strict=False)
        return bn
    upstream = normal(x.shape, seed + 1)
    bn = layer()
    mean, var = (x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))) if training else (bn.running_mean, bn.running_var)
    xhat = (x - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + bn.eps)
    # dgamma and dbeta are sums over N*H*W terms: their rounding is relative to the terms' sizes
    grad_scales = {"weight": np.abs(upstream * xhat).sum(axis=(0, 2, 3)).max(),
                   "bias": np.abs(upstream).sum(axis=(0, 2, 3)).max()}
    assert_paths_agree(both_paths(layer, x, upstream, dtype, training=training), dtype, grad_scales)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(deadline=None, max_examples=30)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), slope=st.sampled_from([0.0, 0.01, 0.2,
                                                                                                 1.0]),
       seed=st.integers(0, 2 ** 16))
def test_leaky_relu(dtype, shape, slope, seed):
    x = normal(shape, seed)
    assert_paths_agree(both_paths(lambda: nn.LeakyReLU(slope), x, normal(shape, seed + 1), dtype), dtype)


@pytest.mark.parametrize("make, training", [(lambda: nn.BatchNorm2d(16), True), (lambda: nn.BatchNorm2d(16), False),
                                            (lambda: nn.LeakyReLU(0.2), True), (nn.ReLU, True)],
                         ids=["BatchNorm", "eval BatchNorm", "LeakyReLU", "ReLU"])
def test_passes_over_a_batch_in_cache_sized_groups_equal_the_reference(make, training, monkeypatch):
    """BatchNorm's and the activations' passes run a cache-sized group of images at a time on each thread
    (cpu.over_batch(in_cache=True)); with one image per group the numbers are still the reference path's."""
    monkeypatch.setattr(cpu, "CACHE_CHUNK_BYTES", 16 * 32 * 32 * 8)         # one float64 image
    x = normal((8, 16, 32, 32), 0)                                           # above MIN_SHARED_SIZE: shared out
    grad_scales = {"weight": float(np.abs(normal(x.shape, 1) * 3).sum(axis=(0, 2, 3)).max()),
                   "bias": float(np.abs(normal(x.shape, 1)).sum(axis=(0, 2, 3)).max())}
    groups, real = [], cpu.over_batch

    def counting(*args, **kwargs):
        results = real(*args, **kwargs)
        groups.append(len(results))
        return results
    monkeypatch.setattr(fast, "over_batch", counting)
    with cpu.using_threads(2):
        results = both_paths(make, x, normal(x.shape, 1), np.float64, training=training)
    assert_paths_agree(results, np.float64, grad_scales)
    assert max(groups) == 8                                                  # one result per image


@settings(deadline=None, max_examples=30)
@given(n=st.integers(1, 3), channels=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_concat_channels(n, channels, seed):
    parts = [normal((n, c, 3, 4), seed + k) for k, c in enumerate(channels)]
    outputs = {}
    for path in nn.PATHS:
        with nn.using_path(path):
            outputs[path] = nn.concat_channels(parts)
    np.testing.assert_array_equal(outputs["fast"], outputs["reference"])


@settings(deadline=None, max_examples=40)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16), chunk=st.sampled_from([64, 4096, 1 << 22]),
       relu=st.booleans())
def test_the_fid_inference_conv_equals_the_reference_conv(c, seed, chunk, relu):
    x = normal((c["n"], c["cin"]) + c["hw"], seed)
    weight = normal((c["cout"], c["cin"]) + c["kernel"], seed + 1)
    bias = normal((c["cout"],), seed + 2) if c["bias"] else None
    want, _ = F.conv2d(x, weight, c["stride"], c["padding"])
    if bias is not None:
        want = want + bias.reshape(1, -1, 1, 1)
    if relu:
        want = np.maximum(want, 0)
    got = fast.nchw(conv2d_relu(fast.nhwc(x), weight, bias, c["stride"], c["padding"], relu=relu,
                                chunk_bytes=chunk))
    assert rel_error(got, want) <= 1e-12


def test_both_sets_have_the_same_functions_with_the_same_signatures():
    import inspect
    for name in paths.FUNCTIONS:
        assert inspect.signature(getattr(fast, name)) == inspect.signature(getattr(F, name)), name


def path_of(layer):
    """The path whose functions made the layer's last forward (kept in its cache for the backward)."""
    return layer.cache[0]


def test_the_environment_and_the_context_manager_choose_the_path(monkeypatch):
    conv = nn.Conv2d(2, 3, 3, rng=0)
    x = normal((2, 2, 5, 5), 0).astype(np.float32)
    monkeypatch.delenv("TINYGAN_PATH", raising=False)
    conv(x)
    assert nn.path() == "fast" and path_of(conv) == "fast"
    monkeypatch.setenv("TINYGAN_PATH", " Reference ")
    conv(x)
    assert nn.path() == "reference" and path_of(conv) == "reference"
    with nn.using_path("fast") as chosen:
        assert chosen is fast is paths.functions() and nn.path() == "fast" and paths.functions("reference") is F
        with nn.using_path("reference"):
            conv(x)
            assert path_of(conv) == "reference"
        conv(x)
        assert path_of(conv) == "fast"
    assert nn.path() == "reference"
    with pytest.raises(ValueError, match="using_path: unknown path 'turbo'; expected one of"):
        with nn.using_path("turbo"):
            pass
    monkeypatch.setenv("TINYGAN_PATH", "turbo")
    with pytest.raises(ValueError, match="TINYGAN_PATH: unknown path 'turbo'"):
        conv(x)


@pytest.mark.parametrize("forward_path, backward_path", [("fast", "reference"), ("reference", "fast")])
def test_a_backward_takes_the_path_of_its_forward(forward_path, backward_path):
    """The layers save different things on the two paths; a switch between a forward and its backward is harmless."""
    def step(switch):
        model = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, rng=0), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                              nn.ConvTranspose2d(4, 3, 4, 2, 1, rng=1), nn.ReLU())
        x = normal((2, 3, 8, 8), 1).astype(np.float32)
        with nn.using_path(forward_path):
            y = model(x)
        with nn.using_path(backward_path if switch else forward_path):
            dx = model.backward(normal(y.shape, 2).astype(np.float32))
        return [y, dx] + [p.grad for p in model.parameters()]
    for switched, straight in zip(step(True), step(False)):
        np.testing.assert_array_equal(switched, straight)


def test_a_model_with_a_forward_in_its_cache_can_be_deep_copied():
    import copy
    model = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, rng=0), nn.BatchNorm2d(4), nn.LeakyReLU(0.2))
    x = normal((2, 3, 8, 8), 0).astype(np.float32)
    model(x)
    twin = copy.deepcopy(model)
    g = normal((2, 4, 4, 4), 1).astype(np.float32)
    np.testing.assert_array_equal(twin.backward(g), model.backward(g))


def test_a_path_chosen_in_one_thread_leaves_the_others_alone(monkeypatch):
    import threading
    monkeypatch.delenv("TINYGAN_PATH", raising=False)
    seen = []
    with nn.using_path("reference"):
        worker = threading.Thread(target=lambda: seen.append(nn.path()))
        worker.start()
        worker.join()
        assert nn.path() == "reference"
    assert seen == ["fast"]


def test_using_threads_sets_the_copy_threads_for_a_block_and_gives_the_same_numbers():
    x = fast.nhwc(normal((16, 3, 20, 20), 3).astype(np.float32))
    before = cpu.threads()
    with cpu.using_threads(1):
        assert cpu.threads() == 1 and cpu.batch_parts(16) == [slice(0, 16)]
        one = fast.im2col(x, (4, 4), (2, 2), (1, 1)).copy()
    with cpu.using_threads(3):
        assert len(cpu.batch_parts(16)) == 3
        three = fast.im2col(x, (4, 4), (2, 2), (1, 1))
    assert cpu.threads() == before
    np.testing.assert_array_equal(one, three)
    with pytest.raises(ValueError, match="at least 1 thread"):
        with cpu.using_threads(0):
            pass


def test_a_bad_thread_count_in_the_environment_is_one_error_line(tmp_path):
    import os
    import subprocess
    import sys
    command = [sys.executable, "-m", "tinygan", "generate", "--seeds", "1", "--out", str(tmp_path / "f.png")]
    done = subprocess.run(command, env=dict(os.environ, TINYGAN_THREADS="two"), capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr and not (tmp_path / "f.png").exists()
    assert done.stderr.strip().splitlines() == [
        "tinygan generate: error: TINYGAN_THREADS='two' is not a number of threads; expected a whole number such as 2"]


def test_a_program_restarts_once_with_openblas_idle_threads_asleep(tmp_path):
    """blas.restart_with_blas_threads_asleep re-runs the program with OPENBLAS_THREAD_TIMEOUT set (once: the
    restarted process has it), keeps what was printed before, and leaves a value the user set alone."""
    import os
    import subprocess
    import sys
    code = ("import os; from tinygan import blas; print('start', os.environ.get('OPENBLAS_THREAD_TIMEOUT')); "
            "blas.restart_with_blas_threads_asleep(); print('running', os.environ.get('OPENBLAS_THREAD_TIMEOUT'))")
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    run = lambda env: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,  # noqa: E731
                                     text=True, check=True).stdout.split("\n")
    if sys.version_info < (3, 10) or os.name != "posix":
        assert run(environment)[:2] == ["start None", "running None"]       # no sys.orig_argv: runs as it is
        return
    assert run(environment)[:3] == ["start None", "start 4", "running 4"]
    assert run(dict(environment, OPENBLAS_THREAD_TIMEOUT="28"))[:2] == ["start 28", "running 28"]


def test_only_the_train_command_restarts(monkeypatch):
    from tinygan import __main__ as program
    restarts = []
    monkeypatch.setattr(program, "restart_with_blas_threads_asleep", lambda: restarts.append(1))
    for argv, want in ((["tinygan", "generate", "--help"], []), (["tinygan", "train", "--help"], [1])):
        monkeypatch.setattr("sys.argv", argv)
        with pytest.raises(SystemExit):
            program.main()
        assert restarts == want


@pytest.mark.parametrize("make", [lambda: nn.LeakyReLU(0.2), nn.ReLU], ids=["LeakyReLU", "ReLU"])
def test_activations_take_a_0d_array_on_both_paths(make):
    for value in (-1.5, 0.0, 2.0):
        x, upstream = np.array(value, np.float32), np.array(3.0, np.float32)
        results = both_paths(make, x, upstream, np.float32)
        assert_paths_agree(results, np.float32)


@pytest.mark.parametrize("shape", [(4096, 64, 48), (64, 2048, 1024), (333, 700, 100)], ids=str)
def test_a_large_product_split_over_the_threads_is_the_product(shape, monkeypatch):
    """fast.gemm splits a large product by rows (or by columns when it is wider than tall) over two threads, each
    part computed by OpenBLAS on one thread (tinygan.blas.one_thread); within float32 rounding it is a @ b, into
    ``out`` too. Where OpenBLAS is held to one thread (the suite's conftest does so) that limit stands."""
    from tinygan import blas
    functions = blas.thread_functions()
    if functions is None:
        pytest.skip("no OpenBLAS in this process: gemm leaves products to the BLAS NumPy has")
    set_threads, get_threads = functions
    m, k, n = shape
    rng = np.random.default_rng(m)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = 8 * np.finfo(np.float32).eps * np.sqrt(k) * (np.abs(a).astype(np.float64) @ np.abs(b)).max()
    parts = []
    monkeypatch.setattr(fast_gemm, "over_batch", lambda x, work, items: parts.append(items) or cpu.over_batch(
        x, work, items))
    held = get_threads()
    set_threads(2)                                     # what OpenBLAS has where nobody holds it to one thread
    try:
        with cpu.using_threads(2):
            product = fast.gemm(a, b)
            into = np.full((m, n), np.nan, np.float32)
            assert fast.gemm(np.asfortranarray(a), b, out=into) is into
            assert get_threads() == 2                  # put back after each product
            with blas.one_thread() as single:
                assert single and get_threads() == 1
    finally:
        set_threads(held)
    assert parts == [max(m, n)] * 2                    # split both times, along the longer side
    assert np.abs(product - exact).max() <= bound and np.abs(into - exact).max() <= bound
    set_threads(1)
    try:
        with cpu.using_threads(2), blas.one_thread() as single:
            assert not single and get_threads() == 1    # a user's limit of one thread stands
    finally:
        set_threads(held)


def test_a_small_product_runs_on_the_calling_thread_with_openblas_asleep(monkeypatch):
    """D's last layer (one logit per image, 1M multiply-adds at batch 128) is too small to split: gemm runs it inside
    blas.one_thread, so that OpenBLAS's workers do not wake for it and then spin beside the copies that follow
    (what made a plain Python process 6% slower than `tinygan train`)."""
    import contextlib
    entered, real = [], fast_gemm.one_thread

    @contextlib.contextmanager
    def recording(most=2):
        with real(most=most) as single:
            entered.append(most)
            yield single
    monkeypatch.setattr(fast_gemm, "one_thread", recording)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((128, 8192), dtype=np.float32), rng.standard_normal((8192, 1), dtype=np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = 8 * np.finfo(np.float32).eps * np.sqrt(8192) * (np.abs(a).astype(np.float64) @ np.abs(b)).max()
    with cpu.using_threads(2):
        assert np.abs(fast.gemm(a, b) - exact).max() <= bound
    assert entered == [2]
    with cpu.using_threads(1):
        assert np.abs(fast.gemm(a, b) - exact).max() <= bound            # one thread: NumPy's own
    assert entered == [2]


def test_a_product_into_one_of_its_inputs_is_not_split():
    c = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
    expected = c @ c
    with cpu.using_threads(2):
        np.testing.assert_array_equal(fast.gemm(c, c, out=c), expected)   # NumPy's own, which copies first
