"""Build the real-world model set (issue 15): small versions of published architectures.

Each architecture is written here from its published definition (no torchvision), with reduced
widths and 32x32 to 64x64 inputs (or (C, L) signals, or flat vectors), trained for a few seconds
on seeded synthetic smooth images (tests/models/realworld/synthetic_data.py) so that weights and
BatchNorm statistics are not random, then exported as users export them:

- torch 2.13 ``torch.onnx.export(..., dynamo=False, opset_version=17)`` with a dynamic batch axis;
- classic ONNX-zoo style (opset 7-9) graphs written with onnx.helper from trained torch weights:
  Reshape to a literal batch of 1, initializers listed as graph inputs, Softmax of opset < 13,
  Upsample, Dropout, LRN, unfused BatchNormalization.

Every file is checked against torch with onnxruntime before it is written. Writes
tests/models/realworld/{name}.onnx and manifest.json (name, file, input shape, what it exercises).

Usage: python tools/make_realworld_models.py [--models NAME ...] [--steps N]
Needs torch (only this tool does; the tests read the committed files).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "models", "realworld")
_spec = importlib.util.spec_from_file_location("synthetic_data", os.path.join(OUT_DIR, "synthetic_data.py"))
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

N_CLASSES = 10


def make_divisible(v, divisor=8):
    """Channel rounding of the MobileNet papers: nearest multiple of divisor, at least 90% of v."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def conv_bn_act(cin, cout, k, stride=1, groups=1, act=nn.ReLU, padding=None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- MobileNetV2 (Sandler et al. 2018)
