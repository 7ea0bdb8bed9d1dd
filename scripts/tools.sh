#!/usr/bin/env bash
# Installs the CI-only tools into the git-ignored .tools/ folder, pinned, from the package registries:
#   .tools/venv/    check-jsonschema, pre-commit, pytest, ruff (scripts/tools/requirements.txt);
#   .tools/sarif/   Microsoft's SARIF Multitool from npm (scripts/tools/package-lock.json, `npm ci`);
#   .tools/wheels/  onnxruntime==1.31.1 and its dependencies as wheels, so the packaging tests install
#                   the aegis-audit wheel with `pip --no-index` (offline);
#   .tools/wheels-runtime/  the one onnxruntime wheel `scripts/setup.sh --runtime` downloads (cp312), for
#                   the test of that mode.
# Idempotent: each part is redone only when its pin file changed. Needs python3 (3.11+) and npm. The scripts
# that use these tools call it (scripts/test_packaging.sh, scripts/test.sh); a wheel build does not
# (scripts/wheel.sh installs maturin alone).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
pin="scripts/tools"
mkdir -p .tools
pipq=(-q --no-cache-dir --disable-pip-version-check)

stamp() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

want="$(stamp "$pin/requirements.txt")"
if [ "$(cat .tools/venv/.stamp 2>/dev/null)" != "$want" ]; then
  echo "tools: installing check-jsonschema, pre-commit, pytest, ruff into .tools/venv" >&2
  rm -rf .tools/venv
  "$py" -m venv .tools/venv
  .tools/venv/bin/python -m pip install "${pipq[@]}" -r "$pin/requirements.txt"
  echo "$want" > .tools/venv/.stamp
fi

want="$(stamp "$pin/package.json" "$pin/package-lock.json")"
multitool=".tools/sarif/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
if [ "$(cat .tools/sarif/.stamp 2>/dev/null)" != "$want" ] || [ ! -x "$multitool" ]; then
  echo "tools: installing @microsoft/sarif-multitool into .tools/sarif" >&2
  rm -rf .tools/sarif
  mkdir -p .tools/sarif
  cp "$pin/package.json" "$pin/package-lock.json" .tools/sarif/
  # --ignore-scripts: the package's only script is a chmod, done here.
  (cd .tools/sarif && npm ci --silent --no-audit --no-fund --ignore-scripts)
  chmod u+x "$multitool"
  echo "$want" > .tools/sarif/.stamp
fi

want="$(stamp "$pin/onnxruntime.txt")"
if [ "$(cat .tools/wheels/.stamp 2>/dev/null)" != "$want" ]; then
  echo "tools: downloading the onnxruntime wheel and its dependencies into .tools/wheels" >&2
  rm -rf .tools/wheels
  "$py" -m pip download "${pipq[@]}" --only-binary :all: -d .tools/wheels -r "$pin/onnxruntime.txt"
  echo "$want" > .tools/wheels/.stamp
fi

if [ "$(cat .tools/wheels-runtime/.stamp 2>/dev/null)" != "$want" ]; then
  rm -rf .tools/wheels-runtime
  "$py" -m pip download "${pipq[@]}" --no-deps --only-binary :all: --implementation cp --python-version 3.12 \
    --platform "manylinux_2_28_$(uname -m)" -d .tools/wheels-runtime onnxruntime==1.31.1
  echo "$want" > .tools/wheels-runtime/.stamp
fi
