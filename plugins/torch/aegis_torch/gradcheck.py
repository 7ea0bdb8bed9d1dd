"""Gradient fixtures for the Rust engine: float64 PyTorch autograd dCE/dx of a few inputs, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def compute(model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict:
    """Logits, per-example cross-entropy and d(sum of CE)/dx, all in float64 (model copied with ``.double()``).

    Summing over the batch makes each example's gradient its own.
    """
    m = _double_copy(model)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64)).requires_grad_(True)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    logits = m(xt)
    loss = F.cross_entropy(logits, yt, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    return {
        "shape": list(x.shape),
        "x": [float(v) for v in np.asarray(x, dtype=np.float32).ravel()],
        "y": [int(v) for v in y],
        "logits": [float(v) for v in logits.detach().numpy().ravel()],
        "loss": [float(v) for v in loss.detach().numpy()],
        "grad": [float(v) for v in grad.numpy().ravel()],
    }


def _double_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).cpu().double().eval()


def write(path: str | Path, model_file: str, model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict:
    """Write ``{"model": model_file, ...compute()}`` to ``path``."""
    d = {"model": model_file, **compute(model, x, y)}
    Path(path).write_text(json.dumps(d))
    return d