class InvertedResidualV2(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn_act(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   conv_bn_act(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    # (expand t, channels c, repeats n, stride s) of the paper's table 2, widths / 4, fewer repeats
    CONFIG = ((1, 8, 1, 1), (6, 8, 2, 2), (6, 16, 2, 2), (6, 24, 2, 2), (6, 32, 1, 1))

    def __init__(self):
        super().__init__()
        layers, cin = [conv_bn_act(3, 16, 3, 2, act=nn.ReLU6)], 16
        for t, c, n, s in self.CONFIG:
            for i in range(n):
                layers.append(InvertedResidualV2(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn_act(cin, 128, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, N_CLASSES))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# ------------------------------------------------------- MobileNetV3-small (Howard et al. 2019)
class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool, 1x1 reduce, activation, 1x1 expand, gate, Mul."""

    def __init__(self, channels, squeeze, act=nn.ReLU, gate=nn.Hardsigmoid):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class InvertedResidualV3(nn.Module):
    def __init__(self, cin, k, expanded, cout, use_se, act, stride):
        super().__init__()
        layers = []
        if expanded != cin:
            layers.append(conv_bn_act(cin, expanded, 1, act=act))
        layers.append(conv_bn_act(expanded, expanded, k, stride, groups=expanded, act=act))
        if use_se:
            layers.append(SqueezeExcite(expanded, make_divisible(expanded // 4)))
        layers.append(conv_bn_act(expanded, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV3Small(nn.Module):
    # (kernel, expanded, out, SE, activation, stride): the paper's table 2, widths / 2, 6 blocks
    CONFIG = ((3, 16, 8, True, nn.ReLU, 2), (3, 40, 16, False, nn.ReLU, 2), (3, 48, 16, False, nn.ReLU, 1),
              (5, 48, 24, True, nn.Hardswish, 2), (5, 96, 24, True, nn.Hardswish, 1),
              (5, 64, 32, True, nn.Hardswish, 1))

    def __init__(self):
        super().__init__()
        layers, cin = [conv_bn_act(3, 16, 3, 2, act=nn.Hardswish)], 16
        for k, e, c, se, act, s in self.CONFIG:
            layers.append(InvertedResidualV3(cin, k, e, c, se, act, s))
            cin = c
        layers.append(conv_bn_act(cin, 6 * cin, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(6 * cin, 128), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(128, N_CLASSES))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------- EfficientNet-B0 (Tan & Le 2019)
class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn_act(cin, hidden, 1, act=nn.SiLU)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   SqueezeExcite(hidden, max(1, cin // 4), act=nn.SiLU, gate=nn.Sigmoid),
                   conv_bn_act(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class EfficientNetB0(nn.Module):
    # (expand, kernel, stride, channels, repeats): B0's stages 1-5, widths / 2, fewer repeats
    CONFIG = ((1, 3, 1, 8, 1), (6, 3, 2, 12, 2), (6, 5, 2, 20, 2), (6, 3, 2, 40, 1), (6, 5, 1, 56, 1))

    def __init__(self):
        super().__init__()
        layers, cin = [conv_bn_act(3, 16, 3, 2, act=nn.SiLU)], 16
        for e, k, s, c, n in self.CONFIG:
            for i in range(n):
                layers.append(MBConv(cin, c, k, s if i == 0 else 1, e))
                cin = c
        layers.append(conv_bn_act(cin, 160, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(160, N_CLASSES))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# ------------------------------------------------------------------- ResNet (He et al. 2016)
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width))
                           if stride != 1 or cin != width else None)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # stride on the 3x3 (v1.5)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """torchvision's layout: 7x7/2 stem, 3x3/2 max pool, four stages, global pool, fc."""

    def __init__(self, block, repeats, widths=(8, 16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 16
        for i, (w, n) in enumerate(zip(widths, repeats)):
            for j in range(n):
                layers.append(block(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w * block.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, N_CLASSES)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = F.adaptive_avg_pool2d(self.layers(x), 1)
        return self.fc(torch.flatten(x, 1))


# --------------------------------------------------------------- DenseNet (Huang et al. 2017)
class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size=4):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)  # BN-ReLU-Conv on the concatenation: BN after Concat
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseNet(nn.Module):
    def __init__(self, growth=8, blocks=(3, 3, 3), init=16):
        super().__init__()
        self.stem = nn.Conv2d(3, init, 3, 1, 1, bias=False)
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        c = init
        for i, n in enumerate(blocks):
            layers = nn.ModuleList()
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            self.blocks.append(layers)
            if i != len(blocks) - 1:
                self.transitions.append(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                                                      nn.AvgPool2d(2, 2)))
                c //= 2
        self.norm = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, N_CLASSES)

    def forward(self, x):
        x = self.stem(x)
        for i, layers in enumerate(self.blocks):
            features = [x]
            for layer in layers:
                features.append(layer(features))
            x = torch.cat(features, 1)
            if i < len(self.transitions):
                x = self.transitions[i](x)
        x = F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1)
        return self.fc(torch.flatten(x, 1))


# ---------------------------------------------------------- SqueezeNet (Iandola et al. 2016)
class Fire(nn.Module):
    def __init__(self, cin, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """Versions 1.0 and 1.1 as in the paper's reference code, widths / 4, ceil_mode max pools."""

    def __init__(self, version):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(3, 24, 7, 2), nn.ReLU(), pool(),
                Fire(24, 4, 16, 16), Fire(32, 4, 16, 16), Fire(32, 8, 32, 32), pool(),
                Fire(64, 8, 32, 32), Fire(64, 12, 48, 48), Fire(96, 12, 48, 48), Fire(96, 16, 64, 64), pool(),
                Fire(128, 16, 64, 64))
        else:
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2), nn.ReLU(), pool(),
                Fire(16, 4, 16, 16), Fire(32, 4, 16, 16), pool(),
                Fire(32, 8, 32, 32), Fire(64, 8, 32, 32), pool(),
                Fire(64, 12, 48, 48), Fire(96, 12, 48, 48), Fire(96, 16, 64, 64), Fire(128, 16, 64, 64))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(128, N_CLASSES, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1))
        # The reference code's init (He for the convs, zero biases, N(0, 0.01) for the last conv):
        # with torch's default init the narrow fire modules' ReLUs die and the loss stays at ln 10.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier[1].weight, 0.0, 0.01)

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# ------------------------------------------------------------------------- ShuffleNet V1 / V2
def channel_shuffle(x, groups):
    """(N, g*c, H, W) -> view (N, g, c, H, W) -> transpose -> (N, c*g, H, W), as torchvision."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ShuffleUnitV1(nn.Module):
    def __init__(self, cin, cout, groups, stride, group_first=True):
        super().__init__()
        self.stride, self.groups = stride, groups
        branch_out = cout - cin if stride == 2 else cout
        mid = cout // 4
        self.conv1 = conv_bn_act(cin, mid, 1, groups=groups if group_first else 1)
        self.shuffle_groups = groups if group_first else 1
        self.dw = conv_bn_act(mid, mid, 3, stride, groups=mid, act=None)
        self.conv2 = conv_bn_act(mid, branch_out, 1, groups=groups, act=None)

    def forward(self, x):
        out = self.conv1(x)
        if self.shuffle_groups > 1:
            out = channel_shuffle(out, self.shuffle_groups)
        out = self.conv2(self.dw(out))
        if self.stride == 2:
            return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), out], 1))
        return F.relu(x + out)


class ShuffleNetV1(nn.Module):
    """Zhang et al. 2018, g = 3: stage widths 240/480/960 scaled by 1/4, 2 units each."""

    def __init__(self, groups=3, widths=(60, 120, 240), repeats=(2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        units, cin = [], 24
        for i, (c, n) in enumerate(zip(widths, repeats)):
            for j in range(n):
                units.append(ShuffleUnitV1(cin, c, groups, 2 if j == 0 else 1, group_first=not (i == 0 and j == 0)))
                cin = c
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(cin, N_CLASSES)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.units(self.stem(x)), 1)
        return self.fc(torch.flatten(x, 1))


class ShuffleUnitV2(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride == 2:
            self.branch1 = nn.Sequential(conv_bn_act(cin, cin, 3, 2, groups=cin, act=None), conv_bn_act(cin, half, 1))
        b2_in = cin if stride == 2 else half
        self.branch2 = nn.Sequential(conv_bn_act(b2_in, half, 1), conv_bn_act(half, half, 3, stride, groups=half, act=None),
                                     conv_bn_act(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Ma et al. 2018, 0.5x widths (48/96/192), repeats 2/3/2, conv5 256."""

    def __init__(self, widths=(48, 96, 192), repeats=(2, 3, 2)):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        units, cin = [], 24
        for c, n in zip(widths, repeats):
            for j in range(n):
                units.append(ShuffleUnitV2(cin, c, 2 if j == 0 else 1))
                cin = c
        self.units = nn.Sequential(*units)
        self.conv5 = conv_bn_act(cin, 256, 1)
        self.fc = nn.Linear(256, N_CLASSES)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.conv5(self.units(self.stem(x))), 1)
        return self.fc(torch.flatten(x, 1))


