"""Layers: numerical gradient checks, properties (adjointness, BatchNorm statistics, dtypes),
gradient bookkeeping, state dicts, input errors, and CuPy against NumPy."""
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tinygan import backend, nn
from tinygan.gradcheck import check_module, relative_error
from tinygan.nn import reference as F
from tinygan.nn.naive import naive_conv2d, naive_conv_transpose2d

from strategies import conv_cases, conv_transpose_cases

TOL = 1e-6   # float64 central differences: around 1e-8 when right, far above 1e-6 when wrong


def host_normal(shape, seed=0, dtype=np.float64):
    """Test data from its own stream: with the seed alone it would equal check_module's upstream
    gradient, and for BatchNorm an upstream equal to the input lies almost in the null space of dL/dx."""
    return np.random.default_rng([seed, 7919]).normal(size=shape).astype(dtype)


def away_from_zero(shape, seed=0, margin=0.05):
    """Normal values pushed out of (-margin, margin): central differences must not straddle a kink."""
    x = host_normal(shape, seed)
    return x + np.where(x >= 0, margin, -margin)


def assert_gradients_ok(errors):
    bad = {k: e for k, e in errors.items() if not e <= TOL}
    assert not bad, f"relative errors above {TOL}: {bad} (all: {errors})"


def make_conv(c, seed=0):
    return nn.Conv2d(c["cin"], c["cout"], c["kernel"], c["stride"], c["padding"], bias=c["bias"], rng=seed)


def make_conv_transpose(c, seed=0):
    return nn.ConvTranspose2d(c["cin"], c["cout"], c["kernel"], c["stride"], c["padding"], c["output_padding"],
                              bias=c["bias"], rng=seed)


# --- gradient checks (on both paths) --------------------------------------------------------------
@pytest.mark.parametrize("path", nn.PATHS)
@settings(deadline=None, max_examples=80)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16))
@example(c={"n": 2, "cin": 2, "cout": 1, "kernel": (1, 1), "stride": (1, 1), "padding": (0, 0), "hw": (1, 2),
            "bias": False}, seed=0)      # a 1x1 conv of NCHW memory: the fast path's dx was never written
def test_conv2d_gradcheck(path, c, seed):
    with nn.using_path(path):
        conv = make_conv(c, seed)
        errors = check_module(conv, host_normal((c["n"], c["cin"]) + c["hw"], seed), seed=seed)
        assert set(errors) == {"input", "weight"} | ({"bias"} if c["bias"] else set())
        assert_gradients_ok(errors)


@pytest.mark.parametrize("path", nn.PATHS)
@settings(deadline=None, max_examples=80)
@given(c=conv_transpose_cases(), seed=st.integers(0, 2 ** 16))
def test_conv_transpose2d_gradcheck(path, c, seed):
    with nn.using_path(path):
        convt = make_conv_transpose(c, seed)
        errors = check_module(convt, host_normal((c["n"], c["cin"]) + c["hw"], seed), seed=seed)
        assert set(errors) == {"input", "weight"} | ({"bias"} if c["bias"] else set())
        assert_gradients_ok(errors)


def random_running_stats(bn, seed):
    rng = np.random.default_rng(seed)
    bn.load_state_dict({"running_mean": rng.normal(size=bn.num_features),
                        "running_var": rng.uniform(0.5, 2.0, size=bn.num_features)}, strict=False)


def random_affine(bn, seed):
    rng = np.random.default_rng(seed + 1)
    bn.load_state_dict({"weight": rng.uniform(0.5, 1.5, bn.num_features),
                        "bias": rng.normal(size=bn.num_features)}, strict=False)


@pytest.mark.parametrize("path", nn.PATHS)
@settings(deadline=None, max_examples=50)
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 3), w=st.integers(1, 3),
       training=st.booleans(), affine=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_batchnorm2d_gradcheck(path, n, c, h, w, training, affine, seed):
    with nn.using_path(path):
        assume(n * h * w >= 3 or not training)   # with 2 values per channel dL/dx is O(eps): nothing to check
        bn = nn.BatchNorm2d(c, affine=affine)
        random_running_stats(bn, seed)
        if affine:
            random_affine(bn, seed)
        bn.train(training)
        errors = check_module(bn, host_normal((n, c, h, w), seed) * 2 + 0.5, seed=seed)
        assert_gradients_ok(errors)


