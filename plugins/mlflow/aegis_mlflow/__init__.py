"""aegis-mlflow: an MLflow model-registry gate for aegis-audit (tags, reports as run artifacts, aliases)."""

from .fetch import FetchError, Registry, download_version, find_onnx, parse_model_uri
from .gate import (
    TAG_EXIT_CODE,
    TAG_FLAGGED,
    TAG_MESSAGE,
    TAG_MODEL_SHA256,
    TAG_REPORT_SHA256,
    TAG_TOOL_VERSION,
    TAG_VERDICT,
    GateConfig,
    GateOutcome,
    gate_version,
    matching_versions,
    pending_versions,
    sweep,
)

__all__ = [
    "TAG_EXIT_CODE",
    "TAG_FLAGGED",
    "TAG_MESSAGE",
    "TAG_MODEL_SHA256",
    "TAG_REPORT_SHA256",
    "TAG_TOOL_VERSION",
    "TAG_VERDICT",
    "FetchError",
    "GateConfig",
    "GateOutcome",
    "Registry",
    "download_version",
    "find_onnx",
    "gate_version",
    "matching_versions",
    "parse_model_uri",
    "pending_versions",
    "sweep",
]