# --------------------------------------------------------- VGG-11 with BN (Simonyan & Zisserman)
class VGG11BN(nn.Module):
    CONFIG = (8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M")  # VGG-11 "A", widths / 8

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in self.CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(cin, 128), nn.ReLU(), nn.Dropout(), nn.Linear(128, 128), nn.ReLU(),
                                        nn.Dropout(), nn.Linear(128, N_CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------ Inception-style (Szegedy et al. 2015/16)
class InceptionA(nn.Module):
    """Inception-v3's block A: 1x1, 1x1->5x5, 1x1->3x3->3x3, avg pool (count_include_pad=False)->1x1."""

    def __init__(self, cin, pool_features):
        super().__init__()
        self.b1 = conv_bn_act(cin, 16, 1)
        self.b5 = nn.Sequential(conv_bn_act(cin, 12, 1), conv_bn_act(12, 16, 5))
        self.b3 = nn.Sequential(conv_bn_act(cin, 16, 1), conv_bn_act(16, 24, 3), conv_bn_act(24, 24, 3))
        self.bp = conv_bn_act(cin, pool_features, 1)
        self.out_channels = 16 + 16 + 24 + pool_features

    def forward(self, x):
        pool = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), self.bp(pool)], 1)


class InceptionReduction(nn.Module):
    """Inception-v3's block B (grid reduction): 3x3/2 conv, 1x1->3x3->3x3/2, 3x3/2 max pool."""

    def __init__(self, cin):
        super().__init__()
        self.b3 = conv_bn_act(cin, 48, 3, 2, padding=0)
        self.b3d = nn.Sequential(conv_bn_act(cin, 16, 1), conv_bn_act(16, 24, 3), conv_bn_act(24, 24, 3, 2, padding=0))
        self.out_channels = 48 + 24 + cin

    def forward(self, x):
        return torch.cat([self.b3(x), self.b3d(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 24, 3), conv_bn_act(24, 32, 3, 2))
        a1 = InceptionA(32, 8)
        a2 = InceptionA(a1.out_channels, 16)
        r = InceptionReduction(a2.out_channels)
        a3 = InceptionA(r.out_channels, 16)
        self.blocks = nn.Sequential(a1, a2, r, a3)
        self.fc = nn.Linear(a3.out_channels, N_CLASSES)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1)
        return self.fc(torch.flatten(x, 1))


