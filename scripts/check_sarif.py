#!/usr/bin/env python3
"""Validates SARIF logs with Microsoft's SARIF Multitool and GitHub code scanning's rules.

    python3 scripts/check_sarif.py [--multitool PATH] [--allow-warning RULE]... PATH...

PATH is a .sarif file or a folder (every *.sarif in it, recursively). All files go to one
`Sarif.Multitool validate --rule-kind "Sarif;Gh"` run (the platform binary, called directly, so the
`;` never meets a shell). The Multitool exits 0 even when it reports errors, so this script reads its
output log and fails on any result whose effective level is `error` (the result's own level, else its
rule's default level, else `warning` as SARIF says), on any warning not allowed with --allow-warning,
on a tool error notification, and when the Multitool did not scan every file. Exit codes: 0 all
valid, 1 a problem was found (each printed on one line), 2 usage error (no file, no Multitool).
Installed by scripts/tools.sh; run by scripts/test_packaging.sh on every log the tests wrote.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MULTITOOL = ROOT / ".tools/sarif/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"


def collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.sarif")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(p)
    return [f.resolve() for f in files]


def effective_level(result: dict, rules: list[dict]) -> str:
    if "level" in result:
        return result["level"]
    index = result.get("ruleIndex", -1)
    if 0 <= index < len(rules):
        level = rules[index].get("defaultConfiguration", {}).get("level")
        if level:
            return level
    return "warning"


def message(result: dict, rules: list[dict]) -> str:
    text = result.get("message", {}).get("text")
    if text:
        return text
    # The Multitool writes message ids with arguments; the rule holds the templates.
    msg = result.get("message", {})
    index = result.get("ruleIndex", -1)
    if 0 <= index < len(rules):
        template = rules[index].get("messageStrings", {}).get(msg.get("id", ""), {}).get("text")
        if template:
            return re.sub(r"\{(\d+)\}", lambda m: str(msg.get("arguments", [])[int(m.group(1))]), template)
    return f"{msg.get('id', '?')} {msg.get('arguments', [])}"


def where(result: dict) -> str:
    try:
        loc = result["locations"][0]["physicalLocation"]
        uri = loc["artifactLocation"]["uri"]
        region = loc.get("region", {})
        return f"{uri.removeprefix('file://')}({region.get('startLine', 0)},{region.get('startColumn', 0)})"
    except (KeyError, IndexError):
        return "?"


def problems(output: dict, allowed_warnings: set[str]) -> tuple[list[str], list[str]]:
    """(failures, tolerated warnings) in the Multitool's output log."""
    failures: list[str] = []
    tolerated: list[str] = []
    for run in output.get("runs", []):
        rules = run.get("tool", {}).get("driver", {}).get("rules", [])
        for result in run.get("results", []):
            level = effective_level(result, rules)
            line = f"{where(result)}: {level} {result.get('ruleId', '?')}: {message(result, rules)}"
            if level == "error" or (level == "warning" and result.get("ruleId") not in allowed_warnings):
                failures.append(line)
            elif level == "warning":
                tolerated.append(line)
        for inv in run.get("invocations", []):
            if inv.get("executionSuccessful") is False:
                failures.append("the Multitool reports an unsuccessful execution")
            for key in ("toolExecutionNotifications", "toolConfigurationNotifications"):
                for n in inv.get(key, []):
                    if n.get("level", "warning") == "error":
                        failures.append(f"Multitool {key}: {n.get('message', {}).get('text', n)}")
    return failures, tolerated


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--multitool", type=Path, default=DEFAULT_MULTITOOL)
    parser.add_argument("--allow-warning", action="append", default=[], metavar="RULE")
    args = parser.parse_args(argv)
    try:
        files = collect(args.paths)
    except FileNotFoundError as e:
        print(f"check_sarif: {e} does not exist", file=sys.stderr)
        return 2
    if not files:
        print(f"check_sarif: no .sarif file under {' '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    if not args.multitool.is_file():
        print(f"check_sarif: {args.multitool} missing (run scripts/tools.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "validation.sarif"
        # No --quiet: Multitool 5.7.0 rejects it ("defined with a bad format"), and the console's
        # "Done. N files scanned." line is the only record of how many files it read.
        cmd = [str(args.multitool), "validate", "--rule-kind", "Sarif;Gh", "-o", str(out)]
        proc = subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True, check=False)
        console = (proc.stdout + proc.stderr).strip()
        if not out.is_file():
            head = " | ".join(console.splitlines()[:4])
            print(f"check_sarif: the Multitool wrote no log (exit {proc.returncode}): {head}", file=sys.stderr)
            return 1
        output = json.loads(out.read_text(encoding="utf-8-sig"))
    failures, tolerated = problems(output, set(args.allow_warning))
    scanned = re.search(r"Done\. (\d+) files? scanned", console)
    if not scanned or int(scanned.group(1)) != len(files):
        failures.append(f"the Multitool scanned {scanned.group(1) if scanned else 'no'} of {len(files)} files")
    for line in tolerated:
        print(f"check_sarif: allowed warning: {line}")
    for line in failures:
        print(f"check_sarif: {line}", file=sys.stderr)
    if failures:
        print(f"check_sarif: {len(failures)} problem(s) in {len(files)} log(s)", file=sys.stderr)
        return 1
    print(f"check_sarif: {len(files)} SARIF log(s) pass the Multitool's SARIF and GitHub rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