@pytest.mark.parametrize("path", nn.PATHS)
@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.LeakyReLU(), nn.Tanh(), nn.Sigmoid()],
                         ids=repr)
@settings(deadline=None, max_examples=10)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), seed=st.integers(0, 2 ** 16))
def test_activation_gradcheck(path, layer, shape, seed):
    # |x| <= 3: past it tanh' and sigmoid' fall below 1e-2, and central differences of a loss of size ~1 carry a
    # rounding error of ~1e-16 / h = 1e-10, which is no longer small against derivatives of that size.
    x = np.clip(away_from_zero(shape, seed) * 3, -3, 3)
    with nn.using_path(path):
        assert_gradients_ok(check_module(layer, x, seed=seed))


@settings(deadline=None, max_examples=25)
@given(n=st.integers(1, 4), fin=st.integers(1, 6), fout=st.integers(1, 6), bias=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_linear_gradcheck(n, fin, fout, bias, seed):
    linear = nn.Linear(fin, fout, bias=bias, rng=seed)
    errors = check_module(linear, host_normal((n, fin), seed), seed=seed)
    assert set(errors) == {"input", "weight"} | ({"bias"} if bias else set())
    assert_gradients_ok(errors)


def test_flatten_and_reshape_gradcheck():
    assert_gradients_ok(check_module(nn.Flatten(), host_normal((2, 3, 2, 2))))
    assert_gradients_ok(check_module(nn.Reshape(3, 2, 2), host_normal((2, 12))))
    assert_gradients_ok(check_module(nn.Reshape(-1, 2), host_normal((2, 3, 4))))


def tiny_discriminator(seed=0):
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=seed), nn.BatchNorm2d(3),
                         nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(3 * 3 * 3, 1, rng=seed + 1), nn.Sigmoid())


def tiny_generator(seed=0):
    return nn.Sequential(nn.Linear(4, 2 * 2 * 2, bias=False, rng=seed), nn.Reshape(2, 2, 2),
                         nn.ConvTranspose2d(2, 3, (4, 3), stride=(2, 1), padding=1, rng=seed + 1),
                         nn.BatchNorm2d(3), nn.ReLU(),
                         nn.ConvTranspose2d(3, 1, 3, stride=2, padding=1, output_padding=1, bias=False,
                                            rng=seed + 2), nn.Tanh())


