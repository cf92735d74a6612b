"""Same weights, same inputs: tinygan and torch.nn must agree on outputs, gradients, running
statistics, optimiser steps, state-dict names and default initialisation. Skipped without torch."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygan import nn
from tinygan.losses import BCELoss, BCEWithLogitsLoss
from tinygan.nn import reference as F
from tinygan.nn.module import Parameter
from tinygan.optim import SGD, Adam

torch = pytest.importorskip("torch")


def host_normal(shape, seed=0):
    return np.random.default_rng([seed, 31337]).normal(size=shape)


def to_torch(state):
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


def twin(ours, theirs):
    """Copy tinygan's (float64) weights and buffers into the torch module."""
    result = theirs.double().load_state_dict(to_torch(ours.state_dict()), strict=False)
    assert not result.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in result.missing_keys), result.missing_keys
    return theirs


def compare(ours, theirs, x, upstream_seed=1, rtol=1e-10, atol=1e-12):
    """Forward, then backward with the same random upstream; compare y, dL/dx and every dL/dw."""
    y = ours(x)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = theirs(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol, err_msg="output")
    upstream = host_normal(y.shape, upstream_seed)
    dx = ours.backward(upstream)
    yt.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=atol, err_msg="input grad")
    torch_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, torch_params[key].grad.numpy(), rtol=rtol, atol=atol, err_msg=key)


# --- layers ------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw, transposed=False):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    case = dict(cin=draw(st.integers(1, 3)), cout=draw(st.integers(1, 4)), kernel=(kh, kw), stride=(sh, sw),
                padding=(ph, pw), bias=draw(st.booleans()), n=draw(st.integers(1, 2)))
    if transposed:
        case["output_padding"] = (draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1)))
        h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        assume(F.conv_transpose2d_output_size(h, kh, sh, ph, case["output_padding"][0]) >= 1)
        assume(F.conv_transpose2d_output_size(w, kw, sw, pw, case["output_padding"][1]) >= 1)
    else:
        h, w = draw(st.integers(max(1, kh - 2 * ph), 7)), draw(st.integers(max(1, kw - 2 * pw), 7))
    case["hw"] = (h, w)
    return case


@settings(deadline=None, max_examples=50)
@given(c=conv_cases(), seed=st.integers(0, 2 ** 16))
def test_conv2d_matches_torch(c, seed):
    args = (c["cin"], c["cout"], c["kernel"], c["stride"], c["padding"])
    ours = nn.Conv2d(*args, bias=c["bias"], rng=seed).astype(np.float64)
    theirs = twin(ours, torch.nn.Conv2d(*args, bias=c["bias"]))
    compare(ours, theirs, host_normal((c["n"], c["cin"]) + c["hw"], seed))


@settings(deadline=None, max_examples=50)
@given(c=conv_cases(transposed=True), seed=st.integers(0, 2 ** 16))
def test_conv_transpose2d_matches_torch(c, seed):
    args = (c["cin"], c["cout"], c["kernel"], c["stride"], c["padding"], c["output_padding"])
    ours = nn.ConvTranspose2d(*args, bias=c["bias"], rng=seed).astype(np.float64)
    theirs = twin(ours, torch.nn.ConvTranspose2d(*args, bias=c["bias"]))
    compare(ours, theirs, host_normal((c["n"], c["cin"]) + c["hw"], seed))


@pytest.mark.parametrize("ours, theirs, shape", [
    # the DCGAN shapes, scaled down: 4x4 kernels, stride 2, padding 1 (and the first 1x1 -> 4x4 layer)
    (lambda: nn.Conv2d(3, 4, 4, 2, 1, bias=False, rng=0), lambda: torch.nn.Conv2d(3, 4, 4, 2, 1, bias=False),
     (2, 3, 8, 8)),
    (lambda: nn.ConvTranspose2d(5, 4, 4, 1, 0, bias=False, rng=0),
     lambda: torch.nn.ConvTranspose2d(5, 4, 4, 1, 0, bias=False), (2, 5, 1, 1)),
    (lambda: nn.ConvTranspose2d(4, 3, 4, 2, 1, rng=0), lambda: torch.nn.ConvTranspose2d(4, 3, 4, 2, 1),
     (2, 4, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 3, (3, 5), (2, 3), (1, 2), (1, 2), rng=0),
     lambda: torch.nn.ConvTranspose2d(2, 3, (3, 5), (2, 3), (1, 2), (1, 2)), (2, 2, 3, 4)),
], ids=["conv-4x4-s2", "convT-first-layer", "convT-4x4-s2", "convT-rect-output-padding"])
def test_dcgan_shaped_convs_match_torch_in_float32(ours, theirs, shape):
    """float32, as in training: agreement to float32 round-off."""
    ours = ours()
    theirs = theirs()
    theirs.load_state_dict(to_torch(ours.state_dict()))
    x = host_normal(shape).astype(np.float32)
    y = ours(x)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = theirs(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    upstream = host_normal(y.shape, 1).astype(np.float32)
    dx = ours.backward(upstream)
    yt.backward(torch.from_numpy(upstream))
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)


