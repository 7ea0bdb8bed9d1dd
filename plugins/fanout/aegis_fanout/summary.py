"""What a fan-out writes into its output folder: `summary.csv` (one row per model, manifest order),
`aegis.sarif` (all models merged into one run), and `models/NNNNN/report.{json,sarif}` as aegis-audit
wrote them."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .sarif import merge_sarif
from .task import TaskResult, as_row

COLUMNS = [
    "index", "uri", "verdict", "exit_code", "flagged_classes", "method", "model_sha256", "tool_version",
    "failure", "message", "duration_s", "report",
]  # fmt: skip


def model_dir(out: Path, index: int) -> Path:
    return out / "models" / f"{index:05d}"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_model_reports(out: Path, result: TaskResult) -> str:
    """The model's reports under models/NNNNN/; returns the JSON report's path relative to `out` ("" if none)."""
    folder = model_dir(out, result.index)
    folder.mkdir(parents=True, exist_ok=True)
    report = ""
    for name, text in (("report.json", result.report_json), ("report.sarif", result.report_sarif)):
        path = folder / name
        if text is None:
            path.unlink(missing_ok=True)
            continue
        _write_atomic(path, text)
        if name == "report.json":
            report = str(path.relative_to(out))
    return report


def write_summary(out: Path, results: Sequence[TaskResult], category: str) -> tuple[Path, Path]:
    """summary.csv and aegis.sarif for all results, plus each model's reports."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for result in results:
        row = as_row(result)
        row["report"] = write_model_reports(out, result)
        rows.append(row)
    csv_path, sarif_path = out / "summary.csv", out / "aegis.sarif"
    with tempfile.SpooledTemporaryFile(mode="w+", newline="") as buffer:
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        buffer.seek(0)
        _write_atomic(csv_path, buffer.read())
    _write_atomic(sarif_path, json.dumps(merge_sarif(results, category), indent=1) + "\n")
    return csv_path, sarif_path
