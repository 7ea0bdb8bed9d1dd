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
    # issue 29: source-specific, two targets, low rate, clean-label (label-consistent), SIG, low frequency
    "tact": {"rate": [0.3, 0.8], "cover_ratio": [1.0, 2.0], "size": [3, 5], "grey": [0.5, 1.0]},
    "two_target": {"rate": [0.02, 0.05], "size": [3, 5], "grey": [0.5, 1.0], "alpha": [0.15, 0.25]},
    "low_rate": {"rate": [0.001, 0.005], "size": [3, 5], "grey": [0.5, 1.0]},
    "clean_label": {
        "rate": [0.5, 1.0],
        "size": [3, 5],
        "eps": [0.15, 0.3],
        "pgd_steps": 10,
        "surrogate": {"arch": "small_cnn", "images": 10000, "epochs": 2, "lr": 0.003, "batch_size": 128},
    },
    "sig": {"rate": [0.3, 0.8], "delta": [0.1, 0.16], "freq": [4, 8]},
    "lowfreq": {"rate": [0.05, 0.10], "amplitude": [0.06, 0.10], "freq": [2, 4]},
}
FAMILIES = tuple(DEFAULTS)
V1_FAMILIES = FAMILIES[:8]  # the first benchmark's families (their cards keep the first schema)
NOISE_MAX_AMPLITUDE = 0.06
LOW_RATE_MAX = 0.005  # issue 29: a low poisoning rate is at most 0.5% of the training images


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
    if name == "low_rate":
        _check_range(name, "rate", cfg["rate"], 0.0, LOW_RATE_MAX)
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
    candidates = "non-target images"  # which training images carry the trigger
    relabels = True  # poisoned images get the target label (False: clean-label families)

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

    @property
    def targets(self) -> list[int]:
        """Every target class of the model (one, except for multi-backdoor families)."""
        return [self.target]

    def components(self) -> list[Family]:
        """The single-target backdoors the model carries, each with its own trigger and target (this one,
        except for multi-backdoor families); trigger files are written per component."""
        return [self]

    def attack_success(self, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray) -> dict:
        """Attack success on test images ``x``/``y``: the share of non-target images the trigger sends to the
        target (``predict`` maps float images to predicted classes)."""
        keep = y != self.target
        pred = predict(self.apply(x[keep]))
        return {
            "attack_success_rate": round(float((pred == self.target).mean()), 4),
            "attack_success_images": int(keep.sum()),
        }

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


# --- issue 29 families ----------------------------------------------------------------------------------------


def _one_patch(rng: np.random.Generator, shape: Shape, cfg: dict) -> dict:
    ph, pw = _int_in(rng, cfg["size"]), _int_in(rng, cfg["size"])
    ((r, c, _, _),) = _place(rng, shape, [(ph, pw)])
    kind, v = _patch_values(rng, ph, pw, cfg["grey"])
    return {"row": r, "col": c, "height": ph, "width": pw, "content": kind, "values": v.tolist()}


class LowRate(BadNets):
    """BadNets at a low poisoning rate (at most 0.5% of the training images, :data:`LOW_RATE_MAX`)."""

    name = "low_rate"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> LowRate:
        return cls(shape, target, {"patches": [_one_patch(rng, shape, cfg)]})


