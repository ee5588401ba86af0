"""Train the model zoo on Fashion-MNIST with PyTorch (CPU) and export it to ONNX (opset 17).

Writes python/aidge_ptq_lite/models/{name}.onnx and updates models/manifest.json with each
model's float accuracy on the full test set, measured with onnxruntime on the exported file.

Usage: python tools/train_zoo.py [--models lenet resnet ...] [--epochs N] [--threads 2] [--seed 0]
"""
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(ROOT, "python", "aidge_ptq_lite", "models")
_spec = importlib.util.spec_from_file_location(
    "apl_datasets", os.path.join(ROOT, "python", "aidge_ptq_lite", "datasets.py"))
datasets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(datasets)

ALLOWED_OPS = {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "MaxPool",
    "AveragePool", "GlobalAveragePool", "Add", "Sub", "Mul", "Concat", "Flatten", "Reshape",
    "Pad", "Identity", "Dropout", "Softmax", "Sigmoid",
}


def conv_bn(cin, cout, k, stride=1, groups=1, relu=True):
    """Conv (no bias) + BatchNorm (+ ReLU)."""
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class LeNet(nn.Module):
    """LeNet-5: two conv5x5 + maxpool stages, three fully connected layers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, 1x1 conv+BN shortcut on shape change, ReLU after Add."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, relu=False))
        self.shortcut = (conv_bn(cin, cout, 1, stride, relu=False)
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20: 3x3 conv 16, three stages of 3 basic blocks (16/32/64), GAP, fc."""

    def __init__(self):
        super().__init__()
        blocks, cin = [conv_bn(1, 16, 3)], 16
        for i, cout in enumerate((16, 32, 64)):
            for j in range(3):
                blocks.append(BasicBlock(cin, cout, 2 if i > 0 and j == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear project; Add when shapes match."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, relu=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    """MobileNetV2-style net for 28x28 inputs, plain ReLU, 7 inverted residual blocks."""

    # (expand, out channels, stride); 28x28 -> 14x14 in the first block keeps training affordable
    CONFIG = ((1, 16, 2), (6, 24, 1), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 64, 1), (6, 64, 1))

    def __init__(self):
        super().__init__()
        blocks, cin = [conv_bn(1, 16, 3)], 16
        for expand, cout, stride in self.CONFIG:
            blocks.append(InvertedResidual(cin, cout, stride, expand))
            cin = cout
        self.features = nn.Sequential(*blocks, conv_bn(cin, 256, 1), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class InceptionBlock(nn.Module):
    """Inception-like block: 1x1, 1x1->3x3, maxpool->1x1 (and optional avgpool->1x1) branches, Concat."""

    def __init__(self, cin, c1, c3r, c3, cmax, cavg=0):
        super().__init__()
        self.branches = nn.ModuleList([
            conv_bn(cin, c1, 1),
            nn.Sequential(conv_bn(cin, c3r, 1), conv_bn(c3r, c3, 3)),
            nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(cin, cmax, 1)),
        ])
        if cavg:
            self.branches.append(nn.Sequential(nn.AvgPool2d(3, 1, 1), conv_bn(cin, cavg, 1)))
        self.out_channels = c1 + c3 + cmax + cavg

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


class BranchNet(nn.Module):
    """Inception-like net: stem, Concat-joined blocks with maxpool downsampling, GAP, fc."""

    def __init__(self):
        super().__init__()
        a = InceptionBlock(32, 16, 16, 32, 16)
        b = InceptionBlock(a.out_channels, 32, 32, 48, 16, 16)
        c = InceptionBlock(b.out_channels, 48, 48, 64, 32)
        self.features = nn.Sequential(
            conv_bn(1, 32, 3), nn.MaxPool2d(2), a, b, nn.MaxPool2d(2), c, nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(c.out_channels, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


# name -> (class, default epochs, max lr, description)
ZOO = {
    "lenet": (LeNet, 8, 0.05, "LeNet-5, feed-forward (conv5x5 6/16, fc 120/84/10)"),
    "resnet": (ResNet20, 10, 0.15, "ResNet-20 style, BasicBlocks 16/32/64, Add joins"),
    "mobilenet": (MobileNetV2, 10, 0.15,
                  "MobileNetV2 style, 7 inverted residual blocks, depthwise, plain ReLU, Add joins"),
    "branchnet": (BranchNet, 6, 0.15, "Inception-like, 3 blocks of 3-4 branches joined by Concat"),
}


def augment(x, gen, pad=2):
    """Random crop (zero-pixel padding of ``pad``) and horizontal flip of a normalized batch."""
    n, _, h, w = x.shape
    bg = -datasets.MEAN / datasets.STD
    xp = F.pad(x, (pad,) * 4, value=bg)
    dy, dx = (torch.randint(0, 2 * pad + 1, (n,), generator=gen) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    x = xp[torch.arange(n)[:, None, None], 0, rows, cols][:, None]
    flip = torch.rand(n, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def train(model, x, y, epochs, max_lr, seed, batch=128):
    """SGD (nesterov, wd 5e-4) with a one-cycle LR schedule, random crop + flip augmentation.

    Runs in channels-last memory format, about twice as fast on CPU.
    """
    model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    steps = (len(x) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, epochs=epochs, steps_per_epoch=steps)
    for epoch in range(epochs):
        model.train()
        perm, total, t0 = torch.randperm(len(x), generator=gen), 0.0, time.time()
        for i in range(steps):
            idx = perm[i * batch:(i + 1) * batch]
            xb = augment(x[idx], gen).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch + 1}/{epochs} loss {total / len(x):.4f} ({time.time() - t0:.0f} s)",
              flush=True)


def export(model, path):
    """Export in eval mode (BN folded) to ONNX opset 17, dynamic batch, then check the op set."""
    model.eval().to(memory_format=torch.contiguous_format)
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    ops = sorted({n.op_type for n in proto.graph.node})
    bad = set(ops) - ALLOWED_OPS
    if bad:
        raise RuntimeError(f"{path}: exported graph uses unsupported ops {sorted(bad)}")
    return ops


def onnx_accuracy(path, model, x, y, batch=500):
    """Test accuracy of the exported file with onnxruntime; checks it matches torch on a batch."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {"input": x[i:i + batch]})[0]
                             for i in range(0, len(x), batch)])
    with torch.no_grad():
        ref = model(torch.from_numpy(x[:batch])).numpy()
    err = np.abs(logits[:batch] - ref).max()
    if not err <= 1e-3 * max(1.0, np.abs(ref).max()):
        raise RuntimeError(f"{path}: onnxruntime differs from torch by {err}")
    return float((logits.argmax(1) == y).mean())