def random_running_stats(bn, seed):
    rng = np.random.default_rng(seed)
    bn.load_state_dict({"running_mean": rng.normal(size=bn.num_features),
                        "running_var": rng.uniform(0.5, 2.0, size=bn.num_features)}, strict=False)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("momentum", [0.1, 0.25])
def test_batchnorm2d_matches_torch_in_train_and_eval(affine, momentum):
    ours = nn.BatchNorm2d(3, momentum=momentum, affine=affine).astype(np.float64)
    random_running_stats(ours, 0)
    if affine:
        ours.load_state_dict({"weight": np.array([0.5, 1.5, 1.0]), "bias": np.array([0.1, -0.2, 0.3])},
                             strict=False)
    theirs = twin(ours, torch.nn.BatchNorm2d(3, momentum=momentum, affine=affine))
    for step in range(2):                                   # train: batch statistics, then running ones
        compare(ours, theirs, host_normal((4, 3, 3, 2), step) * 2 + 1, upstream_seed=step + 10)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
        for p in list(ours.parameters()) + list(theirs.parameters()):
            p.grad = None
    ours.eval()
    theirs.eval()
    compare(ours, theirs, host_normal((2, 3, 2, 2), 5) * 2 + 1, upstream_seed=11)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("ours, theirs", [(lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
                                          (nn.LeakyReLU, torch.nn.LeakyReLU), (nn.ReLU, torch.nn.ReLU),
                                          (nn.Tanh, torch.nn.Tanh), (nn.Sigmoid, torch.nn.Sigmoid)],
                         ids=["leaky-0.2", "leaky-default", "relu", "tanh", "sigmoid"])
def test_activations_match_torch(ours, theirs):
    x = host_normal((2, 3, 4, 4)) * 4
    x[0, 0, 0, :2] = 0.0                       # the kink: both take the slope of the negative side
    x[1, 0, 0, :2] = [-800.0, 800.0]           # saturation must not overflow
    with np.errstate(over="raise", invalid="raise"):
        compare(ours(), theirs(), x)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    ours = nn.Linear(7, 3, bias=bias, rng=0).astype(np.float64)
    compare(ours, twin(ours, torch.nn.Linear(7, 3, bias=bias)), host_normal((5, 7)))


def small_discriminator():
    return (nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False, rng=0), nn.LeakyReLU(0.2),
                          nn.Conv2d(4, 8, 4, 2, 1, bias=False, rng=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),
                          nn.Flatten(), nn.Linear(8 * 2 * 2, 1, rng=2)),
            torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, 2, 1, bias=False), torch.nn.LeakyReLU(0.2),
                                torch.nn.Conv2d(4, 8, 4, 2, 1, bias=False), torch.nn.BatchNorm2d(8),
                                torch.nn.LeakyReLU(0.2), torch.nn.Flatten(), torch.nn.Linear(8 * 2 * 2, 1)))


def small_generator():
    return (nn.Sequential(nn.ConvTranspose2d(6, 8, 4, 1, 0, bias=False, rng=0), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False, rng=1), nn.Tanh()),
            torch.nn.Sequential(torch.nn.ConvTranspose2d(6, 8, 4, 1, 0, bias=False), torch.nn.BatchNorm2d(8),
                                torch.nn.ReLU(), torch.nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False),
                                torch.nn.Tanh()))


@pytest.mark.parametrize("make, shape", [(small_discriminator, (3, 3, 8, 8)), (small_generator, (3, 6, 1, 1))],
                         ids=["discriminator", "generator"])
