#!/usr/bin/env bash
# Packaging checks (docs/ci.md), called by scripts/test.sh after `cargo test`:
#   1. the pinned tools (scripts/tools.sh: maturin, check-jsonschema, pre-commit, pytest, ruff, SARIF
#      Multitool, onnxruntime wheels for offline installs);
#   2. both wheels (scripts/wheel.sh) with the Cargo profile of `AEGIS_WHEEL_PROFILE` (default `test`, the
#      one `cargo test` just built with, so only packaging and the final link are new work), built as a user
#      without npm builds them: PATH holds every command of the usual PATH but npm, npx, node and corepack,
#      and maturin is installed afresh into a temporary venv (what `wheel.sh` needs: Python and Rust only);
#   3. ruff over the packaging Python, then pytest tests/packaging: the wheel installed offline into a
#      fresh venv and run by absolute path, the GitHub Action's step, the pre-commit hook, the SARIF checker;
#   4. every SARIF log the tests wrote into $AEGIS_SARIF_DUMP (Rust tests and the tests above) through
#      Microsoft's SARIF Multitool with GitHub's rules (scripts/check_sarif.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/tools.sh
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/bin"
IFS=: read -r -a path_dirs <<< "$PATH"
for d in "${path_dirs[@]}"; do
  for f in "$d"/*; do
    name="${f##*/}"
    case "$name" in npm | npx | node | nodejs | corepack) continue ;; esac
    [ -x "$f" ] && [ ! -e "$scratch/bin/$name" ] && ln -s "$f" "$scratch/bin/$name"
  done
done
if PATH="$scratch/bin" command -v npm >/dev/null; then
  echo "test_packaging: npm still on the reduced PATH" >&2
  exit 1
fi
# The tests below (the Action's build from its checkout) reuse this maturin.
export AEGIS_MATURIN_VENV="$scratch/maturin"
PATH="$scratch/bin" bash scripts/wheel.sh --gpu --profile "${AEGIS_WHEEL_PROFILE:-test}" >/dev/null
py_files=(scripts/action.py scripts/check_sarif.py tests/packaging)
.tools/venv/bin/ruff check -q "${py_files[@]}"
.tools/venv/bin/ruff format -q --check "${py_files[@]}"
.tools/venv/bin/python -m pytest -q -p no:cacheprovider tests/packaging
if [ -n "${AEGIS_SARIF_DUMP:-}" ]; then
  python3 scripts/check_sarif.py "$AEGIS_SARIF_DUMP"
fi
