"""Trigger families of the benchmark: random parameters per model, test-time application, poisoning.

Every family draws its parameters from a NumPy generator seeded by the model's seed (:func:`build`), applies
its test-time trigger to float images N x C x H x W in [0, 1] (:meth:`Family.apply`) and poisons a training
set (:meth:`Family.poison`): ``round(rate * N)`` images whose label is not the target get the trigger and the
target label; the families that use them also add *cover* samples, drawn from the remaining images, that carry
a trigger variant and keep their true label (WaNet's noise mode, Adap-Blend's and Adap-Patch's regularisation
samples).

Families (``FAMILIES``) and their sources:

- ``badnets`` (Gu et al. 2017): one patch of random size, position and content (binary or greyscale).
- ``distributed``: several small random patches at random positions (distributed BadNets, as AEGIS tests).
- ``blend`` (Chen et al. 2017): ``(1 - alpha) x + alpha p`` with a random pattern image ``p``.
- ``wanet`` (Nguyen & Tran, ICLR'21): a smooth warp from a random k x k control grid upsampled bicubically,
  applied with ``grid_sample``; "noise mode" cover samples get the warp plus a random per-sample jitter.
- ``noise`` (invisible static, Zhong et al. 2020): ``clamp(x + a p)`` with a fixed random pattern, ``a <= 0.06``.
- ``uap``: a targeted universal adversarial perturbation computed on a separately trained clean surrogate.
- ``adap_blend`` (Qi et al., ICLR'23, Adap-Blend): a blend pattern cut into pieces, half of them masked per
  poisoned sample; cover samples carry a masked pattern and keep their label; tested with the whole pattern.
- ``adap_patch`` (Qi et al., ICLR'23, Adap-Patch): k patches; each poisoned or cover sample carries one of them,
  semi-transparent; tested with all k patches at full opacity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aegis_torch import triggers

Shape = tuple[int, int, int]


class FamilyError(ValueError):
    """A family's configuration or stored parameters are invalid; the message names the value."""


@dataclass
class Poisoned:
    """A poisoned training set: images, labels, the relabelled indices and the cover indices (label kept)."""

    x: np.ndarray
    y: np.ndarray
    poisoned: np.ndarray
    cover: np.ndarray


@dataclass
class Context:
    """What a family may need beyond its generator: the full clean training set and a logger (for ``uap``)."""

    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)
    log: Callable[[str], None] = print


# Defaults of every family's configuration: the spec's ``families:`` section may override any of these keys
# (and only these). Ranges [lo, hi] are drawn uniformly per model; ``rate`` is the poison rate.
DEFAULTS: dict[str, dict] = {
    "badnets": {"rate": [0.01, 0.05], "size": [2, 5], "grey": [0.3, 1.0]},
    "distributed": {"rate": [0.01, 0.05], "patches": [2, 4], "size": [1, 3], "grey": [0.3, 1.0]},
    "blend": {"rate": [0.05, 0.10], "alpha": [0.10, 0.20]},
    "wanet": {"rate": [0.05, 0.10], "k": 4, "s": [0.5, 1.0], "cross_ratio": 2.0, "grid_rescale": 1.0},
    "noise": {"rate": [0.30, 0.30], "amplitude": [0.04, 0.06]},
    "uap": {
        "rate": [0.05, 0.10],
        "intensity": [0.06, 0.10],
        "iters": 100,
        "batch": 250,
        "lr": 0.01,
        "surrogate": {"arch": "small_cnn", "images": 10000, "epochs": 2, "lr": 0.003, "batch_size": 128},
        "uap_images": 2000,
    },
    "adap_blend": {"rate": [0.01, 0.02], "cover_ratio": 1.0, "alpha": [0.15, 0.20], "pieces": 16, "mask_rate": 0.5},
    "adap_patch": {
        "rate": [0.01, 0.02],
        "cover_ratio": 1.0,
        "patches": 3,
        "size": [3, 4],
        "opacity": [0.5, 0.8],
        "grey": [0.3, 1.0],
    },
}
FAMILIES = tuple(DEFAULTS)
NOISE_MAX_AMPLITUDE = 0.06


