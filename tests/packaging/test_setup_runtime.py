"""`scripts/setup.sh --runtime` (issue 17 item 2, the README's first command): ONNX Runtime only, straight
from the onnxruntime wheel into `.ort/`, no virtual environment and no PyTorch; a second run downloads
nothing. Offline: pip finds the wheel in .tools/wheels-runtime (scripts/tools.sh)."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from helpers import ROOT, TOOLS, clean_env

LIB = "libonnxruntime.so.1.31.1"


def setup(checkout: Path, links: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(links), PYTHON=shutil.which("python3") or "python3")
    return subprocess.run(
        ["bash", "scripts/setup.sh", "--runtime"], cwd=checkout, env=env, capture_output=True, text=True, check=False
    )


def test_runtime_setup_extracts_onnxruntime_only_and_is_idempotent(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/setup.sh", checkout / "scripts/setup.sh")
    wheels = TOOLS / "wheels-runtime"
    proc = setup(checkout, wheels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lib = checkout / ".ort" / LIB
    (whl,) = wheels.glob("onnxruntime-1.31.1-*.whl")
    with zipfile.ZipFile(whl) as z:
        assert lib.read_bytes() == z.read(f"onnxruntime/capi/{LIB}")
    assert (checkout / ".ort/.source").read_text().strip() == "onnxruntime"
    assert not (checkout / ".venv").exists(), "no virtual environment, no PyTorch"
    # Second run: nothing to fetch (an empty link folder would fail a download).
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = setup(checkout, empty)
    assert proc.returncode == 0 and "downloading" not in proc.stderr, proc.stderr
    proc = subprocess.run(
        ["bash", "scripts/setup.sh", "--bogus"], cwd=checkout, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "unknown argument" in proc.stderr