@pytest.mark.parametrize("path", nn.PATHS)
@pytest.mark.parametrize("make, shape", [(tiny_discriminator, (3, 2, 5, 5)), (tiny_generator, (3, 4))],
                         ids=["discriminator", "generator"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sequential_gradcheck(path, make, shape, seed):
    with nn.using_path(path):
        model = make(seed)
        errors = check_module(model, host_normal(shape, seed), seed=seed)
        assert set(errors) == {"input"} | {k for k, _ in model.named_parameters()}
        assert_gradients_ok(errors)


@pytest.mark.parametrize("path", nn.PATHS)
def test_sequential_gradcheck_in_eval_mode(path):
    with nn.using_path(path):
        model = tiny_discriminator(3)
        random_running_stats(model[1], 3)
        assert_gradients_ok(check_module(model.eval(), host_normal((2, 2, 5, 5), 3), seed=3))


# --- the checker can fail ------------------------------------------------------------------------
class TanhWithWrongSlope(nn.Tanh):
    def backward(self, grad_output, need_input_grad=True):
        y, self.cache = self.cache, None
        return grad_output * (1 - y)          # should be 1 - y^2


class LinearWithTransposedInputGrad(nn.Linear):
    """A square Linear whose backward uses W^T instead of W: shapes fit, numbers don't."""

    def backward(self, grad_output, need_input_grad=True):
        super().backward(grad_output, need_input_grad=False)
        return grad_output @ self.weight.data.T


class ConvWithScaledWeightGrad(nn.Conv2d):
    def backward(self, grad_output, need_input_grad=True):
        dx = super().backward(grad_output, need_input_grad)
        self.weight.grad *= 1.001                 # a 0.1 % error is still caught
        return dx


def test_gradcheck_catches_wrong_backward():
    errors = check_module(TanhWithWrongSlope(), host_normal((3, 4)))
    assert errors["input"] > 1e-2, errors
    errors = check_module(LinearWithTransposedInputGrad(4, 4, rng=0), host_normal((2, 4)))
    assert errors["input"] > 1e-2 and errors["weight"] <= TOL, errors
    errors = check_module(ConvWithScaledWeightGrad(2, 2, 3, padding=1, rng=0), host_normal((2, 2, 4, 4)))
    assert errors["weight"] > 1e-5 and errors["input"] <= TOL, errors


def test_relative_error():
    assert relative_error(np.ones(3), np.ones(3)) == 0.0
    assert relative_error(np.zeros(3), np.full(3, 1e-9)) == 0.0          # both numerically zero
    assert relative_error(np.ones(3), -np.ones(3)) == pytest.approx(1.0)
    assert relative_error(2.0, 1.0) == pytest.approx(1 / 3)


# --- forward against the naive loops of tinygan.nn.naive (no torch needed) ---------------------
@pytest.mark.parametrize("path", nn.PATHS)
@settings(deadline=None, max_examples=40)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16))
def test_conv2d_forward_matches_naive_loop(path, c, seed):
    with nn.using_path(path):
        conv = make_conv(c, seed).astype(np.float64)
        x = host_normal((c["n"], c["cin"]) + c["hw"], seed)
        bias = None if conv.bias is None else conv.bias.data
        np.testing.assert_allclose(conv(x), naive_conv2d(x, conv.weight.data, bias, c["stride"], c["padding"]),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", nn.PATHS)
@settings(deadline=None, max_examples=40)
@given(c=conv_transpose_cases(), seed=st.integers(0, 2 ** 16))
def test_conv_transpose2d_forward_matches_naive_loop(path, c, seed):
    with nn.using_path(path):
        convt = make_conv_transpose(c, seed).astype(np.float64)
        x = host_normal((c["n"], c["cin"]) + c["hw"], seed)
        bias = None if convt.bias is None else convt.bias.data
        want = naive_conv_transpose2d(x, convt.weight.data, bias, c["stride"], c["padding"], c["output_padding"])
        np.testing.assert_allclose(convt(x), want, rtol=1e-12, atol=1e-12)


# --- properties --------------------------------------------------------------------------------
def inner(a, b):
    return float((np.asarray(a, np.float64) * np.asarray(b, np.float64)).sum())


@pytest.mark.parametrize("path", nn.PATHS)
@settings(deadline=None, max_examples=80)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16))
def test_conv_transpose_is_the_adjoint_of_conv(path, c, seed):
    """<conv(x), y> == <x, convT(y)> for the same weight, with no bias."""
    with nn.using_path(path):
        h, w = c["hw"]
        (kh, kw), (sh, sw), (ph, pw) = c["kernel"], c["stride"], c["padding"]
        conv = nn.Conv2d(c["cin"], c["cout"], (kh, kw), (sh, sw), (ph, pw), bias=False, rng=seed).astype(np.float64)
        # output_padding recovers the rows and columns that the conv's stride dropped
        output_padding = ((h + 2 * ph - kh) % sh, (w + 2 * pw - kw) % sw)
        convt = nn.ConvTranspose2d(c["cout"], c["cin"], (kh, kw), (sh, sw), (ph, pw), output_padding,
                                   bias=False).astype(np.float64)
        convt.weight.data[...] = conv.weight.data
        x = host_normal((c["n"], c["cin"], h, w), seed)
        conv_x = conv(x)
        y = host_normal(conv_x.shape, seed + 1)
        convt_y = convt(y)
        assert convt_y.shape == x.shape
        lhs, rhs = inner(conv_x, y), inner(x, convt_y)
        assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
        # and the conv's input gradient *is* the transposed conv
        np.testing.assert_allclose(conv.backward(y), convt_y, rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=80)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16))
