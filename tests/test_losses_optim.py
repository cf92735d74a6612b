"""Losses (gradient checks, numerical stability, errors) and optimisers (update rules, dtypes, state)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan import backend, nn
from tinygan.gradcheck import check_loss
from tinygan.losses import BCELoss, BCEWithLogitsLoss
from tinygan.nn.module import Parameter
from tinygan.optim import SGD, Adam

TOL = 1e-6


def host_rng(seed):
    return np.random.default_rng([seed, 104729])   # its own stream, never check_loss's


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
scalar_targets = st.sampled_from([0, 1, 0.0, 1.0, 0.9, 0.1])


# --- gradient checks ---------------------------------------------------------------------------
@settings(deadline=None, max_examples=20)
@given(shape=shapes, seed=st.integers(0, 2 ** 16), array_target=st.booleans(), scalar=scalar_targets)
def test_bce_with_logits_gradcheck(shape, seed, array_target, scalar):
    rng = host_rng(seed)
    logits = rng.normal(size=shape) * 3
    target = rng.uniform(size=shape) if array_target else scalar
    assert check_loss(BCEWithLogitsLoss(), logits, target, seed=seed) <= TOL


@settings(deadline=None, max_examples=20)
@given(shape=shapes, seed=st.integers(0, 2 ** 16), array_target=st.booleans(), scalar=scalar_targets)
def test_bce_gradcheck(shape, seed, array_target, scalar):
    rng = host_rng(seed)
    prob = rng.uniform(0.05, 0.95, size=shape)
    target = (rng.uniform(size=shape) > 0.5).astype(np.float64) if array_target else scalar
    assert check_loss(BCELoss(), prob, target, seed=seed) <= TOL


class LogitsLossWithoutMean(BCEWithLogitsLoss):
    def backward(self):
        logits, target = self.cache
        return nn.sigmoid(logits) - target          # forgot the 1/n of the mean


def test_check_loss_catches_wrong_backward():
    logits = host_rng(0).normal(size=(4, 1))
    assert check_loss(LogitsLossWithoutMean(), logits, 1.0) > 0.5


# --- values and stability ----------------------------------------------------------------------
def test_bce_with_logits_matches_the_definition():
    rng = host_rng(1)
    logits, target = rng.normal(size=(5, 3)) * 4, rng.uniform(size=(5, 3))
    p = 1 / (1 + np.exp(-logits))
    want = -(target * np.log(p) + (1 - target) * np.log(1 - p)).mean()
    assert float(BCEWithLogitsLoss()(logits, target)) == pytest.approx(want, rel=1e-12)
    assert float(BCELoss()(p, target)) == pytest.approx(want, rel=1e-12)
    loss = BCEWithLogitsLoss()
    loss(logits, target)
    np.testing.assert_allclose(loss.backward(), (p - target) / target.size, rtol=1e-12)


def test_bce_with_logits_is_stable_for_huge_logits():
    logits = np.array([-1000.0, 1000.0, -1000.0, 1000.0], np.float32)
    target = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    loss_fn = BCEWithLogitsLoss()
    with np.errstate(over="raise", divide="raise", invalid="raise"):   # exp(-1000) may underflow, no more
        loss = loss_fn(logits, target)
        grad = loss_fn.backward()
    assert float(loss) == pytest.approx(500.0)      # (1000 + 1000 + 0 + 0) / 4
    np.testing.assert_allclose(grad, [-0.25, 0.25, 0.0, 0.0])


def test_bce_clamps_the_log_at_minus_100():
    prob = np.array([0.0, 1.0, 0.0, 1.0])
    target = np.array([1.0, 0.0, 0.0, 1.0])
    loss_fn = BCELoss()
    assert float(loss_fn(prob, target)) == pytest.approx((100 + 100 + 0 + 0) / 4)
    grad = loss_fn.backward()
    assert np.all(np.isfinite(grad))
    # dL/dp = (p - t) / max(p (1 - p), 1e-12) / n, as in PyTorch
    np.testing.assert_allclose(grad, [-1e12 / 4, 1e12 / 4, 0.0, 0.0], rtol=1e-12)


@pytest.mark.parametrize("loss_fn, make_input", [(BCEWithLogitsLoss, lambda r: r.normal(size=(4, 1))),
                                                 (BCELoss, lambda r: r.uniform(0.1, 0.9, size=(4, 1)))],
                         ids=["logits", "probabilities"])
@pytest.mark.parametrize("target", [1.0, "array"])
def test_losses_keep_float32(loss_fn, make_input, target):
    x = make_input(host_rng(2)).astype(np.float32)
    if target == "array":
        target = np.ones((4, 1), np.float64)        # a float64 target does not promote the loss
    loss = loss_fn()
    value = loss(x, target)
    assert np.asarray(value).dtype == np.float32
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("loss_fn", [BCEWithLogitsLoss, BCELoss])
def test_loss_input_errors(loss_fn):
    name = loss_fn.__name__
    with pytest.raises(ValueError) as info:
        loss_fn()(np.full((4, 1), 0.5, np.float32), np.ones((4,), np.float32))
    assert all(w in str(info.value) for w in (name, "(4,)", "(4, 1)")), str(info.value)
    with pytest.raises(TypeError, match=name):
        loss_fn()([0.5, 0.5], 1.0)
    with pytest.raises(TypeError, match=f"{name}.*int64"):
        loss_fn()(np.zeros(3, np.int64), 1.0)


@pytest.mark.parametrize("loss_fn, x", [(BCEWithLogitsLoss, np.array([[-1.0], [2.0]], np.float32)),
                                        (BCELoss, np.array([[0.2], [0.9]], np.float32))],
                         ids=["logits", "probabilities"])
@pytest.mark.parametrize("label", [np.float32(1.0), np.float64(1.0), np.int64(1), 1],
                         ids=["np.float32", "np.float64", "np.int64", "int"])
def test_a_numpy_scalar_target_is_a_number(loss_fn, x, label):
    """`real_label = np.float32(1)` must work like the Python number 1.0."""
    want = float(loss_fn()(x, 1.0))
    loss = loss_fn()
    assert float(loss(x, label)) == pytest.approx(want)
    assert loss.backward().dtype == np.float32


def test_bce_rejects_values_outside_zero_one():
    with pytest.raises(ValueError, match="BCEWithLogitsLoss"):
        BCELoss()(np.array([0.5, 1.5]), 1.0)


# --- optimisers: update rules ------------------------------------------------------------------
def make_params(seed=0, dtype=np.float64):
    rng = host_rng(seed)
    return [Parameter(rng.normal(size=(3, 2)).astype(dtype)), Parameter(rng.normal(size=(4,)).astype(dtype))]


def gradient_steps(params, n_steps, seed=1):
    rng = host_rng(seed)
    return [[rng.normal(size=p.shape).astype(p.data.dtype) for p in params] for _ in range(n_steps)]


def reference_adam(w, grads, lr, b1, b2, eps, wd):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w, m, v


def reference_sgd(w, grads, lr, mu, wd):
    v = np.zeros_like(w)
    for g in grads:
        g = g + wd * w
        v = mu * v + g
        w = w - lr * v
    return w, v


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
def test_adam_follows_its_formula(weight_decay, large, monkeypatch):
    """A large parameter is updated a cache-sized piece of rows at a time on every thread (over_batch): the same
    elementwise formula on each piece."""
    params = make_params()
    if large:
        from tinygan.nn import cpu
        monkeypatch.setattr(cpu, "CACHE_CHUNK_BYTES", 16 * 64 * 4 * 4 * 8)   # 16 rows of a (256, 64, 4, 4) weight
        params.append(Parameter(host_rng(2).normal(size=(256, 64, 4, 4))))
    start = [p.data.copy() for p in params]
    steps = gradient_steps(params, 5)
    opt = Adam(params, lr=0.01, betas=(0.5, 0.999), eps=1e-8, weight_decay=weight_decay)
    for grads in steps:
        for p, g in zip(params, grads):
            p.grad = g.copy()
        opt.step()
    assert opt.steps == 5
    for i, p in enumerate(params):
        w, m, v = reference_adam(start[i], [s[i] for s in steps], 0.01, 0.5, 0.999, 1e-8, weight_decay)
        np.testing.assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.m[i], m, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.v[i], v, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.05)])
def test_sgd_follows_its_formula(momentum, weight_decay):
    params = make_params()
    start = [p.data.copy() for p in params]
    steps = gradient_steps(params, 4)
    opt = SGD(params, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for grads in steps:
        for p, g in zip(params, grads):
            p.grad = g.copy()
        opt.step()
    for i, p in enumerate(params):
        w, v = reference_sgd(start[i], [s[i] for s in steps], 0.1, momentum, weight_decay)
        np.testing.assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)
        if momentum:
            np.testing.assert_allclose(opt.velocity[i], v, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make_opt", [lambda ps: Adam(ps, lr=0.1), lambda ps: SGD(ps, lr=0.1, momentum=0.9)],
                         ids=["adam", "sgd"])
def test_parameters_without_grad_are_left_alone(make_opt):
    params = make_params()
    before = params[1].data.copy()
    params[0].grad = np.ones(params[0].shape)
    make_opt(params).step()
    np.testing.assert_array_equal(params[1].data, before)
    assert not np.allclose(params[0].data, make_params()[0].data)


@pytest.mark.parametrize("make_opt", [lambda ps: Adam(ps, lr=1e-3, weight_decay=0.01),
                                      lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)],
                         ids=["adam", "sgd"])
def test_optimiser_state_stays_float32(make_opt):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, rng=0), nn.BatchNorm2d(3), nn.LeakyReLU(0.2), nn.Flatten(),
                          nn.Linear(12, 1, rng=1))
    opt = make_opt(model.parameters())
    x = host_rng(0).normal(size=(2, 2, 4, 4)).astype(np.float32)
    for _ in range(2):
        opt.zero_grad()
        loss = BCEWithLogitsLoss()
        loss(model(x), 1.0)
        model.backward(loss.backward())
        opt.step()
    for p in model.parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
    slots = [opt.m, opt.v] if isinstance(opt, Adam) else [opt.velocity]
    for arrays in slots:
        assert all(a.dtype == np.float32 for a in arrays)
    assert all(v.dtype == np.float32 for k, v in opt.state_dict().items() if k != "steps")


def test_optimiser_zero_grad():
    params = make_params()
    for p in params:
        p.grad = np.ones(p.shape)
    Adam(params).zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("make_opt", [lambda ps: Adam(ps, lr=0.01, betas=(0.5, 0.999)),
                                      lambda ps: SGD(ps, lr=0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_optimiser_state_dict_round_trip(make_opt):
    """Resuming from a saved optimiser state gives exactly the same next steps."""
    params = make_params()
    opt = make_opt(params)
    steps = gradient_steps(params, 5)
    for grads in steps[:3]:
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    state = {k: np.array(v) for k, v in opt.state_dict().items()}     # as if through an .npz file
    resumed_params = [Parameter(p.data.copy()) for p in params]
    resumed = make_opt(resumed_params)
    resumed.load_state_dict(state)
    assert resumed.steps == 3
    for grads in steps[3:]:
        for p, q, g in zip(params, resumed_params, grads):
            p.grad, q.grad = g, g.copy()
        opt.step()
        resumed.step()
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(p.data, q.data)


def test_optimiser_state_dict_rejects_wrong_shapes():
    opt = Adam(make_params())
    state = dict(opt.state_dict(), **{"m.0": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"m\.0.*\(2, 3\).*\(3, 2\)"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("make, words", [
    (lambda: Adam([]), ["Adam", "empty"]),
    (lambda: SGD(make_params(), lr=0), ["SGD", "lr", "0"]),
    (lambda: Adam(make_params(), lr=-1e-3), ["Adam", "lr"]),
    (lambda: Adam(make_params(), betas=(0.9, 1.0)), ["Adam", "betas"]),
], ids=["empty", "sgd-lr", "adam-lr", "betas"])
def test_optimiser_argument_errors(make, words):
    with pytest.raises(ValueError) as info:
        make()
    assert all(w in str(info.value) for w in words), str(info.value)


def test_adam_trains_a_tiny_classifier():
    """End to end: layers + loss + optimiser drive a separable problem's loss down."""
    rng = host_rng(3)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    labels = (x[:, :1] + x[:, 1:2] > 0).astype(np.float32)
    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.LeakyReLU(0.2), nn.Linear(8, 1, rng=1))
    opt, loss_fn = Adam(model.parameters(), lr=0.05), BCEWithLogitsLoss()
    losses = []
    for _ in range(60):
        opt.zero_grad()
        losses.append(float(loss_fn(model(x), labels)))
        model.backward(loss_fn.backward(), need_input_grad=False)
        opt.step()
    assert losses[-1] < 0.3 * losses[0], losses[::10]


