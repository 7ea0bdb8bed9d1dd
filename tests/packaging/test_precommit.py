"""The pre-commit hook (issue 17 item 6): .pre-commit-hooks.yaml passes `pre-commit validate-manifest`, its
entry audits each file pre-commit passes and exits with the most severe code, and pre-commit itself runs
the hook on models committed to a temporary git repository, offline: the hook is declared as a local
`language: python` hook with the manifest's own fields and the built wheel as its additional dependency
(pre-commit installs the manifest's own repository by building it from source, which needs the network
and minutes of compiling; docs/ci.md)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import yaml
from helpers import DATA, REDUCED, ROOT, WHEELS, clean_env, tool, wheel

MANIFEST = ROOT / ".pre-commit-hooks.yaml"


def hook() -> dict:
    hooks = yaml.safe_load(MANIFEST.read_text())
    assert [h["id"] for h in hooks] == ["aegis-audit"]
    return hooks[0]


def test_manifest_validates_and_declares_a_serial_push_hook(tmp_path: Path) -> None:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    proc = subprocess.run(
        [tool("pre-commit"), "validate-manifest", str(MANIFEST)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    h = hook()
    assert h["language"] == "python" and h["files"] == r"\.onnx$" and h["require_serial"] is True
    assert h["stages"] == ["pre-push", "manual"] and h["pass_filenames"] is True
    broken = [{k: v for k, v in h.items() if k != "entry"}]
    (tmp_path / "hooks.yaml").write_text(yaml.safe_dump(broken))
    proc = subprocess.run(
        [tool("pre-commit"), "validate-manifest", str(tmp_path / "hooks.yaml")],
        env=env,
        capture_output=True,
        check=False,
    )
    assert proc.returncode != 0, "the validation can fail"


def test_entry_audits_each_file_with_the_options_and_keeps_the_most_severe_code(tmp_path: Path) -> None:
    # A stand-in aegis-audit that records its arguments and exits by the model's name.
    fake = tmp_path / "bin" / "aegis-audit"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {tmp_path}/calls\n'
        'case "$(basename "$1")" in clean*) exit 0;; suspect*) exit 1;; broken*) exit 2;; '
        "na*) exit 3;; crash*) kill -SEGV $$;; esac\n"
    )
    fake.chmod(0o755)
    entry = shlex.split(hook()["entry"])
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    options = ["--data", "my data", "--seeds-per-class", "40"]

    def run(*models: str) -> int:
        return subprocess.run([*entry, *options, *models], env=env, check=False).returncode

    assert run("clean.onnx", "m/clean2.onnx") == 0
    assert run("clean.onnx", "na.onnx") == 3
    assert run("na.onnx", "suspect.onnx", "clean.onnx") == 1
    assert run("suspect.onnx", "broken.onnx", "na.onnx") == 2
    assert run("clean.onnx", "crash.onnx", "suspect.onnx") == 2, "a crash is an error"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[:2] == [
        "clean.onnx --data my data --seeds-per-class 40",
        "m/clean2.onnx --data my data --seeds-per-class 40",
    ]
    assert len(calls) == 13, "every file audited, none skipped after a failure"


def test_pre_commit_runs_the_hook_on_committed_models(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    for name in ("robust_localised", "standard_clean"):
        shutil.copy(ROOT / f"fixtures/zoo/{name}.onnx", repo / "models" / f"{name}.onnx")
    (repo / "README.md").write_text("not a model\n")
    local = {
        **{k: v for k, v in hook().items() if k not in ("description", "minimum_pre_commit_version")},
        "additional_dependencies": [str(wheel("aegis_backdoor_audit"))],
        "args": ["--data", str(ROOT / DATA), *REDUCED, "--method", "aegis"],
    }
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local]}]}))
    env = clean_env(
        PRE_COMMIT_HOME=str(tmp_path / "cache"),
        VIRTUALENV_OVERRIDE_APP_DATA=str(tmp_path / "virtualenv"),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELS),
        GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    git = shutil.which("git", path=env["PATH"]) or "git"
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "models"]):
        subprocess.run([git, *cmd], cwd=repo, env=env, check=True)

    pre_commit = tool("pre-commit")
    # The default (pre-commit) stage does not run the audit: it is a push-time hook.
    proc = subprocess.run(
        [pre_commit, "run", "--all-files"], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "aegis-audit" not in proc.stdout, proc.stdout + proc.stderr

    proc = subprocess.run(
        [pre_commit, "run", "aegis-audit", "--hook-stage", "manual", "--all-files", "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = proc.stdout + proc.stderr
    # robust_localised: backdoor suspected (1) outranks standard_clean's "AEGIS does not apply" (3).
    assert proc.returncode == 1, log
    assert "aegis-audit (ONNX backdoor scan)" in log and "Failed" in log and "exit code: 1" in log, log
    assert "models/robust_localised.onnx" in log and "models/standard_clean.onnx" in log, log


def readme_local_hook() -> dict:
    """The README's `repo: local` block: the hook that installs the published wheel."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```yaml\n- repo: local\n") + len("```yaml\n")
    repos = yaml.safe_load(text[start : text.index("```", start)])
    assert len(repos) == 1 and repos[0]["repo"] == "local", repos
    return repos[0]


