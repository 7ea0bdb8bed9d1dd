"""The MLflow gate against a real local registry (SQLite backend, file artifact store, no server, no
network): zoo models registered as versions, the gate run as `aegis-audit-gate mlflow`, and the tags,
alias and logged artifacts read back through MlflowClient."""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from aegis_mlflow import FetchError, find_onnx
from aegis_mlflow.cli import main
from aegis_runner import sha256_file, tool_version

GATE = Path(sys.executable).parent / "aegis-audit-gate"


@pytest.fixture(scope="session")
def registry(tmp_path_factory, zoo, broken_model):
    """A registry with one version per case. `zoo-clean` is an MLflow ONNX-flavour model beside a second,
    unrelated .onnx file (the flavour's `data` must be the one audited)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("zoo", artifact_location=(root / "artifacts").as_uri())

    def register(name: str, files: dict[str, Path], onnx_flavour: str | None = None) -> None:
        folder = root / "staging" / name
        folder.mkdir(parents=True)
        for target, source in files.items():
            shutil.copy(source, folder / target)
        if onnx_flavour:
            mlmodel = Model()
            mlmodel.add_flavor("onnx", onnx_version="1.19.1", data=onnx_flavour, providers=["CPUExecutionProvider"])
            mlmodel.save(str(folder / "MLmodel"))
        run = client.create_run(experiment)
        client.log_artifacts(run.info.run_id, str(folder), "model")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)

    register("zoo-backdoored", {"robust_localised.onnx": zoo / "robust_localised.onnx"})
    register(
        "zoo-clean",
        {"model.onnx": zoo / "robust_clean_s0.onnx", "preprocess.onnx": zoo / "standard_clean.onnx"},
        onnx_flavour="model.onnx",
    )
    register("order", {"model.onnx": zoo / "robust_clean_s0.onnx"})
    client.create_model_version("order", client.get_model_version("order", "1").source)
    register("sweep-standard", {"model.onnx": zoo / "standard_clean.onnx"})
    register("sweep-broken", {"model.onnx": broken_model})
    register("sweep-empty", {"card.yaml": zoo / "robust_clean_s0.card.yaml"})
    register("held-out", {"model.onnx": zoo / "robust_localised.onnx"})
    return uri, client


@pytest.fixture(scope="session")
def aegis_args(reduced_args):
    return " ".join([*reduced_args, "--method", "aegis"])


def gate_cli(uri: str, model: str, mnist: Path, aegis_args: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [GATE, "mlflow", model, "--data", mnist, "--tracking-uri", uri, f"--aegis-args={aegis_args}", *extra],
        capture_output=True, text=True, cwd=cwd,
    )  # fmt: skip
    # Everything went through the given registry: no default store was created in the working folder.
    assert not (cwd / "mlflow.db").exists() and not (cwd / "mlruns").exists()
    return proc


def downloaded_report(client: MlflowClient, name: str, version: str, tmp_path: Path) -> tuple[Path, list[str]]:
    mv = client.get_model_version(name, version)
    folder = f"aegis-audit/{name}-v{version}"
    listed = sorted(Path(a.path).name for a in client.list_artifacts(mv.run_id, folder))
    local = Path(client.download_artifacts(mv.run_id, f"{folder}/report.json", str(tmp_path)))
    return local, listed


def test_backdoored_version_is_tagged_and_loses_the_alias(registry, tmp_path, aegis_bin, mnist, zoo, aegis_args):
    uri, client = registry
    # As if it had been promoted before a better detector existed: the gate must take the alias away.
    client.set_registered_model_alias("zoo-backdoored", "production", "1")
    proc = gate_cli(uri, "models:/zoo-backdoored/1", mnist, aegis_args, tmp_path, "--promote-alias", "production")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "models:/zoo-backdoored/1: backdoor_suspected (exit 1): backdoor suspected in class(es) 7" in proc.stdout
    tags = client.get_model_version("zoo-backdoored", "1").tags
    assert tags["aegis.verdict"] == "backdoor_suspected"
    assert tags["aegis.exit_code"] == "1"
    assert tags["aegis.flagged_classes"] == "7"
    assert tags["aegis.tool_version"] == tool_version(aegis_bin)
    assert tags["aegis.model_sha256"] == sha256_file(zoo / "robust_localised.onnx")
    report, listed = downloaded_report(client, "zoo-backdoored", "1", tmp_path)
    assert listed == ["report.json", "report.sarif"]
    assert tags["aegis.report_sha256"] == sha256_file(report)
    assert [c["class"] for c in json.loads(report.read_text())["classes"] if c["flagged"]] == [7]
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("zoo-backdoored", "production")


def test_clean_version_gets_the_alias(registry, tmp_path, aegis_bin, mnist, zoo, aegis_args):
    uri, client = registry
    proc = gate_cli(uri, "models:/zoo-clean/1", mnist, aegis_args, tmp_path, "--promote-alias", "production")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "alias 'production' now points here" in proc.stdout
    assert client.get_model_version_by_alias("zoo-clean", "production").version in (1, "1")
    tags = client.get_model_version("zoo-clean", "1").tags
    assert tags["aegis.verdict"] == "clean" and tags["aegis.exit_code"] == "0"
    # The ONNX flavour's file was audited, not the other .onnx beside it.
    assert tags["aegis.model_sha256"] == sha256_file(zoo / "robust_clean_s0.onnx")
    assert "aegis.flagged_classes" not in tags and "aegis.message" not in tags
    report, _ = downloaded_report(client, "zoo-clean", "1", tmp_path)
    assert tags["aegis.report_sha256"] == sha256_file(report)


def test_sweep_tags_every_pending_version_once(registry, aegis_bin, mnist, aegis_args, capsys):
    uri, client = registry
    argv = ["mlflow", "--sweep", "--filter", "name LIKE 'sweep-%'", "--data", str(mnist), "--tracking-uri", uri,
            f"--aegis-args={aegis_args}"]  # fmt: skip
    # Not applicable (3) and two errors (2), nothing suspected: the sweep's code is 2.
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 3, out
    standard = client.get_model_version("sweep-standard", "1").tags
    assert standard["aegis.verdict"] == "not_applicable" and standard["aegis.exit_code"] == "3"
    assert "not robust" in standard["aegis.message"]
    assert len(standard["aegis.report_sha256"]) == 64
    broken = client.get_model_version("sweep-broken", "1").tags
    assert broken["aegis.verdict"] == "error" and broken["aegis.exit_code"] == "2"
    assert "not an ONNX model" in broken["aegis.message"]
    assert "aegis.report_sha256" not in broken
    empty = client.get_model_version("sweep-empty", "1").tags
    assert empty["aegis.verdict"] == "error"
    assert empty["aegis.message"] == "no .onnx file among the model version's artifacts"
    # Everything is tagged now: the next sweep audits nothing.
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "no model version without an aegis.verdict tag"


def test_polling_sweeps_again_after_the_interval(registry, aegis_bin, mnist, zoo, aegis_args, capsys):
    uri, client = registry
    client.create_model_version("sweep-standard", client.get_model_version("sweep-standard", "1").source)
    argv = ["mlflow", "--sweep", "--filter", "name = 'sweep-standard'", "--interval", "0.1", "--max-polls", "2",
            "--data", str(mnist), "--tracking-uri", uri, f"--aegis-args={aegis_args}"]  # fmt: skip
    assert main(argv) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("models:/sweep-standard/2: not_applicable (exit 3)")
    assert lines[1:] == ["no model version without an aegis.verdict tag"]


def test_usage_errors_exit_2(registry, mnist, tmp_path):
    uri, _ = registry
    assert main(["mlflow", "models:/zoo-clean", "--data", str(mnist), "--tracking-uri", uri]) == 2
    assert main(["mlflow", "models:/zoo-clean/1", "--data", str(tmp_path / "none"), "--tracking-uri", uri]) == 2
    with pytest.raises(SystemExit):
        main(["mlflow", "--data", str(mnist)])  # neither a version nor --sweep


def test_onnx_flavour_path_outside_the_artifacts_is_refused(tmp_path):
    (tmp_path / "outside.onnx").write_bytes(b"x")
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors:\n  onnx:\n    data: ../outside.onnx\n")
    with pytest.raises(FetchError, match="outside the model's artifacts"):
        find_onnx(model)
    (model / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (model / "a.onnx").write_bytes(b"x")
    (model / "b.onnx").write_bytes(b"x")
    with pytest.raises(FetchError, match=r"several \.onnx files"):
        find_onnx(model)


def test_a_sweep_never_moves_the_alias_back_to_an_older_version(registry, aegis_bin, mnist, aegis_args, capsys):
    uri, client = registry
    client.set_registered_model_alias("order", "production", "2")  # promoted by hand, not audited yet
    argv = ["mlflow", "--sweep", "--filter", "name = 'order'", "--limit", "1", "--promote-alias", "production",
            "--data", str(mnist), "--tracking-uri", uri, f"--aegis-args={aegis_args}"]  # fmt: skip
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("models:/order/1: clean (exit 0)"), line  # oldest first
    assert line.endswith("alias 'production' stays on the newer version 2")
    assert client.get_model_version("order", "1").tags["aegis.verdict"] == "clean"
    assert str(client.get_model_version_by_alias("order", "production").version) == "2"
    assert "aegis.verdict" not in client.get_model_version("order", "2").tags


def test_a_single_held_out_data_file_is_accepted(registry, tmp_path, aegis_bin, mnist, aegis_args):
    """`--data FILE` as aegis-audit takes it (README: a gate rarely has the training set): one IDX images file,
    its labels file beside it, serves every role."""
    uri, client = registry
    held_out = mnist / "t10k-images-idx3-ubyte.gz"
    proc = gate_cli(uri, "models:/held-out/1", held_out, aegis_args, tmp_path)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    tags = client.get_model_version("held-out", "1").tags
    assert tags["aegis.verdict"] in ("clean", "backdoor_suspected"), tags
    report, _ = downloaded_report(client, "held-out", "1", tmp_path)
    dataset = json.loads(report.read_text())["dataset"]
    assert Path(dataset["path"]) == held_out, dataset
    # A path that does not exist is still a usage error, naming both forms.
    missing = gate_cli(uri, "models:/held-out/1", mnist / "none.gz", aegis_args, tmp_path)
    assert missing.returncode == 2
    assert "does not exist: give the training data folder or one held-out data file" in missing.stderr


def test_the_sql_extra_brings_the_sqlite_registry(root):
    """mlflow-skinny has no SQLAlchemy or alembic, so a `sqlite:///` registry (the docs' and these tests') needs
    the gate's `sql` extra; docs/integrations.md installs it, and so does scripts/test_integrations.sh (the
    pinned requirements leave both out, so the registry fixture above works only through the extra)."""
    requires = importlib.metadata.requires("aegis-mlflow") or []
    extra = {r.split(";")[0].split(">")[0].split("<")[0].split("=")[0].split("!")[0].strip().lower()
             for r in requires if 'extra == "sql"' in r}  # fmt: skip
    assert {"sqlalchemy", "alembic"} <= extra, requires
    assert "mlflow-skinny" in "".join(requires)
    docs = (root / "docs" / "integrations.md").read_text()
    assert '"./plugins/mlflow[sql]"' in docs
    pins = (root / "plugins" / "requirements-integrations.txt").read_text().lower()
    assert "sqlalchemy==" not in pins and "alembic==" not in pins


def _fenced_after(text: str, marker: str, language: str) -> str:
    """The first ```language block after `marker` in a Markdown text."""
    start = text.index(f"```{language}\n", text.index(marker)) + len(language) + 4
    return text[start : text.index("```", start)]