def test_im2col_col2im_are_adjoint(c, seed):
    """<im2col(x), cols> == <x, col2im(cols)>: the reference path's NCHW unfold and fold."""
    h, w = c["hw"]
    x = host_normal((c["n"], c["cin"], h, w), seed)
    unfolded = F.im2col(x, c["kernel"], c["stride"], c["padding"])
    ho = F.conv_output_size(h, c["kernel"][0], c["stride"][0], c["padding"][0])
    wo = F.conv_output_size(w, c["kernel"][1], c["stride"][1], c["padding"][1])
    assert unfolded.shape == (c["n"], c["cin"]) + c["kernel"] + (ho, wo)
    cols = host_normal(unfolded.shape, seed + 1)
    folded = F.col2im(cols, (h, w), c["stride"], c["padding"])
    assert folded.shape == x.shape
    assert inner(unfolded, cols) == pytest.approx(inner(x, folded), rel=1e-10, abs=1e-10)


def test_batchnorm_eval_uses_running_statistics():
    bn = nn.BatchNorm2d(3, eps=1e-3).astype(np.float64)
    random_running_stats(bn, 0)
    random_affine(bn, 0)
    before = {k: v.copy() for k, v in bn.state_dict().items()}
    x = host_normal((4, 3, 2, 5), 1) * 3 + 2
    y = bn.eval()(x)
    rm, rv = before["running_mean"].reshape(1, -1, 1, 1), before["running_var"].reshape(1, -1, 1, 1)
    gamma, beta = before["weight"].reshape(1, -1, 1, 1), before["bias"].reshape(1, -1, 1, 1)
    np.testing.assert_allclose(y, gamma * (x - rm) / np.sqrt(rv + 1e-3) + beta, rtol=1e-12, atol=1e-12)
    # a single sample is fine in eval mode, and gives the same per-sample result
    np.testing.assert_allclose(bn(x[:1]), y[:1], rtol=1e-12, atol=1e-12)
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=f"eval mode changed {key}")


@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batchnorm_running_statistics_follow_pytorch(momentum):
    """running <- (1 - m) running + m stat, with the *unbiased* batch variance (ddof=1)."""
    bn = nn.BatchNorm2d(2, momentum=momentum).astype(np.float64)
    random_running_stats(bn, 5)
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    for step in range(2):
        x = host_normal((3, 2, 2, 3), step) * (step + 1) + step
        y = bn(x)
        rm = (1 - momentum) * rm + momentum * x.mean(axis=(0, 2, 3))
        rv = (1 - momentum) * rv + momentum * x.var(axis=(0, 2, 3), ddof=1)
        np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12)
        # train mode normalises with the *biased* batch variance
        xhat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
        np.testing.assert_allclose(y, xhat, rtol=1e-10, atol=1e-12)


# --- dtypes ------------------------------------------------------------------------------------
def batchnorm_eval(seed=0):
    bn = nn.BatchNorm2d(3)
    random_running_stats(bn, seed)
    return bn.eval()


