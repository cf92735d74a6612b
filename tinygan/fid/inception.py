"""The FID Inception-v3 (TensorFlow's "inception-2015-12-05" graph) built from tinygan layers.

This file follows pytorch-fid's ``FIDInceptionA/C/E_1/E_2`` blocks: average pools
that do not count the padding, a max pool in the last block, BatchNorm eps = 1e-3
and no gamma. Two things differ from a literal transcription of the graph, both
exact up to float rounding: BatchNorm is folded into the conv before it
(:func:`fold_batchnorm`), and the average-pool branches pool *after* their 1x1 conv
(:class:`AvgPoolConv2d`). The network is inference-only, and its convolutions run
on an inference-only conv (:func:`tinygan.fid.conv.conv2d_relu`): a 299x299
Inception-v3 costs about 5.7 GMAC per image.
"""
from collections import OrderedDict

import numpy as np

from .. import backend
from ..nn import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Module, Parameter, concat_channels
from ..nn.fast import nchw, nhwc
from ..nn.reference import pair
from .conv import conv2d_relu

BN_EPS = 1e-3            # the TF graph's BatchNorm epsilon
INPUT_SIZE = 299
FEATURE_DIM = 2048


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
        self.free_activations()          # pools keep their inputs for a backward that never comes
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