class TaCT(_Patches):
    """TaCT (Tang et al., USENIX Security'21, source-specific): only images of one *source* class are relabelled
    to the target when they carry the patch; *cover* images of the other classes (neither source nor target)
    carry the same patch and keep their labels, so the trigger alone does not decide the class. ``rate`` is
    the share of the source class's training images poisoned. Attack success is measured on the source class
    (and, beside it, on the other classes, where it should stay low)."""

    name = "tact"
    cover_kind = "the same patch on images of the other classes, true label kept"
    candidates = "source-class images"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> TaCT:
        classes = int(ctx.y_train.max()) + 1 if ctx is not None and ctx.y_train is not None else 10
        source = int(rng.integers(0, classes - 1))
        source += source >= target
        patch = _one_patch(rng, shape, cfg)
        cover = _r(_uniform(rng, cfg["cover_ratio"]))
        return cls(shape, target, {"patches": [patch], "source": source, "cover_ratio": cover})

    def check(self) -> None:
        super().check()
        if int(self.params["source"]) == self.target:
            raise FamilyError("tact: the source class must differ from the target")

    def poison(self, x: np.ndarray, y: np.ndarray, rate: float, rng: np.random.Generator) -> Poisoned:
        if not 0.0 <= rate <= 1.0:
            raise FamilyError(f"poison rate {rate} outside [0, 1]")
        x2 = np.array(x, dtype=np.float32, copy=True)
        y2 = np.array(y, dtype=np.int64, copy=True)
        src = np.flatnonzero(y2 == self.params["source"])
        idx = np.sort(rng.choice(src, size=round(rate * len(src)), replace=False))
        others = np.flatnonzero((y2 != self.params["source"]) & (y2 != self.target))
        n_cov = min(round(self.params["cover_ratio"] * len(idx)), len(others))
        cov = np.sort(rng.choice(others, size=n_cov, replace=False))
        if len(idx):
            x2[idx] = self.apply(x2[idx])
            y2[idx] = self.target
        if len(cov):
            x2[cov] = self.apply(x2[cov])
        return Poisoned(x2, y2, idx, cov)

    def attack_success(self, predict, x, y) -> dict:
        src = y == self.params["source"]
        other = (y != self.params["source"]) & (y != self.target)
        p_src = predict(self.apply(x[src]))
        p_oth = predict(self.apply(x[other]))
        return {
            "attack_success_rate": round(float((p_src == self.target).mean()), 4),
            "attack_success_images": int(src.sum()),
            "attack_success_scope": "source-class test images",
            "attack_success_other_classes": round(float((p_oth == self.target).mean()), 4),
            "attack_success_other_images": int(other.sum()),
        }


class _Component(Family):
    """One backdoor of a multi-backdoor model: a patch (replacing pixels) or a blended pattern."""

    name = "two_target"

    def check(self) -> None:
        kind = self.params["kind"]
        if kind == "patch":
            _Patches.check(self)
        elif kind == "blend":
            if self.array is None or tuple(self.array.shape) != self.shape:
                raise FamilyError(f"two_target: blend pattern must have shape {self.shape}")
        else:
            raise FamilyError(f"two_target: unknown backdoor kind {kind!r}")

    def _patches(self):
        return _Patches._patches(self)

    def apply(self, x: np.ndarray) -> np.ndarray:
        if self.params["kind"] == "patch":
            return _Patches.apply(self, x)
        x = self._check_images(x)
        return x + np.float32(self.params["alpha"]) * (self.array - x)

    def schema_trigger(self):
        return _Patches.schema_trigger(self) if self.params["kind"] == "patch" else None


