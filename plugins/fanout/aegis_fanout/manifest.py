"""What to audit: a manifest file (one model URI per line) or a registry query, as numbered entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse


class ManifestError(ValueError):
    """The manifest cannot be read or names nothing to audit."""


@dataclass(frozen=True)
class Entry:
    """One model to audit: its position in the manifest (the Indexed Job's completion index) and its URI as
    written (a local path, file://, models:/NAME/VERSION, or any URI MLflow can download)."""

    index: int
    uri: str


def read_manifest(path: str | Path) -> list[Entry]:
    """Entries of a manifest: one URI per line; blank lines and lines starting with # are ignored. Relative
    paths are resolved against the manifest's folder."""
    manifest = Path(path)
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"cannot read manifest {manifest}: {e}") from e
    uris = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not uris:
        raise ManifestError(f"manifest {manifest} names no model")
    return [Entry(i, uri) for i, uri in enumerate(uris)]


def is_remote(uri: str) -> bool:
    """True for URIs fetched through MLflow (models:/, runs:/, s3://, ...); False for local files."""
    scheme = urlparse(uri).scheme
    return len(scheme) > 1 and scheme != "file"  # one letter: a Windows drive


def local_path(uri: str, base: Path) -> Path:
    """The file a local manifest entry names (file:// URI or path, relative to `base`)."""
    parsed = urlparse(uri)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri).expanduser()
    return path if path.is_absolute() else base / path


def registry_entries(tracking_uri: str | None, filter_string: str | None, pending_only: bool) -> list[Entry]:
    """models:/NAME/VERSION of the registered versions the query matches (`search_model_versions`; only those
    without an aegis.verdict tag when `pending_only`), ordered by name and version."""
    from aegis_mlflow import Registry, matching_versions

    versions = matching_versions(Registry.connect(tracking_uri), filter_string, pending_only)
    ordered = sorted(set(versions), key=lambda nv: (nv[0], int(nv[1]) if nv[1].isdigit() else 0))
    return [Entry(i, f"models:/{name}/{version}") for i, (name, version) in enumerate(ordered)]