# (name, factory, input shape): one per layer kind, in the training dtype float32
LAYER_CASES = [
    ("conv", lambda: nn.Conv2d(5, 4, (3, 2), stride=(2, 1), padding=1, rng=0), (2, 5, 6, 5)),
    ("conv_1x1", lambda: nn.Conv2d(3, 2, 1, rng=0), (2, 3, 3, 3)),
    ("conv_transpose", lambda: nn.ConvTranspose2d(3, 4, 4, 2, 1, output_padding=1, rng=0), (2, 3, 3, 3)),
    ("conv_transpose_rgb", lambda: nn.ConvTranspose2d(4, 3, 4, 2, 1, rng=0), (2, 4, 3, 3)),
    ("batchnorm_train", lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    ("batchnorm_eval", batchnorm_eval, (2, 3, 4, 4)),
    ("relu", nn.ReLU, (2, 3, 4, 4)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (2, 3, 4, 4)),
    ("tanh", nn.Tanh, (2, 3, 4, 4)),
    ("sigmoid", nn.Sigmoid, (2, 3, 4, 4)),
    ("linear", lambda: nn.Linear(12, 5, rng=0), (2, 12)),
    ("flatten", nn.Flatten, (2, 3, 2, 2)),
    ("reshape", lambda: nn.Reshape(3, 4), (2, 12)),
    ("discriminator", tiny_discriminator, (3, 2, 5, 5)),
    ("generator", tiny_generator, (3, 4)),
]
LAYER_IDS = [case[0] for case in LAYER_CASES]


def run_forward_backward(module, x, upstream_seed=1):
    y = module(x)
    upstream = backend.to_device(host_normal(y.shape, upstream_seed, y.dtype))
    dx = module.backward(upstream)
    return y, dx


@pytest.mark.parametrize("name, make, shape", LAYER_CASES, ids=LAYER_IDS)
def test_float32_stays_float32(name, make, shape):
    module = make()
    x = host_normal(shape, 0, np.float32)
    y, dx = run_forward_backward(module, x)
    assert y.dtype == np.float32, f"{name}: output is {y.dtype}"
    assert dx.dtype == np.float32 and dx.shape == x.shape, f"{name}: dL/dx is {dx.dtype} {dx.shape}"
    for key, p in module.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, f"{name}.{key}: {p.grad.dtype}"
        assert p.grad.shape == p.data.shape
    for key, b in module.named_buffers():
        assert b.dtype == np.float32, f"{name}.{key}: {b.dtype}"


@pytest.mark.parametrize("make, shape", [(lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)), (nn.Sigmoid, (2, 5)),
                                         (nn.Tanh, (2, 5))], ids=["batchnorm", "sigmoid", "tanh"])
def test_float64_stays_float64(make, shape):
    module = make().astype(np.float64)
    y, dx = run_forward_backward(module, host_normal(shape))
    assert y.dtype == dx.dtype == np.float64


# --- gradient bookkeeping ----------------------------------------------------------------------
PARAMETRIC = [case for case in LAYER_CASES if case[0] in
              ("conv", "conv_1x1", "conv_transpose", "batchnorm_train", "batchnorm_eval", "linear",
               "discriminator", "generator")]
PARAMETRIC_IDS = [case[0] for case in PARAMETRIC]


def grads_of(module):
    return {k: None if p.grad is None else p.grad.copy() for k, p in module.named_parameters()}


@pytest.mark.parametrize("name, make, shape", PARAMETRIC, ids=PARAMETRIC_IDS)
def test_need_input_grad_false_still_accumulates_parameter_grads(name, make, shape):
    module = make().astype(np.float64)
    x = host_normal(shape)
    run_forward_backward(module, x)
    want = grads_of(module)
    module.zero_grad()
    y = module(x)
    assert module.backward(host_normal(y.shape, 1), need_input_grad=False) is None
    got = grads_of(module)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name, make, shape", PARAMETRIC, ids=PARAMETRIC_IDS)
def test_requires_grad_false_skips_parameter_grads(name, make, shape):
    module = make().astype(np.float64)
    x = host_normal(shape)
    _, want_dx = run_forward_backward(module, x)
    module.zero_grad()
    assert module.requires_grad_(False) is module
    _, dx = run_forward_backward(module, x)
    assert all(p.grad is None for p in module.parameters())
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)   # dL/dx is unaffected
    module.requires_grad_(True)
    run_forward_backward(module, x)
    assert all(p.grad is not None for p in module.parameters())


def test_frozen_turns_gradients_off_in_its_block_and_puts_each_flag_back():
    from tinygan.dcgan import Discriminator
    D = Discriminator(ndf=4, rng=0)
    flags = [i % 2 == 0 for i in range(len(D.parameters()))]        # a mix, as a partly frozen model has
    for p, flag in zip(D.parameters(), flags):
        p.requires_grad = flag
    with pytest.raises(RuntimeError), D.frozen() as inside:
        assert inside is D and not any(p.requires_grad for p in D.parameters())
        raise RuntimeError("the flags come back after an error too")
    assert [p.requires_grad for p in D.parameters()] == flags


