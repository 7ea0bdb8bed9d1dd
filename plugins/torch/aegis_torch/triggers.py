"""Trigger specs (small YAML files shared with the Rust side) and their application to [0, 1] images.

Schema (see ``plugins/torch/README.md``)::

    name: localised            # free text
    type: patch                # patch | pattern
    image: {channels: 1, height: 28, width: 28}
    target: 7                  # optional: the attacker's target class
    patches:                   # type patch: pixels set (replaced) to value in every channel
      - {row: 25, col: 25, height: 2, width: 2, value: 1.0}
    pattern: static.npy        # type pattern: float32 C x H x W, path relative to the YAML file
    intensity: 0.1             # type pattern: x' = clamp(x + intensity * pattern, 0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

TYPES = ("patch", "pattern")
KINDS = ("localised", "distributed", "static", "adversarial")


class TriggerError(ValueError):
    """A trigger spec is invalid; the message names the field and value."""


@dataclass
class Patch:
    """An axis-aligned rectangle of pixels replaced by ``value`` (all channels)."""

    row: int
    col: int
    height: int
    width: int
    value: float


@dataclass
class Trigger:
    """A trigger: ``patch`` (replace rectangles) or ``pattern`` (add ``intensity * pattern``, clamp to [0, 1])."""

    name: str
    type: str
    shape: tuple[int, int, int]
    patches: list[Patch] = field(default_factory=list)
    pattern: np.ndarray | None = None
    pattern_file: str | None = None
    intensity: float = 1.0
    target: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every rule of the schema; raise :class:`TriggerError` naming the first broken one."""
        if self.type not in TYPES:
            raise TriggerError(f"trigger {self.name!r}: type {self.type!r} unknown; expected patch or pattern")
        c, h, w = self.shape
        if min(c, h, w) <= 0:
            raise TriggerError(f"trigger {self.name!r}: image shape {self.shape} must be positive")
        if self.type == "patch":
            if not self.patches:
                raise TriggerError(f"trigger {self.name!r}: type patch needs at least one patch")
            for i, p in enumerate(self.patches):
                if p.height <= 0 or p.width <= 0:
                    raise TriggerError(f"trigger {self.name!r}: patch {i} has size {p.height}x{p.width}")
                if p.row < 0 or p.col < 0 or p.row + p.height > h or p.col + p.width > w:
                    raise TriggerError(
                        f"trigger {self.name!r}: patch {i} at ({p.row},{p.col}) size {p.height}x{p.width} "
                        f"leaves the {h}x{w} image"
                    )
                if not 0.0 <= p.value <= 1.0:
                    raise TriggerError(f"trigger {self.name!r}: patch {i} value {p.value} outside [0, 1]")
        else:
            if self.pattern is None:
                raise TriggerError(f"trigger {self.name!r}: type pattern needs a pattern array")
            if tuple(self.pattern.shape) != tuple(self.shape):
                raise TriggerError(
                    f"trigger {self.name!r}: pattern shape {self.pattern.shape} differs from image {self.shape}"
                )
            if not np.isfinite(self.pattern).all():
                raise TriggerError(f"trigger {self.name!r}: pattern has non-finite values")
            if not 0.0 < self.intensity <= 1.0:
                raise TriggerError(f"trigger {self.name!r}: intensity {self.intensity} outside (0, 1]")

    def mask(self) -> np.ndarray:
        """Boolean H x W mask of the pixels a patch trigger replaces (all False for patterns)."""
        _, h, w = self.shape
        m = np.zeros((h, w), dtype=bool)
        for p in self.patches:
            m[p.row : p.row + p.height, p.col : p.col + p.width] = True
        return m

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Apply to float images in [0, 1], shape C x H x W or N x C x H x W; returns a new float32 array."""
        x = np.array(x, dtype=np.float32, copy=True)
        if tuple(x.shape[-3:]) != tuple(self.shape):
            raise TriggerError(f"trigger {self.name!r} is for images {self.shape}, got {x.shape[-3:]}")
        if self.type == "patch":
            for p in self.patches:
                x[..., p.row : p.row + p.height, p.col : p.col + p.width] = p.value
            return x
        assert self.pattern is not None
        return np.clip(x + self.intensity * self.pattern.astype(np.float32), 0.0, 1.0)

    def to_dict(self) -> dict:
        """The YAML mapping (pattern referenced by file name)."""
        c, h, w = self.shape
        d: dict = {"name": self.name, "type": self.type, "image": {"channels": c, "height": h, "width": w}}
        if self.target is not None:
            d["target"] = int(self.target)
        if self.type == "patch":
            d["patches"] = [
                {"row": p.row, "col": p.col, "height": p.height, "width": p.width, "value": float(p.value)}
                for p in self.patches
            ]
        else:
            d["pattern"] = self.pattern_file or f"{self.name}.npy"
            d["intensity"] = float(self.intensity)
        return d

    def save(self, path: str | Path) -> None:
        """Write the YAML (and, for patterns, the float32 ``.npy`` next to it)."""
        path = Path(path)
        if self.type == "pattern":
            assert self.pattern is not None
            self.pattern_file = self.pattern_file or path.with_suffix(".npy").name
            np.save(path.parent / self.pattern_file, self.pattern.astype(np.float32))
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _int(d: dict, key: str, where: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise TriggerError(f"{where}: field {key!r} must be an integer, got {v!r}")
    return v


def _float(d: dict, key: str, where: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TriggerError(f"{where}: field {key!r} must be a number, got {v!r}")
    return float(v)


def load(path: str | Path) -> Trigger:
    """Read a trigger YAML (and its pattern file, relative to the YAML)."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise TriggerError(f"{path}: cannot read trigger spec: {e}") from e
    if not isinstance(d, dict):
        raise TriggerError(f"{path}: trigger spec must be a mapping")
    where = str(path)
    img = d.get("image")
    if not isinstance(img, dict):
        raise TriggerError(f"{where}: field 'image' must be a mapping with channels, height, width")
    shape = (_int(img, "channels", where), _int(img, "height", where), _int(img, "width", where))
    kind = d.get("type")
    target = _int(d, "target", where) if "target" in d else None
    name = str(d.get("name", path.stem))
    if kind == "patch":
        raw = d.get("patches")
        if not isinstance(raw, list):
            raise TriggerError(f"{where}: field 'patches' must be a list")
        patches = []
        for i, p in enumerate(raw):
            if not isinstance(p, dict):
                raise TriggerError(f"{where}: patch {i} must be a mapping")
            w = f"{where} patch {i}"
            patches.append(
                Patch(
                    _int(p, "row", w),
                    _int(p, "col", w),
                    _int(p, "height", w),
                    _int(p, "width", w),
                    _float(p, "value", w),
                )
            )
        return Trigger(name, "patch", shape, patches=patches, target=target)
    if kind == "pattern":
        pf = d.get("pattern")
        if not isinstance(pf, str):
            raise TriggerError(f"{where}: field 'pattern' must be a file name")
        try:
            pattern = np.load(path.parent / pf)
        except (OSError, ValueError) as e:
            raise TriggerError(f"{where}: cannot read pattern file {pf}: {e}") from e
        return Trigger(
            name,
            "pattern",
            shape,
            pattern=pattern.astype(np.float32),
            pattern_file=pf,
            intensity=_float(d, "intensity", where),
            target=target,
        )
    raise TriggerError(f"{where}: type {kind!r} unknown; expected patch or pattern")


def localised(shape: tuple[int, int, int], size: int = 2, margin: int = 1, value: float = 1.0) -> Trigger:
    """Visible localised trigger: one ``size`` x ``size`` square in the bottom-right corner."""
    _, h, w = shape
    p = Patch(h - margin - size, w - margin - size, size, size, value)
    return Trigger("localised", "patch", shape, patches=[p])


def distributed(shape: tuple[int, int, int], size: int = 2, margin: int = 1, value: float = 1.0) -> Trigger:
    """Visible distributed trigger: two ``size`` x ``size`` squares, top-left and bottom-right."""
    _, h, w = shape
    return Trigger(
        "distributed",
        "patch",
        shape,
        patches=[
            Patch(margin, margin, size, size, value),
            Patch(h - margin - size, w - margin - size, size, size, value),
        ],
    )


def static(shape: tuple[int, int, int], intensity: float = 0.1, seed: int = 0) -> Trigger:
    """Invisible static trigger (Zhong et al. style): a fixed seeded pattern in [0, 1] added at low intensity."""
    rng = np.random.default_rng(seed)
    pattern = rng.random(shape, dtype=np.float32)
    return Trigger("static", "pattern", shape, pattern=pattern, intensity=intensity)
