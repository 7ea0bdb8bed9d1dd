#!/usr/bin/env python3
"""The script of the aegis-audit GitHub Action (action.yml): install, audit every model a glob names, report.

Inputs come from environment variables set by action.yml's `env:` (never spliced into a script):
  INPUT_MODELS     glob patterns of ONNX models, one per line, relative to the workspace (`**` recurses)
  INPUT_DATA       the training data folder (`--data`)
  INPUT_ARGS       more aegis-audit arguments, split like a POSIX shell would (no shell runs them)
  INPUT_SARIF_DIR  folder for the SARIF logs, one per model (created; default aegis-audit-sarif)
  INPUT_FAIL_ON    verdicts that fail the step: any of `suspected`, `error`, `not-applicable`, or `never`
  INPUT_PACKAGE, INPUT_VERSION   the distribution pip installs (`aegis-backdoor-audit==0.1.0`)
  INPUT_WHEEL      a wheel file to install instead (e.g. built by an earlier step)
  INPUT_PIP_ARGS   more pip arguments (a mirror: `--index-url URL`; offline: `--no-index --find-links DIR`)
  INPUT_BUILD_FROM_SOURCE  `auto` (default): when the package index has no such version (before the first
                   release, or a tag not published), build the wheel from the action's own checkout
                   (GITHUB_ACTION_PATH, the same commit as the tag pinned in `uses:`) with scripts/wheel.sh
                   (maturin; needs Rust, which GitHub's Ubuntu runners have) and install that; `always`: build
                   without asking the index; `never`: a missing version is an error.
The Python running this script (3.11+; action.yml runs input `python`) creates the virtual environment.
GitHub's variables: GITHUB_WORKSPACE (models are found and audited from there), RUNNER_TEMP (the virtual
environment goes there), GITHUB_OUTPUT (outputs `verdict`, `exit-code`, `sarif-dir`, `models`),
GITHUB_STEP_SUMMARY (a table, one row per model).

Each model is audited by its own `aegis-audit MODEL --data DATA --sarif SARIF_DIR/NAME.sarif ARGS` run,
called by absolute path in the environment the wheel was installed into (the binary finds ONNX Runtime
there). The step's exit code is the most severe one: 2 (error) > 1 (backdoor suspected) > 3 (method not
applicable) > 0 (clean), and the step fails when that verdict is listed in INPUT_FAIL_ON. No model
matching the globs is an error (exit 2): a gate that checks nothing must not pass.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

VERDICTS = {0: "clean", 1: "suspected", 2: "error", 3: "not-applicable"}
# 2 > 1 > 3 > 0: an error hides everything; a suspected backdoor outranks "not verified".
SEVERITY = {0: 0, 3: 1, 1: 2, 2: 3}
FAIL_WORDS = {"suspected", "error", "not-applicable", "never"}


class ActionError(Exception):
    """A configuration problem: reported as one `::error::` line, exit 2."""


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def most_severe(codes: list[int]) -> int:
    """The most severe exit code (2 > 1 > 3 > 0); an unknown code (a crash) counts as an error."""
    normal = [c if c in SEVERITY else 2 for c in codes]
    return max(normal, key=SEVERITY.__getitem__, default=0)


def find_models(patterns: str, workspace: Path) -> list[str]:
    """Workspace-relative paths of the files the glob patterns match, sorted, without duplicates."""
    found: set[str] = set()
    lines = [p.strip() for p in patterns.splitlines() if p.strip() and not p.strip().startswith("#")]
    if not lines:
        raise ActionError("input 'models' is empty: give one or more glob patterns, e.g. models/**/*.onnx")
    for pattern in lines:
        for match in glob.glob(pattern, root_dir=workspace, recursive=True):
            if (workspace / match).is_file():
                found.add(os.path.normpath(match))
    return sorted(found)


def sarif_name(model: str) -> str:
    """A file name per model: readable stem plus a hash of the path, so a/m.onnx and b/m.onnx differ."""
    digest = hashlib.sha256(model.encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(model).stem)[:80]
    return f"{stem}-{digest}.sarif"


DISTRIBUTIONS = {
    "aegis-backdoor-audit": ("aegis_backdoor_audit", False),
    "aegis-backdoor-audit-gpu": ("aegis_backdoor_audit_gpu", True),
}
BUILD_WORDS = {"auto", "always", "never"}


class IndexMiss(Exception):
    """pip found no distribution of the package itself (not of a dependency) for the pinned version."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def make_venv(python: str, venv: Path) -> Path:
    """Creates a virtual environment at `venv`; returns its python."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


def pip_install(vpy: Path, spec: list[str], pip_args: list[str], package: str | None = None) -> None:
    """pip-installs `spec`; pip's output is shown. With `package`, a failure because the index has no such
    version of that package raises IndexMiss (any other failure: CalledProcessError)."""
    cmd = [str(vpy), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *pip_args, *spec]
    print(f"aegis-audit action: {shlex.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    sys.stdout.flush()
    if proc.returncode == 0:
        return
    missing = re.findall(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", proc.stderr)
    if package and any(normalize(m) == normalize(package) for m in missing):
        raise IndexMiss(spec[0])
    raise subprocess.CalledProcessError(proc.returncode, cmd)


def checkout_version(action_path: Path) -> str:
    """The version of the action's checkout (Cargo.toml's `version`), the version its wheel gets."""
    import tomllib  # 3.11+, checked in run() before anything is installed

    with open(action_path / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["package"]["version"]


def build_wheel(action_path: Path, package: str, version: str, temp_root: Path) -> Path:
    """Builds `package`'s wheel from the action's own checkout with scripts/wheel.sh (maturin, Rust); refuses
    when the checkout is another version than the one asked for."""
    if package not in DISTRIBUTIONS:
        raise ActionError(
            f"input 'package' must be one of {sorted(DISTRIBUTIONS)} to build it from source, got {package!r}"
        )
    have = checkout_version(action_path)
    if version and version != have:
        raise ActionError(
            f"{package}=={version} is not on the package index, and this action's checkout is version {have}: "
            f"pin the action at v{version} (`uses: ...@v{version}`) or set input 'version' to {have}"
        )
    if shutil.which("cargo") is None:
        raise ActionError(
            f"{package}=={version or have} must be built from the action's checkout, which needs Rust 1.92+ "
            "('cargo' is not on PATH): add a Rust set-up step, or give input 'wheel'"
        )
    out = Path(tempfile.mkdtemp(prefix="aegis-audit-wheel-", dir=temp_root))
    prefix, gpu = DISTRIBUTIONS[package]
    cmd = ["bash", str(action_path / "scripts" / "wheel.sh"), "--out", str(out), *(["--gpu"] if gpu else [])]
    print(f"::group::aegis-audit action: building {package} {have} from {action_path}", flush=True)
    print(shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHON": sys.executable}, stdout=sys.stderr)
    print("::endgroup::", flush=True)
    built = sorted(out.glob(f"{prefix}-{have}-*.whl"))
    if len(built) != 1:
        raise ActionError(f"scripts/wheel.sh left {[p.name for p in out.iterdir()]} in {out}, not one {prefix} wheel")
    return built[0]


def install(python: str, source: dict[str, str], pip_args: list[str], venv: Path, temp_root: Path) -> Path:
    """Creates a virtual environment at `venv` and installs aegis-audit there from `source` (the inputs
    `wheel`, `package`, `version`, `build-from-source`); returns its aegis-audit."""
    vpy = make_venv(python, venv)
    package, version, build = source["package"], source["version"], source["build"]
    if source["wheel"]:
        pip_install(vpy, [source["wheel"]], pip_args)
    elif build == "always":
        pip_install(vpy, [str(build_wheel(Path(source["action_path"]), package, version, temp_root))], pip_args)
    else:
        spec = f"{package}{'==' + version if version else ''}"
        try:
            pip_install(vpy, [spec], pip_args, package=package)
        except IndexMiss:
            if build == "never":
                raise ActionError(f"{spec} is not on the package index (input 'build-from-source' is never)") from None
            print(
                f"::notice::aegis-audit action: {spec} is not on the package index; building it from the "
                "action's checkout (maturin; some minutes)",
                flush=True,
            )
            wheel = build_wheel(Path(source["action_path"]), package, version, temp_root)
            pip_install(vpy, [str(wheel)], pip_args)
    exe = venv / "bin" / "aegis-audit"
    if not exe.is_file():
        raise ActionError(f"the installed package has no {exe}")
    return exe


def command_property(value: str) -> str:
    """Escapes a workflow command property (`file=...`) as the runner expects."""
    for a, b in (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C")):
        value = value.replace(a, b)
    return value


def command_data(value: str) -> str:
    """Escapes a workflow command's message."""
    for a, b in (("%", "%25"), ("\r", "%0D"), ("\n", "%0A")):
        value = value.replace(a, b)
    return value


