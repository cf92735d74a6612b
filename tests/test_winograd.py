"""Winograd's way for the stride-2 convs (tinygan.nn.fast_winograd) computes what the reference path computes.

The fast path's 4x4 stride-2 convs and convTs of 4 or more channels make 9 products per 2x2 tile of outputs where
im2col makes 16. Held here: every output and gradient equal to the reference's (float64 to 1e-12, float32 to 1e-5
of the largest value, as tests/test_fast_path.py), each transform the adjoint of its partner, and which layers
take this way.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan import nn
from tinygan.dcgan import Discriminator, Generator
from tinygan.nn import cpu, fast_winograd as winograd

from test_fast_path import TOLERANCE, assert_paths_agree, both_paths, normal


def taken(layer):
    """Whether the layer's last fast forward took Winograd's way (its saved weight is the (9, ., .) tiles)."""
    path, saved = layer.cache
    return path == "fast" and winograd.made(saved)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["conv", "convT"])
@settings(deadline=None, max_examples=40)
@given(n=st.integers(1, 3), cin=st.integers(4, 9), cout=st.integers(4, 9), th=st.integers(1, 3),
       tw=st.integers(1, 3), bias=st.booleans(), need_input_grad=st.booleans(), frozen=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_a_stride_2_conv_by_winograd_equals_the_reference(dtype, kind, n, cin, cout, th, tw, bias, need_input_grad,
                                                          frozen, seed):
    """Square and oblong images of whole 2x2 tiles of outputs (a conv's output, a convT's input: 2T x 2T'), any
    channels from 4, with and without a bias, dx, dW."""
    small = (2 * th, 2 * tw)
    if kind == "conv":
        make = lambda: nn.Conv2d(cin, cout, 4, 2, 1, bias=bias, rng=seed)            # noqa: E731
        x, y_hw = normal((n, cin, 2 * small[0], 2 * small[1]), seed), small
    else:
        make = lambda: nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias, rng=seed)   # noqa: E731
        x, y_hw = normal((n, cin) + small, seed), (2 * small[0], 2 * small[1])
    results = both_paths(make, x, normal((n, cout) + y_hw, seed + 1), dtype, need_input_grad=need_input_grad,
                         frozen=frozen)
    assert_paths_agree(results, dtype)
    with nn.using_path("fast"):
        layer = make().astype(dtype)
        layer(x.astype(dtype))
        assert taken(layer)


def test_the_dcgan_s_stride_2_layers_take_winograd_s_way_and_the_ends_im2col():
    """G's three middle convTs and D's three middle convs; not the RGB ends (3 channels) nor the 4x4 <-> 1x1 ends
    (stride 1)."""
    with nn.using_path("fast"):
        g, d = Generator(rng=0), Discriminator(rng=0)
        images = g(normal((2, 100, 1, 1), 0).astype(np.float32))
        d(images)
    for model, name in ((g, "convT"), (d, "conv")):
        layers = [layer for layer in model.modules() if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))]
        assert [taken(layer) for layer in layers] == [False, True, True, True, False], name


@pytest.mark.parametrize("shape, expected", [((2, 8, 16, 16), True), ((2, 8, 9, 9), False), ((2, 8, 18, 18), False),
                                             ((2, 8, 16, 12), True), ((2, 3, 16, 16), False)],
                         ids=["whole tiles", "odd input", "odd output", "oblong", "RGB input"])
def test_which_convs_take_winograd_s_way(shape, expected):
    """An input of 9 rows gives 4 output rows at stride 2 but is not twice them; 18 rows give 9, not whole 2x2
    tiles; an RGB input would make 12-wide products: those take im2col."""
    with nn.using_path("fast"):
        conv = nn.Conv2d(shape[1], 5, 4, 2, 1, rng=0)
        conv(normal(shape, 0).astype(np.float32))
        assert taken(conv) == expected


def test_other_kernels_strides_and_paddings_take_im2col():
    x = normal((2, 8, 16, 16), 0).astype(np.float32)
    for kernel, stride, padding in ((3, 2, 1), (4, 1, 1), (4, 2, 0), (4, 2, 2)):
        with nn.using_path("fast"):
            conv = nn.Conv2d(8, 8, kernel, stride, padding, rng=0)
            conv(x)
            assert not taken(conv), (kernel, stride, padding)


def inner(a, b):
    return float(np.vdot(np.asarray(a, np.float64), np.asarray(b, np.float64)))


@pytest.mark.parametrize("t", [1, 2, 5])
def test_each_backward_transform_is_the_adjoint_of_its_forward_transform(t):
    """<B^T d, e> = <d, B e> for the data transform (tiles that overlap by one pixel: their adjoint adds), and
    <G W G^T, T> = <W, G^T T G> for the weight's: the backward is the forward run backwards."""
    rng = np.random.default_rng(t)
    a = rng.normal(size=(3, 2 * t + 1, 4))
    e = [rng.normal(size=(3, t, 4)) for _ in range(3)]
    outs = [np.empty((3, t, 4)) for _ in range(3)]
    winograd._data_transform(a, 1, outs)
    back = np.empty_like(a)
    winograd._data_adjoint(e, back, 1)
    assert inner(np.stack(outs), np.stack(e)) == pytest.approx(inner(a, back), rel=1e-12)
    weight = rng.normal(size=(5, 4, 4, 4))
    tiles = rng.normal(size=(9, 5, 16))

    class Part:
        totals = {"dW": tiles}
    assert inner(winograd.weight_tiles(weight), tiles) == pytest.approx(
        inner(weight, winograd.weight_gradient([Part], weight.shape)), rel=1e-12)


def test_f_2_2_is_two_outputs_of_a_two_tap_filter_from_three_products():
    """The 1-D identity behind it all: A^T [(G g) * (B^T d)] = (d0 g0 + d1 g1, d1 g0 + d2 g1)."""
    d, g = np.array([2.0, -3.0, 5.0]), np.array([7.0, 11.0])
    bt_d = np.array([d[0] - d[1], d[1], d[2] - d[1]])
    g_g = np.array([g[0], g[0] + g[1], g[1]])
    m = g_g * bt_d                                           # 3 products
    assert [m[0] + m[1], m[1] + m[2]] == [d[0] * g[0] + d[1] * g[1], d[1] * g[0] + d[2] * g[1]]


@pytest.mark.parametrize("kind", ["conv", "convT"])
def test_several_groups_on_one_thread_equal_the_reference(kind, monkeypatch):
    """One image per group on one thread (no OpenBLAS needed): the kept tiles, canvases and products serve group
    after group, and dW is added up group by group. (On two threads: tests/test_fast_path.py, whose 5- and
    4-channel convs take this way.)"""
    monkeypatch.setattr(cpu, "GROUP_ROWS", 1)
    monkeypatch.setattr(cpu, "GROUP_BYTES", 1)
    with cpu.using_threads(1):
        layer = (lambda: nn.Conv2d(6, 5, 4, 2, 1, rng=0)) if kind == "conv" else (
            lambda: nn.ConvTranspose2d(6, 5, 4, 2, 1, rng=0))
        x = normal((4, 6, 8, 8) if kind == "conv" else (4, 6, 4, 4), 1)
        y_shape = (4, 5, 4, 4) if kind == "conv" else (4, 5, 8, 8)
        assert_paths_agree(both_paths(layer, x, normal(y_shape, 2), np.float64), np.float64)


def test_a_layer_reused_on_other_sizes_keeps_nothing_from_the_last_call():
    """The canvas's zero border and the kept tiles serve only the size they were made for; the same size again
    (fewer or more images) finds the border still zero."""
    with nn.using_path("fast"):
        kept = nn.Conv2d(5, 4, 4, 2, 1, rng=0)
        for size, n in ((32, 3), (32, 1), (16, 2), (9, 2), (32, 1), (32, 2)):
            x = normal((n, 5, size, size), size).astype(np.float32)
            fresh = nn.Conv2d(5, 4, 4, 2, 1, rng=0)
            np.testing.assert_array_equal(kept(x), fresh(x))
            upstream = normal((n, 4, size // 2, size // 2), size + 1).astype(np.float32)
            np.testing.assert_array_equal(kept.backward(upstream), fresh.backward(upstream))
            np.testing.assert_array_equal(kept.weight.grad, fresh.weight.grad)
            kept.zero_grad()


def test_a_float32_step_stays_within_the_tolerance_of_a_dcgan_layer():
    """D's 64 -> 128 conv at its real size, float32: Winograd's sums of 2-4 terms before each product keep the
    error within the fast path's float32 tolerance of the float64 reference."""
    x = normal((2, 64, 32, 32), 0)
    with nn.using_path("reference"):
        exact = nn.Conv2d(64, 128, 4, 2, 1, rng=0).astype(np.float64)(x)
    with nn.using_path("fast"):
        conv = nn.Conv2d(64, 128, 4, 2, 1, rng=0)
        y = conv(x.astype(np.float32))
        assert taken(conv)
    assert np.abs(y - exact).max() <= TOLERANCE[np.float32] * np.abs(exact).max()


def test_im2col_only_chooses_im2col_and_each_backward_follows_its_forward():
    """Lesson 12 times im2col against Winograd's way: within ``im2col_only()`` the fast conv unfolds; a backward
    takes the way of its forward whatever the block around it says, and both ways give the same numbers."""
    x, g = normal((2, 8, 16, 16), 0), normal((2, 8, 8, 8), 1)
    with nn.using_path("fast"):
        conv = nn.Conv2d(8, 8, 4, 2, 1, rng=0).astype(np.float64)
        with winograd.im2col_only():
            y_im2col = conv(x)
            assert not taken(conv)
        dx_im2col = conv.backward(g)
        y = conv(x)
        assert taken(conv)
        with winograd.im2col_only():
            dx = conv.backward(g)
    np.testing.assert_allclose(y, y_im2col, rtol=0, atol=1e-12 * np.abs(y_im2col).max())
    np.testing.assert_allclose(dx, dx_im2col, rtol=0, atol=1e-12 * np.abs(dx_im2col).max())
