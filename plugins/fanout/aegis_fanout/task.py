"""One unit of work, the same on every backend: fetch one model, run one aegis-audit process, and return the
outcome with the report texts (so that the reports reach the driver even from another node). Failures of
the infrastructure raise `InfrastructureError`, the only exception a backend retries; every outcome that
depends on the model (exit 0, 1, 2, 3, a timeout) is returned and final."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aegis_runner import BinaryNotFound, Failure, Verdict, run_audit

from .manifest import is_remote, local_path

# MLflow error codes that are the registry's answer about the entry, not a failure to reach it.
ABSENT = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class InfrastructureError(RuntimeError):
    """Not the model's fault (fetch failed, process killed, binary missing on this node): worth retrying."""


@dataclass(frozen=True)
class TaskConfig:
    """Everything a task needs, picklable for Ray: data folder, aegis-audit flags, binary, timeout, and where
    relative paths and models:/ URIs resolve."""

    data: str
    extra_args: tuple[str, ...] = ()
    binary: str | None = None
    timeout: float | None = None
    tracking_uri: str | None = None
    base_dir: str = "."


@dataclass
class TaskResult:
    """One row of the summary, plus the report texts (None when aegis-audit wrote none)."""

    index: int
    uri: str
    verdict: str
    exit_code: int
    flagged_classes: str = ""
    method: str = ""
    model_sha256: str = ""
    tool_version: str = ""
    failure: str = ""
    message: str = ""
    duration_s: float = 0.0
    report_json: str | None = field(default=None, repr=False)
    report_sarif: str | None = field(default=None, repr=False)

    @classmethod
    def failed(cls, index: int, uri: str, failure: Failure, message: str, duration_s: float = 0.0) -> TaskResult:
        return cls(index, uri, Verdict.ERROR.value, 2, failure=failure.value, message=message, duration_s=duration_s)


def _fetch(uri: str, config: TaskConfig, dst: Path) -> Path:
    if not is_remote(uri):
        return local_path(uri, Path(config.base_dir))
    from mlflow.artifacts import download_artifacts

    from aegis_mlflow import Registry, download_version, find_onnx, parse_model_uri

    registry = Registry.connect(config.tracking_uri)
    if uri.startswith("models:/"):
        name, version = parse_model_uri(registry, uri)
        return download_version(registry, name, version, dst)
    return find_onnx(Path(download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=registry.tracking_uri)))


def audit_entry(index: int, uri: str, config: TaskConfig) -> TaskResult:
    """Audit one manifest entry (see the module doc for what is raised and what is returned)."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aegis-fanout-") as tmp:
        try:
            model = _fetch(uri, config, Path(tmp) / "model")
        except ValueError as e:  # FetchError or a malformed models:/ URI: a property of the entry
            return TaskResult.failed(index, uri, Failure.INPUT, str(e), time.monotonic() - start)
        except Exception as e:  # the registry or artifact store: MlflowException, OSError, ...
            if getattr(e, "error_code", None) in ABSENT:  # the registry answered: no such model or version
                message = f"cannot fetch {uri}: {e}"
                return TaskResult.failed(index, uri, Failure.INPUT, message, time.monotonic() - start)
            raise InfrastructureError(f"cannot fetch {uri}: {e}") from None
        try:
            result = run_audit(
                model, config.data, extra_args=config.extra_args, binary=config.binary,
                out_dir=Path(tmp) / "reports", timeout=config.timeout,
            )  # fmt: skip
        except BinaryNotFound as e:
            raise InfrastructureError(str(e)) from None
        if result.retryable:
            raise InfrastructureError(f"{uri}: {result.message}")
        report = result.report
        return TaskResult(
            index=index,
            uri=uri,
            verdict=result.verdict.value,
            exit_code=result.exit_code,
            flagged_classes=" ".join(str(c) for c in result.flagged_classes),
            method=(report.method if report else None) or "",
            model_sha256=(report.model_sha256 if report else None) or "",
            tool_version=(report.tool_version if report else None) or "",
            failure=result.failure.value if result.failure else "",
            message=result.message,
            duration_s=round(time.monotonic() - start, 3),
            report_json=result.json_path.read_text(encoding="utf-8") if result.json_path else None,
            report_sarif=result.sarif_path.read_text(encoding="utf-8") if result.sarif_path else None,
        )


def task_args(extra_args: list[str], cpus: float, gpus: float) -> tuple[str, ...]:
    """The aegis-audit flags for one task: the user's, plus `--threads` matching the task's CPUs and
    `--device cuda` for a task given a GPU, unless the user set them."""
    args = list(extra_args)

    def given(flag: str) -> bool:
        return any(a == flag or a.startswith(flag + "=") for a in args)

    if not given("--threads") and cpus >= 1:
        args += ["--threads", str(int(cpus))]
    if not given("--device") and gpus > 0:
        args += ["--device", "cuda"]
    return tuple(args)


def as_row(result: TaskResult) -> dict[str, Any]:
    return {k: v for k, v in vars(result).items() if k not in ("report_json", "report_sarif")}
