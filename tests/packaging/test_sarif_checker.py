"""scripts/check_sarif.py, the CI gate over every SARIF log the tests write: it must pass a log GitHub
accepts and fail each kind of broken log (GitHub-rule errors, SARIF schema errors, bad JSON, a warning
nobody allowed), although Microsoft's SARIF Multitool itself exits 0 on all of them."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from helpers import MULTITOOL, ROOT

CHECK = [sys.executable, str(ROOT / "scripts/check_sarif.py"), "--multitool", str(MULTITOOL)]

GOOD = {
    "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
    "version": "2.1.0",
    "runs": [
        {
            "tool": {
                "driver": {
                    "name": "aegis-audit",
                    "version": "0.1.0",
                    "informationUri": "https://github.com/aegis-audit/aegis-audit",
                    "rules": [
                        {
                            "id": "AEGIS001",
                            "name": "backdoor-suspected",
                            "shortDescription": {"text": "Backdoor suspected."},
                            "fullDescription": {"text": "A class looks like a backdoor target."},
                            "help": {"text": "Do not deploy this model."},
                            "defaultConfiguration": {"level": "error"},
                            "properties": {"security-severity": "9.0", "tags": ["security"], "precision": "medium"},
                        }
                    ],
                }
            },
            "automationDetails": {"id": "aegis-audit/model.onnx/"},
            "results": [
                {
                    "ruleId": "AEGIS001",
                    "ruleIndex": 0,
                    "level": "error",
                    "message": {"text": "Class 7: backdoor suspected."},
                    "locations": [
                        {"physicalLocation": {"artifactLocation": {"uri": "model.onnx"}, "region": {"startLine": 1}}}
                    ],
                    "partialFingerprints": {"primaryLocationLineHash": "ab" * 32},
                }
            ],
        }
    ],
}


def write(path: Path, log: object) -> Path:
    path.write_text(log if isinstance(log, str) else json.dumps(log), encoding="utf-8")
    return path


def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHECK, *map(str, args)], capture_output=True, text=True, check=False)


def test_logs_github_accepts_pass_with_allowed_warnings_listed(tmp_path: Path) -> None:
    no_uri = copy.deepcopy(GOOD)
    del no_uri["runs"][0]["tool"]["driver"]["informationUri"]
    write(tmp_path / "good.sarif", GOOD)
    write(tmp_path / "no_uri.sarif", no_uri)
    proc = check("--allow-warning", "SARIF2005", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 SARIF log(s) pass" in proc.stdout
    assert "allowed warning: " in proc.stdout and "no_uri.sarif" in proc.stdout and "SARIF2005" in proc.stdout


def test_every_kind_of_broken_log_fails_and_is_named(tmp_path: Path) -> None:
    # One Multitool run over all of them (it takes seconds to start).
    no_location = copy.deepcopy(GOOD)
    del no_location["runs"][0]["results"][0]["locations"]
    no_help = copy.deepcopy(GOOD)
    del no_help["runs"][0]["tool"]["driver"]["rules"][0]["help"]
    no_tool_name = copy.deepcopy(GOOD)
    del no_tool_name["runs"][0]["tool"]["driver"]["name"]
    no_uri = copy.deepcopy(GOOD)
    del no_uri["runs"][0]["tool"]["driver"]["informationUri"]
    write(tmp_path / "good.sarif", GOOD)
    write(tmp_path / "no_location.sarif", no_location)
    write(tmp_path / "no_help.sarif", no_help)
    write(tmp_path / "no_tool_name.sarif", no_tool_name)
    write(tmp_path / "no_uri.sarif", no_uri)
    write(tmp_path / "not_json.sarif", "{ not json")
    proc = check(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert "no_location.sarif" in err and "error GH1015" in err, err
    assert "no_help.sarif" in err and "error GH2012" in err, err
    assert "no_tool_name.sarif" in err and "error JSON1002" in err, err
    assert "not_json.sarif" in err and "error JSON0001" in err, err
    assert "no_uri.sarif" in err and "warning SARIF2005" in err, "a warning nobody allowed fails: " + err
    assert "good.sarif" not in err, err
    assert "problem(s) in 6 log(s)" in err, err


def test_nothing_to_check_is_a_usage_error(tmp_path: Path) -> None:
    proc = check(tmp_path)
    assert proc.returncode == 2 and "no .sarif file" in proc.stderr
    write(tmp_path / "good.sarif", GOOD)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/check_sarif.py"), "--multitool", str(tmp_path / "none"), tmp_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "run scripts/tools.sh" in proc.stderr