# -------------------------------------------------------- AlexNet with LRN (Krizhevsky et al.)
class AlexNetLRN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 5, 2, 2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
            nn.Conv2d(24, 48, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
            nn.Conv2d(48, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 48, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(48 * 3 * 3, 128), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, N_CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------------- UNet (Ronneberger et al. 2015)
def double_conv(cin, cout):
    return nn.Sequential(conv_bn_act(cin, cout, 3), conv_bn_act(cout, cout, 3))


class UNet(nn.Module):
    """Two levels: one up path by ConvTranspose 2x2/2, one by nearest Upsample + 1x1 conv."""

    def __init__(self, cin=3, classes=2):
        super().__init__()
        self.enc1, self.enc2, self.bottom = double_conv(cin, 8), double_conv(8, 16), double_conv(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, 2)
        self.dec2 = double_conv(32, 16)
        self.up1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(16, 8, 1))
        self.dec1 = double_conv(16, 8)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


# ------------------------------------------------- keyword spotting, 1-D convs on (N, C, L)
class KeywordSpotting1D(nn.Module):
    """A small temporal CNN over 16 MFCC-like channels x 64 frames (as in TC-ResNet-like nets)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(16, 32, 5, padding=2, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Conv1d(32, 48, 1, bias=False), nn.BatchNorm1d(48), nn.ReLU(), nn.AvgPool1d(2),
            nn.Conv1d(48, 64, 3, padding=1, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.MaxPool1d(2),
            nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Linear(64, N_CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.net(x), 1))


# ------------------------------------------------------------------------------------- MLP
class MatMulLinear(nn.Module):
    """y = x @ W + b written out: exports MatMul + Add (as hand-written transformer code does)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cin, cout) / cin ** 0.5)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return x @ self.weight + self.bias


class MLP(nn.Module):
    def __init__(self, features=64):
        super().__init__()
        self.net = nn.Sequential(MatMulLinear(features, 128), nn.GELU(), MatMulLinear(128, 64), nn.Tanh(),
                                 MatMulLinear(64, N_CLASSES))

    def forward(self, x):
        return self.net(x)


