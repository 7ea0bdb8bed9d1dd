"""The modelscan scanner: ONNX files (on disk or inside a zip archive) audited by aegis-audit, its exit code
mapped to modelscan's results: 1 → one CRITICAL issue per flagged class, 3 → skipped with the reason,
2 (or any failure) → a scanner error."""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelscan.error import DependencyError, ModelScanScannerError
from modelscan.issues import Issue, IssueDetails, IssueSeverity
from modelscan.model import Model
from modelscan.scanners.scan import ScanBase, ScanResults
from modelscan.settings import Property
from modelscan.skip import ModelScanSkipped

from aegis_runner import AuditResult, BinaryNotFound, Verdict, run_audit

# The dotted path under which the scanner is enabled in modelscan's settings["scanners"].
SCANNER_PATH = "aegis_modelscan.AegisAuditScan"
BACKDOOR_SUSPECTED = Property("BACKDOOR_SUSPECTED", "AEGIS001")
METHOD_NOT_APPLICABLE = Property("METHOD_NOT_APPLICABLE", "AEGIS002")
# A protobuf message (an ONNX model without external data) cannot exceed 2 GiB: a larger zip member is
# not a model, and is not copied out further than that.
MAX_MEMBER_BYTES = 2**31


class BackdoorIssueDetails(IssueDetails):
    """One flagged class of one model. `module`/`operator` are what modelscan's Issue equality and hash read:
    the tool and the class, so two flagged classes of one model stay two issues."""

    def __init__(self, source: str, label: Any, summary: str, result: AuditResult, scanner: str = "") -> None:
        super().__init__(scanner)
        report = result.report
        self.module = "aegis-audit"
        self.operator = "model" if label is None else f"class {label}"
        self.source = source
        self.severity = IssueSeverity.CRITICAL
        self.label = label
        self.summary = summary or result.message
        self.method = report.method if report else None
        self.model_sha256 = report.model_sha256 if report else None
        self.tool_version = report.tool_version if report else None

    @property
    def description(self) -> str:
        where = "the model" if self.label is None else f"class {self.label}"
        return f"Backdoor suspected in {where} (aegis-audit, {self.method or 'unknown method'}): {self.summary}"

    def output_lines(self) -> list[str]:
        return [f"Description: {self.description}", f"Source: {self.source}"]

    def output_json(self) -> dict[str, str]:
        return {
            "description": self.description,
            "operator": self.operator,
            "module": self.module,
            "source": str(self.source),
            "scanner": self.scanner,
            "severity": self.severity.name,
            "class": "" if self.label is None else str(self.label),
            "method": self.method or "",
            "model_sha256": self.model_sha256 or "",
            "aegis_audit_version": self.tool_version or "",
        }

    def __repr__(self) -> str:
        return f"<BackdoorIssueDetails(source={self.source}, class={self.label})>"


class BackdoorIssue(Issue):
    """A modelscan Issue that prints as a backdoor finding (modelscan's own text is for unsafe operators)."""

    def print(self) -> None:
        print("\nBackdoor suspected (aegis-audit):")
        print(f"  - Severity: {self.severity.name}")
        for line in self.details.output_lines():
            print(f"  - {line}")


