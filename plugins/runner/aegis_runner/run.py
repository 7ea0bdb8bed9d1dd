"""One aegis-audit run: the command line, the process (with a timeout), and its outcome read from the exit
code and the JSON report. Every plugin runs the binary through `run_audit` and nothing else."""

from __future__ import annotations

import enum
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .binary import BinaryNotFound, find_binary
from .report import Report, ReportError, read_reports

JSON_NAME = "report.json"
SARIF_NAME = "report.sarif"

# Flags the runner sets itself; an "extra args" setting must not override them.
RESERVED_FLAGS = ("--data", "--json", "--sarif")


class Verdict(enum.Enum):
    """The outcome of one audit, named as the plugins record it (tags, CSV, issue text)."""

    CLEAN = "clean"
    SUSPECTED = "backdoor_suspected"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"

    @property
    def exit_code(self) -> int:
        return {"clean": 0, "backdoor_suspected": 1, "error": 2, "not_applicable": 3}[self.value]

    @classmethod
    def from_exit_code(cls, code: int) -> Verdict:
        return {0: cls.CLEAN, 1: cls.SUSPECTED, 3: cls.NOT_APPLICABLE}.get(code, cls.ERROR)


class Failure(enum.Enum):
    """Why an audit has no verdict. Only INFRASTRUCTURE is worth retrying elsewhere."""

    INPUT = "input"  # aegis-audit exited 2: the model, data or flags are wrong; a retry gives the same.
    TIMEOUT = "timeout"  # the process ran past its time limit and was killed.
    INFRASTRUCTURE = "infrastructure"  # killed by a signal (e.g. out of memory), or could not start.
    TOOL = "tool"  # another exit code (a crash) or a report that is missing or unreadable.


@dataclass(frozen=True)
class AuditResult:
    """What one aegis-audit process gave. `exit_code` follows aegis-audit's convention (0 clean,
    1 backdoor suspected, 2 error, 3 not applicable) even when the process itself died; the process's own
    status is in `returncode` (negative: killed by that signal; None: never started or timed out)."""

    exit_code: int
    verdict: Verdict
    message: str
    reports: tuple[Report, ...]
    json_path: Path | None
    sarif_path: Path | None
    command: tuple[str, ...]
    returncode: int | None
    stderr: str
    duration_s: float
    failure: Failure | None

    @property
    def report(self) -> Report | None:
        return self.reports[0] if self.reports else None

    @property
    def flagged_classes(self) -> tuple[int | str | None, ...]:
        return tuple(label for r in self.reports for label in r.flagged_classes)

    @property
    def retryable(self) -> bool:
        return self.failure is Failure.INFRASTRUCTURE


def check_extra_args(extra_args: Iterable[str]) -> list[str]:
    """The extra arguments as a list, refusing those the runner sets itself."""
    args = [str(a) for a in extra_args]
    for arg in args:
        for flag in RESERVED_FLAGS:
            if arg == flag or arg.startswith(flag + "="):
                raise ValueError(f"extra aegis-audit arguments must not contain {flag}: the plugin sets it")
    return args


def check_data(data: str | os.PathLike[str] | None) -> Path:
    """`--data` as aegis-audit takes it: a training data folder, or one held-out data file (an IDX images
    file with its labels file beside it, or one CIFAR-10 batch); aegis-audit checks the format itself. A path
    that does not exist is a ValueError naming both forms."""
    if data is None or not Path(data).exists():
        raise ValueError(
            f"--data {data} does not exist: give the training data folder or one held-out data file "
            "(an IDX images file beside its labels file, or a CIFAR-10 batch), as aegis-audit --data takes"
        )
    return Path(data)