# ------------------------------------------------------------------ Softmax / LogSoftmax heads
class SmallCNN(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.features = nn.Sequential(conv_bn_act(3, 16, 3), nn.MaxPool2d(2), conv_bn_act(16, 32, 3), nn.MaxPool2d(2),
                                      conv_bn_act(32, 32, 3), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(32, N_CLASSES)
        self.head = head

    def forward(self, x):
        return self.head(self.fc(torch.flatten(self.features(x), 1)))

    def logits(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


# ------------------------------------------------ ops user code emits beside the classic blocks
class UserStyleCNN(nn.Module):
    """What hand-written models often hold: input normalization inside the model (constant Sub and
    Div), PReLU and ELU, a bilinear resize, global pooling written as x.mean((2, 3))."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.1, -0.2, 0.05]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([1.1, 0.9, 1.2]).view(1, 3, 1, 1))
        self.conv1 = conv_bn_act(3, 16, 3, 2, act=None)
        self.prelu = nn.PReLU(16)
        self.conv2 = nn.Conv2d(16, 32, 3, 1, 1)
        self.conv3 = conv_bn_act(32, 32, 3, act=nn.ELU)
        self.fc = nn.Linear(32, N_CLASSES)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.prelu(self.conv1(x))
        x = F.interpolate(F.elu(self.conv2(x)), scale_factor=0.5, mode="bilinear", align_corners=False)
        return self.fc(self.conv3(x).mean((2, 3)))


# name -> (builder, input shape without batch, what it exercises)
TORCH_MODELS = {
    "mobilenet_v2": (MobileNetV2, (3, 32, 32), "MobileNetV2: inverted residuals, depthwise, ReLU6 (Clip 0..6), Add joins"),
    "mobilenet_v3_small": (MobileNetV3Small, (3, 32, 32),
                           "MobileNetV3-small: HardSwish, squeeze-excite with HardSigmoid gate (Mul of (N,C,1,1) by (N,C,H,W)), 5x5 depthwise"),
    "efficientnet_b0": (EfficientNetB0, (3, 32, 32),
                        "EfficientNet-B0 style: SiLU (Sigmoid + Mul), squeeze-excite with Sigmoid gate, MBConv, 5x5 depthwise"),
    "resnet18": (lambda: ResNet(BasicBlock, (2, 2, 2, 2)), (3, 64, 64),
                 "ResNet-18 torchvision layout: 7x7/2 stem, max pool, basic blocks, 1x1 downsample shortcuts"),
    "resnet50": (lambda: ResNet(Bottleneck, (2, 2, 2, 1)), (3, 64, 64),
                 "ResNet-50 style: bottleneck blocks (1x1-3x3-1x1, expansion 4), stride on the 3x3"),
    "densenet": (DenseNet, (3, 32, 32),
                 "DenseNet: BN-ReLU-Conv on Concat outputs (BatchNormalization after Concat, not foldable), transitions with AvgPool"),
    "squeezenet1_0": (lambda: SqueezeNet("1_0"), (3, 64, 64),
                      "SqueezeNet 1.0: fire modules (Concat), MaxPool ceil_mode=1, Dropout, conv classifier + global pool"),
    "squeezenet1_1": (lambda: SqueezeNet("1_1"), (3, 64, 64), "SqueezeNet 1.1: fire modules, MaxPool ceil_mode=1"),
    "shufflenet_v1": (ShuffleNetV1, (3, 64, 64),
                      "ShuffleNet V1 (g=3): grouped 1x1 convs, channel shuffle (Reshape/Transpose/Reshape from Shape chains), AvgPool + Concat shortcut"),
    "shufflenet_v2": (ShuffleNetV2, (3, 64, 64),
                      "ShuffleNet V2: chunk (Split), Concat, channel shuffle (Reshape/Transpose/Reshape from Shape chains)"),
    "vgg11_bn": (VGG11BN, (3, 32, 32), "VGG-11 with BN (folded by the export), 5 max pools, 3 fc layers with Dropout"),
    "inception": (InceptionNet, (3, 32, 32),
                  "Inception-v3 style blocks: 5x5 / double 3x3 branches, AveragePool pads=1 count_include_pad=0, grid reduction, Concat"),
    "alexnet_lrn": (AlexNetLRN, (3, 64, 64), ("AlexNet style: LRN after the first two convs as torch exports nn.LocalResponseNorm (no LRN node: "
                     "Pow, Pad, AveragePool, Div under Shape/ConstantOfShape/If chains; the zoo CaffeNet has the LRN op), "
                     "overlapping 3x3/2 max pools, Dropout")),
    "unet": (UNet, (3, 32, 32),
             "UNet: ConvTranspose 2x2/2, Resize nearest (Upsample), skip Concat, per-pixel 2-class output (N, 2, 32, 32)"),
    "kws_1d": (KeywordSpotting1D, (16, 64), "keyword spotting on (N, C, L): Conv1d, depthwise Conv1d, MaxPool1d, AvgPool1d, global pool"),
    "mlp": (MLP, (64,), "MLP on (N, F): MatMul + Add layers, GELU (Erf), Tanh"),
    "resnet10_untrained": (lambda: ResNet(BasicBlock, (1, 1, 1, 1)), (3, 32, 32),
                           "ResNet-10 (basic blocks) exported untrained, as for a latency test: fresh BatchNorm folds "
                           "to equal zero biases, which the exporter de-duplicates through Identity nodes of initializers"),
    "user_style_cnn": (UserStyleCNN, (3, 32, 32),
                       "user-written CNN: input normalization in the model (Sub, Div by constants), PRelu, Elu, "
                       "Resize linear (bilinear, scale 0.5), ReduceMean over H, W as global pool"),
    "cnn_softmax": (lambda: SmallCNN(nn.Softmax(dim=1)), (3, 32, 32), "small CNN with a Softmax head (opset 13+ axis meaning)"),
    "cnn_logsoftmax": (lambda: SmallCNN(nn.LogSoftmax(dim=1)), (3, 32, 32), "small CNN with a LogSoftmax head"),
}


def train(model, shape, steps, seed, task="classify", lr=3e-3):
    """A few seconds of Adam on synthetic smooth data (classification; the UNet segments the sign
    of the smoothed first channel). Leaves the model in eval mode with realistic BN statistics."""
    torch.manual_seed(seed)
    x_np, y_np = synthetic.labelled(512, shape, N_CLASSES, synthetic.TRAIN_SEED)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    if task == "segment":
        y = (F.avg_pool2d(x[:, :1], 5, 1, 2) > 0).long()[:, 0]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    loss = torch.tensor(float("nan"))  # stays NaN for an untrained model
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=gen)
        out = model.logits(x[idx]) if hasattr(model, "logits") else model(x[idx])
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model.logits(x) if hasattr(model, "logits") else model(x)
        accuracy = float((out.argmax(1) == y).float().mean())
    return float(loss.detach()), accuracy


def export_torch(model, shape, path):
    example = torch.from_numpy(synthetic.smooth_noise(2, shape, seed=7))
    torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


# ----------------------------------------------- classic ONNX-zoo style models (opset 7 to 9)
class GraphWriter:
    """onnx.helper graph built node by node; initializers also listed as graph inputs (IR < 4 style)."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def init(self, prefix, array):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self.count}", **attrs))
        return out

    def conv(self, x, conv, **extra):
        w = self.init("W", conv.weight.detach().numpy())
        ins = [x, w] + ([self.init("B", conv.bias.detach().numpy())] if conv.bias is not None else [])
        k = list(conv.kernel_size)
        return self.op("Conv", ins, kernel_shape=k, strides=list(conv.stride), pads=list(conv.padding) * 2,
                       group=conv.groups, **extra)

    def batchnorm(self, x, bn, opset):
        params = [self.init(p, t.detach().numpy()) for p, t in
                  (("scale", bn.weight), ("bias", bn.bias), ("mean", bn.running_mean), ("var", bn.running_var))]
        attrs = {"epsilon": bn.eps} if opset >= 7 else {"epsilon": bn.eps, "is_test": 1}
        return self.op("BatchNormalization", [x, *params], **attrs)

    def gemm(self, x, linear):
        return self.op("Gemm", [x, self.init("W", linear.weight.detach().numpy()),
                                self.init("B", linear.bias.detach().numpy())], transB=1)

    def model(self, x_shape, out, out_shape, opset, ir_version):
        inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, x_shape)]
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.inits]
        graph = helper.make_graph(self.nodes, "zoo_style", inputs,
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="aidge_ptq_lite tools/make_realworld_models.py")
        model.ir_version = ir_version
        return model