def config(name: str, overrides: dict | None = None) -> dict:
    """The configuration of family ``name``: :data:`DEFAULTS` with ``overrides`` (unknown keys refused)."""
    if name not in DEFAULTS:
        raise FamilyError(f"unknown trigger family {name!r}; expected one of {', '.join(FAMILIES)}")
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS[name].items()}
    for k, v in (overrides or {}).items():
        if k not in cfg:
            raise FamilyError(f"family {name}: unknown key {k!r}; expected one of {', '.join(cfg)}")
        cfg[k] = {**cfg[k], **v} if isinstance(cfg[k], dict) and isinstance(v, dict) else v
    _check_range(name, "rate", cfg["rate"], 0.0, 1.0)
    if name == "noise":
        _check_range(name, "amplitude", cfg["amplitude"], 0.0, NOISE_MAX_AMPLITUDE)
    return cfg


def _check_range(name: str, key: str, r, lo: float, hi: float) -> None:
    if not (isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(v, (int, float)) for v in r)):
        raise FamilyError(f"family {name}: {key} must be a range [lo, hi], got {r!r}")
    if not lo <= r[0] <= r[1] <= hi:
        raise FamilyError(f"family {name}: {key} range {list(r)} must satisfy {lo} <= lo <= hi <= {hi}")


def _uniform(rng: np.random.Generator, r) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def _int_in(rng: np.random.Generator, r) -> int:
    return int(rng.integers(int(r[0]), int(r[1]) + 1))


def _r(v: float) -> float:
    """Round a drawn parameter for the card (the rounded value is the one used)."""
    return float(f"{v:.4g}")


def _choose(rng: np.random.Generator, y: np.ndarray, target: int, count: int) -> np.ndarray:
    candidates = np.flatnonzero(y != target)
    if count > len(candidates):
        raise FamilyError(f"poisoning needs {count} non-target images, only {len(candidates)} exist")
    return np.sort(rng.choice(candidates, size=count, replace=False))


def _choose_cover(rng: np.random.Generator, n: int, taken: np.ndarray, count: int) -> np.ndarray:
    free = np.setdiff1d(np.arange(n), taken)
    if count > len(free):
        raise FamilyError(f"cover samples need {count} free images, only {len(free)} exist")
    return np.sort(rng.choice(free, size=count, replace=False))


def _patch_values(rng: np.random.Generator, h: int, w: int, grey) -> tuple[str, np.ndarray]:
    """A random patch: binary (0/1, at least a third of the pixels on) or greyscale in ``grey``."""
    if rng.random() < 0.5:
        need = max(1, math.ceil(h * w / 3))
        while True:
            v = rng.integers(0, 2, size=(h, w)).astype(np.float64)
            if v.sum() >= need:
                return "binary", v
    return "grey", np.round(rng.uniform(grey[0], grey[1], size=(h, w)), 3)


def _random_pattern(rng: np.random.Generator, shape: Shape) -> tuple[str, np.ndarray]:
    """A random pattern image in [0, 1]: uniform noise, or uniform noise on a coarse grid upsampled (blocks)."""
    c, h, w = shape
    if rng.random() < 0.5:
        return "uniform", rng.random(shape, dtype=np.float32)
    cell = int(rng.choice([2, 4]))
    coarse = rng.random((c, math.ceil(h / cell), math.ceil(w / cell)), dtype=np.float32)
    return f"blocks{cell}", np.repeat(np.repeat(coarse, cell, axis=1), cell, axis=2)[:, :h, :w].copy()


