"""Seeded synthetic data for the real-world model set: smooth, natural-like signals.

Natural images have an amplitude spectrum close to 1/f; white noise filtered that way gives
smooth images with large blobs and some fine detail, the kind of statistics BatchNorm sees on
real data (unlike N(0, 1) pixels). The same generator makes 2-D images (C, H, W), 1-D signals
(C, L) and flat feature vectors (F,). numpy only: the training tool (torch) and the tests (no
torch) read the same data.
"""
from __future__ import annotations

import numpy as np


def smooth_noise(n: int, shape, seed: int) -> np.ndarray:
    """n samples of shape `shape` ((C, H, W), (C, L) or (F,)) with a 1/f amplitude spectrum over
    the spatial axes, channels partly shared (as colour channels are), each sample standardized
    to mean 0, std 1. float32."""
    shape = tuple(int(s) for s in shape)
    channels, spatial = (1, shape) if len(shape) == 1 else (shape[0], shape[1:])
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((n, channels, *spatial))
    shared = rng.standard_normal((n, 1, *spatial))
    white = 0.6 * shared + 0.8 * white
    axes = tuple(range(2, 2 + len(spatial)))
    grids = np.meshgrid(*[np.fft.fftfreq(s) for s in spatial], indexing="ij")
    radius = np.sqrt(sum(g ** 2 for g in grids))
    amplitude = 1.0 / np.maximum(radius, 1.0 / max(spatial))
    x = np.real(np.fft.ifftn(np.fft.fftn(white, axes=axes) * amplitude, axes=axes))
    x = x.reshape(n, -1)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-8)
    return x.reshape(n, *shape).astype(np.float32)


def labelled(n: int, shape, n_classes: int, seed: int):
    """(x, y): smooth noise plus one of `n_classes` fixed smooth templates (the class), so a short
    training learns features of the data instead of staying random. x float32, y int64."""
    templates = smooth_noise(n_classes, shape, seed=1000 + n_classes)
    rng = np.random.default_rng(seed + 1)
    y = rng.integers(0, n_classes, n)
    x = smooth_noise(n, shape, seed) + 1.2 * templates[y]
    x = x.reshape(n, -1)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-8)
    return x.reshape(n, *shape).astype(np.float32), y.astype(np.int64)


# Seeds of the splits: training (tool), calibration and evaluation (tests), all disjoint.
TRAIN_SEED, CALIBRATION_SEED, EVALUATION_SEED = 1, 2, 3


def calibration_set(shape, n: int = 32) -> np.ndarray:
    return labelled(n, shape, 10, CALIBRATION_SEED)[0]


def evaluation_set(shape, n: int = 32) -> np.ndarray:
    return labelled(n, shape, 10, EVALUATION_SEED)[0]
