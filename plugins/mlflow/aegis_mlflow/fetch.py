"""Getting a registered model version's ONNX file out of MLflow: parse `models:/NAME/VERSION` (or
`models:/NAME@ALIAS`), download the version's artifacts, and pick the ONNX file (the ONNX flavour's
`data` in MLmodel, else the only `.onnx` file)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")


class FetchError(ValueError):
    """The model version holds no single ONNX model (a property of the version: auditing it again gives
    the same). Failures to reach the registry or the artifact store are not FetchErrors."""


@dataclass(frozen=True)
class Registry:
    """An MLflow client and the URIs it was made with (downloads need them too)."""

    client: MlflowClient
    tracking_uri: str
    registry_uri: str

    @classmethod
    def connect(cls, tracking_uri: str | None = None, registry_uri: str | None = None) -> Registry:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        return cls(client, client.tracking_uri, registry_uri or client.tracking_uri)


def parse_model_uri(registry: Registry, uri: str) -> tuple[str, str]:
    """(name, version) of `models:/NAME/VERSION`, or of the version `models:/NAME@ALIAS` points to now."""
    m = _URI.match(uri)
    if not m:
        raise ValueError(f"{uri!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    if m["version"]:
        return m["name"], m["version"]
    mv = registry.client.get_model_version_by_alias(m["name"], m["alias"])
    return m["name"], str(mv.version)


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def find_onnx(root: Path) -> Path:
    """The ONNX model among downloaded artifacts; never a path outside `root`."""
    if root.is_file():
        if root.suffix.lower() == ".onnx":
            return root
        raise FetchError(f"the model version's artifact {root.name} is not an .onnx file")
    mlmodel = root / "MLmodel"
    if mlmodel.is_file():
        try:
            meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise FetchError(f"the model version's MLmodel file is not YAML: {e}") from e
        data = ((meta.get("flavors") or {}).get("onnx") or {}).get("data") if isinstance(meta, dict) else None
        if isinstance(data, str) and data:
            path = root / data
            if not _inside(root, path):
                raise FetchError(f"MLmodel's onnx flavour names {data!r}, outside the model's artifacts")
            if not path.is_file():
                raise FetchError(f"MLmodel's onnx flavour names {data!r}, which is not among the artifacts")
            return path
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".onnx" and p.is_file() and _inside(root, p))
    if not found:
        raise FetchError("no .onnx file among the model version's artifacts")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found[:5])
        raise FetchError(f"several .onnx files among the model version's artifacts ({names}) and no onnx flavour")
    return found[0]


def download_version(registry: Registry, name: str, version: str, dst: Path) -> Path:
    """Download the version's artifacts into `dst` (MLflow errors propagate) and return its ONNX file.

    The version's source is resolved here, through this registry's client: MLflow 3.17's
    `download_artifacts("models:/NAME/VERSION", tracking_uri=...)` resolves a `runs:/` source against the
    default tracking store (`./mlflow.db`) instead of the one given."""
    client = registry.client
    source = client.get_model_version_download_uri(name, version)
    dst.mkdir(parents=True, exist_ok=True)
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].partition("/")
        local = client.download_artifacts(run_id, path, str(dst))
    elif source.startswith("models:/"):  # an MLflow 3 logged model, models:/m-<id>
        logged = client.get_logged_model(source[len("models:/") :].strip("/"))
        local = download_artifacts(artifact_uri=logged.artifact_location, dst_path=str(dst))
    else:
        local = download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=registry.tracking_uri)
    return find_onnx(Path(local))