def test_the_readme_hook_installs_the_published_wheel_and_names_its_stage(tmp_path: Path) -> None:
    """The README's fastest route as a user pastes it, the day the wheel is published: pre-commit pip-installs
    `aegis-backdoor-audit==VERSION` (PIP_FIND_LINKS serves the built wheel in place of PyPI; nothing is
    compiled). Only `args` is replaced (the test's data and a reduced audit). `pre-commit run --all-files`
    skips it without a word (the README says so); naming it without its stage is an error."""
    block = readme_local_hook()
    [hook_] = block["hooks"]
    version = wheel("aegis_backdoor_audit").name.split("-")[1]
    assert hook_["additional_dependencies"] == [f"aegis-backdoor-audit=={version}"]
    assert hook_["stages"] == hook()["stages"] and hook_["files"] == hook()["files"]
    hook_["args"] = ["--data", str(ROOT / DATA), *REDUCED, "--method", "aegis"]
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    for name in ("robust_localised", "standard_clean"):
        shutil.copy(ROOT / f"fixtures/zoo/{name}.onnx", repo / "models" / f"{name}.onnx")
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [block]}))
    env = clean_env(
        PRE_COMMIT_HOME=str(tmp_path / "cache"),
        VIRTUALENV_OVERRIDE_APP_DATA=str(tmp_path / "virtualenv"),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=f"{wheel('aegis_backdoor_audit').parent} {WHEELS}",
        GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    git = shutil.which("git", path=env["PATH"]) or "git"
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "models"]):
        subprocess.run([git, *cmd], cwd=repo, env=env, check=True)
    pre_commit = tool("pre-commit")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pre_commit, "run", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False
        )

    quiet = run("--all-files")
    assert quiet.returncode == 0 and "aegis-audit" not in quiet.stdout, quiet.stdout + quiet.stderr
    named = run("aegis-audit", "--all-files")
    assert named.returncode == 1, named.stdout + named.stderr
    assert "No hook with id `aegis-audit` in stage `pre-commit`" in named.stdout + named.stderr, named.stdout
    proc = run("aegis-audit", "--hook-stage", "pre-push", "--all-files")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log
    assert "aegis-audit (ONNX backdoor scan)" in log and "Failed" in log and "exit code: 1" in log, log
    # verbose: the audit's table is shown; one call audited both models.
    assert "2 models, exit code 1" in log, log
    envs = list((tmp_path / "cache").glob("repo*/py_env-*/bin/aegis-audit"))
    assert len(envs) == 1, "the wheel's binary in pre-commit's environment"
    assert not list((tmp_path / "cache").rglob("target")), "nothing compiled"
