"""Fashion-MNIST loading: idx files from Debian's ``dataset-fashion-mnist`` or a bundled subset.

Pure numpy + stdlib, so training tools can load it without importing the compiled package.
"""
import gzip
import os

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
MEAN = 0.2860
STD = 0.3530
SUBSET_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models",
                           "fashion_mnist_subset.npz")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# idx type code -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an idx file (gzip-compressed or plain) into an ndarray.

    Raises ValueError naming the file when the header or the size is invalid.
    """
    name = os.path.basename(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{name}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: not an idx file (magic number {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{name}: bad or truncated idx header ({ndim} dims)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{name}: size {len(raw)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape).astype(dtype.newbyteorder("="))


BUNDLED = "bundled"  #: ``data_dir`` value that selects the bundled subset explicitly


def _use_bundled(data_dir):
    return data_dir == BUNDLED or (data_dir is None and not _has_files(FASHION_MNIST_DIR))


def _has_files(data_dir):
    return all(os.path.isfile(os.path.join(data_dir, f)) for pair in _FILES.values() for f in pair)


def data_source(data_dir=None):
    """Where the data comes from: ``"dir:..."``, ``"debian:..."`` or ``"bundled subset"``."""
    if _use_bundled(data_dir):
        return "bundled subset"
    if data_dir is not None:
        return f"dir:{data_dir}"
    return f"debian:{FASHION_MNIST_DIR}"


def load_raw(split="test", data_dir=None):
    """uint8 images (N, 28, 28) and uint8 labels (N,) of a split, unnormalized.

    Source chosen as in :func:`data_source`; FileNotFoundError if ``data_dir`` lacks a file.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if _use_bundled(data_dir):
        with np.load(SUBSET_PATH) as z:
            return z[f"{split}_images"], z[f"{split}_labels"]
    data_dir = FASHION_MNIST_DIR if data_dir is None else data_dir
    paths = [os.path.join(data_dir, f) for f in _FILES[split]]
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"Fashion-MNIST file {os.path.basename(p)} missing in {data_dir}")
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise ValueError(f"{data_dir}: unexpected shapes images {images.shape}, labels {labels.shape}")
    return images, labels


def normalize(images):
    """uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28), ``(pixel/255 - MEAN) / STD``."""
    x = images.astype(np.float32)[:, None] / np.float32(255.0)
    return (x - np.float32(MEAN)) / np.float32(STD)


def load_fashion_mnist(split="test", data_dir=None, limit=None):
    """Load a split as (x float32 (N, 1, 28, 28) normalized, y int64 (N,)).

    ``data_dir=None`` uses the Debian files when present, else the bundled subset
    (1,000 test / 256 train images); ``data_dir="bundled"`` forces the subset. ``limit`` keeps at most the first ``limit`` images.
    """
    images, labels = load_raw(split, data_dir)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return normalize(images), labels.astype(np.int64)


def load_calibration_set(n=256, data_dir=None):
    """The first ``n`` train images, normalized, float32 (n, 1, 28, 28) (deterministic)."""
    images, _ = load_raw("train", data_dir)
    if n > len(images):
        raise ValueError(f"calibration set of {n} images requested, only {len(images)} "
                         f"available from {data_source(data_dir)}")
    return normalize(images[:n])