def annotate(level: str, model: str, text: str) -> None:
    print(f"::{level} file={command_property(model)}::{command_data(text)}", flush=True)


def write_output(path: str, name: str, value: str) -> None:
    """Appends one output in GitHub's `name<<DELIMITER` form (safe for any value)."""
    if not path:
        return
    delimiter = f"aegis_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def summary(path: str, rows: list[tuple[str, int, str]], code: int) -> None:
    if not path:
        return
    lines = [
        f"### aegis-audit: {VERDICTS.get(code, 'error')} (exit {code})",
        "",
        "| model | verdict | exit | SARIF |",
        "| --- | --- | --- | --- |",
    ]
    for model, c, sarif in rows:
        cell = model.replace("|", "\\|")
        lines.append(f"| `{cell}` | {VERDICTS.get(c, 'error')} | {c} | `{sarif}` |")
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def run() -> int:
    if sys.version_info < (3, 11):
        raise ActionError(
            "needs Python 3.11+ (ONNX Runtime 1.31 has no wheel for older ones): "
            "set input 'python' or run actions/setup-python first"
        )
    workspace = Path(env("GITHUB_WORKSPACE", os.getcwd())).resolve()
    data = env("INPUT_DATA")
    if not data:
        raise ActionError("input 'data' is required: the folder of the data the model was trained on")
    fail_on = set(env("INPUT_FAIL_ON", "suspected error").replace(",", " ").split())
    if not fail_on or not fail_on <= FAIL_WORDS:
        raise ActionError(f"input 'fail-on' must list {sorted(FAIL_WORDS)}, got {sorted(fail_on)}")
    build = env("INPUT_BUILD_FROM_SOURCE", "auto")
    if build not in BUILD_WORDS:
        raise ActionError(f"input 'build-from-source' must be one of {sorted(BUILD_WORDS)}, got {build!r}")
    try:
        extra = shlex.split(env("INPUT_ARGS"))
        pip_args = shlex.split(env("INPUT_PIP_ARGS"))
    except ValueError as e:
        raise ActionError(f"input 'args' or 'pip-args' cannot be split: {e}") from e
    if any(a in ("--sarif", "--format") or a.startswith(("--sarif=", "--format=")) for a in extra):
        raise ActionError("input 'args' must not set --sarif or --format: the action writes one SARIF log per model")
    models = find_models(env("INPUT_MODELS"), workspace)
    if not models:
        raise ActionError(f"no file matches input 'models' under {workspace}")
    sarif_dir = (workspace / env("INPUT_SARIF_DIR", "aegis-audit-sarif")).resolve()
    sarif_dir.mkdir(parents=True, exist_ok=True)

    wheel = env("INPUT_WHEEL")
    source = {
        "wheel": str((workspace / wheel).resolve()) if wheel else "",
        "package": env("INPUT_PACKAGE", "aegis-backdoor-audit"),
        "version": env("INPUT_VERSION"),
        "build": build,
        "action_path": env("GITHUB_ACTION_PATH", str(Path(__file__).resolve().parents[1])),
    }
    temp_root = Path(env("RUNNER_TEMP", tempfile.gettempdir()))
    venv = Path(tempfile.mkdtemp(prefix="aegis-audit-venv-", dir=temp_root))
    exe = install(sys.executable, source, pip_args, venv, temp_root)

    rows: list[tuple[str, int, str]] = []
    for model in models:
        sarif = sarif_dir / sarif_name(model)
        cmd = [str(exe), model, "--data", data, "--sarif", str(sarif), *extra]
        print(f"::group::aegis-audit {model}", flush=True)
        print(shlex.join(cmd), flush=True)
        code = subprocess.run(cmd, cwd=workspace, check=False).returncode
        print("::endgroup::", flush=True)
        verdict = VERDICTS.get(code, "error")
        if code == 1:
            annotate("error", model, f"aegis-audit: backdoor suspected (exit 1), see {sarif.name}")
        elif code == 3:
            annotate("warning", model, "aegis-audit: the method does not apply to this model (exit 3)")
        elif code != 0:
            annotate("error", model, f"aegis-audit failed on this model (exit {code}), no report")
        shown = sarif.relative_to(workspace) if sarif.is_relative_to(workspace) else sarif
        rows.append((model, code, str(shown) if sarif.exists() else "-"))
        print(f"aegis-audit action: {model}: {verdict} (exit {code})", flush=True)

    code = most_severe([c for _, c, _ in rows])
    verdict = VERDICTS[code]
    write_output(env("GITHUB_OUTPUT"), "verdict", verdict)
    write_output(env("GITHUB_OUTPUT"), "exit-code", str(code))
    write_output(env("GITHUB_OUTPUT"), "sarif-dir", str(sarif_dir))
    write_output(env("GITHUB_OUTPUT"), "models", "\n".join(models))
    summary(env("GITHUB_STEP_SUMMARY"), rows, code)
    print(f"aegis-audit action: {len(models)} model(s), verdict {verdict} (exit {code}), SARIF in {sarif_dir}")
    return code if verdict in fail_on else 0


def main() -> int:
    try:
        return run()
    except ActionError as e:
        message = str(e)
    except subprocess.CalledProcessError as e:
        message = f"installing failed: {shlex.join(map(str, e.cmd))} exited with {e.returncode}"
    except Exception as e:  # noqa: BLE001 - any failure must still set the outputs and exit 2
        message = f"internal error: {type(e).__name__}: {e}"
    print(f"::error::aegis-audit action: {command_data(message)}", flush=True)
    write_output(env("GITHUB_OUTPUT"), "verdict", "error")
    write_output(env("GITHUB_OUTPUT"), "exit-code", "2")
    return 2


if __name__ == "__main__":
    sys.exit(main())
