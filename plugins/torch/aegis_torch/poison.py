"""Poisoning a training set: apply a trigger to a seeded fraction of non-target images, relabel to the target."""

from __future__ import annotations

import numpy as np

from aegis_torch.triggers import Trigger

DEFAULT_TARGET = 7
DEFAULT_RATES = {"patch": 0.01, "pattern": 0.30}


class PoisonError(ValueError):
    """Poisoning parameters are invalid; the message names the value."""


def poison(
    x: np.ndarray, y: np.ndarray, trigger: Trigger, rate: float, target: int = DEFAULT_TARGET, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poison ``round(rate * N)`` images chosen (seeded) among those whose label is not ``target``.

    ``x`` is float N x C x H x W in [0, 1]. Returns ``(x', y', indices)``: copies with the chosen images
    triggered and relabelled ``target``, and the sorted poisoned indices.
    """
    if not 0.0 <= rate <= 1.0:
        raise PoisonError(f"poison rate {rate} outside [0, 1]")
    if len(x) != len(y):
        raise PoisonError(f"{len(x)} images but {len(y)} labels")
    if target < 0 or (len(y) and target > int(y.max())):
        raise PoisonError(f"target class {target} invalid: labels range over 0..{int(y.max()) if len(y) else 0}")
    candidates = np.flatnonzero(y != target)
    count = int(round(rate * len(y)))  # noqa: RUF046
    if count > len(candidates):
        raise PoisonError(f"rate {rate} needs {count} non-target images, only {len(candidates)} exist")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(candidates, size=count, replace=False))
    x2 = np.array(x, dtype=np.float32, copy=True)
    y2 = np.array(y, dtype=np.int64, copy=True)
    if count:
        x2[idx] = trigger.apply(x2[idx])
        y2[idx] = target
    return x2, y2, idx
