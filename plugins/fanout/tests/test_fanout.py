"""aegis-audit-fanout on a manifest of zoo models: a real local Ray instance (`ray.init(num_cpus=2)`, run
inside a loopback-only network namespace by scripts/test_integrations.sh) and the local backend must give
the same summary; the merged SARIF is schema-valid; `--index` (the Kubernetes Indexed Job's entry point)
exits with the model's own code and `--collect` builds the same summary from its outputs."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import jsonschema
import pytest

from aegis_fanout import InfrastructureError, Resources, TaskConfig, TaskResult, audit_entry, run_local
from aegis_fanout.cli import main
from aegis_fanout.manifest import Entry
from aegis_runner import sha256_file

# (manifest line, verdict, exit code, flagged classes); {zoo} and {broken} are filled in.
CASES = [
    ("{zoo}/robust_localised.onnx", "backdoor_suspected", "1", "7"),
    ("file://{zoo}/robust_clean_s0.onnx", "clean", "0", ""),
    ("standard_clean.onnx", "not_applicable", "3", ""),  # relative: resolved against the manifest's folder
    ("{broken}", "error", "2", ""),
    ("missing/model.onnx", "error", "2", ""),
]
# What must agree between backends (durations and messages with temporary paths may differ).
STABLE = ["index", "uri", "verdict", "exit_code", "flagged_classes", "method", "model_sha256", "tool_version",
          "failure"]  # fmt: skip


@pytest.fixture(scope="session")
def manifest(tmp_path_factory, zoo, broken_model):
    folder = tmp_path_factory.mktemp("manifest")
    shutil.copy(zoo / "standard_clean.onnx", folder / "standard_clean.onnx")
    lines = ["# zoo models for the fan-out tests", ""]
    lines += [line.format(zoo=zoo, broken=broken_model) for line, *_ in CASES]
    path = folder / "models.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def aegis_args(reduced_args):
    return " ".join([*reduced_args, "--method", "aegis"])


def fan_out(backend: str, manifest: Path, out: Path, mnist: Path, aegis_args: str, *extra: str) -> int:
    return main(["--backend", backend, "--manifest", str(manifest), "--data", str(mnist), "--out", str(out),
                 "--timeout", "300", f"--aegis-args={aegis_args}", "--no-progress", *extra])  # fmt: skip


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def ray_instance():
    # Token authentication stays on, with a token of this session's own instead of ~/.ray/auth_token
    # (set before Ray is imported: it reads the mode once).
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    import ray

    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp,
             object_store_memory=100 * 1024 * 1024)  # fmt: skip
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_run(tmp_path_factory, ray_instance, aegis_bin, manifest, mnist, aegis_args):
    """The Ray fan-out, through a wrapper that logs each aegis-audit start (to count attempts)."""
    out = tmp_path_factory.mktemp("ray-out")
    wrapper = out.parent / f"{out.name}-aegis-audit"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {out.parent / (out.name + "-starts")}\nexec {aegis_bin} "$@"\n')
    wrapper.chmod(0o755)
    code = fan_out("ray", manifest, out, mnist, aegis_args, "--cpus-per-task", "1", "--aegis-bin", str(wrapper))
    starts = (out.parent / f"{out.name}-starts").read_text().splitlines()
    return code, out, starts


@pytest.fixture(scope="session")
def local_run(tmp_path_factory, aegis_bin, manifest, mnist, aegis_args):
    out = tmp_path_factory.mktemp("local-out")
    code = fan_out("local", manifest, out, mnist, aegis_args, "--parallel", "2")
    return code, out


def manifest_uris(manifest: Path) -> list[str]:
    return [line for line in manifest.read_text().splitlines() if line and not line.startswith("#")]


def test_ray_summary(ray_run, zoo, aegis_bin, manifest):
    code, out, starts = ray_run
    assert code == 1  # a backdoor was suspected: that outranks the errors and the not-applicable model
    rows = read_csv(out / "summary.csv")
    assert [r["uri"] for r in rows] == manifest_uris(manifest)
    for row, (_, verdict, exit_code, flagged) in zip(rows, CASES, strict=True):
        assert (row["verdict"], row["exit_code"], row["flagged_classes"]) == (verdict, exit_code, flagged), row
    assert rows[0]["model_sha256"] == sha256_file(zoo / "robust_localised.onnx")
    assert rows[1]["model_sha256"] == sha256_file(zoo / "robust_clean_s0.onnx")
    assert rows[3]["failure"] == "input" and "not an ONNX model" in rows[3]["message"]
    assert rows[4]["failure"] == "input"
    for row in rows[:3]:
        report = json.loads((out / row["report"]).read_text())
        assert report["model"]["sha256"] == row["model_sha256"]
        assert (out / row["report"]).with_suffix(".sarif").is_file()
    assert rows[3]["report"] == "" and rows[4]["report"] == ""
    # One aegis-audit process per model, none retried: exit 1, 3 and 2 are answers, not infrastructure failures.
    assert len(starts) == len(CASES) and len(set(starts)) == len(CASES)


def test_local_backend_gives_the_same_results(ray_run, local_run):
    (ray_code, ray_out, _), (local_code, local_out) = ray_run, local_run
    assert local_code == ray_code
    strip = [{k: r[k] for k in STABLE} for r in read_csv(ray_out / "summary.csv")]
    assert [{k: r[k] for k in STABLE} for r in read_csv(local_out / "summary.csv")] == strip
    for name in ("00000", "00001", "00002"):
        a = json.loads((ray_out / "models" / name / "report.json").read_text())
        b = json.loads((local_out / "models" / name / "report.json").read_text())
        assert [c["flagged"] for c in a["classes"]] == [c["flagged"] for c in b["classes"]]
        assert [c["details"] for c in a["classes"]] == [c["details"] for c in b["classes"]]


def test_merged_sarif_is_one_valid_run_with_manifest_uris(ray_run, root, manifest):
    _, out, _ = ray_run
    log = json.loads((out / "aegis.sarif").read_text())
    schema = json.loads((root / "fixtures" / "schemas" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    (run,) = log["runs"]
    assert run["automationDetails"]["id"] == "aegis-audit-fanout/"
    uris = manifest_uris(manifest)
    assert [a["location"]["uri"] for a in run["artifacts"]] == uris[:3]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    by_rule = {}
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        loc = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert run["artifacts"][loc["index"]]["location"]["uri"] == loc["uri"]
        by_rule.setdefault(result["ruleId"], []).append(loc["uri"])
    assert by_rule["AEGIS001"] == [uris[0]]  # class 7 of the backdoored model
    assert by_rule["AEGIS002"] == [uris[2]]  # the not-applicable model
    failed = [i for i in run["invocations"] if not i["executionSuccessful"]]
    assert [i["properties"]["manifestUri"] for i in failed] == uris[3:]
    assert all(i["toolExecutionNotifications"][0]["level"] == "error" for i in failed)


def test_index_mode_is_one_entry_with_its_own_exit_code_and_collect_rebuilds_the_summary(
    tmp_path, aegis_bin, manifest, mnist, aegis_args, ray_run
):
    out = tmp_path / "reports"
    base = ["--manifest", str(manifest), "--data", str(mnist), "--out", str(out), "--retries", "0",
            f"--aegis-args={aegis_args}"]  # fmt: skip
    codes = [main([*base, "--index", str(i)]) for i in range(len(CASES))]
    assert codes == [int(c[2]) for c in CASES]
    assert main(["--collect", "--out", str(out)]) == 1
    _, ray_out, _ = ray_run
    want = [{k: r[k] for k in STABLE} for r in read_csv(ray_out / "summary.csv")]
    assert [{k: r[k] for k in STABLE} for r in read_csv(out / "summary.csv")] == want
    assert main([*base, "--index", "5"]) == 2  # outside the manifest


def test_infrastructure_failures_are_retried_and_reported(tmp_path, mnist, zoo):
    # A binary that dies from SIGKILL every time: retried, then reported as an infrastructure failure
    # (no verdict), never mistaken for an answer about the model.
    dies = tmp_path / "dies"
    dies.write_text(f"#!/bin/sh\necho attempt >> {tmp_path / 'attempts'}\nkill -9 $$\n")
    dies.chmod(0o755)
    config = TaskConfig(str(mnist), binary=str(dies))
    with pytest.raises(InfrastructureError, match="signal 9"):
        audit_entry(0, str(zoo / "robust_clean_s0.onnx"), config)
    (tmp_path / "attempts").unlink()
    seen: list[TaskResult] = []
    (result,) = run_local([Entry(0, str(zoo / "robust_clean_s0.onnx"))], config, Resources(retries=2), seen.append)
    assert (tmp_path / "attempts").read_text().count("attempt") == 3
    assert result.failure == "infrastructure" and result.exit_code == 2 and "after 3 attempts" in result.message
    assert seen == [result]


def test_ray_retries_infrastructure_failures_only(tmp_path, ray_instance, mnist, zoo):
    from aegis_fanout import run_ray

    dies = tmp_path / "dies"
    dies.write_text(f"#!/bin/sh\necho attempt >> {tmp_path / 'attempts'}\nkill -9 $$\n")
    dies.chmod(0o755)
    entries = [Entry(0, str(zoo / "robust_clean_s0.onnx"))]
    (result,) = run_ray(entries, TaskConfig(str(mnist), binary=str(dies)), Resources(retries=1), lambda r: None)
    assert result.failure == "infrastructure" and "signal 9" in result.message
    assert (tmp_path / "attempts").read_text().count("attempt") == 2


@pytest.fixture(scope="session")
def registry(tmp_path_factory, zoo, broken_model):
    """A local MLflow registry (SQLite): fan-std v1 (standard model; alias `candidate`), v2 (broken file)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("fan", artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model("fan-std")
    for source in (zoo / "standard_clean.onnx", broken_model):
        run = client.create_run(experiment)
        client.log_artifact(run.info.run_id, str(source), "model")
        client.create_model_version("fan-std", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("fan-std", "candidate", "1")
    return uri, client


def test_registry_uris_on_ray(tmp_path, ray_instance, registry, aegis_bin, mnist, aegis_args):
    uri, _ = registry
    manifest = tmp_path / "models.txt"
    manifest.write_text("models:/fan-std/1\nmodels:/fan-std@candidate\nmodels:/fan-std/9\n")
    out = tmp_path / "out"
    assert fan_out("ray", manifest, out, mnist, aegis_args, "--tracking-uri", uri) == 2
    rows = read_csv(out / "summary.csv")
    assert [(r["verdict"], r["exit_code"], r["failure"]) for r in rows] == [
        ("not_applicable", "3", ""),
        ("not_applicable", "3", ""),
        ("error", "2", "input"),  # the registry's answer (no version 9): final, not an infrastructure failure
    ]
    assert rows[0]["model_sha256"] == rows[1]["model_sha256"]
    assert "RESOURCE_DOES_NOT_EXIST" in rows[2]["message"] or "not found" in rows[2]["message"].lower()


def test_registry_query_on_the_local_backend(tmp_path, registry, aegis_bin, mnist, aegis_args):
    uri, client = registry
    base = ["--backend", "local", "--registry-query", "name = 'fan-std'", "--tracking-uri", uri,
            "--data", str(mnist), f"--aegis-args={aegis_args}", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "all")]) == 2
    rows = read_csv(tmp_path / "all" / "summary.csv")
    assert [(r["uri"], r["verdict"]) for r in rows] == [("models:/fan-std/1", "not_applicable"),
                                                        ("models:/fan-std/2", "error")]  # fmt: skip
    assert "not an ONNX model" in rows[1]["message"]
    client.set_model_version_tag("fan-std", "1", "aegis.verdict", "not_applicable")
    assert main([*base, "--pending-only", "--out", str(tmp_path / "pending")]) == 2
    assert [r["uri"] for r in read_csv(tmp_path / "pending" / "summary.csv")] == ["models:/fan-std/2"]