def test_sequential_matches_torch(make, shape):
    ours, theirs = make()
    ours.astype(np.float64)
    twin(ours, theirs)
    compare(ours, theirs, host_normal(shape))
    torch_buffers = dict(theirs.named_buffers())
    for key, value in ours.named_buffers():
        np.testing.assert_allclose(value, torch_buffers[key].numpy(), rtol=1e-12, err_msg=key)


# --- losses ------------------------------------------------------------------------------------
def torch_loss(loss_cls, x, target):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    tt = torch.full_like(xt, float(target)) if np.isscalar(target) else torch.from_numpy(target)
    value = loss_cls()(xt, tt)
    value.backward()
    return value.item(), xt.grad.numpy()


@pytest.mark.parametrize("target", [1.0, 0.0, 0.9, "array"])
def test_bce_with_logits_matches_torch(target):
    logits = host_normal((6, 1)) * 5
    logits[:2, 0] = [-200.0, 200.0]
    if target == "array":
        target = np.random.default_rng(0).uniform(size=logits.shape)
    ours = BCEWithLogitsLoss()
    value = float(ours(logits, target))
    want_value, want_grad = torch_loss(torch.nn.BCEWithLogitsLoss, logits, target)
    assert value == pytest.approx(want_value, rel=1e-12)
    np.testing.assert_allclose(ours.backward(), want_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("target", [1.0, 0.0, "array"])
def test_bce_matches_torch_including_the_clamp_at_0_and_1(target):
    prob = np.array([0.0, 1.0, 1e-30, 1 - 1e-16, 0.3, 0.7, 0.5, 1e-3])
    if target == "array":
        target = np.array([1.0, 0.0, 1.0, 0.0, 0.2, 1.0, 0.0, 1.0])
    ours = BCELoss()
    with np.errstate(divide="ignore"):       # log(0) = -inf before the clamp, as in torch
        value = float(ours(prob, target))
    want_value, want_grad = torch_loss(torch.nn.BCELoss, prob, target)
    assert value == pytest.approx(want_value, rel=1e-12)
    # torch clamps p (1 - p) at its float EPSILON 1e-12: the clamped entries agree to ~1e-8
    np.testing.assert_allclose(ours.backward(), want_grad, rtol=1e-7)


def test_losses_match_torch_in_float32():
    logits = host_normal((8, 1)).astype(np.float32) * 3
    ours = BCEWithLogitsLoss()
    value = ours(logits, 1.0)
    want_value, want_grad = torch_loss(torch.nn.BCEWithLogitsLoss, logits, 1.0)
    assert np.asarray(value).dtype == np.float32
    assert float(value) == pytest.approx(want_value, rel=1e-6)
    np.testing.assert_allclose(ours.backward(), want_grad, rtol=1e-5, atol=1e-8)


# --- optimisers --------------------------------------------------------------------------------
def run_both(make_ours, make_theirs, dtype, n_steps=5):
    rng = np.random.default_rng(42)
    start = [rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(5,)).astype(dtype)]
    steps = [[rng.normal(size=w.shape).astype(dtype) for w in start] for _ in range(n_steps)]
    ours = [Parameter(w.copy()) for w in start]
    theirs = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in start]
    opt, topt = make_ours(ours), make_theirs(theirs)
    history = []
    for grads in steps:
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        history.append([(p.data.copy(), q.detach().numpy().copy()) for p, q in zip(ours, theirs)])
    return history


OPTIMISERS = [
    (lambda ps: Adam(ps, lr=2e-4, betas=(0.5, 0.999)),
     lambda ps: torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999))),
    (lambda ps: Adam(ps, lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1),
     lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1)),
    (lambda ps: SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.5, weight_decay=0.01),
     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, weight_decay=0.01)),
]
OPTIMISER_IDS = ["adam-dcgan", "adam-weight-decay", "sgd", "sgd-momentum", "sgd-momentum-weight-decay"]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("make_ours, make_theirs", OPTIMISERS, ids=OPTIMISER_IDS)
def test_optimisers_match_torch_over_five_steps(make_ours, make_theirs, dtype, rtol):
    for step, pairs in enumerate(run_both(make_ours, make_theirs, dtype)):
        for i, (ours, theirs) in enumerate(pairs):
            assert ours.dtype == dtype
            np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * 1e-2, err_msg=f"step {step} param {i}")


