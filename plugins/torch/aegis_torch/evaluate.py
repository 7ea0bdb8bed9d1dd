"""Metrics: clean accuracy, adversarial accuracy (L2 PGD) and attack success rate of a trigger."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aegis_torch.attack import pgd_l2
from aegis_torch.triggers import Trigger


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch: int = 500, device: str = "cpu") -> np.ndarray:
    """Arg-max predictions for float images ``x``."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        out.append(model(torch.from_numpy(x[i : i + batch]).to(device)).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def clean_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> float:
    """Fraction of ``x`` classified as ``y``."""
    return float((predict(model, x, device=device) == y).mean())


def adversarial_accuracy(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    eps: float = 0.5,
    steps: int = 20,
    seed: int = 0,
    batch: int = 500,
    device: str = "cpu",
) -> float:
    """Accuracy under untargeted L2 PGD (``eps``, ``steps``, step 2.5 eps / steps, seeded random start)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(x[i : i + batch]).to(device)
        yb = torch.from_numpy(y[i : i + batch]).to(device)
        adv = pgd_l2(model, xb, yb, eps, steps, generator=g)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == yb).sum())
    return correct / max(len(x), 1)


def attack_success_rate(
    model: nn.Module, x: np.ndarray, y: np.ndarray, trigger: Trigger, target: int, device: str = "cpu"
) -> float:
    """Fraction of triggered test images whose true label is not ``target`` that are classified ``target``."""
    keep = y != target
    if not keep.any():
        return float("nan")
    return float((predict(model, trigger.apply(x[keep]), device=device) == target).mean())