class CaffeNet(nn.Module):
    """The zoo's CaffeNet/AlexNet layout (LRN, Dropout, literal-batch Reshape in the ONNX file)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 24, 5, 2, 2), nn.Conv2d(24, 48, 5, 1, 2, groups=2)
        self.c3, self.c4 = nn.Conv2d(48, 64, 3, 1, 1), nn.Conv2d(64, 48, 3, 1, 1, groups=2)
        self.lrn = nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
        self.f1, self.f2, self.f3 = nn.Linear(48 * 3 * 3, 128), nn.Linear(128, 128), nn.Linear(128, N_CLASSES)

    def forward(self, x, softmax=False):
        x = F.max_pool2d(self.lrn(F.relu(self.c1(x))), 3, 2)
        x = F.max_pool2d(self.lrn(F.relu(self.c2(x))), 3, 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 3, 2)
        x = self.f3(F.relu(self.f2(F.relu(self.f1(torch.flatten(x, 1))))))
        return F.softmax(x, 1) if softmax else x

    def to_onnx(self):
        g, opset = GraphWriter(), 8
        x = g.op("Relu", [g.conv("data", self.c1)])
        x = g.op("MaxPool", [g.op("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)], kernel_shape=[3, 3], strides=[2, 2])
        x = g.op("Relu", [g.conv(x, self.c2)])
        x = g.op("MaxPool", [g.op("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)], kernel_shape=[3, 3], strides=[2, 2])
        x = g.op("Relu", [g.conv(g.op("Relu", [g.conv(x, self.c3)]), self.c4)])
        x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
        x = g.op("Reshape", [x, g.init("shape", np.array([1, -1], np.int64))])  # literal batch 1
        x = g.op("Dropout", [g.op("Relu", [g.gemm(x, self.f1)])], ratio=0.5)
        x = g.op("Dropout", [g.op("Relu", [g.gemm(x, self.f2)])], ratio=0.5)
        out = g.op("Softmax", [g.gemm(x, self.f3)], axis=1)
        return g.model([1, 3, 64, 64], out, [1, N_CLASSES], opset, ir_version=3)


class ZooSqueezeNet(SqueezeNet):
    """SqueezeNet 1.1 as the zoo's opset 9 file: floor max pools, Softmax with no axis on the
    4-D pool output (opset < 13: flatten from axis 1, i.e. over the classes)."""

    def __init__(self):
        super().__init__("1_1")
        for i, m in enumerate(self.features):
            if isinstance(m, nn.MaxPool2d):
                self.features[i] = nn.MaxPool2d(3, 2)

    def to_onnx(self):
        g = GraphWriter()
        x = "data"
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                x = g.conv(x, m)
            elif isinstance(m, nn.ReLU):
                x = g.op("Relu", [x])
            elif isinstance(m, nn.MaxPool2d):
                x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
            else:
                s = g.op("Relu", [g.conv(x, m.squeeze)])
                x = g.op("Concat", [g.op("Relu", [g.conv(s, m.expand1x1)]), g.op("Relu", [g.conv(s, m.expand3x3)])], axis=1)
        x = g.op("Dropout", [x], ratio=0.5)
        x = g.op("GlobalAveragePool", [g.op("Relu", [g.conv(x, self.classifier[1])])])
        out = g.op("Softmax", [x])  # no axis: 1 in opset 9 (-1 from opset 13 would give all ones)
        return g.model(["N", 3, 64, 64], out, ["N", N_CLASSES, 1, 1], 9, ir_version=4)

    def reference(self, x):
        return F.softmax(torch.flatten(self.classifier(self.features(x)), 1), 1)[:, :, None, None]


class ZooFCN(nn.Module):
    """A small fully convolutional segmenter as opset 7 files were written: Conv + unfused
    BatchNormalization + Relu, MaxPool, Upsample (nearest, scales attribute), Dropout."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 16, 3, 1, 1), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 32, 3, 1, 1), nn.BatchNorm2d(32)
        self.c3, self.b3 = nn.Conv2d(32, 16, 3, 1, 1), nn.BatchNorm2d(16)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.interpolate(F.relu(self.b3(self.c3(x))), scale_factor=4, mode="nearest")
        return self.head(x)

    def to_onnx(self):
        g, opset = GraphWriter(), 7
        x = "data"
        for c, b in ((self.c1, self.b1), (self.c2, self.b2)):
            x = g.op("MaxPool", [g.op("Relu", [g.batchnorm(g.conv(x, c), b, opset)])], kernel_shape=[2, 2], strides=[2, 2])
        x = g.op("Relu", [g.batchnorm(g.conv(x, self.c3), self.b3, opset)])
        x = g.op("Upsample", [x], mode="nearest", scales=[1.0, 1.0, 4.0, 4.0])
        out = g.conv(g.op("Dropout", [x], ratio=0.1), self.head)
        return g.model(["N", 3, 32, 32], out, ["N", 2, 32, 32], opset, ir_version=3)


