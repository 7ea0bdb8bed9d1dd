"""Reading aegis-audit's JSON report, defensively: one document or several (one per model), unknown
fields kept in `raw`, missing fields as None, so that new report fields never break a plugin."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ReportError(ValueError):
    """The report file is missing, not JSON, or holds no report object."""


@dataclass(frozen=True)
class ClassFinding:
    """One audited class: its label (an index today), whether it is flagged, the report's one-line summary."""

    label: int | str | None
    flagged: bool
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """One model's report; `raw` is the whole JSON object as written."""

    raw: Mapping[str, Any]
    tool_version: str | None
    model_path: str | None
    model_sha256: str | None
    method: str | None
    method_reason: str | None
    verdict: str | None
    classes: tuple[ClassFinding, ...]

    @property
    def flagged_classes(self) -> tuple[int | str | None, ...]:
        return tuple(c.label for c in self.classes if c.flagged)


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_report(doc: Mapping[str, Any]) -> Report:
    """A `Report` from one decoded JSON object; fields the report lacks become None."""
    if not isinstance(doc, Mapping):
        raise ReportError(f"a report is a JSON object, not {type(doc).__name__}")
    method = doc.get("method")
    if isinstance(method, Mapping):
        method_name, reason = _str(method.get("method")), _str(method.get("reason"))
    else:
        method_name, reason = _str(method), None
    classes = []
    for entry in doc.get("classes") or []:
        if not isinstance(entry, Mapping):
            continue
        label = entry.get("class", entry.get("label"))
        details = entry.get("details")
        classes.append(
            ClassFinding(
                label=label if isinstance(label, (int, str)) and not isinstance(label, bool) else None,
                flagged=entry.get("flagged") is True,
                summary=_str(entry.get("summary")) or "",
                details=details if isinstance(details, Mapping) else {},
            )
        )
    return Report(
        raw=doc,
        tool_version=_str(_get(doc, "tool", "version")),
        model_path=_str(_get(doc, "model", "path")),
        model_sha256=_str(_get(doc, "model", "sha256")),
        method=method_name,
        method_reason=reason,
        verdict=_str(doc.get("verdict")),
        classes=tuple(classes),
    )


def _documents(text: str) -> list[Any]:
    """Every JSON value in `text`: one document, an array, or several concatenated (JSON Lines)."""
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        value, pos = decoder.raw_decode(text, pos)
        docs.append(value)


def _is_report(value: Any) -> bool:
    return isinstance(value, Mapping) and ("classes" in value or "verdict" in value)


def parse_reports(text: str) -> tuple[Report, ...]:
    """One `Report` per model in the text of a JSON report file."""
    try:
        values = _documents(text)
    except json.JSONDecodeError as e:
        raise ReportError(f"not JSON: {e}") from e
    found: list[Mapping[str, Any]] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if _is_report(item):
                found.append(item)
            elif isinstance(item, Mapping):
                # A wrapper object, e.g. {"reports": [...]} or {"models": [...]}.
                for nested in item.values():
                    if isinstance(nested, list):
                        found.extend(x for x in nested if _is_report(x))
    if not found:
        raise ReportError("no report object (with `classes` or `verdict`) in the file")
    return tuple(parse_report(doc) for doc in found)


def read_reports(path: str | Path) -> tuple[Report, ...]:
    """One `Report` per model in a JSON report file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"cannot read {path}: {e}") from e
    return parse_reports(text)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
