"""L2 projected gradient descent (Madry et al.) on [0, 1] pixel inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def pgd_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted L2 PGD: maximise cross-entropy within ``||delta||_2 <= eps`` and ``x + delta`` in [0, 1].

    ``step_size`` defaults to ``2.5 * eps / steps``. Random start draws uniformly in direction and radius
    (seeded by ``generator``). Returns the adversarial inputs, detached.
    """
    if eps <= 0 or steps <= 0:
        return x.detach().clone()
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    was_training = model.training
    model.eval()
    x = x.detach()
    if random_start:
        d = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        r = torch.rand((x.shape[0],), generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        delta = d / _norms(d) * r.view(-1, *([1] * (x.dim() - 1))) * eps
        delta = (x + delta).clamp(0, 1) - x
    else:
        delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y)
        (g,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + alpha * g / _norms(g)
            delta = delta * (eps / _norms(delta)).clamp(max=1.0)
            delta = (x + delta).clamp(0, 1) - x
    model.train(was_training)
    return (x + delta).detach()


def translate_l2(
    model: nn.Module, x0: torch.Tensor, target: torch.Tensor, eps: float, step: float, steps: int
) -> torch.Tensor:
    """Targeted L2 PGD as AEGIS translates images toward a class: minimise cross-entropy toward ``target``
    with per-example normalised steps of length ``step`` (the gradient's norm plus 1e-10, as the Rust engine),
    projected onto ``||x - x0||_2 <= eps`` and [0, 1]; no random start. Returns the translated inputs, detached.
    """
    was_training = model.training
    model.eval()
    x0 = x0.detach()
    x = x0.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        loss = F.cross_entropy(model(x), target, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            # `norm + 1e-10`, as the Rust engine (src/attack): a saturated example's tiny gradient moves it less.
            x = x - step * g / (g.flatten(1).norm(dim=1).view(-1, *([1] * (g.dim() - 1))) + 1e-10)
            d = x - x0
            dn = _norms(d)
            x = torch.where(dn > eps, x0 + d * (eps / dn), x).clamp(0, 1)
    model.train(was_training)
    return x.detach()
