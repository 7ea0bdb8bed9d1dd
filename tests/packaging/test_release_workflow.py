"""The release workflow (.github/workflows/release.yml): it validates against GitHub's workflow schema, builds
both wheel variants and the source distribution with maturin, publishes with PyPI trusted publishing, and
its version check, run here as the runner runs it, passes on the tag of Cargo.toml's version in Cargo.toml's
repository and stops on any other tag or repository before anything is built."""

from __future__ import annotations

import subprocess
from pathlib import Path

import tomllib
import yaml
from helpers import ROOT, tool

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
CARGO = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_validates_against_the_github_workflow_schema(tmp_path: Path) -> None:
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    proc = subprocess.run([*check, str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The check can fail: a job without `runs-on` is invalid.
    broken = workflow()
    del broken["jobs"]["publish"]["runs-on"]
    (tmp_path / "release.yml").write_text(yaml.safe_dump(broken))
    proc = subprocess.run([*check, str(tmp_path / "release.yml")], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_it_builds_both_wheels_and_publishes_them_by_trusted_publishing() -> None:
    spec = workflow()
    on = spec.get("on", spec.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["push"]["tags"] == ["v*.*.*"]
    jobs = spec["jobs"]
    variants = {m["variant"]: m["pyproject"] for m in jobs["wheels"]["strategy"]["matrix"]["include"]}
    assert variants == {"cpu": ".", "gpu": "packaging/gpu"}
    names = {
        folder: tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]["name"]
        for folder in variants.values()
    }
    assert names == {".": "aegis-backdoor-audit", "packaging/gpu": "aegis-backdoor-audit-gpu"}
    build = next(s for s in jobs["wheels"]["steps"] if s.get("uses", "").startswith("PyO3/maturin-action@"))
    assert build["with"]["manylinux"] == "2_28" and build["with"]["command"] == "build"
    maturin_pin = (ROOT / "scripts/tools/maturin.txt").read_text().split("maturin==")[1].split()[0]
    assert build["with"]["maturin-version"] == maturin_pin, "the release builds with the pinned maturin"
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"} and spec["permissions"] == {"contents": "read"}
    assert set(publish["needs"]) == {"check", "wheels", "sdist"}
    assert any(s.get("uses", "").startswith("pypa/gh-action-pypi-publish@") for s in publish["steps"])
    assert not any("password" in (s.get("with") or {}) for s in publish["steps"]), "no token: trusted publishing"


def run_check(tmp_path: Path, ref_name: str, repository: str, ref_type: str = "tag") -> subprocess.CompletedProcess:
    """The check job's version step, run as the runner runs it (bash, GITHUB_OUTPUT, its env)."""
    step = workflow()["jobs"]["check"]["steps"][1]
    output = tmp_path / "output"
    output.write_text("")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "REF_NAME": ref_name}
    env.update({"REF_TYPE": ref_type, "REPOSITORY_URL": repository})
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_the_version_check_runs_before_any_build(tmp_path: Path) -> None:
    repository, version = CARGO["repository"], CARGO["version"]
    proc = run_check(tmp_path, f"v{version}", repository)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "output").read_text() == f"version={version}\n"
    proc = run_check(tmp_path, "v9.9.9", repository)
    assert proc.returncode == 1 and f"is not Cargo.toml's version v{version}" in proc.stdout, proc.stdout
    proc = run_check(tmp_path, f"v{version}", "https://github.com/someone/fork")
    assert proc.returncode == 1 and "Cargo.toml's repository is" in proc.stdout, proc.stdout
    proc = run_check(tmp_path, "main", repository, ref_type="branch")  # workflow_dispatch: builds, publishes nothing
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert workflow()["jobs"]["publish"]["if"] == "github.ref_type == 'tag'"
