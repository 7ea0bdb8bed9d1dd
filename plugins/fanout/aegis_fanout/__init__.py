"""aegis-fanout: registry-scale aegis-audit runs, one process per model, on Ray, on this machine, or as a
Kubernetes Indexed Job (`--index`)."""

from .backends import Resources, run_local, run_ray
from .manifest import Entry, ManifestError, read_manifest, registry_entries
from .sarif import merge_sarif
from .summary import COLUMNS, write_summary
from .task import InfrastructureError, TaskConfig, TaskResult, audit_entry

__all__ = [
    "COLUMNS",
    "Entry",
    "InfrastructureError",
    "ManifestError",
    "Resources",
    "TaskConfig",
    "TaskResult",
    "audit_entry",
    "merge_sarif",
    "read_manifest",
    "registry_entries",
    "run_local",
    "run_ray",
    "write_summary",
]