def update_manifest(name, entry):
    """Set one model's entry in models/manifest.json, keeping the others (re-read each time,
    so several runs with different ``--models`` can share the file)."""
    path = os.path.join(MODELS_DIR, "manifest.json")
    manifest = {}
    if os.path.exists(path):
        with open(path) as f:
            manifest = json.load(f)
    manifest[name] = entry
    with open(path, "w") as f:
        json.dump(dict(sorted(manifest.items())), f, indent=2)
        f.write("\n")


def main():
    """Parse options, train and export each requested model, update the manifest."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=list(ZOO), default=list(ZOO))
    ap.add_argument("--epochs", type=int, help="override every model's default epoch count")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", help="Fashion-MNIST idx dir (default: Debian package)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    xtr, ytr = datasets.load_fashion_mnist("train", args.data)
    xte, yte = datasets.load_fashion_mnist("test", args.data)
    if len(xtr) < 60000:
        raise SystemExit(f"full train split needed, got {len(xtr)} images from "
                         f"{datasets.data_source(args.data)}")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for name in args.models:
        cls, epochs, max_lr, description = ZOO[name]
        epochs = args.epochs or epochs
        torch.manual_seed(args.seed)
        model = cls()
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params} params, {epochs} epochs", flush=True)
        t0 = time.time()
        train(model, xtr_t, ytr_t, epochs, max_lr, args.seed)
        seconds = time.time() - t0
        path = os.path.join(MODELS_DIR, f"{name}.onnx")
        ops = export(model, path)
        acc = onnx_accuracy(path, model, xte, yte)
        print(f"{name}: accuracy {acc:.4f}, {seconds:.0f} s, ops {ops}", flush=True)
        update_manifest(name, {
            "float_accuracy": round(acc, 4), "params": params, "epochs": epochs,
            "input_shape": [1, 28, 28], "mean": datasets.MEAN, "std": datasets.STD,
            "description": description, "train_seconds": round(seconds), "seed": args.seed,
            "ops": ops,
        })


if __name__ == "__main__":
    main()
