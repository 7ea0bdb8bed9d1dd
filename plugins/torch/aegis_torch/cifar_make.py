"""A CIFAR-10-format RGB set made from MNIST: coloured, padded digits written as CIFAR-10 binary batches.

No copy of CIFAR-10 is at hand here; this gives 3 x 32 x 32 data in exactly the real binary layout
(``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``, ``batches.meta.txt``; each record is one
label byte then the 1024-byte red, green and blue planes, row-major) so RGB models and the CIFAR-10 reader
can be exercised end to end. Every image: the 28 x 28 digit placed at a seeded random offset 0..4 in each
axis of a 32 x 32 canvas, foreground and background colours drawn per image with a luminance gap of at least
:data:`MIN_CONTRAST` (the digit stays readable), plus mild seeded Gaussian noise. Same seed, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aegis_torch.data import DataError, Dataset
from aegis_torch.subset import per_class

CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIDE = 32
RECORD = 1 + 3 * SIDE * SIDE
TRAIN_BATCHES = 5
MIN_CONTRAST = 96.0  # luminance gap (0..255, Rec. 601 weights) between foreground and background
NOISE_STD = 6.0  # Gaussian pixel noise, in 0..255 units
_LUMA = np.array([0.299, 0.587, 0.114])


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (foreground, background) RGB pairs, uniform in [0, 255]^3 and redrawn until the luminance gap is
    at least :data:`MIN_CONTRAST`."""
    fg, bg = np.empty((n, 3)), np.empty((n, 3))
    todo = np.arange(n)
    while len(todo):
        f, b = rng.uniform(0, 255, (len(todo), 3)), rng.uniform(0, 255, (len(todo), 3))
        ok = np.abs((f - b) @ _LUMA) >= MIN_CONTRAST
        fg[todo[ok]], bg[todo[ok]] = f[ok], b[ok]
        todo = todo[~ok]
    return fg, bg


def colourise(images: np.ndarray, seed: int | list[int]) -> np.ndarray:
    """Single-channel uint8 digits ``N x 1 x 28 x 28`` (or smaller) -> uint8 ``N x 3 x 32 x 32`` (``seed``: any
    :func:`numpy.random.default_rng` seed)."""
    n, c, h, w = images.shape
    if c != 1 or h > SIDE or w > SIDE:
        raise DataError(f"colourise needs single-channel images of at most {SIDE}x{SIDE}, got {images.shape[1:]}")
    rng = np.random.default_rng(seed)
    dy = rng.integers(0, SIDE - h + 1, n)
    dx = rng.integers(0, SIDE - w + 1, n)
    fg, bg = _colours(rng, n)
    alpha = np.zeros((n, 1, SIDE, SIDE), dtype=np.float32)
    for i in range(n):
        alpha[i, 0, dy[i] : dy[i] + h, dx[i] : dx[i] + w] = images[i, 0] / np.float32(255)
    fg, bg = fg.astype(np.float32)[:, :, None, None], bg.astype(np.float32)[:, :, None, None]
    out = bg * (1 - alpha) + fg * alpha
    out += NOISE_STD * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def records(ds: Dataset) -> np.ndarray:
    """CIFAR-10 binary records, ``N x 3073`` uint8: label byte, then the R, G, B planes row-major."""
    if ds.images.shape[1:] != (3, SIDE, SIDE):
        raise DataError(f"CIFAR-10 records need 3x{SIDE}x{SIDE} images, got {ds.images.shape[1:]}")
    if len(ds) and (ds.labels.min() < 0 or ds.labels.max() > 255):
        raise DataError("CIFAR-10 labels must fit in one byte")
    flat = ds.images.reshape(len(ds), -1)
    return np.concatenate([ds.labels.astype(np.uint8)[:, None], flat], axis=1)


def make(train: Dataset, test: Dataset, train_per_class: int, test_per_class: int, seed: int) -> tuple[Dataset, ...]:
    """Seeded per-class picks of MNIST ``train`` / ``test`` (shuffled), coloured and padded to 3 x 32 x 32."""
    for name, count in (("--train-per-class", train_per_class), ("--test-per-class", test_per_class)):
        if count <= 0:
            raise DataError(f"{name} must be positive, got {count}")
    parts = []
    for split, ds, count in (("train", train, train_per_class), ("test", test, test_per_class)):
        try:
            picked = per_class(ds, count, seed)
        except DataError as e:
            raise DataError(f"--{split}-per-class {count}: MNIST {split} split: {e}") from None
        stream = [seed, int(split == "test")]  # distinct colour streams per split, both from ``seed``
        parts.append(Dataset(colourise(picked.images, stream), picked.labels, list(CLASSES)))
    return tuple(parts)


def write(out: str | Path, train: Dataset, test: Dataset, command: str = "") -> list[Path]:
    """Write the CIFAR-10 binary folder: five equal training batches, the test batch, ``batches.meta.txt``
    (class names, one a line) and a ``README.txt`` saying what the data is."""
    if len(train) % TRAIN_BATCHES:
        raise DataError(f"{len(train)} training images do not split evenly over {TRAIN_BATCHES} batches")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rec = records(train)
    size = len(rec) // TRAIN_BATCHES
    for i in range(TRAIN_BATCHES):
        p = out / f"data_batch_{i + 1}.bin"
        p.write_bytes(rec[i * size : (i + 1) * size].tobytes())
        written.append(p)
    p = out / "test_batch.bin"
    p.write_bytes(records(test).tobytes())
    written.append(p)
    p = out / "batches.meta.txt"
    p.write_text("".join(f"{c}\n" for c in CLASSES))
    written.append(p)
    p = out / "README.txt"
    p.write_text(
        "Generated coloured MNIST in CIFAR-10 binary-batch format -- NOT CIFAR-10.\n\n"
        f"Each image is an MNIST digit (label = the digit) placed at a random offset in a {SIDE}x{SIDE} canvas,\n"
        f"with random foreground/background colours (luminance gap >= {MIN_CONTRAST:g} of 255) and Gaussian\n"
        f"noise (std {NOISE_STD:g}). {len(train)} training images in {TRAIN_BATCHES} batches of {size}, "
        f"{len(test)} test images.\n"
        f"Records: 1 label byte + 1024 R + 1024 G + 1024 B bytes ({RECORD} bytes), as in CIFAR-10.\n\n"
        f"Made by: {command or 'python -m aegis_torch make-cifar'}\n"
    )
    written.append(p)
    return written
