"""Data domains of the benchmark derived from MNIST (issue 29): generated deterministically from a seed into a
folder, in the formats ``aegis-audit --data`` reads.

- ``rgb_digits`` (3 x 32 x 32, 10 classes, CIFAR-10 binary batches ``data_batch_1..5.bin`` + ``test_batch.bin``):
  an MNIST digit rescaled to a random side of :data:`RGB_SIZE` pixels, placed at a random position of a
  32 x 32 canvas over a coloured, textured background (two random colours up to :data:`RGB_TEXTURE_SPREAD`
  apart mixed as smooth colour noise, stripes at a random angle and period, or a checkerboard), drawn in a
  random colour at least :data:`RGB_MIN_CONTRAST` (of 255) away in luminance from the background under it,
  plus Gaussian pixel noise. Harder than ``make-cifar``'s coloured
  MNIST (fixed scale, flat backgrounds, contrast >= 96).
- ``digit_pairs`` (1 x 28 x 56, 100 classes, IDX ``train-images-idx3-ubyte.gz`` etc.): two MNIST digits side
  by side; the class is ``10 * left + right``, drawn uniformly over the 100 classes, each digit a random
  image of its class from the matching MNIST split.

Training images come from MNIST's training split and test images from its test split only. Same seed, same
bytes (NumPy's PCG64 streams, PyTorch's CPU resampling, gzip with mtime 0).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from aegis_torch import data

RGB_SIDE = 32
RGB_SIZE = (18, 30)  # the digit's side after rescaling (MNIST's is 28)
RGB_MIN_CONTRAST = 80.0  # luminance gap, 0..255 (Rec. 601), between the digit's colour and the background
RGB_TEXTURE_SPREAD = 60.0  # the texture's second colour differs from its first by at most this per channel
RGB_NOISE_STD = 8.0
RGB_BATCHES = 5
PAIRS_WIDTH = 56
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class DomainError(ValueError):
    """A domain cannot be generated or its files are inconsistent; the message names the file or value."""


# ------------------------------------------------------------------------------------------------ rgb_digits


def _background(rng: np.random.Generator, side: int) -> tuple[str, np.ndarray]:
    """One textured RGB background, float32 3 x side x side in 0..255: a base colour and a second colour
    :data:`RGB_TEXTURE_SPREAD` away at most per channel, mixed as smooth colour noise, stripes or a checkerboard."""
    kind = int(rng.integers(0, 3))
    a = rng.uniform(0, 255, 3).astype(np.float32)
    b = np.clip(a + rng.uniform(-RGB_TEXTURE_SPREAD, RGB_TEXTURE_SPREAD, 3), 0, 255).astype(np.float32)
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    if kind == 0:  # smooth colour noise: a coarse random grid of mixing weights, bilinearly upsampled
        cells = int(rng.choice([2, 3, 4, 6, 8]))
        coarse = torch.from_numpy(rng.uniform(0, 1, (1, 3, cells, cells)).astype(np.float32))
        t = F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=True)[0].numpy()
        name = "noise"
    elif kind == 1:  # stripes: a sinusoid at a random angle and period
        angle, period, phase = rng.uniform(0, np.pi), rng.uniform(4, 12), rng.uniform(0, 2 * np.pi)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period + phase)
        name = "stripes"
    else:  # checkerboard of random cell size and phase
        cell = int(rng.integers(2, 9))
        oy, ox = int(rng.integers(0, cell)), int(rng.integers(0, cell))
        t = (((ys + oy) // cell + (xs + ox) // cell) % 2).astype(np.float32)
        name = "checker"
    return name, a[:, None, None] * (1 - t) + b[:, None, None] * t


def _resize(digits: np.ndarray, size: int) -> np.ndarray:
    """uint8 N x 28 x 28 -> float32 N x size x size in [0, 1] (antialiased bilinear)."""
    x = torch.from_numpy(digits.astype(np.float32) / 255.0)[:, None]
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x[:, 0].clamp(0, 1).numpy()


def rgb_digits(images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> data.Dataset:
    """``count`` images of the ``rgb_digits`` domain from MNIST ``images`` (uint8 N x 28 x 28) and ``labels``."""
    n = len(labels)
    pick = rng.permutation(n)[:count] if count <= n else rng.integers(0, n, count)
    sizes = rng.integers(RGB_SIZE[0], RGB_SIZE[1] + 1, count)
    alpha = np.zeros((count, RGB_SIDE, RGB_SIDE), dtype=np.float32)
    for s in np.unique(sizes):
        sel = np.flatnonzero(sizes == s)
        small = _resize(images[pick[sel]], int(s))
        for i, img in zip(sel, small):
            r, c = (int(v) for v in rng.integers(0, RGB_SIDE - s + 1, 2))
            alpha[i, r : r + s, c : c + s] = img
    out = np.empty((count, 3, RGB_SIDE, RGB_SIDE), dtype=np.uint8)
    for i in range(count):
        _, bg = _background(rng, RGB_SIDE)
        m = alpha[i] > 0.5
        under = float(_LUMA @ bg[:, m].mean(1)) if m.any() else float(_LUMA @ bg.reshape(3, -1).mean(1))
        while True:
            fg = rng.uniform(0, 255, 3).astype(np.float32)
            if abs(float(_LUMA @ fg) - under) >= RGB_MIN_CONTRAST:
                break
        img = bg * (1 - alpha[i]) + fg[:, None, None] * alpha[i]
        img += RGB_NOISE_STD * rng.standard_normal(img.shape).astype(np.float32)
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return data.Dataset(out, labels[pick].astype(np.int64))


def write_cifar(out: Path, train: data.Dataset, test: data.Dataset, readme: str) -> list[Path]:
    """CIFAR-10 binary batches: ``data_batch_1..5.bin`` (the training images in five equal parts),
    ``test_batch.bin``, ``batches.meta.txt``, ``README.txt``."""
    from aegis_torch import cifar_make

    if len(train) % RGB_BATCHES:
        raise DomainError(f"{len(train)} training images do not split evenly over {RGB_BATCHES} batches")
    rec = cifar_make.records(train)
    size = len(rec) // RGB_BATCHES
    paths = []
    for i in range(RGB_BATCHES):
        paths.append(out / f"data_batch_{i + 1}.bin")
        paths[-1].write_bytes(rec[i * size : (i + 1) * size].tobytes())
    paths.append(out / "test_batch.bin")
    paths[-1].write_bytes(cifar_make.records(test).tobytes())
    paths.append(out / "batches.meta.txt")
    paths[-1].write_text("".join(f"digit {k}\n" for k in range(10)))
    paths.append(out / "README.txt")
    paths[-1].write_text(readme)
    return paths


# ----------------------------------------------------------------------------------------------- digit_pairs


def digit_pairs(images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> data.Dataset:
    """``count`` 1 x 28 x 56 images: class ``c`` uniform in 0..99, left digit ``c // 10``, right ``c % 10``,
    each a random MNIST image of that digit."""
    by_digit = [np.flatnonzero(labels == k) for k in range(10)]
    if any(len(b) == 0 for b in by_digit):
        raise DomainError("digit_pairs needs MNIST images of every digit 0-9")
    order = np.argsort(labels, kind="stable")
    counts = np.array([len(b) for b in by_digit])
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    cls = rng.integers(0, 100, count)
    left = order[start[cls // 10] + rng.integers(0, counts[cls // 10])]
    right = order[start[cls % 10] + rng.integers(0, counts[cls % 10])]
    out = np.concatenate([images[left], images[right]], axis=2)[:, None]
    return data.Dataset(np.ascontiguousarray(out, dtype=np.uint8), cls.astype(np.int64))


def write_idx(out: Path, train: data.Dataset, test: data.Dataset, readme: str) -> list[Path]:
    """The four upstream-named MNIST IDX files (gzip, mtime 0) and ``README.txt``."""
    paths = []
    for prefix, ds in (("train", train), ("t10k", test)):
        paths.append(out / f"{prefix}-images-idx3-ubyte.gz")
        data.write_idx(paths[-1], ds.images[:, 0])
        paths.append(out / f"{prefix}-labels-idx1-ubyte.gz")
        data.write_idx(paths[-1], ds.labels.astype(np.uint8))
    paths.append(out / "README.txt")
    paths[-1].write_text(readme)
    return paths


# ------------------------------------------------------------------------------------------------- frontend

GENERATORS: dict[str, tuple[Callable, Callable, str]] = {
    "rgb_digits": (rgb_digits, write_cifar, "cifar10"),
    "digit_pairs": (digit_pairs, write_idx, "mnist"),
}
SHAPES = {"rgb_digits": (3, RGB_SIDE, RGB_SIDE), "digit_pairs": (1, 28, PAIRS_WIDTH)}
CLASSES = {"rgb_digits": 10, "digit_pairs": 100}


def generate(name: str, cfg: dict, mnist_root: str | Path, out: str | Path) -> list[Path]:
    """Generate domain ``name`` (configuration ``cfg``: ``generator``, ``seed``, ``train``, ``test`` counts) from
    the MNIST IDX folder ``mnist_root`` into the folder ``out``; returns the files written."""
    gen = cfg["generator"]
    if gen not in GENERATORS:
        raise DomainError(f"domain {name}: unknown generator {gen!r}; expected one of {', '.join(GENERATORS)}")
    make, write, fmt = GENERATORS[gen]
    if cfg.get("format", fmt) != fmt:
        raise DomainError(f"domain {name}: generator {gen} writes format {fmt}, the spec says {cfg['format']}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(cfg["seed"])
    parts = []
    for k, split in enumerate(("train", "test")):
        src = data.load_mnist(Path(mnist_root), split)
        rng = np.random.default_rng([seed, k])
        parts.append(make(src.images[:, 0], src.labels, int(cfg[split]), rng))
    readme = (
        f"Benchmark domain {name!r} generated from MNIST by aegis_bench.domains.{gen} "
        f"(seed {seed}, {cfg['train']} training and {cfg['test']} test images) -- derived data, NOT the real "
        f"{'CIFAR-10' if fmt == 'cifar10' else 'MNIST'}.\n"
    )
    return write(out, parts[0], parts[1], readme)


def content_sha(ds: data.Dataset) -> str:
    """The dataset hash the spec records: sha256 of the images, then the first 16 hex of the labels' sha256."""
    lab = hashlib.sha256(np.ascontiguousarray(ds.labels).tobytes()).hexdigest()[:16]
    return hashlib.sha256(np.ascontiguousarray(ds.images).tobytes()).hexdigest() + ":" + lab


def present(cfg: dict, folder: str | Path) -> bool:
    """Whether ``folder`` holds the domain's files (both splits readable)."""
    try:
        for split in ("train", "test"):
            data.load(cfg["format"], Path(folder), split)
    except data.DataError:
        return False
    return True


def ensure(name: str, cfg: dict, mnist_root: str | Path, domains_dir: str | Path, log=print) -> Path:
    """The domain's folder ``domains_dir/name``, generated first when its files are missing."""
    folder = Path(domains_dir) / name
    if not present(cfg, folder):
        log(f"domain {name}: generating {cfg['train']} + {cfg['test']} images into {folder}")
        generate(name, cfg, mnist_root, folder)
    return folder