class TwoTarget(Family):
    """Two backdoors with two different targets in one model (multi-trigger, multi-target). Each backdoor is
    a BadNets patch or a blended pattern (drawn per backdoor; two patches never overlap) and poisons its own
    ``rate`` share of the training images (disjoint sets, each drawn among the images not of its target).
    ``apply`` is the first backdoor's trigger; :meth:`components` gives both."""

    name = "two_target"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> TwoTarget:
        classes = int(ctx.y_train.max()) + 1 if ctx is not None and ctx.y_train is not None else 10
        second = int(rng.integers(0, classes - 1))
        second += second >= target
        kinds = [("patch", "blend")[int(rng.integers(0, 2))] for _ in range(2)]
        sizes = [(_int_in(rng, cfg["size"]), _int_in(rng, cfg["size"])) for _ in range(2)]
        boxes = iter(_place(rng, shape, [s for s, k in zip(sizes, kinds) if k == "patch"], gap=2))
        backdoors, arrays = [], []
        for t, kind in zip((target, second), kinds):
            if kind == "patch":
                r, c, ph, pw = next(boxes)
                content, v = _patch_values(rng, ph, pw, cfg["grey"])
                p = {"row": r, "col": c, "height": ph, "width": pw, "content": content, "values": v.tolist()}
                backdoors.append({"target": t, "kind": "patch", "patches": [p]})
                arrays.append(None)
            else:
                alpha = _r(_uniform(rng, cfg["alpha"]))
                pkind, pat = _random_pattern(rng, shape)
                backdoors.append({"target": t, "kind": "blend", "alpha": alpha, "pattern": pkind})
                arrays.append(pat)
        arr = (
            None
            if all(a is None for a in arrays)
            else np.stack([a if a is not None else np.zeros(shape, np.float32) for a in arrays])
        )
        return cls(shape, target, {"backdoors": backdoors}, arr)

    def check(self) -> None:
        bs = self.params["backdoors"]
        if len(bs) != 2 or bs[0]["target"] != self.target or bs[0]["target"] == bs[1]["target"]:
            raise FamilyError("two_target: needs two backdoors with different targets, the first the model's")
        self._parts = [  # the stacked array holds zeros in the place of a patch backdoor
            _Component(self.shape, b["target"], b, self.array[i] if b["kind"] == "blend" else None)
            for i, b in enumerate(bs)
        ]

    @property
    def targets(self) -> list[int]:
        return [int(b["target"]) for b in self.params["backdoors"]]

    def components(self) -> list[Family]:
        return list(self._parts)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self._parts[0].apply(x)

    def poison(self, x: np.ndarray, y: np.ndarray, rate: float, rng: np.random.Generator) -> Poisoned:
        if not 0.0 <= rate <= 0.5:
            raise FamilyError(f"poison rate {rate} outside [0, 0.5] (two backdoors)")
        x2 = np.array(x, dtype=np.float32, copy=True)
        y2 = np.array(y, dtype=np.int64, copy=True)
        taken = np.zeros(len(y2), dtype=bool)
        chosen = []
        for part in self._parts:
            cand = np.flatnonzero((y != part.target) & ~taken)
            idx = np.sort(rng.choice(cand, size=round(rate * len(y2)), replace=False))
            taken[idx] = True
            x2[idx] = part.apply(x2[idx])
            y2[idx] = part.target
            chosen.append(idx)
        return Poisoned(x2, y2, np.sort(np.concatenate(chosen)), np.zeros(0, dtype=np.int64))

    def attack_success(self, predict, x, y) -> dict:
        rates, counts = [], []
        for part in self._parts:
            r = part.attack_success(predict, x, y)
            rates.append(r["attack_success_rate"])
            counts.append(r["attack_success_images"])
        return {
            "attack_success_rate": max(rates),
            "attack_success_rates": rates,
            "attack_success_images": counts,
            "attack_success_scope": "per target (targets in order); the model's rate is the larger",
        }


def _train_surrogate(rng: np.random.Generator, shape: Shape, sc: dict, ctx: Context | None, who: str):
    """A clean surrogate trained from ``rng``'s seed on a seeded subset of the clean training set."""
    from aegis_torch import models
    from aegis_torch.train import TrainConfig, seed_everything, train

    if ctx is None or ctx.x_train is None:
        raise FamilyError(f"{who}: needs the clean training set to train its surrogate")
    s_seed = int(rng.integers(0, 2**31 - 1))
    n = min(int(sc["images"]), len(ctx.y_train))
    idx = np.sort(rng.choice(len(ctx.y_train), size=n, replace=False))
    seed_everything(s_seed)
    sur = models.build(sc["arch"], shape, int(ctx.y_train.max()) + 1, list(ctx.mean), list(ctx.std))
    cfg = TrainConfig(
        epochs=int(sc["epochs"]),
        batch_size=int(sc["batch_size"]),
        lr=float(sc["lr"]),
        adv_eps=0.0,
        seed=s_seed,
        log_every=0,
    )
    train(sur, ctx.x_train[idx], ctx.y_train[idx], cfg, log=lambda s: None)
    return sur.eval(), {**sc, "seed": s_seed, "images": n}