# name -> (builder, input shape without batch, fixed batch or None, training task, what it exercises)
ZOO_STYLE_MODELS = {
    "zoo_caffenet_opset8": (CaffeNet, (3, 64, 64), 1, "classify",
                            "classic zoo CaffeNet (opset 8, IR 3): LRN, grouped convs, Reshape to a literal batch 1, "
                            "Gemm transB, Dropout, Softmax opset 8, initializers listed as graph inputs"),
    "zoo_squeezenet1_1_opset9": (ZooSqueezeNet, (3, 64, 64), None, "classify",
                                 "classic zoo SqueezeNet 1.1 (opset 9, IR 4): Softmax with no axis on a 4-D tensor "
                                 "(opset < 13 meaning: over the classes), Dropout, initializers listed as graph inputs"),
    "zoo_fcn_opset7": (ZooFCN, (3, 32, 32), None, "segment",
                       "opset 7 segmenter (IR 3): unfused BatchNormalization, Upsample nearest (scales attribute), "
                       "Dropout, initializers listed as graph inputs"),
}


# Exported as initialized (the file shows what the exporter does with fresh BatchNorm).
UNTRAINED = {"resnet10_untrained"}

# SqueezeNet (no BatchNorm) is unstable at 3e-3.
LEARNING_RATES = {"squeezenet1_0": 1e-3, "squeezenet1_1": 1e-3, "zoo_squeezenet1_1_opset9": 1e-3}