def _entry(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    scanners = settings.get("scanners") or {}
    if SCANNER_PATH in scanners:
        return scanners[SCANNER_PATH]
    for path, entry in scanners.items():  # enabled under another dotted path to the same class
        if path.rsplit(".", 1)[-1] == AegisAuditScan.__name__:
            return entry
    return {}


def _extra_args(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _is_file_on_disk(model: Model) -> bool:
    """True when the model's stream is the file at its source path (not a zip member, whose source
    `archive.zip:member` could also name an unrelated file on disk)."""
    stream = model.get_stream()
    return isinstance(stream, io.BufferedReader) and stream.name == str(model.get_source())


def _copy_member(model: Model, target: Path) -> None:
    stream = model.get_stream()
    copied = 0
    with open(target, "wb") as f:
        while chunk := stream.read(1 << 20):
            copied += len(chunk)
            if copied > MAX_MEMBER_BYTES:
                raise ValueError("zip member is larger than 2 GiB, the most an ONNX protobuf can hold")
            f.write(chunk)


class AegisAuditScan(ScanBase):
    """Backdoor (trojan) detection for ONNX image classifiers by aegis-audit.

    Settings (modelscan's settings["scanners"]["aegis_modelscan.AegisAuditScan"]):
    `data` (required: the training data folder aegis-audit samples), `extra_args` (list or string of
    aegis-audit flags), `binary` (path; else $AEGIS_AUDIT_BIN, the interpreter's scripts folder, PATH),
    `timeout` (seconds per model, 0 for none), `reports_dir` (keep each model's JSON and SARIF report there),
    `supported_extensions` (default [".onnx"]).
    """

    @staticmethod
    def name() -> str:
        return "aegis"

    @staticmethod
    def full_name() -> str:
        return SCANNER_PATH

    def scan(self, model: Model) -> ScanResults | None:
        cfg = _entry(self._settings)
        extensions = [e.lower() for e in cfg.get("supported_extensions") or [".onnx"]]
        source = str(model.get_source())
        if Path(source).suffix.lower() not in extensions:
            return None
        data = cfg.get("data")
        if not data:
            return self._error(model, f"no data folder configured (settings['scanners']['{SCANNER_PATH}']['data'])")
        with tempfile.TemporaryDirectory(prefix="aegis-modelscan-") as tmp:
            path = Path(source)
            if not _is_file_on_disk(model):
                name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(source.rsplit(":", 1)[-1]).name)
                path = Path(tmp) / (name or "member.onnx")
                try:
                    _copy_member(model, path)
                except (OSError, ValueError) as e:
                    return self._error(model, f"cannot extract {source}: {e}")
            try:
                result = run_audit(
                    path,
                    data,
                    extra_args=_extra_args(cfg.get("extra_args")),
                    binary=cfg.get("binary") or None,
                    out_dir=Path(tmp) / "out",
                    timeout=float(cfg["timeout"]) if cfg.get("timeout") else None,
                )
            except BinaryNotFound as e:
                return ScanResults([], [DependencyError(self.full_name(), str(e), model)], [])
            except ValueError as e:
                return self._error(model, str(e))
            if cfg.get("reports_dir") and result.json_path:
                self._keep_reports(Path(cfg["reports_dir"]), source, result)
        return self._results(model, source, result)

    def _error(self, model: Model, message: str) -> ScanResults:
        return ScanResults([], [ModelScanScannerError(self.full_name(), f"aegis-audit: {message}", model)], [])

    def _results(self, model: Model, source: str, result: AuditResult) -> ScanResults:
        if result.verdict is Verdict.CLEAN:
            return ScanResults([], [], [])
        if result.verdict is Verdict.NOT_APPLICABLE:
            skipped = ModelScanSkipped(self.name(), METHOD_NOT_APPLICABLE, f"aegis-audit: {result.message}", source)
            return ScanResults([], [], [skipped])
        if result.verdict is Verdict.SUSPECTED:
            flagged = [c for r in result.reports for c in r.classes if c.flagged]
            findings = [(c.label, c.summary) for c in flagged] or [(None, result.message)]
            issues: list[Issue] = [
                BackdoorIssue(
                    BACKDOOR_SUSPECTED,
                    IssueSeverity.CRITICAL,
                    BackdoorIssueDetails(source, label, summary, result, self.full_name()),
                )
                for label, summary in findings
            ]
            return ScanResults(issues, [], [])
        return self._error(model, result.message)

    @staticmethod
    def _keep_reports(folder: Path, source: str, result: AuditResult) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(source.rsplit(":", 1)[-1]).stem)
        stem = f"{stem}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"
        for path in (result.json_path, result.sarif_path):
            if path:
                shutil.copyfile(path, folder / f"{stem}{path.suffix}")
