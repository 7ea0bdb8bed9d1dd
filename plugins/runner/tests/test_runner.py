"""The shared runner against the real aegis-audit binary: exit codes mapped to verdicts, the JSON report
read back, failures classified (input error, timeout, killed), and the report reader's tolerance."""

from __future__ import annotations

import json
import os
import stat
import sysconfig
from pathlib import Path

import pytest

from aegis_runner import (
    BinaryNotFound,
    Failure,
    ReportError,
    Verdict,
    combined_exit_code,
    find_binary,
    parse_reports,
    run_audit,
    sha256_file,
    tool_version,
)
from aegis_runner.binary import ENV_VAR


@pytest.fixture(scope="module")
def suspected(tmp_path_factory, aegis_bin, zoo, mnist, reduced_args):
    out = tmp_path_factory.mktemp("suspected")
    return run_audit(zoo / "robust_localised.onnx", mnist, extra_args=reduced_args, out_dir=out)


def test_backdoored_model_gives_exit_1_and_the_flagged_class(suspected, zoo, aegis_bin):
    assert suspected.exit_code == 1, suspected.stderr
    assert suspected.verdict is Verdict.SUSPECTED
    assert suspected.failure is None
    assert suspected.flagged_classes == (7,)
    assert suspected.message == "backdoor suspected in class(es) 7"
    report = suspected.report
    assert report.model_sha256 == sha256_file(zoo / "robust_localised.onnx")
    assert report.tool_version == tool_version(aegis_bin)
    assert report.method == "fused"  # the default: the fused decision over every detector
    assert len(report.classes) == 10
    assert all(c.summary.startswith(f"class {c.label}:") for c in report.classes)
    assert suspected.json_path.is_file() and suspected.sarif_path.is_file()
    sarif = json.loads(suspected.sarif_path.read_text())
    assert sarif["version"] == "2.1.0"
    # The command line: absolute model path first, reports where the runner said.
    assert suspected.command[1] == str((zoo / "robust_localised.onnx").absolute())
    assert suspected.command[suspected.command.index("--json") + 1] == str(suspected.json_path)


def test_standard_model_with_aegis_is_not_applicable(tmp_path, aegis_bin, zoo, mnist, reduced_args):
    r = run_audit(zoo / "standard_clean.onnx", mnist, extra_args=[*reduced_args, "--method", "aegis"], out_dir=tmp_path)
    assert r.exit_code == 3, r.stderr
    assert r.verdict is Verdict.NOT_APPLICABLE
    assert r.flagged_classes == ()
    assert "not robust" in r.report.method_reason
    assert r.message.startswith("method not applicable: ") and "AEGIS does not apply" in r.message


def test_broken_model_is_an_input_error_with_one_line_and_no_report(tmp_path, aegis_bin, broken_model, mnist):
    # Stale reports from an earlier run in the same folder must not survive a failed one.
    (tmp_path / "report.json").write_text('{"verdict": "clean", "classes": []}')
    r = run_audit(broken_model, mnist, out_dir=tmp_path)
    assert r.exit_code == 2 and r.returncode == 2
    assert r.verdict is Verdict.ERROR and r.failure is Failure.INPUT
    assert not r.retryable
    assert "not an ONNX model" in r.message and "\n" not in r.message
    assert r.json_path is None and r.reports == ()
    assert not (tmp_path / "report.json").exists()


def test_timeout_kills_the_process_and_is_final(tmp_path, aegis_bin, zoo, mnist):
    r = run_audit(zoo / "robust_clean_s0.onnx", mnist, out_dir=tmp_path, timeout=0.3)
    assert r.failure is Failure.TIMEOUT and r.exit_code == 2 and r.returncode is None
    assert not r.retryable
    assert "timed out after 0.3 s" in r.message
    assert r.duration_s < 30


def test_a_process_killed_by_a_signal_is_an_infrastructure_failure(tmp_path, zoo, mnist):
    # Any binary that dies from SIGKILL (as the kernel's OOM killer does) must be classed as retryable.
    script = tmp_path / "dies"
    script.write_text("#!/bin/sh\nkill -9 $$\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    r = run_audit(zoo / "robust_clean_s0.onnx", mnist, binary=script, out_dir=tmp_path / "out")
    assert r.returncode == -9 and r.failure is Failure.INFRASTRUCTURE and r.retryable
    assert r.exit_code == 2 and "signal 9" in r.message


def test_reserved_flags_are_refused(aegis_bin, zoo, mnist):
    for bad in (["--json", "x"], ["--sarif=x"], ["--data", "elsewhere"]):
        with pytest.raises(ValueError, match="must not contain"):
            run_audit(zoo / "robust_clean_s0.onnx", mnist, extra_args=bad)


def test_binary_lookup_order(tmp_path, monkeypatch, aegis_bin):
    monkeypatch.setenv(ENV_VAR, str(aegis_bin))
    assert find_binary() == aegis_bin
    # An explicit setting wins over the environment variable; a wrong one is an error, never skipped.
    other = tmp_path / "aegis-audit"
    other.write_bytes(aegis_bin.read_bytes())
    other.chmod(0o755)
    assert find_binary(other) == other
    with pytest.raises(BinaryNotFound, match="the setting names"):
        find_binary(tmp_path / "missing")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(BinaryNotFound, match=f"\\${ENV_VAR} names"):
        find_binary()
    # Without either: this interpreter's scripts folder (where the wheel installs it), then PATH.
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    beside = Path(sysconfig.get_path("scripts")) / "aegis-audit"
    assert find_binary() == (beside if beside.is_file() else other)


def test_report_reader_accepts_several_documents_and_unknown_fields():
    one = {"tool": {"version": "9.9"}, "model": {"sha256": "ab"}, "verdict": "clean", "timings": {"x": 1},
           "classes": [{"class": 0, "flagged": False, "summary": "class 0: ok"}]}  # fmt: skip
    two = {"verdict": "suspected", "method": "reach", "classes": [{"class": "cat", "flagged": True}]}
    for text in (json.dumps(one), json.dumps([one, two]), json.dumps(one) + "\n" + json.dumps(two),
                 json.dumps({"reports": [one, two]})):  # fmt: skip
        reports = parse_reports(text)
        assert reports[0].tool_version == "9.9" and reports[0].model_sha256 == "ab"
        assert reports[0].raw["timings"] == {"x": 1}
        if len(reports) == 2:
            assert reports[1].method == "reach" and reports[1].flagged_classes == ("cat",)
            assert reports[1].tool_version is None
    with pytest.raises(ReportError):
        parse_reports('{"something": "else"}')
    with pytest.raises(ReportError):
        parse_reports('{"verdict": ')


def test_combined_exit_code():
    assert combined_exit_code([]) == 0
    assert combined_exit_code([0, 0]) == 0
    assert combined_exit_code([0, 3]) == 3
    assert combined_exit_code([3, 2, 0]) == 2
    assert combined_exit_code([2, 1, 3]) == 1