def ort_run(model_bytes, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def check_against_torch(path, reference, shape, batch):
    """onnxruntime on the file vs torch on the same inputs: max error relative to max |y|."""
    x = synthetic.evaluation_set(shape, 4 if batch is None else batch)
    with torch.no_grad():
        want = reference(torch.from_numpy(x)).numpy()
    got = ort_run(open(path, "rb").read(), x)
    err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))
    if err > 1e-4:
        raise RuntimeError(f"{path}: onnxruntime differs from torch by {err:.2e} of max |y|")
    return err


def build(name, steps):
    t0 = time.time()
    torch.manual_seed(0)
    path = os.path.join(OUT_DIR, f"{name}.onnx")
    if name in TORCH_MODELS:
        builder, shape, what = TORCH_MODELS[name]
        batch, task, source = None, "segment" if name == "unet" else "classify", "torch 2.13 export, opset 17"
        model = builder()
        loss, acc = train(model, shape, 0 if name in UNTRAINED else steps, seed=0, task=task,
                          lr=LEARNING_RATES.get(name, 3e-3))
        export_torch(model, shape, path)
        reference = model
    else:
        builder, shape, batch, task, what = ZOO_STYLE_MODELS[name]
        model = builder()
        loss, acc = train(model, shape, steps, seed=0, task=task, lr=LEARNING_RATES.get(name, 3e-3))
        proto = model.to_onnx()
        onnx.checker.check_model(proto)
        onnx.save(proto, path)
        source = f"onnx.helper, opset {proto.opset_import[0].version}, IR {proto.ir_version}"
        reference = getattr(model, "reference", None) or (lambda x: model(x, softmax=True))
        if isinstance(model, ZooFCN):
            reference = model
    err = check_against_torch(path, reference, shape, batch)
    proto = onnx.load(path)
    params = int(sum(np.prod(t.dims) for t in proto.graph.initializer))
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f"{name:26s} {os.path.getsize(path) / 1024:7.1f} KiB  {params:8d} params  train loss {loss:.3f} "
          f"acc {acc:.2f}  ort-vs-torch {err:.1e}  {time.time() - t0:.1f} s", flush=True)
    return {"name": name, "file": f"{name}.onnx", "input_shape": [batch if batch else "N", *shape],
            "fixed_batch": batch, "source": source, "exercises": what, "ops": ops, "parameters": params,
            "train_accuracy": round(acc, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    all_names = list(TORCH_MODELS) + list(ZOO_STYLE_MODELS)
    parser.add_argument("--models", nargs="*", default=all_names, choices=all_names)
    parser.add_argument("--steps", type=int, default=60, help="training steps (batch 64) per model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest_path = os.path.join(OUT_DIR, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {"models": []}
    entries = {m["name"]: m for m in manifest["models"]}
    for name in args.models:
        entries[name] = build(name, args.steps)
    manifest = {"about": "small real-world architectures for the import/quantize/export tests; made by "
                         "tools/make_realworld_models.py (synthetic smooth training data, "
                         "tests/models/realworld/synthetic_data.py)",
                "models": [entries[n] for n in all_names if n in entries]}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT_DIR, m["file"])) for m in manifest["models"])
    print(f"total {total / 1024 / 1024:.2f} MiB in {len(manifest['models'])} models")


if __name__ == "__main__":
    main()
