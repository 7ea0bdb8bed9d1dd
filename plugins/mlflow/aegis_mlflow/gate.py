"""The registry gate: audit one model version, log the reports to its run, tag the version with the
verdict, and move an alias to it only when it is clean; and the sweep over versions not yet audited."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException

from aegis_runner import AuditResult, Failure, Verdict, run_audit, sha256_file, tool_version

from .fetch import FetchError, Registry, download_version

TAG_VERDICT = "aegis.verdict"
TAG_EXIT_CODE = "aegis.exit_code"
TAG_TOOL_VERSION = "aegis.tool_version"
TAG_REPORT_SHA256 = "aegis.report_sha256"
TAG_MODEL_SHA256 = "aegis.model_sha256"
TAG_FLAGGED = "aegis.flagged_classes"
TAG_MESSAGE = "aegis.message"
ARTIFACT_ROOT = "aegis-audit"
MAX_MESSAGE = 1000


@dataclass
class GateOutcome:
    """What the gate did to one version. `tagged` is False when the failure was in the infrastructure
    (registry, artifact store, a killed process): the version stays pending for the next sweep."""

    name: str
    version: str
    exit_code: int
    verdict: Verdict
    message: str
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    alias_set: str | None = None
    alias_removed: str | None = None
    tagged: bool = False

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def line(self) -> str:
        text = f"{self.uri}: {self.verdict.value} (exit {self.exit_code}): {self.message}"
        if self.alias_set:
            text += f"; alias {self.alias_set!r} now points here"
        if self.alias_removed:
            text += f"; alias {self.alias_removed!r} removed from this version"
        if not self.tagged:
            text += "; not tagged (left pending)"
        return text


@dataclass(frozen=True)
class GateConfig:
    """How each version is audited: the data folder, extra aegis-audit flags, binary, timeout, alias."""

    data: Path
    extra_args: tuple[str, ...] = ()
    binary: str | None = None
    timeout: float | None = None
    promote_alias: str | None = None


def _artifact_dir(name: str, version: str) -> str:
    return f"{ARTIFACT_ROOT}/{re.sub(r'[^A-Za-z0-9._-]', '_', name)}-v{version}"


def _tags(result: AuditResult, report_sha256: str | None, model_sha256: str | None, binary: str | None) -> dict:
    report = result.report
    tags = {
        TAG_EXIT_CODE: str(result.exit_code),
        TAG_TOOL_VERSION: (report.tool_version if report else None) or tool_version(binary) or "unknown",
    }
    if report_sha256:
        tags[TAG_REPORT_SHA256] = report_sha256
    if model_sha256:
        tags[TAG_MODEL_SHA256] = model_sha256
    if result.verdict is Verdict.SUSPECTED:
        tags[TAG_FLAGGED] = ",".join(str(c) for c in result.flagged_classes)
    if result.verdict is not Verdict.CLEAN:
        tags[TAG_MESSAGE] = result.message[:MAX_MESSAGE]
    return tags


def _error_outcome(name: str, version: str, message: str) -> GateOutcome:
    return GateOutcome(name, version, 2, Verdict.ERROR, message)


def gate_version(
    registry: Registry, name: str, version: str, config: GateConfig, forward_only: bool = False
) -> GateOutcome:
    """Audit one registered model version and record the outcome on it (see the module doc). With
    `forward_only` (sweeps), a clean version never takes the alias from a newer version."""
    client = registry.client
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as e:
        return _error_outcome(name, version, f"cannot read the model version: {e.message}")
    with tempfile.TemporaryDirectory(prefix="aegis-mlflow-") as tmp:
        work = Path(tmp)
        try:
            model = download_version(registry, name, version, work / "model")
        except FetchError as e:
            result = None
            outcome = _error_outcome(name, version, str(e))
            tags = {TAG_EXIT_CODE: "2", TAG_TOOL_VERSION: tool_version(config.binary) or "unknown",
                    TAG_MESSAGE: str(e)[:MAX_MESSAGE]}  # fmt: skip
        except (MlflowException, OSError) as e:
            return _error_outcome(name, version, f"cannot download the model version's artifacts: {e}")
        else:
            result = run_audit(
                model, config.data, extra_args=config.extra_args, binary=config.binary,
                out_dir=work / "reports", timeout=config.timeout,
            )  # fmt: skip
            outcome = GateOutcome(name, version, result.exit_code, result.verdict, result.message)
            if result.failure is Failure.INFRASTRUCTURE:
                return outcome  # a killed process says nothing about the model: leave it pending
            report_sha = sha256_file(result.json_path) if result.json_path else None
            model_sha = (result.report.model_sha256 if result.report else None) or sha256_file(model)
            tags = _tags(result, report_sha, model_sha, config.binary)
        if result is not None and result.json_path and mv.run_id:
            artifact_dir = _artifact_dir(name, version)
            try:
                for path in (result.json_path, result.sarif_path):
                    if path:
                        client.log_artifact(mv.run_id, str(path), artifact_dir)
                        outcome.artifacts.append(f"{artifact_dir}/{path.name}")
            except (MlflowException, OSError) as e:
                outcome.message += f"; cannot log the reports to run {mv.run_id}: {e}"
                return outcome
        elif result is not None and result.json_path:
            outcome.message += "; the version has no run, so the reports were not logged"
    try:
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        # The verdict last: a version with partial tags but no verdict is audited again by the next sweep.
        client.set_model_version_tag(name, version, TAG_VERDICT, outcome.verdict.value)
        outcome.tags = {**tags, TAG_VERDICT: outcome.verdict.value}
        outcome.tagged = True
        if config.promote_alias:
            _apply_alias(registry, outcome, config.promote_alias, forward_only)
    except MlflowException as e:
        outcome.message += f"; cannot record the outcome in the registry: {e.message}"
        if outcome.exit_code == 0:
            outcome.exit_code, outcome.verdict = 2, Verdict.ERROR
    return outcome


def _apply_alias(registry: Registry, outcome: GateOutcome, alias: str, forward_only: bool) -> None:
    """Point the alias at a clean version (unless `forward_only` and it points at a newer one); take it
    away from a version that is no longer clean."""
    client = registry.client
    try:
        current = str(client.get_model_version_by_alias(outcome.name, alias).version)
    except MlflowException:
        current = None  # the alias points nowhere
    if outcome.verdict is Verdict.CLEAN:
        if forward_only and current and current.isdigit() and int(current) > int(outcome.version):
            outcome.message += f"; alias {alias!r} stays on the newer version {current}"
            return
        client.set_registered_model_alias(outcome.name, alias, outcome.version)
        outcome.alias_set = alias
        return
    if current == str(outcome.version):
        client.delete_registered_model_alias(outcome.name, alias)
        outcome.alias_removed = alias


def matching_versions(
    registry: Registry, filter_string: str | None = None, pending_only: bool = True
) -> Iterator[tuple[str, str]]:
    """(name, version) of every READY version matching the filter (`search_model_versions`), only those
    without an `aegis.verdict` tag when `pending_only`."""
    token = None
    while True:
        page = registry.client.search_model_versions(filter_string, max_results=1000, page_token=token)
        for mv in page:
            if mv.status == "READY" and not (pending_only and TAG_VERDICT in (mv.tags or {})):
                yield mv.name, str(mv.version)
        token = getattr(page, "token", None)
        if not token:
            return


def pending_versions(registry: Registry, filter_string: str | None = None) -> Iterator[tuple[str, str]]:
    """(name, version) of every READY version matching the filter that has no `aegis.verdict` tag yet."""
    return matching_versions(registry, filter_string, pending_only=True)


def sweep(registry: Registry, config: GateConfig, filter_string: str | None = None,
          limit: int | None = None) -> Iterable[GateOutcome]:  # fmt: skip
    """Gate every pending version (at most `limit`), yielding each outcome as it is recorded."""
    # Collect first: tagging versions while paging through the same search could shift the pages. Oldest
    # first, so that an alias moves forward as the versions of a model are found clean.
    todo = sorted(set(pending_versions(registry, filter_string)), key=lambda nv: (nv[0], _number(nv[1])))
    for name, version in todo[:limit] if limit else todo:
        yield gate_version(registry, name, version, config, forward_only=True)


def _number(version: str) -> int:
    return int(version) if version.isdigit() else 0
