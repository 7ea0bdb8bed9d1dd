"""Model cards: a YAML file next to each exported model saying how it was made and what it measures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

REQUIRED = (
    "name",
    "model",
    "dataset",
    "architecture",
    "input",
    "trigger",
    "poison",
    "training",
    "seeds",
    "metrics",
    "training_time_s",
)


class CardError(ValueError):
    """A model card is missing a field; the message names it."""


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write(path: str | Path, card: dict) -> None:
    """Validate and write ``card`` as YAML (keys in insertion order)."""
    validate(card)
    Path(path).write_text(yaml.safe_dump(card, sort_keys=False, default_flow_style=None))


def read(path: str | Path) -> dict:
    """Read and validate a model card."""
    card = yaml.safe_load(Path(path).read_text())
    if not isinstance(card, dict):
        raise CardError(f"{path}: model card must be a mapping")
    validate(card, str(path))
    return card


def validate(card: dict, where: str = "model card") -> None:
    """Check that every required field is present."""
    for key in REQUIRED:
        if key not in card:
            raise CardError(f"{where}: missing field {key!r}")
    for key in ("clean_accuracy", "adversarial_accuracy"):
        if key not in card["metrics"]:
            raise CardError(f"{where}: metrics lacks {key!r}")
