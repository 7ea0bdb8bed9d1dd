"""One SARIF log for a whole fan-out: every model's run merged into a single run (GitHub code scanning
takes at most 20 runs per upload and rejects two runs with one category), rules joined by id, artifact
indices shifted, each model's location rewritten to its manifest URI, and a failed audit recorded as a
tool execution notification instead of a silent gap."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from .task import TaskResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rewrite_locations(node: Any, offset: int, uris: dict[str, str]) -> None:
    """Shift every artifactLocation.index by `offset` and map its uri through `uris`, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "artifactLocation" and isinstance(value, dict):
                if isinstance(value.get("index"), int):
                    value["index"] += offset
                if value.get("uri") in uris:
                    value["uri"] = uris[value["uri"]]
            _rewrite_locations(value, offset, uris)
    elif isinstance(node, list):
        for item in node:
            _rewrite_locations(item, offset, uris)


def merge_sarif(results: Sequence[TaskResult], category: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run holding every model's results (in manifest order)."""
    driver: dict[str, Any] | None = None
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    artifacts: list[dict[str, Any]] = []
    invocations: list[dict[str, Any]] = []
    merged: list[dict[str, Any]] = []
    for task in results:
        log = json.loads(task.report_sarif) if task.report_sarif else None
        runs = log.get("runs", []) if isinstance(log, dict) else []
        if not runs:
            invocations.append(_failed_invocation(task))
            continue
        for run in runs:
            run_driver = (run.get("tool") or {}).get("driver") or {}
            if driver is None:
                driver = {k: v for k, v in run_driver.items() if k != "rules"}
            local_rules = run_driver.get("rules") or []
            for rule in local_rules:
                if rule.get("id") not in rule_index:
                    rule_index[rule["id"]] = len(rules)
                    rules.append(rule)
            offset = len(artifacts)
            uris = {}
            for artifact in run.get("artifacts") or []:
                artifact = copy.deepcopy(artifact)
                old = (artifact.get("location") or {}).get("uri")
                if old is not None:
                    uris[old] = task.uri
                    artifact["location"]["uri"] = task.uri
                artifacts.append(artifact)
            for result in run.get("results") or []:
                result = copy.deepcopy(result)
                rule_id, index = result.get("ruleId"), result.get("ruleIndex")
                if rule_id is None and isinstance(index, int) and 0 <= index < len(local_rules):
                    rule_id = local_rules[index].get("id")
                    result["ruleId"] = rule_id
                if rule_id in rule_index:
                    result["ruleIndex"] = rule_index[rule_id]
                _rewrite_locations(result, offset, uris)
                merged.append(result)
            for invocation in run.get("invocations") or []:
                invocation = copy.deepcopy(invocation)
                invocation.setdefault("properties", {})["manifestUri"] = task.uri
                invocations.append(invocation)
    tool_driver = driver or {"name": "aegis-audit"}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {**tool_driver, "rules": rules}},
                "automationDetails": {"id": category},
                "artifacts": artifacts,
                "invocations": invocations,
                "results": merged,
            }
        ],
    }


def _failed_invocation(task: TaskResult) -> dict[str, Any]:
    return {
        "executionSuccessful": False,
        "exitCode": task.exit_code,
        "properties": {"manifestUri": task.uri, "failure": task.failure},
        "toolExecutionNotifications": [
            {
                "level": "error",
                "message": {"text": f"{task.uri}: {task.message}"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": task.uri}}}],
            }
        ],
    }
