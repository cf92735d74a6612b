"""Pooling layers and channel concatenation: gradients, PyTorch agreement, layout and input checks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan import gradcheck, nn
from tinygan.nn.fast import nchw, nhwc
from tinygan.nn.pool import AdaptiveAvgPool2d, AvgPool2d, Concat, MaxPool2d, concat_channels

TOL = 1e-6


@st.composite
def pool_case(draw):
    """A small pool geometry that PyTorch accepts, and an input shape it fits."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 6))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 6))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return kernel, stride, padding, shape


def make_pool(kind, kernel, stride, padding):
    if kind == "max":
        return MaxPool2d(kernel, stride, padding)
    return AvgPool2d(kernel, stride, padding, count_include_pad=(kind == "avg-include-pad"))


def random_input(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


@settings(deadline=None, max_examples=30)
@given(case=pool_case(), kind=st.sampled_from(["max", "avg-include-pad", "avg-exclude-pad"]),
       seed=st.integers(0, 2 ** 16))
def test_pool_gradients(case, kind, seed):
    kernel, stride, padding, shape = case
    errors = gradcheck.check_module(make_pool(kind, kernel, stride, padding), random_input(shape, seed), seed=seed)
    assert max(errors.values()) <= TOL, errors


@settings(deadline=None, max_examples=10)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
       seed=st.integers(0, 2 ** 16))
def test_global_average_pool_gradient(shape, seed):
    errors = gradcheck.check_module(AdaptiveAvgPool2d(1), random_input(shape, seed), seed=seed)
    assert errors["input"] <= TOL


def test_concat_gradient_sums_the_branches():
    block = Concat(MaxPool2d(3, 1, 1), AvgPool2d(3, 1, 1, count_include_pad=False), AvgPool2d(1))
    errors = gradcheck.check_module(block, random_input((2, 3, 4, 5), 0))
    assert errors["input"] <= TOL
    out = block(random_input((2, 3, 4, 5), 1))
    assert out.shape == (2, 9, 4, 5)


@settings(deadline=None, max_examples=25)
@given(case=pool_case(), kind=st.sampled_from(["max", "avg-include-pad", "avg-exclude-pad"]),
       seed=st.integers(0, 2 ** 16))
def test_pools_match_torch(case, kind, seed):
    torch = pytest.importorskip("torch")
    kernel, stride, padding, shape = case
    x = random_input(shape, seed)
    g = random_input(make_pool(kind, kernel, stride, padding)(x).shape, seed + 1)
    pool = make_pool(kind, kernel, stride, padding)
    y = pool(x)
    dx = pool.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    if kind == "max":
        yt = torch.nn.functional.max_pool2d(xt, kernel, stride, padding)
    else:
        yt = torch.nn.functional.avg_pool2d(xt, kernel, stride, padding,
                                            count_include_pad=(kind == "avg-include-pad"))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_ties_go_to_the_first_offset_like_torch():
    torch = pytest.importorskip("torch")
    x = np.zeros((1, 1, 4, 4))          # every window is a tie
    pool = MaxPool2d(2, 1)
    g = np.arange(9.0).reshape(1, 1, 3, 3)
    pool(x)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 2, 1).backward(torch.tensor(g))
    np.testing.assert_array_equal(pool.backward(g), xt.grad.numpy())


def test_global_average_pool_matches_mean():
    x = random_input((2, 5, 3, 4), 0, np.float32)
    y = AdaptiveAvgPool2d(1)(x)
    assert y.shape == (2, 5, 1, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-6)


@pytest.mark.parametrize("layer", [MaxPool2d(3, 2), AvgPool2d(3, 1, 1, count_include_pad=False),
                                   AvgPool2d(2), AdaptiveAvgPool2d(1)])
def test_float32_stays_float32_also_on_nhwc_memory(layer):
    x_nhwc = random_input((2, 7, 7, 4), 0, np.float32)      # NHWC memory, as the fast convs produce
    y = layer(nchw(x_nhwc))
    assert y.dtype == np.float32
    dx = layer.backward(np.ones(y.shape, np.float32))
    assert dx.dtype == np.float32 and dx.shape == (2, 4, 7, 7)


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_concat_channels_is_concatenate(path):
    with nn.using_path(path):
        parts = [random_input((2, c, 3, 4), c, np.float32) for c in (1, 3, 2)]
        out = concat_channels(parts)
        np.testing.assert_array_equal(out, np.concatenate(parts, axis=1))
        assert nhwc(out).flags.c_contiguous == (path == "fast")      # the fast path writes NHWC memory


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="output_size=1"):
        AdaptiveAvgPool2d(2)
    with pytest.raises(ValueError, match="at most half"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match=">= 1"):
        AvgPool2d(0)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        MaxPool2d(5)(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        AvgPool2d(2)(np.zeros((3, 3), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        MaxPool2d(2)(np.zeros((1, 1, 4, 4), np.int64))
    with pytest.raises(ValueError, match="every array must be"):
        concat_channels([np.zeros((1, 2, 3, 3), np.float32), np.zeros((1, 2, 4, 3), np.float32)])