def audit_command(binary: Path, model: Path, data: Path, out_dir: Path, extra_args: Sequence[str]) -> list[str]:
    """The command line: the absolute model path first (never mistaken for a subcommand), reports into out_dir."""
    return [
        str(binary),
        str(model),
        "--data",
        str(data),
        "--json",
        str(out_dir / JSON_NAME),
        "--sarif",
        str(out_dir / SARIF_NAME),
        "--quiet",
        *extra_args,
    ]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _summary(verdict: Verdict, reports: tuple[Report, ...]) -> str:
    if verdict is Verdict.SUSPECTED:
        flagged = [str(c) for r in reports for c in r.flagged_classes]
        return "backdoor suspected" + (f" in class(es) {', '.join(flagged)}" if flagged else "")
    if verdict is Verdict.NOT_APPLICABLE:
        reasons = [r.method_reason for r in reports if r.method_reason]
        return "method not applicable" + (f": {reasons[0]}" if reasons else "")
    classes = sum(len(r.classes) for r in reports)
    return f"no backdoor found ({classes} classes audited)"


def run_audit(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    extra_args: Iterable[str] = (),
    binary: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> AuditResult:
    """Audit one ONNX model; the JSON and SARIF reports are written into `out_dir` (a new temporary folder
    when None, which the caller then owns). Never raises for what the audit finds or for a failed process;
    raises ValueError for reserved extra arguments and BinaryNotFound when there is no binary."""
    args = check_extra_args(extra_args)
    exe = find_binary(binary)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="aegis-audit-"))
    out.mkdir(parents=True, exist_ok=True)
    json_path, sarif_path = out / JSON_NAME, out / SARIF_NAME
    for stale in (json_path, sarif_path):
        stale.unlink(missing_ok=True)
    command = audit_command(exe, Path(model).absolute(), Path(data).absolute(), out, args)
    run_env = dict(os.environ if env is None else env)
    start = time.monotonic()

    def result(exit_code, message, failure, returncode=None, stderr="", reports=()) -> AuditResult:
        ok = failure is None
        return AuditResult(
            exit_code=exit_code,
            verdict=Verdict.from_exit_code(exit_code),
            message=message,
            reports=tuple(reports),
            json_path=json_path if ok and json_path.is_file() else None,
            sarif_path=sarif_path if ok and sarif_path.is_file() else None,
            command=tuple(command),
            returncode=returncode,
            stderr=stderr,
            duration_s=time.monotonic() - start,
            failure=failure,
        )

    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout,
            env=run_env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return result(2, f"aegis-audit timed out after {timeout:g} s and was killed", Failure.TIMEOUT, None, stderr)
    except OSError as e:
        return result(2, f"cannot run {exe}: {e}", Failure.INFRASTRUCTURE)
    code, stderr = proc.returncode, proc.stderr
    if code < 0:
        return result(2, f"aegis-audit was killed by signal {-code}", Failure.INFRASTRUCTURE, code, stderr)
    if code == 2:
        line = _last_line(stderr) or "aegis-audit exited 2 (usage or input error) without a message"
        return result(2, line, Failure.INPUT, code, stderr)
    if code not in (0, 1, 3):
        line = _last_line(stderr)
        return result(2, f"aegis-audit exited {code}" + (f": {line}" if line else ""), Failure.TOOL, code, stderr)
    try:
        reports = read_reports(json_path)
    except ReportError as e:
        return result(2, f"aegis-audit exited {code} but its JSON report is unusable: {e}", Failure.TOOL, code, stderr)
    verdict = Verdict.from_exit_code(code)
    return result(code, _summary(verdict, reports), None, code, stderr, reports)


def combined_exit_code(codes: Iterable[int]) -> int:
    """One exit code for many audits: 1 if any backdoor is suspected, else 2 if any failed, else 3 if any
    method did not apply, else 0 (also for no audits)."""
    seen = set(codes)
    for code in (1, 2, 3):
        if code in seen:
            return code
    return 2 if seen - {0} else 0


__all__ = [
    "AuditResult",
    "BinaryNotFound",
    "Failure",
    "Verdict",
    "audit_command",
    "check_extra_args",
    "combined_exit_code",
    "run_audit",
]
