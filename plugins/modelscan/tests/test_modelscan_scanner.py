"""The aegis scanner inside the real modelscan 0.8.8, both routes: programmatic (`ModelScan(settings=...)`)
on a folder holding every case, and the `modelscan` command with the settings file from
`aegis-modelscan settings-file`, asserting modelscan's own exit code and JSON report."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from modelscan.issues import IssueSeverity
from modelscan.modelscan import ModelScan

from aegis_modelscan import SCANNER_PATH, settings_with_aegis
from aegis_runner import sha256_file

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def aegis_args(reduced_args):
    # `--method aegis` so that the standard (non-robust) model is "not applicable"; robust models pass the
    # precondition and get the same audit as `--method auto`.
    return [*reduced_args, "--method", "aegis"]


@pytest.fixture(scope="session")
def programmatic(tmp_path_factory, aegis_bin, zoo, mnist, broken_model, aegis_args):
    """One modelscan scan of a folder: a clean robust model, a non-robust one, a broken file, and a zip
    archive holding the backdoored model and a text file."""
    folder = tmp_path_factory.mktemp("programmatic")
    models = folder / "models"
    models.mkdir()
    shutil.copy(zoo / "robust_clean_s0.onnx", models)
    shutil.copy(zoo / "standard_clean.onnx", models)
    shutil.copy(broken_model, models / "broken.onnx")
    with zipfile.ZipFile(models / "archive.zip", "w") as z:
        z.write(zoo / "robust_localised.onnx", "robust_localised.onnx")
        z.writestr("notes.txt", "not a model")
    reports = folder / "reports"
    scan = ModelScan(settings=settings_with_aegis(mnist, extra_args=aegis_args, reports_dir=reports))
    return scan, scan.scan(models), reports


def test_programmatic_backdoor_in_zip_member_is_one_critical_issue_per_flagged_class(programmatic, zoo):
    scan, report, _ = programmatic
    assert [(i.severity, i.details.label) for i in scan.issues.all_issues] == [(IssueSeverity.CRITICAL, 7)]
    (issue,) = report["issues"]
    assert issue["source"] == "archive.zip:robust_localised.onnx"
    assert issue["scanner"] == SCANNER_PATH
    assert issue["severity"] == "CRITICAL"
    assert issue["class"] == "7" and issue["method"] == "aegis"
    assert issue["description"].startswith("Backdoor suspected in class 7 (aegis-audit, aegis): class 7:")
    assert issue["model_sha256"] == sha256_file(zoo / "robust_localised.onnx")
    assert report["summary"]["total_issues_by_severity"]["CRITICAL"] == 1


def test_programmatic_clean_model_is_scanned_without_issue(programmatic):
    _, report, _ = programmatic
    scanned = report["summary"]["scanned"]["scanned_files"]
    assert sorted(scanned) == ["archive.zip:robust_localised.onnx", "robust_clean_s0.onnx"]
    assert all(not i["source"].startswith("robust_clean_s0") for i in report["issues"])


def test_programmatic_not_applicable_is_skipped_with_the_reason(programmatic):
    _, report, _ = programmatic
    skipped = {s["source"]: s for s in report["summary"]["skipped"]["skipped_files"]}
    entry = skipped["standard_clean.onnx"]
    assert entry["category"] == "METHOD_NOT_APPLICABLE"
    assert entry["description"].startswith("aegis-audit: method not applicable: --method aegis, but adversarial")
    assert "not robust" in entry["description"]


def test_programmatic_broken_file_is_a_scanner_error(programmatic):
    _, report, _ = programmatic
    errors = [e for e in report["errors"] if e.get("source") == "broken.onnx"]
    assert len(errors) == 1, report["errors"]
    assert errors[0]["category"] == "MODEL_SCAN"
    assert "not an ONNX model" in errors[0]["description"] and "truncated" in errors[0]["description"]
    assert len(report["errors"]) == 1


def test_programmatic_reports_are_kept(programmatic):
    _, _, reports = programmatic
    names = sorted(p.name for p in reports.iterdir())
    # JSON and SARIF for the clean model, the zip member and the not-applicable model; none for the broken one.
    assert len(names) == 6
    assert sum(n.startswith("robust_localised-") for n in names) == 2
    assert not any(n.startswith("broken") for n in names)
    paths = {}
    for path in reports.glob("*.json"):
        report = json.loads(path.read_text())
        paths[path.name.rsplit("-", 1)[0]] = report["model"]["path"]
    # A file on disk is audited in place (its external data beside it); a zip member from a temporary copy.
    assert paths["robust_clean_s0"] == str(reports.parent / "models" / "robust_clean_s0.onnx")
    assert paths["robust_localised"] != str(reports.parent / "models" / "archive.zip")
    assert paths["robust_localised"].endswith("/robust_localised.onnx")


@pytest.fixture(scope="session")
def settings_file(tmp_path_factory, mnist, aegis_args):
    path = tmp_path_factory.mktemp("cli") / "modelscan-settings.toml"
    subprocess.run(
        [VENV_BIN / "aegis-modelscan", "settings-file", "--data", mnist, "-o", path,
         f"--aegis-args={' '.join(aegis_args)}"],
        check=True,
    )  # fmt: skip
    return path


def modelscan_cli(settings_file: Path, target: Path, out: Path) -> tuple[int, dict]:
    proc = subprocess.run(
        [VENV_BIN / "modelscan", "--settings-file", settings_file, "-p", target, "-r", "json", "-o", out,
         "--show-skipped"],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    return proc.returncode, json.loads(out.read_text())


@pytest.mark.parametrize(
    ("model", "want_code", "want_issue_classes"),
    [("robust_localised", 1, ["7"]), ("robust_clean_s0", 0, []), ("standard_clean", 3, [])],
)
def test_modelscan_command_exit_codes(tmp_path, settings_file, aegis_bin, zoo, model, want_code, want_issue_classes):
    code, report = modelscan_cli(settings_file, zoo / f"{model}.onnx", tmp_path / "out.json")
    assert code == want_code, report
    assert [i["class"] for i in report["issues"]] == want_issue_classes
    assert all(i["severity"] == "CRITICAL" and i["scanner"] == SCANNER_PATH for i in report["issues"])
    assert report["errors"] == []
    if want_code == 3:
        # modelscan's 3 is "nothing scanned": the only model was skipped as not applicable.
        (skipped,) = report["summary"]["skipped"]["skipped_files"]
        assert skipped["category"] == "METHOD_NOT_APPLICABLE"
    else:
        assert report["summary"]["scanned"]["total_scanned"] == 1


def test_modelscan_command_broken_model(tmp_path, settings_file, aegis_bin, broken_model):
    # Alone, a file that errors leaves nothing scanned: modelscan reports 3 (its rule: 3 before 2).
    code, report = modelscan_cli(settings_file, broken_model, tmp_path / "alone.json")
    assert code == 3
    assert [e["category"] for e in report["errors"]] == ["MODEL_SCAN"]
    assert "not an ONNX model" in report["errors"][0]["description"]
    # Beside a file that is scanned (a pickle, by modelscan's built-in scanner): 2.
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(broken_model, folder / "broken.onnx")
    (folder / "evil.pkl").write_bytes(pickle.dumps(_Evil()))
    code, report = modelscan_cli(settings_file, folder, tmp_path / "mixed.json")
    assert code == 2
    assert [e["source"] for e in report["errors"]] == ["broken.onnx"]
    # The built-in scanners still work through the settings file (modelscan's own format middleware
    # would fail on every pickle here with "'str' object has no attribute 'value'").
    (issue,) = report["issues"]
    assert (issue["source"], issue["operator"], issue["module"]) == ("evil.pkl", "system", "posix")


class _Evil:
    """Pickles as a call to os.system: modelscan reads the opcodes and never runs it."""

    def __reduce__(self):
        return (os.system, ("true",))