@pytest.mark.parametrize("name, make, shape", PARAMETRIC, ids=PARAMETRIC_IDS)
def test_gradients_accumulate_over_two_backward_passes(name, make, shape):
    """D sees a real batch, then a fake one: dL/dw must be the sum of the two."""
    module = make().astype(np.float64)
    first, second = host_normal(shape, 10), host_normal(shape, 11)
    run_forward_backward(module, first, 20)
    g_first = grads_of(module)
    module.zero_grad()
    run_forward_backward(module, second, 21)
    g_second = grads_of(module)
    module.zero_grad()
    run_forward_backward(module, first, 20)
    run_forward_backward(module, second, 21)
    for key, total in grads_of(module).items():
        np.testing.assert_allclose(total, g_first[key] + g_second[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_zero_grad_clears_every_parameter():
    model = tiny_discriminator()
    run_forward_backward(model, host_normal((2, 2, 5, 5), 0, np.float32))
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_and_eval_switch_every_submodule():
    model = tiny_discriminator()
    assert model.eval() is model and not any(m.training for m in model.modules())
    assert all(m.training for m in model.train().modules())


# --- state dicts -------------------------------------------------------------------------------
def test_sequential_state_dict_names_and_round_trip():
    model = tiny_discriminator(0)
    state = model.state_dict()
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "4.weight", "4.bias"}
    assert state["0.weight"].shape == (3, 2, 3, 3) and state["4.weight"].shape == (1, 27)
    assert all(isinstance(v, np.ndarray) for v in state.values())

    x = host_normal((2, 2, 5, 5), 0, np.float32)
    model(x)                                             # move the running statistics off their defaults
    state = {k: v.copy() for k, v in model.state_dict().items()}
    other = tiny_discriminator(99)
    assert other.load_state_dict(state) is other
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
    np.testing.assert_array_equal(other.eval()(x), model.eval()(x))


def test_load_state_dict_rejects_missing_unexpected_and_misshapen_keys():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, rng=0), nn.BatchNorm2d(3))
    state = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(ValueError, match="1.running_var"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match="2.weight"):
        model.load_state_dict(dict(state, **{"2.weight": np.zeros(3)}))
    with pytest.raises(ValueError) as info:
        model.load_state_dict(dict(state, **{"0.weight": np.zeros((3, 2, 3, 2), np.float32)}))
    assert "0.weight" in str(info.value) and "(3, 2, 3, 2)" in str(info.value) and "(3, 2, 3, 3)" in str(info.value)
    model.load_state_dict(dict(state, **{"1.num_batches_tracked": np.array(4)}))   # PyTorch's extra is ignored


def test_astype_casts_parameters_and_buffers():
    model = tiny_discriminator().astype(np.float64)
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    assert all(b.dtype == np.float64 for _, b in model.named_buffers())
    model.astype(np.float32)
    assert all(v.dtype == np.float32 for v in model.state_dict().values())


# --- bad input ---------------------------------------------------------------------------------
def f32(*shape):
    return np.zeros(shape, np.float32)