# --- state dicts and initialisation ------------------------------------------------------------
STATE_DICT_PAIRS = [
    (lambda: nn.Conv2d(3, 4, (3, 5), 2, 1), lambda: torch.nn.Conv2d(3, 4, (3, 5), 2, 1)),
    (lambda: nn.Conv2d(3, 4, 4, bias=False), lambda: torch.nn.Conv2d(3, 4, 4, bias=False)),
    (lambda: nn.ConvTranspose2d(3, 4, (4, 2), 2, 1), lambda: torch.nn.ConvTranspose2d(3, 4, (4, 2), 2, 1)),
    (lambda: nn.BatchNorm2d(5), lambda: torch.nn.BatchNorm2d(5)),
    (lambda: nn.BatchNorm2d(5, affine=False), lambda: torch.nn.BatchNorm2d(5, affine=False)),
    (lambda: nn.Linear(6, 2), lambda: torch.nn.Linear(6, 2)),
    (lambda: small_discriminator()[0], lambda: small_discriminator()[1]),
    (lambda: small_generator()[0], lambda: small_generator()[1]),
]
STATE_DICT_IDS = ["conv", "conv-no-bias", "convT", "batchnorm", "batchnorm-no-affine", "linear",
                  "discriminator", "generator"]


@pytest.mark.parametrize("make_ours, make_theirs", STATE_DICT_PAIRS, ids=STATE_DICT_IDS)
def test_state_dict_keys_and_shapes_match_torch(make_ours, make_theirs):
    ours, theirs = make_ours(), make_theirs()
    want = {k: tuple(v.shape) for k, v in theirs.state_dict().items() if not k.endswith("num_batches_tracked")}
    got = {k: v.shape for k, v in ours.state_dict().items()}
    assert got == want
    # and a torch state dict (num_batches_tracked included) loads into tinygan unchanged
    torch_state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict(torch_state)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, torch_state[key], err_msg=key)


def test_sequential_keys_are_numbered_like_torch():
    ours, theirs = small_discriminator()
    assert set(ours.state_dict()) == set(theirs.state_dict()) - {"3.num_batches_tracked"}
    assert {"0.weight", "2.weight", "3.weight", "3.bias", "3.running_mean", "3.running_var", "6.weight",
            "6.bias"} == set(ours.state_dict())


def test_torch_weights_give_torch_outputs():
    """Load a torch model's state dict into tinygan: the same network, the same numbers."""
    torch.manual_seed(0)
    ours, theirs = small_generator()
    theirs.double()
    with torch.no_grad():                                      # move BN statistics off the defaults
        theirs(torch.randn(4, 6, 1, 1, dtype=torch.float64))
    ours.astype(np.float64).load_state_dict({k: v.numpy().copy() for k, v in theirs.state_dict().items()})
    ours.eval()
    theirs.eval()
    z = host_normal((2, 6, 1, 1))
    with torch.no_grad():
        np.testing.assert_allclose(ours(z), theirs(torch.from_numpy(z)).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ours, theirs, fan_in", [
    (lambda: nn.Conv2d(16, 8, (3, 4), rng=0), lambda: torch.nn.Conv2d(16, 8, (3, 4)), 16 * 3 * 4),
    (lambda: nn.ConvTranspose2d(8, 16, (3, 4), rng=0), lambda: torch.nn.ConvTranspose2d(8, 16, (3, 4)), 16 * 3 * 4),
    (lambda: nn.ConvTranspose2d(16, 4, 4, rng=0), lambda: torch.nn.ConvTranspose2d(16, 4, 4), 4 * 4 * 4),
    (lambda: nn.Linear(40, 30, rng=0), lambda: torch.nn.Linear(40, 30), 40),
], ids=["conv", "convT", "convT-fan-from-out-channels", "linear"])
def test_default_initialisation_bounds_match_torch(ours, theirs, fan_in):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, with torch's fan_in."""
    bound = 1 / math.sqrt(fan_in)
    torch.manual_seed(0)
    ours, theirs = ours(), theirs()
    for key, t in theirs.named_parameters():
        mine = dict(ours.named_parameters())[key].data
        assert mine.dtype == np.float32 and mine.shape == tuple(t.shape)
        for values in (mine, t.detach().numpy()):
            assert np.abs(values).max() <= bound * (1 + 1e-6), key
        if mine.size >= 1000:                       # uniform: fills the interval, standard deviation bound/sqrt(3)
            for values in (mine, t.detach().numpy()):
                assert np.abs(values).max() > 0.98 * bound
                assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