def test_the_documented_registration_and_gate(root, tmp_path, zoo, mnist, aegis_args):
    """docs/integrations.md's "A version to gate, from scratch" as a user runs it, in an empty folder: the Python
    block registers model.onnx in a new SQLite registry, then the shell command gates that version with one
    held-out file (audit flags reduced for speed)."""
    docs = (root / "docs" / "integrations.md").read_text()
    marker = "**A version to gate, from scratch**"
    shutil.copy(zoo / "robust_clean_s0.onnx", tmp_path / "model.onnx")
    (tmp_path / "held-out").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist / name, tmp_path / "held-out" / name)
    registered = subprocess.run(
        [sys.executable, "-c", _fenced_after(docs, marker, "python")], capture_output=True, text=True, cwd=tmp_path
    )
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == "models:/classifier/1"
    command = shlex.split(_fenced_after(docs, marker, "sh").replace("\\\n", " "))
    assert command[:3] == ["aegis-audit-gate", "mlflow", "models:/classifier/1"], command
    proc = subprocess.run(
        [GATE, *command[1:], f"--aegis-args={aegis_args}"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    uri = "sqlite:///mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    tags = client.get_model_version("classifier", "1").tags
    assert tags["aegis.exit_code"] == str(proc.returncode) and uri in docs
    if proc.returncode == 0:
        assert str(client.get_model_version_by_alias("classifier", "production").version) == "1"