class Family:
    """A trigger family instance: the drawn parameters (``params``, YAML-able), an optional array, the target."""

    name = ""
    cover_kind: str | None = None  # what the cover samples are, when the family uses them

    def __init__(self, shape: Shape, target: int, params: dict, array: np.ndarray | None = None):
        self.shape = tuple(int(v) for v in shape)
        self.target = int(target)
        self.params = params
        self.array = array
        self.check()

    def check(self) -> None:
        """Validate the stored parameters (raise :class:`FamilyError`)."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The test-time trigger on float images (C x H x W or N x C x H x W, [0, 1]); returns a new array."""
        raise NotImplementedError

    def poison_one(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The trigger as placed on the poisoned training images (default: the test-time trigger)."""
        return self.apply(x)

    def cover_one(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The trigger variant placed on cover samples (families with ``cover_kind``)."""
        raise NotImplementedError

    def cover_count(self, poisoned: int) -> int:
        return 0

    def poison(self, x: np.ndarray, y: np.ndarray, rate: float, rng: np.random.Generator) -> Poisoned:
        """Poison ``round(rate * N)`` non-target images (relabelled) and add the family's cover samples."""
        if not 0.0 <= rate <= 1.0:
            raise FamilyError(f"poison rate {rate} outside [0, 1]")
        x2 = np.array(x, dtype=np.float32, copy=True)
        y2 = np.array(y, dtype=np.int64, copy=True)
        idx = _choose(rng, y2, self.target, round(rate * len(y2)))
        cov = _choose_cover(rng, len(y2), idx, self.cover_count(len(idx)))
        if len(idx):
            x2[idx] = self.poison_one(x2[idx], rng)
            y2[idx] = self.target
        if len(cov):
            x2[cov] = self.cover_one(x2[cov], rng)
        return Poisoned(x2, y2, idx, cov)

    def schema_trigger(self) -> triggers.Trigger | None:
        """The test-time trigger in the shared YAML schema (patch / pattern), where it can be written so."""
        return None

    def _check_images(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float32, copy=True)
        if tuple(x.shape[-3:]) != self.shape:
            raise FamilyError(f"trigger {self.name} is for images {self.shape}, got {x.shape[-3:]}")
        return x


# --- patches -------------------------------------------------------------------------------------------------


class _Patches(Family):
    """Rectangles of given values replacing the pixels (all channels) at test time."""

    def _patches(self) -> list[tuple[int, int, np.ndarray]]:
        return [
            (int(p["row"]), int(p["col"]), np.asarray(p["values"], dtype=np.float32)) for p in self.params["patches"]
        ]

    def check(self) -> None:
        _, h, w = self.shape
        for i, (r, c, v) in enumerate(self._patches()):
            if v.ndim != 2 or r < 0 or c < 0 or r + v.shape[0] > h or c + v.shape[1] > w:
                raise FamilyError(f"{self.name}: patch {i} at ({r},{c}) of shape {v.shape} leaves the {h}x{w} image")
            if v.min() < 0 or v.max() > 1:
                raise FamilyError(f"{self.name}: patch {i} values outside [0, 1]")

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_images(x)
        for r, c, v in self._patches():
            x[..., r : r + v.shape[0], c : c + v.shape[1]] = v
        return x

    def schema_trigger(self) -> triggers.Trigger:
        ps = [
            triggers.Patch(r + i, c + j, 1, 1, float(v[i, j]))
            for r, c, v in self._patches()
            for i in range(v.shape[0])
            for j in range(v.shape[1])
        ]
        return triggers.Trigger(self.name, "patch", self.shape, patches=ps, target=self.target)


def _place(rng: np.random.Generator, shape: Shape, sizes: list[tuple[int, int]], gap: int = 1) -> list[tuple]:
    """Random non-overlapping positions (``gap`` pixels apart) for rectangles of ``sizes``."""
    _, h, w = shape
    for _ in range(1000):
        boxes = []
        for ph, pw in sizes:
            r, c = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
            if all(
                r + ph + gap <= r2 or r2 + ph2 + gap <= r or c + pw + gap <= c2 or c2 + pw2 + gap <= c
                for r2, c2, ph2, pw2 in boxes
            ):
                boxes.append((r, c, ph, pw))
            else:
                break
        if len(boxes) == len(sizes):
            return boxes
    raise FamilyError(f"cannot place {len(sizes)} patches in a {h}x{w} image")


class BadNets(_Patches):
    name = "badnets"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> BadNets:
        ph, pw = _int_in(rng, cfg["size"]), _int_in(rng, cfg["size"])
        ((r, c, _, _),) = _place(rng, shape, [(ph, pw)])
        kind, v = _patch_values(rng, ph, pw, cfg["grey"])
        return cls(
            shape,
            target,
            {"patches": [{"row": r, "col": c, "height": ph, "width": pw, "content": kind, "values": v.tolist()}]},
        )


class Distributed(_Patches):
    name = "distributed"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> Distributed:
        n = _int_in(rng, cfg["patches"])
        sizes = [(s, s) for s in (_int_in(rng, cfg["size"]) for _ in range(n))]
        patches = []
        for r, c, ph, pw in _place(rng, shape, sizes):
            kind, v = _patch_values(rng, ph, pw, cfg["grey"])
            patches.append({"row": r, "col": c, "height": ph, "width": pw, "content": kind, "values": v.tolist()})
        return cls(shape, target, {"patches": patches})


class AdapPatch(_Patches):
    """Adap-Patch: poisoned and cover samples each carry ONE of the k patches at opacity ``o_i`` (blended),
    the test-time trigger is all k patches at full opacity."""

    name = "adap_patch"
    cover_kind = "one patch of the k, semi-transparent, true label kept"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> AdapPatch:
        sizes = [(s, s) for s in (_int_in(rng, cfg["size"]) for _ in range(int(cfg["patches"])))]
        patches = []
        for r, c, ph, pw in _place(rng, shape, sizes, gap=2):
            kind, v = _patch_values(rng, ph, pw, cfg["grey"])
            patches.append(
                {
                    "row": r,
                    "col": c,
                    "height": ph,
                    "width": pw,
                    "content": kind,
                    "values": v.tolist(),
                    "train_opacity": _r(_uniform(rng, cfg["opacity"])),
                }
            )
        return cls(shape, target, {"patches": patches, "cover_ratio": float(cfg["cover_ratio"]), "test_opacity": 1.0})

    def cover_count(self, poisoned: int) -> int:
        return round(self.params["cover_ratio"] * poisoned)

    def _one_patch_each(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = self._check_images(x)
        ps = self.params["patches"]
        which = rng.integers(0, len(ps), size=len(x))
        for k, p in enumerate(ps):
            v = np.asarray(p["values"], dtype=np.float32)
            r, c, o = int(p["row"]), int(p["col"]), float(p["train_opacity"])
            sel = np.flatnonzero(which == k)
            region = x[sel, :, r : r + v.shape[0], c : c + v.shape[1]]
            x[sel, :, r : r + v.shape[0], c : c + v.shape[1]] = region + o * (v - region)
        return x

    poison_one = _one_patch_each
    cover_one = _one_patch_each


# --- additive and blended patterns ---------------------------------------------------------------------------


class Blend(Family):
    """Blended pattern (Chen et al.): ``x' = x + alpha (p - x)``."""

    name = "blend"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> Blend:
        alpha = _r(_uniform(rng, cfg["alpha"]))
        kind, p = _random_pattern(rng, shape)
        return cls(shape, target, {"alpha": alpha, "pattern": kind}, p)

    def check(self) -> None:
        if self.array is None or tuple(self.array.shape) != self.shape:
            raise FamilyError(f"{self.name}: pattern array must have shape {self.shape}")
        if not 0 < self.params["alpha"] <= 1:
            raise FamilyError(f"{self.name}: alpha {self.params['alpha']} outside (0, 1]")

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_images(x)
        a = np.float32(self.params["alpha"])
        return x + a * (self.array - x)


class AdapBlend(Blend):
    """Adap-Blend: the pattern is cut into ``pieces`` squares; each poisoned and each cover sample gets the
    blend through its own random mask hiding ``mask_rate`` of the pieces. Tested with the whole pattern."""

    name = "adap_blend"
    cover_kind = "blend through a random half mask, true label kept"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> AdapBlend:
        pieces = int(cfg["pieces"])
        side = math.isqrt(pieces)
        if side * side != pieces or shape[1] % side or shape[2] % side:
            raise FamilyError(f"adap_blend: {pieces} pieces must be a square grid dividing {shape[1]}x{shape[2]}")
        alpha = _r(_uniform(rng, cfg["alpha"]))
        kind, p = _random_pattern(rng, shape)
        return cls(
            shape,
            target,
            {
                "alpha": alpha,
                "test_alpha": alpha,
                "pattern": kind,
                "pieces": pieces,
                "masked_pieces": round(cfg["mask_rate"] * pieces),
                "cover_ratio": float(cfg["cover_ratio"]),
            },
            p,
        )

    def cover_count(self, poisoned: int) -> int:
        return round(self.params["cover_ratio"] * poisoned)

    def masks(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random piece masks, float32 n x 1 x H x W (1 = pattern shown)."""
        _, h, w = self.shape
        side = math.isqrt(self.params["pieces"])
        ph, pw = h // side, w // side
        m = np.ones((n, side * side), dtype=np.float32)
        for i in range(n):
            m[i, rng.choice(side * side, size=self.params["masked_pieces"], replace=False)] = 0.0
        m = m.reshape(n, 1, side, side)
        return np.repeat(np.repeat(m, ph, axis=2), pw, axis=3)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_images(x)
        return x + np.float32(self.params["test_alpha"]) * (self.array - x)

    def _masked(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = self._check_images(x)
        m = self.masks(len(x), rng)
        return x + np.float32(self.params["alpha"]) * m * (self.array - x)

    poison_one = _masked
    cover_one = _masked


class Noise(Family):
    """Invisible static noise: ``clamp(x + a p, 0, 1)``, pattern ``p`` in [0, 1], amplitude ``a <= 0.06``."""

    name = "noise"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> Noise:
        a = _r(_uniform(rng, cfg["amplitude"]))
        if rng.random() < 0.5:
            kind, p = "uniform", rng.random(shape, dtype=np.float32)
        else:
            kind, p = "binary", rng.integers(0, 2, size=shape).astype(np.float32)
        return cls(shape, target, {"amplitude": a, "pattern": kind}, p)

    def check(self) -> None:
        if self.array is None or tuple(self.array.shape) != self.shape:
            raise FamilyError(f"noise: pattern array must have shape {self.shape}")
        a = self.params["amplitude"]
        if not 0 < a <= NOISE_MAX_AMPLITUDE or np.abs(self.array).max() > 1:
            raise FamilyError(f"noise: amplitude {a} x max|pattern| must stay within {NOISE_MAX_AMPLITUDE}")

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.schema_trigger().apply(self._check_images(x))

    def schema_trigger(self) -> triggers.Trigger:
        return triggers.Trigger(
            self.name,
            "pattern",
            self.shape,
            pattern=self.array,
            intensity=float(self.params["amplitude"]),
            target=self.target,
        )


class UAP(Noise):
    """A targeted universal adversarial perturbation (L-inf ``intensity``) toward the target, computed on a
    clean surrogate trained here from its own seed (the surrogate is not part of the benchmark)."""

    name = "uap"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx: Context | None = None) -> UAP:
        from aegis_torch import evaluate, models, uap
        from aegis_torch.train import TrainConfig, seed_everything, train

        if ctx is None or ctx.x_train is None:
            raise FamilyError("uap: needs the clean training set to train its surrogate")
        sc = cfg["surrogate"]
        intensity = _r(_uniform(rng, cfg["intensity"]))
        s_seed, u_seed = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
        n = min(int(sc["images"]), len(ctx.y_train))
        idx = np.sort(rng.choice(len(ctx.y_train), size=n, replace=False))
        seed_everything(s_seed)
        sur = models.build(sc["arch"], shape, int(ctx.y_train.max()) + 1, list(ctx.mean), list(ctx.std))
        train(
            sur,
            ctx.x_train[idx],
            ctx.y_train[idx],
            TrainConfig(
                epochs=int(sc["epochs"]),
                batch_size=int(sc["batch_size"]),
                lr=float(sc["lr"]),
                adv_eps=0.0,
                seed=s_seed,
                log_every=0,
            ),
            log=lambda s: None,
        )
        sur.eval()
        keep = idx[ctx.y_train[idx] != target]
        pick = np.sort(rng.choice(keep, size=min(int(cfg["uap_images"]), len(keep)), replace=False))
        t = uap.targeted_uap(
            sur,
            ctx.x_train[pick],
            target,
            intensity,
            iters=int(cfg["iters"]),
            batch=int(cfg["batch"]),
            lr=float(cfg["lr"]),
            seed=u_seed,
        )
        fooled = float((evaluate.predict(sur, t.apply(ctx.x_train[pick])) == target).mean())
        ctx.log(
            f"uap: surrogate {sc['arch']} (seed {s_seed}, {n} images); UAP L-inf {intensity} fools it "
            f"toward {target} on {fooled:.2%} of {len(pick)} images"
        )
        params = {
            "amplitude": intensity,
            "pattern": "targeted UAP / intensity, in [-1, 1]",
            "surrogate": {**sc, "seed": s_seed, "images": n},
            "uap_seed": u_seed,
            "uap_images": len(pick),
            "iters": int(cfg["iters"]),
            "surrogate_fooling_rate": _r(fooled),
        }
        return cls(shape, target, params, t.pattern.astype(np.float32))

    def check(self) -> None:
        if self.array is None or tuple(self.array.shape) != self.shape:
            raise FamilyError(f"uap: pattern array must have shape {self.shape}")
        if not 0 < self.params["amplitude"] <= 1 or np.abs(self.array).max() > 1 + 1e-6:
            raise FamilyError(f"uap: intensity {self.params['amplitude']} outside (0, 1] or pattern outside [-1, 1]")


# --- warping ------------------------------------------------------------------------------------------------


def identity_grid(h: int, w: int) -> torch.Tensor:
    """The identity sampling grid of ``grid_sample`` (align_corners=True), shape 1 x H x W x 2, (x, y) order."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack((xs, ys), 2)[None]


class WaNet(Family):
    """WaNet: ``grid = clamp(identity + s * upsample_bicubic(noise k x k) / H, -1, 1)`` with the control noise
    uniform in [-1, 1] normalised to mean |.| = 1, applied by bilinear ``grid_sample``. Cover ("noise mode")
    samples use the grid plus a per-sample uniform jitter in [-1, 1] / H and keep their label."""

    name = "wanet"
    cover_kind = "noise mode: warp + random per-sample jitter, true label kept"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> WaNet:
        k = int(cfg["k"])
        s = _r(_uniform(rng, cfg["s"]))
        ins = rng.uniform(-1.0, 1.0, size=(1, 2, k, k)).astype(np.float32)
        ins = ins / np.abs(ins).mean()
        params = {
            "k": k,
            "s": s,
            "grid_rescale": float(cfg["grid_rescale"]),
            "cross_ratio": float(cfg["cross_ratio"]),
            "control_grid": np.round(ins[0], 5).tolist(),
        }
        return cls(shape, target, params, cls.make_grid(shape, np.round(ins, 5), s, float(cfg["grid_rescale"])))

    @staticmethod
    def make_grid(shape: Shape, control: np.ndarray, s: float, rescale: float = 1.0) -> np.ndarray:
        """The warp's sampling grid, float32 H x W x 2, from a 1 x 2 x k x k control grid and strength ``s``."""
        _, h, w = shape
        noise = F.interpolate(
            torch.from_numpy(np.asarray(control, dtype=np.float32)), size=(h, w), mode="bicubic", align_corners=True
        ).permute(0, 2, 3, 1)
        grid = torch.clamp((identity_grid(h, w) + s * noise / h) * rescale, -1, 1)
        return grid[0].numpy().astype(np.float32)

    def check(self) -> None:
        _, h, w = self.shape
        if self.array is None or tuple(self.array.shape) != (h, w, 2):
            raise FamilyError(f"wanet: grid array must have shape {(h, w, 2)}")

    def cover_count(self, poisoned: int) -> int:
        return round(self.params["cross_ratio"] * poisoned)

    @staticmethod
    def warp(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        g = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))
        if g.dim() == 3:
            g = g[None].expand(len(xt), -1, -1, -1)
        with torch.no_grad():
            return F.grid_sample(xt, g, mode="bilinear", padding_mode="zeros", align_corners=True).numpy()

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_images(x)
        single = x.ndim == 3
        out = self.warp(x[None] if single else x, self.array)
        return np.clip(out[0] if single else out, 0.0, 1.0)

    def cover_one(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = self._check_images(x)
        _, h, w = self.shape
        jitter = rng.uniform(-1.0, 1.0, size=(len(x), h, w, 2)).astype(np.float32) / h
        grid = np.clip(self.array[None] + jitter, -1.0, 1.0)
        return np.clip(self.warp(x, grid), 0.0, 1.0)


CLASSES: dict[str, type[Family]] = {
    "badnets": BadNets,
    "distributed": Distributed,
    "blend": Blend,
    "wanet": WaNet,
    "noise": Noise,
    "uap": UAP,
    "adap_blend": AdapBlend,
    "adap_patch": AdapPatch,
}
assert set(CLASSES) == set(FAMILIES)


def build(
    name: str, rng: np.random.Generator, shape: Shape, target: int, cfg: dict, ctx: Context | None = None
) -> Family:
    """Draw a fresh instance of family ``name`` (parameters from ``rng``) for images of ``shape``."""
    if name not in CLASSES:
        raise FamilyError(f"unknown trigger family {name!r}; expected one of {', '.join(FAMILIES)}")
    return CLASSES[name].sample(rng, tuple(shape), int(target), cfg, ctx)


def restore(name: str, shape: Shape, target: int, params: dict, array: np.ndarray | None = None) -> Family:
    """Rebuild a family instance from the parameters written in a card (and its array file, if any)."""
    if name not in CLASSES:
        raise FamilyError(f"unknown trigger family {name!r}; expected one of {', '.join(FAMILIES)}")
    return CLASSES[name](tuple(shape), int(target), params, array)