# --- CuPy against NumPy (skipped without a GPU) -------------------------------------------------
def optimiser_run(make_opt, which, start, steps):
    backend.use(which)
    params = [Parameter(backend.to_device(w.copy())) for w in start]   # to_device may not copy
    opt = make_opt(params)
    for grads in steps:
        for p, g in zip(params, grads):
            p.grad = backend.to_device(g.copy())
        opt.step()
    out = [backend.to_numpy(p.data) for p in params]
    out += [v for k, v in opt.state_dict().items() if k != "steps"]
    backend.use("numpy")
    return out


@pytest.mark.gpu
@pytest.mark.parametrize("make_opt", [lambda ps: Adam(ps, lr=2e-4, betas=(0.5, 0.999), weight_decay=0.01),
                                      lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)],
                         ids=["adam", "sgd"])
def test_cupy_optimiser_step_matches_numpy(gpu, make_opt):
    start = [p.data for p in make_params(0, np.float32)]
    steps = gradient_steps(make_params(0, np.float32), 3)
    on_cpu = optimiser_run(make_opt, "numpy", start, steps)
    on_gpu = optimiser_run(make_opt, "cupy", start, steps)
    for a, b in zip(on_cpu, on_gpu):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.parametrize("loss_fn, make_input", [(BCEWithLogitsLoss, lambda r: r.normal(size=(6, 1)) * 5),
                                                 (BCELoss, lambda r: r.uniform(0, 1, size=(6, 1)))],
                         ids=["logits", "probabilities"])
def test_cupy_losses_match_numpy(gpu, loss_fn, make_input):
    x = make_input(host_rng(4)).astype(np.float32)
    target = (host_rng(5).uniform(size=x.shape) > 0.5).astype(np.float32)
    results = {}
    for which in ("numpy", "cupy"):
        backend.use(which)
        loss = loss_fn()
        value = loss(backend.to_device(x), backend.to_device(target))
        results[which] = (float(value), backend.to_numpy(loss.backward()))
    backend.use("numpy")
    assert results["cupy"][0] == pytest.approx(results["numpy"][0], rel=1e-5)
    np.testing.assert_allclose(results["cupy"][1], results["numpy"][1], rtol=1e-5, atol=1e-7)