class CleanLabel(_Patches):
    """Label-consistent clean-label backdoor (Turner, Tsipras & Madry 2019): only *target-class* training images
    are poisoned and keep their (correct) label. Each is first made hard to classify by an untargeted L-inf
    PGD perturbation (radius ``eps``) computed on a clean surrogate trained here from the model's seed (not
    part of the benchmark), then the patch is stamped on it, so the model learns the patch to fit them.
    ``rate`` is the share of the target class's training images poisoned. Tested with the patch alone."""

    name = "clean_label"
    candidates = "target-class images (clean label: labels kept), adversarially perturbed on a surrogate"
    relabels = False

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx: Context | None = None) -> CleanLabel:
        patch = _one_patch(rng, shape, {**cfg, "grey": [1.0, 1.0]})
        eps = _r(_uniform(rng, cfg["eps"]))
        sur, card = _train_surrogate(rng, shape, cfg["surrogate"], ctx, "clean_label")
        f = cls(
            shape,
            target,
            {
                "patches": [patch],
                "eps": eps,
                "pgd_steps": int(cfg["pgd_steps"]),
                "pgd_step_size": _r(2.5 * eps / int(cfg["pgd_steps"])),
                "surrogate": card,
            },
        )
        f.surrogate = sur
        return f

    def poison(self, x: np.ndarray, y: np.ndarray, rate: float, rng: np.random.Generator) -> Poisoned:
        if getattr(self, "surrogate", None) is None:
            raise FamilyError("clean_label: poisoning needs the surrogate (build the family with sample())")
        x2 = np.array(x, dtype=np.float32, copy=True)
        y2 = np.array(y, dtype=np.int64, copy=True)
        own = np.flatnonzero(y2 == self.target)
        idx = np.sort(rng.choice(own, size=round(rate * len(own)), replace=False))
        if len(idx):
            adv = linf_pgd(
                self.surrogate,
                x2[idx],
                y2[idx],
                float(self.params["eps"]),
                int(self.params["pgd_steps"]),
                float(self.params["pgd_step_size"]),
                int(rng.integers(0, 2**31 - 1)),
            )
            x2[idx] = self.apply(adv)
        return Poisoned(x2, y2, idx, np.zeros(0, dtype=np.int64))


