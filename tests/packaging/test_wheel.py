"""The wheels (issue 17 item 1): what they hold and depend on, and the installed binary, run by absolute path
from a fresh virtual environment that is not activated, with no ORT_DYLIB_PATH and no python3 on PATH that
has onnxruntime, auditing a zoo model with the ONNX Runtime that pip installed beside it."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

import tomllib
from helpers import DATA, REDUCED, ROOT, clean_env, dump_sarif, wheel

VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]


def metadata(whl: Path) -> tuple[str, list[str], list[str]]:
    """(wheel tag line(s), Requires-Dist lines, file names) of a wheel."""
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        tags = [line for line in z.read(info).decode().splitlines() if line.startswith("Tag:")]
        requires = [line for line in z.read(meta).decode().splitlines() if line.startswith("Requires-Dist:")]
    return "\n".join(tags), requires, names


def test_cpu_wheel_holds_the_binary_and_pins_onnxruntime() -> None:
    whl = wheel("aegis_backdoor_audit")
    assert whl.name.startswith(f"aegis_backdoor_audit-{VERSION}-py3-none-manylinux_"), whl.name
    tags, requires, names = metadata(whl)
    assert re.fullmatch(r"(Tag: py3-none-manylinux_\d+_\d+_x86_64\n?)+", tags), tags
    assert requires == ["Requires-Dist: onnxruntime==1.31.1"], requires
    assert f"aegis_backdoor_audit-{VERSION}.data/scripts/aegis-audit" in names, names


def test_gpu_wheel_is_the_same_binary_over_onnxruntime_gpu() -> None:
    whl = wheel("aegis_backdoor_audit_gpu")
    assert whl.name.startswith(f"aegis_backdoor_audit_gpu-{VERSION}-py3-none-manylinux_"), whl.name
    _, requires, names = metadata(whl)
    assert requires == ["Requires-Dist: onnxruntime-gpu==1.31.1"], requires
    exe = f"aegis_backdoor_audit_gpu-{VERSION}.data/scripts/aegis-audit"
    assert exe in names, names
    cpu = wheel("aegis_backdoor_audit")
    with zipfile.ZipFile(whl) as g, zipfile.ZipFile(cpu) as c:
        assert g.read(exe) == c.read(f"aegis_backdoor_audit-{VERSION}.data/scripts/aegis-audit")


def test_installed_binary_finds_onnxruntime_in_its_environment_and_audits(installed: Path, tmp_path: Path) -> None:
    exe = installed / "bin" / "aegis-audit"
    capi = next(installed.glob("lib/python3*/site-packages/onnxruntime/capi"))
    assert (capi / "libonnxruntime.so.1.31.1").is_file()
    out = tmp_path / "out"
    trace = tmp_path / "ld"
    # Run from an unrelated folder, models and data by absolute path; glibc's loader says which
    # libonnxruntime was opened (the build tree's .ort/ would also satisfy a broken lookup).
    cmd = [str(exe), str(ROOT / "fixtures/zoo/robust_localised.onnx"), "--data", str(ROOT / DATA), *REDUCED]
    cmd += ["--sarif", str(out / "report.sarif"), "--json", str(out / "report.json")]
    out.mkdir()
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        env=clean_env(LD_DEBUG="files", LD_DEBUG_OUTPUT=str(trace)),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    loaded = set()
    for log in tmp_path.glob("ld.*"):
        loaded |= set(
            re.findall(r"file=(\S*libonnxruntime\.so\.1\.31\.1) \[\d+\];\s+dynamically loaded", log.read_text())
        )
    assert loaded == {str(capi / "libonnxruntime.so.1.31.1")}, loaded
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "suspected"
    dump_sarif("wheel", out / "report.sarif")
