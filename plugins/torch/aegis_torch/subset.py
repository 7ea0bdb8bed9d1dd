"""Seeded per-class subsets of an IDX dataset (the committed MNIST fixture), written as upstream-named IDX gz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aegis_torch.data import DataError, Dataset, write_idx


def per_class(ds: Dataset, per_class: int, seed: int) -> Dataset:
    """``per_class`` images of every class, drawn without replacement (seeded), in a seeded shuffled order."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(ds.labels):
        idx = np.flatnonzero(ds.labels == c)
        if len(idx) < per_class:
            raise DataError(f"class {c} has {len(idx)} images, fewer than {per_class} requested")
        picks.append(rng.choice(idx, size=per_class, replace=False))
    order = rng.permutation(np.concatenate(picks))
    return Dataset(ds.images[order], ds.labels[order], ds.classes)


def write_mnist(out: str | Path, train: Dataset, test: Dataset) -> list[Path]:
    """Write the four upstream-named IDX gz files (single-channel images only)."""
    return _write(out, (("train", train), ("t10k", test)))


def write_held_out(out: str | Path, ds: Dataset) -> list[Path]:
    """Write one IDX pair, ``heldout-images-idx3-ubyte.gz`` and ``heldout-labels-idx1-ubyte.gz``: a small clean
    set as a gate has it. ``aegis-audit --data OUT/heldout-images-idx3-ubyte.gz`` reads it for every role (the
    seed images and the test images alike)."""
    return _write(out, (("heldout", ds),))


def _write(out: str | Path, parts) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for prefix, ds in parts:
        if ds.images.shape[1] != 1:
            raise DataError(f"IDX subsets need single-channel images, got {ds.images.shape[1]} channels")
        for kind, arr in (("images-idx3", ds.images[:, 0]), ("labels-idx1", ds.labels.astype(np.uint8))):
            p = out / f"{prefix}-{kind}-ubyte.gz"
            write_idx(p, arr)
            written.append(p)
    return written
