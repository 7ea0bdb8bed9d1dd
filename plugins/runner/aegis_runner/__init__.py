"""aegis-runner: the one place where the integrations (modelscan, MLflow, fan-out) find and run the
aegis-audit binary and read its JSON report."""

from .binary import ENV_VAR, BinaryNotFound, find_binary, tool_version
from .report import ClassFinding, Report, ReportError, parse_reports, read_reports, sha256_file
from .run import AuditResult, Failure, Verdict, check_data, check_extra_args, combined_exit_code, run_audit

__all__ = [
    "ENV_VAR",
    "AuditResult",
    "BinaryNotFound",
    "ClassFinding",
    "Failure",
    "Report",
    "ReportError",
    "Verdict",
    "check_data",
    "check_extra_args",
    "combined_exit_code",
    "find_binary",
    "parse_reports",
    "read_reports",
    "run_audit",
    "sha256_file",
    "tool_version",
]
