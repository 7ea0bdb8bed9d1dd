"""aegis-modelscan: aegis-audit's backdoor detection as a modelscan scanner for ONNX models."""

from .scanner import SCANNER_PATH, AegisAuditScan, BackdoorIssue, BackdoorIssueDetails
from .settings import FormatViaExtensionMiddleware, scanner_entry, settings_toml, settings_with_aegis

__all__ = [
    "SCANNER_PATH",
    "AegisAuditScan",
    "BackdoorIssue",
    "BackdoorIssueDetails",
    "FormatViaExtensionMiddleware",
    "scanner_entry",
    "settings_toml",
    "settings_with_aegis",
]
