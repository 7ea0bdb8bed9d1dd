"""Shared paths and helpers of the packaging tests (wheel, GitHub Action, pre-commit hook, SARIF checker).

Run by scripts/test_packaging.sh after scripts/tools.sh (the pinned tools in .tools/) and scripts/wheel.sh
(the wheels in dist/). Everything runs offline: pip installs with --no-index from dist/ and .tools/wheels/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
WHEELS = TOOLS / "wheels"
DIST = Path(os.environ.get("AEGIS_WHEEL_DIR", ROOT / "dist"))
MULTITOOL = TOOLS / "sarif/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
# The reduced audit configuration of tests/audit_cli.rs (shortcut_decision_flags_the_target_class_only):
# robust_localised gives exit 1 (class 7) in seconds.
REDUCED = ["--seeds-per-class", "40", "--steps", "30", "--precondition-images", "100", "--reducer", "pca", "--quiet"]
DATA = "fixtures/mnist-subset"


def tool(name: str) -> str:
    path = TOOLS / "venv" / "bin" / name
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/tools.sh")
    return str(path)


def wheel(distribution: str) -> Path:
    """The one wheel of `distribution` (e.g. aegis_backdoor_audit) in dist/."""
    found = sorted(DIST.glob(f"{distribution}-*.whl"))
    if len(found) != 1:
        pytest.fail(f"expected one {distribution} wheel in {DIST}, found {found}: run scripts/wheel.sh")
    return found[0]


def clean_env(**extra: str) -> dict[str, str]:
    """An environment as a CI job or another program would give: no venv active, no ORT_DYLIB_PATH, and a
    PATH whose python3 has no onnxruntime, so the binary can only find ONNX Runtime beside itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DYLIB_PATH", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def make_venv(path: Path) -> Path:
    """A fresh virtual environment (with pip) at `path`; returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def pip_offline(python: Path, *args: str) -> None:
    cmd = [
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-index",
        "--find-links",
        str(DIST),
        "--find-links",
        str(WHEELS),
        *args,
    ]
    subprocess.run(cmd, check=True)


def dump_sarif(origin: str, path: Path) -> None:
    """Copies a SARIF log into $AEGIS_SARIF_DUMP for scripts/check_sarif.py (as the Rust tests do)."""
    dest = os.environ.get("AEGIS_SARIF_DUMP")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(dest) / f"{origin}-{path.name}")