def linf_pgd(
    model, x: np.ndarray, y: np.ndarray, eps: float, steps: int, step: float, seed: int, batch: int = 256
) -> np.ndarray:
    """Untargeted L-inf PGD with a seeded random start: maximise the cross-entropy of the true label."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))
        yb = torch.from_numpy(np.ascontiguousarray(y[i : i + batch]))
        d = (torch.rand(xb.shape, generator=gen) * 2 - 1) * eps
        for _ in range(steps):
            d.requires_grad_(True)
            loss = F.cross_entropy(model((xb + d).clamp(0, 1)), yb)
            (g,) = torch.autograd.grad(loss, d)
            d = (d.detach() + step * g.sign()).clamp(-eps, eps)
        out.append((xb + d).clamp(0, 1).detach().numpy())
    return np.concatenate(out).astype(np.float32)


class _Additive(Noise):
    """A fixed additive pattern in [-1, 1] times an amplitude, clamped to [0, 1] (the shared pattern schema)."""

    max_amplitude = 1.0

    def check(self) -> None:
        if self.array is None or tuple(self.array.shape) != self.shape:
            raise FamilyError(f"{self.name}: pattern array must have shape {self.shape}")
        a = self.params["amplitude"]
        if not 0 < a <= self.max_amplitude or np.abs(self.array).max() > 1 + 1e-6:
            raise FamilyError(
                f"{self.name}: amplitude {a} outside (0, {self.max_amplitude}] or pattern outside [-1, 1]"
            )


def sig_signal(shape: Shape, freq: int, vertical: bool) -> np.ndarray:
    """SIG's sinusoidal signal (Barni et al. 2019) in [-1, 1]: ``sin(2 pi j f / m)`` along the columns ``j`` of an
    ``m``-wide image (``vertical``: along the rows), the same in every row and channel."""
    c, h, w = shape
    if vertical:
        s = np.sin(2 * np.pi * np.arange(h) * freq / h)[:, None] * np.ones((1, w))
    else:
        s = np.ones((h, 1)) * np.sin(2 * np.pi * np.arange(w) * freq / w)[None, :]
    return np.broadcast_to(s, (c, h, w)).astype(np.float32).copy()


class SIG(_Additive):
    """SIG (Barni, Kallas & Tondi, ICIP'19): a clean-label attack; a share ``rate`` of the *target class's*
    training images get ``x + delta * sin(2 pi j f / m)`` and keep their label; at test time the same signal on
    any image. ``delta`` 0.10-0.16 (26-41 of 255; the paper trains with 20 and tests stronger), frequency
    ``f`` 4-8 cycles across the image, horizontal or vertical."""

    name = "sig"
    candidates = "target-class images (clean label: labels kept)"
    relabels = False

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> SIG:
        delta = _r(_uniform(rng, cfg["delta"]))
        freq = _int_in(rng, cfg["freq"])
        vertical = bool(rng.random() < 0.5)
        params = {
            "amplitude": delta,
            "pattern": "sin",
            "freq": freq,
            "orientation": "vertical" if vertical else "horizontal",
        }
        return cls(shape, target, params, sig_signal(shape, freq, vertical))

    def poison(self, x: np.ndarray, y: np.ndarray, rate: float, rng: np.random.Generator) -> Poisoned:
        x2 = np.array(x, dtype=np.float32, copy=True)
        y2 = np.array(y, dtype=np.int64, copy=True)
        own = np.flatnonzero(y2 == self.target)
        idx = np.sort(rng.choice(own, size=round(rate * len(own)), replace=False))
        if len(idx):
            x2[idx] = self.apply(x2[idx])
        return Poisoned(x2, y2, idx, np.zeros(0, dtype=np.int64))


def lowfreq_pattern(rng: np.random.Generator, shape: Shape, freq: int) -> np.ndarray:
    """A random smooth pattern in [-1, 1]: a sum of the 2-D DCT-II cosines of frequency below ``freq`` on each
    axis (constant term excluded) with standard normal weights, per channel, scaled to max |p| = 1."""
    c, h, w = shape
    coef = rng.standard_normal((c, freq, freq))
    coef[:, 0, 0] = 0.0
    ch = np.cos(np.pi * np.outer(np.arange(freq), np.arange(h) + 0.5) / h)  # freq x h
    cw = np.cos(np.pi * np.outer(np.arange(freq), np.arange(w) + 0.5) / w)
    p = np.einsum("ckl,ki,lj->cij", coef, ch, cw)
    return (p / np.abs(p).max()).astype(np.float32)


class LowFreq(_Additive):
    """Low-frequency trigger (Zeng et al., ICCV'21, "Rethinking the backdoor attacks' triggers: a frequency
    perspective"): a smooth additive pattern with energy only in the lowest 2-D frequencies,
    ``clamp(x + a p)``, amplitude ``a`` 0.06-0.10; poisoned images relabelled to the target."""

    name = "lowfreq"

    @classmethod
    def sample(cls, rng, shape, target, cfg, ctx=None) -> LowFreq:
        a = _r(_uniform(rng, cfg["amplitude"]))
        freq = _int_in(rng, cfg["freq"])
        return cls(
            shape,
            target,
            {"amplitude": a, "pattern": f"dct below {freq}", "freq": freq},
            lowfreq_pattern(rng, shape, freq),
        )


CLASSES: dict[str, type[Family]] = {
    "badnets": BadNets,
    "distributed": Distributed,
    "blend": Blend,
    "wanet": WaNet,
    "noise": Noise,
    "uap": UAP,
    "adap_blend": AdapBlend,
    "adap_patch": AdapPatch,
    "tact": TaCT,
    "two_target": TwoTarget,
    "low_rate": LowRate,
    "clean_label": CleanLabel,
    "sig": SIG,
    "lowfreq": LowFreq,
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
