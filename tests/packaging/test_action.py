"""The GitHub Action (issue 17 item 5): action.yml validates against GitHub's schema for actions, hands its
inputs to the script only through `env:`, and its step, run as the runner runs it (inputs mapped to
INPUT_* variables, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP set), installs the wheel offline,
audits every model the globs name and sets the outputs."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml
from helpers import DATA, REDUCED, ROOT, WHEELS, clean_env, dump_sarif, tool, wheel

ACTION = ROOT / "action.yml"
EXPR = re.compile(r"^\$\{\{ inputs\.([a-z-]+) \}\}$")


def load_script():
    spec = importlib.util.spec_from_file_location("aegis_action", ROOT / "scripts/action.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def action() -> dict:
    return yaml.safe_load(ACTION.read_text())


def parse_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's `name<<DELIM ... DELIM` records, as the runner reads them."""
    outputs, lines, i = {}, path.read_text().splitlines(), 0
    while i < len(lines):
        name, delim = lines[i].split("<<", 1)
        end = lines.index(delim, i + 1)
        outputs[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return outputs


def run_step(
    inputs: dict[str, str], tmp: Path, **extra_env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str], str]:
    """Runs action.yml's step as the runner would: each env entry `${{ inputs.x }}` becomes the input's
    value (or its default), then `bash -c RUN` with the GitHub variables set."""
    spec = action()
    step = spec["runs"]["steps"][0]
    env = clean_env(
        **extra_env,
        GITHUB_ACTION_PATH=str(ROOT),
        GITHUB_WORKSPACE=str(ROOT),
        GITHUB_OUTPUT=str(tmp / "output"),
        GITHUB_STEP_SUMMARY=str(tmp / "summary.md"),
        RUNNER_TEMP=str(tmp / "runner"),
    )
    (tmp / "runner").mkdir()
    for var, expr in step["env"].items():
        name = EXPR.match(expr).group(1)
        env[var] = inputs.get(name, spec["inputs"][name].get("default", ""))
    proc = subprocess.run(
        ["bash", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    outputs = parse_outputs(tmp / "output") if (tmp / "output").exists() else {}
    summary = (tmp / "summary.md").read_text() if (tmp / "summary.md").exists() else ""
    return proc, outputs, summary


def test_action_yml_validates_against_the_github_actions_schema(tmp_path: Path) -> None:
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions"]
    proc = subprocess.run([*check, str(ACTION)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The check can fail: a composite step without `shell` is invalid.
    broken = action()
    del broken["runs"]["steps"][0]["shell"]
    (tmp_path / "action.yml").write_text(yaml.safe_dump(broken))
    proc = subprocess.run([*check, str(tmp_path / "action.yml")], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_inputs_reach_the_script_only_through_env() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    assert len(steps) == 1
    assert "${{" not in steps[0]["run"], "an expression spliced into the script"
    mapped = {}
    for var, expr in steps[0]["env"].items():
        m = EXPR.match(expr)
        assert m, f"{var}: {expr}"
        mapped[m.group(1)] = var
    assert set(mapped) == set(spec["inputs"]), "every input, and nothing else, goes through env"
    assert all(var == "INPUT_" + name.upper().replace("-", "_") for name, var in mapped.items())
    script = (ROOT / "scripts/action.py").read_text()
    for var in mapped.values():
        assert var in script or var == "INPUT_PYTHON", f"{var} unused by scripts/action.py"
    for name, out in spec["outputs"].items():
        assert out["value"] == f"${{{{ steps.audit.outputs.{name} }}}}"
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    assert spec["inputs"]["version"]["default"] == version, "the action installs its own release"


def test_most_severe_code_names_and_globs(tmp_path: Path) -> None:
    script = load_script()
    assert script.most_severe([0, 3, 1, 2]) == 2
    assert script.most_severe([0, 3, 1]) == 1
    assert script.most_severe([3, 0, 3]) == 3
    assert script.most_severe([0, 0]) == 0
    assert script.most_severe([134]) == 2, "a crash is an error"
    assert script.sarif_name("a/m.onnx") != script.sarif_name("b/m.onnx")
    assert script.sarif_name("models/mnist v2.onnx").startswith("mnist_v2-")
    (tmp_path / "m/deep").mkdir(parents=True)
    for name in ("m/a.onnx", "m/deep/b.onnx", "m/c.txt", "top.onnx"):
        (tmp_path / name).write_bytes(b"")
    assert script.find_models("m/**/*.onnx\n# comment\n\ntop.onnx\nm/a.onnx", tmp_path) == [
        "m/a.onnx",
        "m/deep/b.onnx",
        "top.onnx",
    ]


def test_configuration_errors_exit_2_before_installing(tmp_path: Path) -> None:
    cases = [
        ({"models": "$(touch pwned)/*.onnx", "data": DATA}, "no file matches input 'models'"),
        ({"models": "fixtures/zoo/*.onnx", "data": DATA, "args": "--sarif x.sarif"}, "must not set --sarif"),
        ({"models": "fixtures/zoo/*.onnx", "data": ""}, "input 'data' is required"),
        ({"models": "fixtures/zoo/*.onnx", "data": DATA, "fail-on": "warning"}, "input 'fail-on' must list"),
        ({"models": "fixtures/zoo/*.onnx", "data": DATA, "args": "--steps 'unclosed"}, "cannot be split"),
    ]
    for i, (inputs, message) in enumerate(cases):
        tmp = tmp_path / str(i)
        tmp.mkdir()
        proc, outputs, _ = run_step({"python": sys.executable, **inputs}, tmp)
        assert proc.returncode == 2, f"{inputs}: {proc.stdout}{proc.stderr}"
        assert "::error::aegis-audit action: " in proc.stdout and message in proc.stdout, proc.stdout
        assert outputs == {"verdict": "error", "exit-code": "2"}, outputs
        assert not any((tmp / "runner").iterdir()), "nothing installed"
    assert not (ROOT / "pwned").exists() and not list(ROOT.glob("*pwned*"))


def test_action_audits_every_model_the_globs_name(tmp_path: Path) -> None:
    sarif_dir = tmp_path / "sarif"
    inputs = {
        "models": "fixtures/zoo/robust_localised.onnx\nfixtures/zoo/standard_clean.onnx\nno/such/*.onnx",
        "data": DATA,
        "args": shlex.join([*REDUCED, "--method", "aegis"]),
        "sarif-dir": str(sarif_dir),
        "wheel": str(wheel("aegis_backdoor_audit")),
        "pip-args": f"--no-index --find-links {WHEELS}",
        "python": sys.executable,
    }
    proc, outputs, summary = run_step(inputs, tmp_path)
    log = proc.stdout + proc.stderr
    # robust_localised: backdoor suspected (1); standard_clean is not robust, AEGIS does not apply (3).
    assert proc.returncode == 1, log
    assert outputs["verdict"] == "suspected" and outputs["exit-code"] == "1", outputs
    assert outputs["sarif-dir"] == str(sarif_dir)
    assert outputs["models"].splitlines() == ["fixtures/zoo/robust_localised.onnx", "fixtures/zoo/standard_clean.onnx"]
    assert "::error file=fixtures/zoo/robust_localised.onnx::aegis-audit: backdoor suspected" in log, log
    assert "::warning file=fixtures/zoo/standard_clean.onnx::" in log, log
    logs = sorted(sarif_dir.glob("*.sarif"))
    assert [p.name.split("-")[0] for p in logs] == ["robust_localised", "standard_clean"], logs
    ids = set()
    for path in logs:
        run = json.loads(path.read_text())["runs"][0]
        uri = run["artifacts"][0]["location"]["uri"]
        assert uri == f"fixtures/zoo/{path.name.split('-')[0]}.onnx", "URIs relative to the repository root"
        ids.add(run["automationDetails"]["id"])
        dump_sarif("action", path)
    assert len(ids) == 2, "one upload-sarif category per model"
    assert "| `fixtures/zoo/robust_localised.onnx` | suspected | 1 |" in summary, summary
    assert "| `fixtures/zoo/standard_clean.onnx` | not-applicable | 3 |" in summary, summary


def with_cargo() -> str:
    """The test PATH (clean_env's) with Rust's cargo in front, as on GitHub's Ubuntu runners."""
    cargo = shutil.which("cargo")
    assert cargo, "cargo on PATH"
    return f"{Path(cargo).parent}:{clean_env()['PATH']}"


def test_an_index_miss_builds_the_wheel_from_the_actions_checkout(tmp_path: Path) -> None:
    """Before the first release the index has no aegis-backdoor-audit: a fake index (.tools/wheels, ONNX Runtime
    and its dependencies but no aegis-audit) misses, and the step builds the wheel from GITHUB_ACTION_PATH with
    scripts/wheel.sh, installs it with the same pip arguments and audits (the Cargo profile of the tests, so
    that only packaging and the link are new work; a runner builds in release)."""
    inputs = {
        "models": "fixtures/zoo/robust_localised.onnx",
        "data": DATA,
        "args": shlex.join([*REDUCED, "--method", "aegis"]),
        "sarif-dir": str(tmp_path / "sarif"),
        "pip-args": f"--no-index --find-links {WHEELS}",
        "python": sys.executable,
    }
    proc, outputs, _ = run_step(inputs, tmp_path, PATH=with_cargo(), AEGIS_WHEEL_PROFILE="test")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log
    assert "No matching distribution found for aegis-backdoor-audit==0.1.0" in log, log
    assert "::notice::aegis-audit action: aegis-backdoor-audit==0.1.0 is not on the package index" in log, log
    assert f"building aegis-backdoor-audit 0.1.0 from {ROOT}" in log, log
    assert outputs["verdict"] == "suspected", outputs
    built = list((tmp_path / "runner").glob("aegis-audit-wheel-*/aegis_backdoor_audit-0.1.0-*.whl"))
    assert len(built) == 1, list((tmp_path / "runner").iterdir())


def test_an_index_miss_is_refused_when_the_checkout_cannot_supply_it(tmp_path: Path) -> None:
    base = {
        "models": "fixtures/zoo/robust_localised.onnx",
        "data": DATA,
        "pip-args": f"--no-index --find-links {WHEELS}",
        "python": sys.executable,
    }
    cases = [
        ({"version": "9.9.9"}, "this action's checkout is version 0.1.0: pin the action at v9.9.9"),
        ({"build-from-source": "never"}, "aegis-backdoor-audit==0.1.0 is not on the package index (input"),
        ({"build-from-source": "sometimes"}, "input 'build-from-source' must be one of"),
        ({"pip-args": "--no-such-pip-flag"}, "installing failed"),
    ]
    for i, (inputs, message) in enumerate(cases):
        tmp = tmp_path / str(i)
        tmp.mkdir()
        proc, outputs, _ = run_step({**base, **inputs}, tmp, PATH=with_cargo())
        assert proc.returncode == 2, f"{inputs}: {proc.stdout}{proc.stderr}"
        assert message in proc.stdout, proc.stdout
        assert outputs == {"verdict": "error", "exit-code": "2"}, outputs
        assert not list((tmp / "runner").glob("aegis-audit-wheel-*")), "nothing built"
