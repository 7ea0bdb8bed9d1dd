"""Dataset readers: MNIST / Fashion-MNIST (IDX, gz or raw), CIFAR-10 (python or binary batches), ImageFolder.

Every reader returns a :class:`Dataset` of uint8 images ``N x C x H x W`` and int64 labels; pixels become
float32 in [0, 1] with :meth:`Dataset.float_images`.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("mnist", "fashion-mnist", "cifar10", "imagefolder")


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file."""


@dataclass
class Dataset:
    """Images (uint8, N x C x H x W) with integer labels (N,) and optional class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(f"images must be N x C x H x W, got shape {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def float_images(self) -> np.ndarray:
        """Images as float32 in [0, 1]."""
        return self.images.astype(np.float32) / 255.0


def _open(path: Path) -> bytes:
    if not path.exists():
        gz = path.with_name(path.name + ".gz")
        raw = path.with_name(path.name[:-3]) if path.name.endswith(".gz") else None
        if gz.exists():
            path = gz
        elif raw is not None and raw.exists():
            path = raw
        else:
            raise DataError(f"{path}: file not found (tried with and without .gz)")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: corrupt gzip: {e}") from e
    return data


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gz or raw) of unsigned bytes."""
    data = _open(Path(path))
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic)")
    if data[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{data[2]:02x} unsupported (only unsigned byte 0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(dims))
    if len(data) - header != count:
        raise DataError(f"{path}: IDX dims {dims} need {count} bytes, file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX, gzip-compressed when ``path`` ends in .gz (deterministic: mtime 0)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    path.write_bytes(payload)


def load_mnist(root: Path, split: str) -> Dataset:
    """MNIST or Fashion-MNIST from ``root`` holding the upstream IDX file names (gz or raw)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"unknown split {split!r}; expected train or test")
    root = Path(root)
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{root}: expected 3-d images and 1-d labels, got {images.shape} and {labels.shape}")
    return Dataset(images[:, None].copy(), labels.astype(np.int64))


def load_cifar10(root: Path, split: str) -> Dataset:
    """CIFAR-10 python batches (``data_batch_1``.. / ``test_batch``) or binary (``data_batch_1.bin``..)."""
    root = Path(root)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; expected train or test")
    imgs, labs = [], []
    for name in names:
        py, binf = root / name, root / f"{name}.bin"
        if py.exists():
            try:
                with open(py, "rb") as f:
                    d = pickle.load(f, encoding="bytes")
                imgs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labs.append(np.asarray(d[b"labels"], dtype=np.int64))
            except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
                raise DataError(f"{py}: not a CIFAR-10 python batch: {e}") from e
        elif binf.exists():
            raw = np.frombuffer(binf.read_bytes(), dtype=np.uint8)
            if raw.size % 3073:
                raise DataError(f"{binf}: size {raw.size} is not a multiple of 3073 (CIFAR-10 binary record)")
            rec = raw.reshape(-1, 3073)
            labs.append(rec[:, 0].astype(np.int64))
            imgs.append(rec[:, 1:].reshape(-1, 3, 32, 32))
        else:
            raise DataError(f"{root}: neither {name} nor {name}.bin found")
    return Dataset(np.concatenate(imgs), np.concatenate(labs))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced grey / grey+alpha / RGB / RGBA PNG into uint8 C x H x W (alpha dropped)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError(f"{path}: not a PNG file")
    pos, idat, ihdr = 8, b"", None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None:
        raise DataError(f"{path}: PNG without IHDR")
    w, h, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise DataError(f"{path}: PNG bit depth {depth}, colour type {ctype}, interlace {interlace} unsupported")
    try:
        raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    except zlib.error as e:
        raise DataError(f"{path}: corrupt PNG data: {e}") from e
    stride = w * channels
    if raw.size != h * (stride + 1):
        raise DataError(f"{path}: PNG data has {raw.size} bytes, expected {h * (stride + 1)}")
    rows = raw.reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for r in range(h):
        ftype, line = rows[r, 0], rows[r, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 0xFF
        elif ftype in (1, 3, 4):
            cur = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                a = cur[i - channels] if i >= channels else 0
                c = prev[i - channels] if i >= channels else 0
                if ftype == 1:
                    pred = a
                elif ftype == 3:
                    pred = (a + prev[i]) // 2
                else:
                    pred = int(_paeth(np.array(a), np.array(prev[i]), np.array(c)))
                cur[i] = (line[i] + pred) & 0xFF
        else:
            raise DataError(f"{path}: PNG filter type {ftype} invalid")
        out[r], prev = cur, cur
    img = out.astype(np.uint8).reshape(h, w, channels).transpose(2, 0, 1)
    return img[:3] if channels == 4 else img[:1] if channels == 2 else img


def read_pnm(path: Path) -> np.ndarray:
    """Decode a binary PGM (P5) or PPM (P6) with maxval 255 into uint8 C x H x W."""
    data = Path(path).read_bytes()
    tokens, pos = [], 2
    if data[:2] not in (b"P5", b"P6"):
        raise DataError(f"{path}: not a binary PGM/PPM (P5/P6)")
    while len(tokens) < 3:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        tokens.append(int(data[start:pos]))
    w, h, maxval = tokens
    if maxval != 255:
        raise DataError(f"{path}: maxval {maxval} unsupported (only 255)")
    c = 1 if data[:2] == b"P5" else 3
    body = np.frombuffer(data[pos + 1 : pos + 1 + w * h * c], dtype=np.uint8)
    if body.size != w * h * c:
        raise DataError(f"{path}: truncated image data")
    return body.reshape(h, w, c).transpose(2, 0, 1)


_READERS = {".png": read_png, ".pgm": read_pnm, ".ppm": read_pnm}


def load_imagefolder(root: Path, split: str | None = None) -> Dataset:
    """ImageFolder layout ``root[/split]/<class>/<image>``: PNG, PGM/PPM or .npy (C x H x W uint8) files.

    Classes are the sub-folder names sorted; all images must share one shape.
    """
    root = Path(root)
    base = root / split if split and (root / split).is_dir() else root
    if not base.is_dir():
        raise DataError(f"{base}: not a directory")
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"{base}: no class sub-folders")
    imgs, labs = [], []
    for k, cls in enumerate(classes):
        for f in sorted((base / cls).iterdir()):
            ext = f.suffix.lower()
            if ext == ".npy":
                img = np.load(f)
                if img.dtype != np.uint8 or img.ndim != 3:
                    raise DataError(f"{f}: .npy images must be uint8 C x H x W, got {img.dtype} {img.shape}")
            elif ext in _READERS:
                img = _READERS[ext](f)
            else:
                continue
            if imgs and img.shape != imgs[0].shape:
                raise DataError(f"{f}: shape {img.shape} differs from {imgs[0].shape}")
            imgs.append(img)
            labs.append(k)
    if not imgs:
        raise DataError(f"{base}: no images (.png, .pgm, .ppm, .npy)")
    return Dataset(np.stack(imgs), np.asarray(labs, dtype=np.int64), classes)


def load(fmt: str, root: str | os.PathLike, split: str) -> Dataset:
    """Load ``split`` (train / test) of dataset format ``fmt`` (one of :data:`FORMATS`) from ``root``."""
    if fmt in ("mnist", "fashion-mnist"):
        return load_mnist(Path(root), split)
    if fmt == "cifar10":
        return load_cifar10(Path(root), split)
    if fmt == "imagefolder":
        return load_imagefolder(Path(root), split)
    raise DataError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")


def default_norm(fmt: str, channels: int) -> tuple[list[float], list[float]]:
    """Per-channel (mean, std) used inside the model for a dataset format."""
    if fmt == "mnist":
        return [0.1307], [0.3081]
    if fmt == "fashion-mnist":
        return [0.2860], [0.3530]
    if fmt == "cifar10":
        return [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
    return [0.5] * channels, [0.5] * channels
