"""Checkpoints of zoo models: architecture, input shape, normalisation and weights in one ``.pt`` file."""

from __future__ import annotations

from pathlib import Path

import torch

from aegis_torch import models


def save(path: str | Path, model: models.Normalized, arch: str, shape, num_classes: int) -> None:
    """Save weights with what is needed to rebuild the model."""
    torch.save(
        {
            "arch": arch,
            "shape": list(shape),
            "num_classes": num_classes,
            "mean": model.normalize.mean.flatten().tolist(),
            "std": model.normalize.std.flatten().tolist(),
            "state_dict": model.state_dict(),
        },
        path,
    )


def load(path: str | Path) -> tuple[models.Normalized, dict]:
    """Rebuild a model saved by :func:`save`; returns (model in eval mode, metadata)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # torch raises several unrelated types for a file that is not a checkpoint
        raise ValueError(f"{path}: not a readable torch checkpoint: {e}") from e
    if not isinstance(ck, dict):
        raise ValueError(f"{path}: not an aegis_torch checkpoint (holds a {type(ck).__name__})")  # noqa: TRY004
    for key in ("arch", "shape", "num_classes", "mean", "std", "state_dict"):
        if key not in ck:
            raise ValueError(f"{path}: not an aegis_torch checkpoint (missing {key!r})")
    model = models.build(ck["arch"], ck["shape"], ck["num_classes"], ck["mean"], ck["std"])
    model.load_state_dict(ck["state_dict"])
    return model.eval(), ck