BAD_INPUTS = [
    # (layer, input, error, substrings the message must contain)
    (lambda: nn.Conv2d(3, 8, 3), f32(2, 4, 8, 8), ValueError, ["Conv2d", "(N, 3, H, W)", "(2, 4, 8, 8)"]),
    (lambda: nn.Conv2d(3, 8, 3), f32(3, 8, 8), ValueError, ["Conv2d", "(N, 3, H, W)", "(3, 8, 8)"]),
    (lambda: nn.Conv2d(3, 8, 3), np.zeros((2, 3, 8, 8), np.int64), TypeError, ["Conv2d", "int64"]),
    (lambda: nn.Conv2d(3, 8, 3), np.zeros((2, 3, 8, 8)), TypeError, ["Conv2d", "float64", "float32"]),
    (lambda: nn.Conv2d(3, 8, 3), [[0.0]], TypeError, ["Conv2d", "list"]),
    (lambda: nn.Conv2d(3, 8, 3), f32(2, 3, 2, 8), ValueError, ["Conv2d", "2x8", "kernel"]),
    (lambda: nn.ConvTranspose2d(4, 2, 4, 2, 1), f32(2, 3, 5, 5), ValueError,
     ["ConvTranspose2d", "(N, 4, H, W)", "(2, 3, 5, 5)"]),
    (lambda: nn.ConvTranspose2d(4, 2, 4, 2, 1), f32(2, 4, 5), ValueError,
     ["ConvTranspose2d", "(N, 4, H, W)", "(2, 4, 5)"]),
    (lambda: nn.ConvTranspose2d(4, 2, 4, 2, 1), np.zeros((2, 4, 5, 5)), TypeError,
     ["ConvTranspose2d", "float64", "float32"]),
    (lambda: nn.BatchNorm2d(3), f32(2, 5, 4, 4), ValueError, ["BatchNorm2d", "(N, 3, H, W)", "(2, 5, 4, 4)"]),
    (lambda: nn.BatchNorm2d(3), f32(2, 3), ValueError, ["BatchNorm2d", "(N, 3, H, W)", "(2, 3)"]),
    (lambda: nn.BatchNorm2d(3), np.zeros((2, 3, 4, 4), np.int32), TypeError, ["BatchNorm2d", "int32"]),
    (lambda: nn.BatchNorm2d(3), f32(1, 3, 1, 1), ValueError, ["BatchNorm2d", "(1, 3, 1, 1)"]),
    (lambda: nn.Linear(12, 5), f32(2, 10), ValueError, ["Linear", "(N, 12)", "(2, 10)"]),
    (lambda: nn.Linear(12, 5), f32(2, 3, 4), ValueError, ["Linear", "(N, 12)", "(2, 3, 4)"]),
    (lambda: nn.Linear(12, 5), np.zeros((2, 12)), TypeError, ["Linear", "float64", "float32"]),
    (lambda: nn.Reshape(3, 4), f32(2, 10), ValueError, ["Reshape", "(2, 10)", "(N, 3, 4)"]),
    (lambda: nn.Reshape(-1, 5), f32(2, 12), ValueError, ["Reshape", "(2, 12)", "(N, -1, 5)"]),
    (lambda: nn.Flatten(), (1.0, 2.0), TypeError, ["Flatten", "tuple"]),
    (lambda: nn.ReLU(), [1.0, -1.0], TypeError, ["ReLU", "list"]),
    (lambda: nn.LeakyReLU(0.2), np.zeros(3, np.int64), TypeError, ["LeakyReLU", "int64"]),
    (lambda: nn.Tanh(), np.zeros(3, bool), TypeError, ["Tanh", "bool"]),
    (lambda: nn.Sigmoid(), 0.5, TypeError, ["Sigmoid", "float"]),
    (lambda: tiny_discriminator(), f32(2, 3, 5, 5), ValueError, ["Conv2d", "(N, 2, H, W)", "(2, 3, 5, 5)"]),
]


@pytest.mark.parametrize("make, bad, error, words", BAD_INPUTS,
                         ids=[f"{i}-{words[0]}" for i, (_, _, _, words) in enumerate(BAD_INPUTS)])
