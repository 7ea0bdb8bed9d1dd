"""The Kubernetes Indexed Job manifest: valid against the Kubernetes JSON schemas (kubernetes-validate's
bundled, offline schemas, strict: no unknown fields), and the rules the schema cannot express: Indexed
completion, exit codes 1, 2 and 3 final (FailIndex), never 0, restartPolicy Never, one completion per
manifest line, and a command line the real aegis-audit-fanout parser accepts."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from aegis_fanout.cli import build_parser

JOB_FILE = Path(__file__).resolve().parents[1] / "k8s" / "aegis-audit-job.yaml"
VERSIONS = ["1.33.0", kubernetes_validate.utils.latest_version()]


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(JOB_FILE.read_text()) if d]
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_is_valid_against_the_kubernetes_schema(documents, version):
    assert set(documents) == {"ConfigMap", "Job"}
    for doc in documents.values():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_rejects_a_misspelled_field(documents):
    broken = copy.deepcopy(documents["Job"])
    rule = broken["spec"]["podFailurePolicy"]["rules"][0]
    rule["onExitCode"] = rule.pop("onExitCodes")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_answers_are_final_and_only_infrastructure_failures_are_retried(documents):
    spec = documents["Job"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["backoffLimitPerIndex"] >= 1
    assert "maxFailedIndexes" not in spec
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    final = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailIndex"]
    assert len(final) == 1
    codes = final[0]["onExitCodes"]
    assert codes["containerName"] == container["name"] and codes["operator"] == "In"
    assert sorted(codes["values"]) == [1, 2, 3]
    ignored = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "Ignore"]
    assert [c["type"] for r in ignored for c in r["onPodConditions"]] == ["DisruptionTarget"]
    # 75 (an infrastructure failure in `--index` mode) must be left to backoffLimitPerIndex.
    assert all(75 not in (r.get("onExitCodes") or {}).get("values", []) for r in spec["podFailurePolicy"]["rules"])


def test_one_completion_per_model_and_a_command_line_the_cli_accepts(documents):
    models = documents["ConfigMap"]["data"]["models.txt"].splitlines()
    models = [m for m in models if m.strip() and not m.strip().startswith("#")]
    job = documents["Job"]["spec"]
    assert job["completions"] == len(models)
    (container,) = job["template"]["spec"]["containers"]
    assert container["command"] == ["aegis-audit-fanout"]
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in container["args"]]
    parsed = build_parser().parse_args(args)
    assert parsed.index == 0 and parsed.retries == 0 and parsed.manifest == Path("/manifest/models.txt")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/manifest", "/data", "/reports", "/tmp"} <= mounts
    assert str(parsed.out) in mounts and str(parsed.data).startswith("/data/")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
