"""Training loops: standard and L2 PGD adversarial training (Madry et al.), fully seeded."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aegis_torch.attack import pgd_l2


@dataclass
class TrainConfig:
    """Hyper-parameters. ``adv_eps == 0`` means standard training."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    adv_eps: float = 0.5
    adv_steps: int = 5
    seed: int = 0
    device: str = "cpu"
    log_every: int = 100


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.mkldnn.deterministic = True


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, log=print) -> float:
    """Train ``model`` in place on float images ``x`` / labels ``y`` with Adam; returns seconds taken.

    Each epoch visits a seeded permutation; with ``adv_eps > 0`` every batch is replaced by its L2 PGD
    adversarial version (``adv_steps`` steps of 2.5 eps / steps, random start).
    """
    seed_everything(cfg.seed)
    model.to(cfg.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    total_steps = cfg.epochs * ((len(x) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total_steps, 1))
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    start = time.perf_counter()
    step = 0
    for epoch in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(len(x)))
        run_loss, run_acc, n = 0.0, 0.0, 0
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            xb, yb = xt[idx].to(cfg.device), yt[idx].to(cfg.device)
            if cfg.adv_eps > 0:
                xb = pgd_l2(model, xb, yb, cfg.adv_eps, cfg.adv_steps, generator=gen)
            model.train()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += float(loss.detach()) * len(yb)
            run_acc += float((out.argmax(1) == yb).sum())
            n += len(yb)
            if cfg.log_every and step % cfg.log_every == 0:
                log(
                    f"epoch {epoch} step {step}/{total_steps} loss {run_loss / n:.4f} "
                    f"train-acc {run_acc / n:.4f} {time.perf_counter() - start:.0f}s"
                )
        log(
            f"epoch {epoch} done: loss {run_loss / max(n, 1):.4f} train-acc {run_acc / max(n, 1):.4f} "
            f"{time.perf_counter() - start:.0f}s"
        )
    return time.perf_counter() - start