def test_bad_input_names_layer_and_what_was_expected(make, bad, error, words):
    with pytest.raises(error) as info:
        make()(bad)
    missing = [w for w in words if w not in str(info.value)]
    assert not missing, f"message {str(info.value)!r} lacks {missing}"


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Conv2d(0, 3, 3), ["Conv2d", "in=0"]),
    (lambda: nn.Conv2d(3, 3, 3, stride=0), ["Conv2d", "stride=0"]),
    (lambda: nn.Conv2d(3, 3, (1, 2, 3)), ["kernel_size", "(1, 2, 3)"]),
    (lambda: nn.ConvTranspose2d(3, 3, 4, stride=2, output_padding=2), ["ConvTranspose2d", "output_padding"]),
    (lambda: nn.ConvTranspose2d(3, 3, 4, padding=-1), ["ConvTranspose2d", "padding=-1"]),
    (lambda: nn.BatchNorm2d(0), ["BatchNorm2d", "0"]),
    (lambda: nn.Linear(0, 3), ["Linear", "0"]),
], ids=["conv-channels", "conv-stride", "kernel-pair", "convT-output-padding", "convT-padding", "bn", "linear"])
def test_bad_hyper_parameters_raise_value_error(make, words):
    with pytest.raises(ValueError) as info:
        make()
    assert all(w in str(info.value) for w in words), str(info.value)


def test_dcgan_init_is_seeded_and_keeps_dtype():
    from tinygan.init import dcgan_init
    model = nn.Sequential(nn.ConvTranspose2d(8, 16, 4, rng=0), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 32, 4, 2, 1, rng=1))
    assert dcgan_init(model, 5) is model
    again = dcgan_init(nn.Sequential(nn.ConvTranspose2d(8, 16, 4, rng=9), nn.BatchNorm2d(16), nn.ReLU(),
                                     nn.Conv2d(16, 32, 4, 2, 1, rng=9)), backend.default_rng(5))
    state, state_again = model.state_dict(), again.state_dict()
    for key, value in state.items():
        assert value.dtype == np.float32 and value.tobytes() == state_again[key].tobytes(), key
    for key in ("0.weight", "3.weight"):                      # N(0, 0.02)
        assert abs(state[key].mean()) < 0.003 and state[key].std() == pytest.approx(0.02, rel=0.1), key
    assert state["1.weight"].mean() == pytest.approx(1.0, abs=0.02) and state["1.weight"].std() < 0.04
    for key in ("0.bias", "1.bias", "3.bias"):
        np.testing.assert_array_equal(state[key], 0.0, err_msg=key)


def test_conv_transpose_with_empty_output_raises():
    with pytest.raises(ValueError, match="empty output"):
        nn.ConvTranspose2d(2, 2, 1, padding=1)(f32(1, 2, 1, 1))


# --- CuPy against NumPy (skipped without a GPU) -------------------------------------------------
def forward_backward_on(name, make, shape):
    """Build the layer on the active backend from a fixed host state, run it on fixed host arrays."""
    backend.use("numpy")
    state = {k: v.copy() for k, v in make().state_dict().items()}
    x = host_normal(shape, 0, np.float32)
    results = {}
    for which in ("numpy", "cupy"):
        backend.use(which)
        module = make()
        module.load_state_dict(state)
        y, dx = run_forward_backward(module, backend.to_device(x))
        assert backend.name() == which and backend.get_array_module(y) is backend.xp, name
        results[which] = dict({"output": backend.to_numpy(y), "input_grad": backend.to_numpy(dx)},
                              **{k + ".grad": backend.to_numpy(p.grad) for k, p in module.named_parameters()},
                              **module.state_dict())
    backend.use("numpy")
    return results["numpy"], results["cupy"]


@pytest.mark.gpu
@pytest.mark.parametrize("name, make, shape", LAYER_CASES, ids=LAYER_IDS)
def test_cupy_matches_numpy_forward_and_backward(gpu, name, make, shape):
    on_cpu, on_gpu = forward_backward_on(name, make, shape)
    assert set(on_cpu) == set(on_gpu)
    for key in on_cpu:
        assert on_gpu[key].dtype == on_cpu[key].dtype == np.float32, key
        np.testing.assert_allclose(on_gpu[key], on_cpu[key], rtol=1e-4, atol=1e-5, err_msg=f"{name}: {key}")


@pytest.mark.gpu
def test_gradcheck_runs_on_cupy(gpu):
    backend.use("cupy")
    errors = check_module(nn.Conv2d(2, 3, (3, 2), stride=2, padding=1, rng=0),
                          backend.to_device(host_normal((2, 2, 5, 4))))
    assert_gradients_ok(errors)
