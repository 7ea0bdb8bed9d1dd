"""Invisible adversarial trigger: a targeted universal adversarial perturbation computed on a clean model."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aegis_torch.triggers import Trigger


def targeted_uap(
    model: nn.Module,
    x: np.ndarray,
    target: int,
    intensity: float,
    iters: int = 100,
    batch: int = 250,
    lr: float = 0.01,
    seed: int = 0,
) -> Trigger:
    """One perturbation ``delta`` (``|delta| <= intensity`` per pixel) pushing many images toward ``target``.

    Signed-gradient descent of the targeted cross-entropy over seeded mini-batches of ``x`` (float, [0, 1]).
    The trigger stores ``pattern = delta / intensity`` (values in [-1, 1]) so that applying it adds ``delta``.
    """
    if not 0.0 < intensity <= 1.0:
        raise ValueError(f"intensity {intensity} outside (0, 1]")
    model.eval()
    rng = np.random.default_rng(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    delta = torch.zeros(xt.shape[1:], requires_grad=True)
    tgt = torch.full((batch,), target, dtype=torch.int64)
    for _ in range(iters):
        idx = torch.from_numpy(rng.choice(len(xt), size=min(batch, len(xt)), replace=False))
        xb = (xt[idx] + delta).clamp(0, 1)
        loss = F.cross_entropy(model(xb), tgt[: len(idx)])
        (g,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= lr * g.sign()
            delta.clamp_(-intensity, intensity)
    pattern = (delta.detach() / intensity).numpy().astype(np.float32)
    return Trigger("adversarial", "pattern", tuple(x.shape[1:]), pattern=pattern, intensity=intensity, target=target)
