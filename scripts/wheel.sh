#!/usr/bin/env bash
# Builds the Python wheels of aegis-audit with maturin. Needs only Python 3.11+ (`python3`, or $PYTHON) with
# venv and pip, and Rust 1.92+ (`cargo` on PATH): maturin, pinned in scripts/tools/maturin.txt, is installed
# on first use into the git-ignored .tools/maturin (or $AEGIS_MATURIN_VENV); nothing else (no npm, no CI tools).
#   dist/aegis_backdoor_audit-VERSION-py3-none-manylinux_*.whl       the binary + onnxruntime==1.31.1
#   dist/aegis_backdoor_audit_gpu-VERSION-py3-none-manylinux_*.whl   with --gpu: + onnxruntime-gpu==1.31.1
#
#   bash scripts/wheel.sh [--gpu] [--profile NAME] [--out DIR]
#
# --profile: the Cargo profile (default $AEGIS_WHEEL_PROFILE, else release, what users get). `--profile test` (the packaging tests)
# reuses what `cargo test` just built instead of compiling everything again in release: `cargo rustc
# --profile test` would build a test harness, so it builds with the dev profile given the test profile's
# settings from Cargo.toml (CARGO_PROFILE_DEV_*), which makes Cargo's artefacts the same ones (docs/ci.md).
# Cargo's target/ is shared by both wheels: the second build only repackages.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gpu=0
profile="${AEGIS_WHEEL_PROFILE:-release}"
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) gpu=1 ;;
    --profile) profile="${2:?--profile needs a value}"; shift ;;
    --out) out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift ;;
    *) echo "wheel: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "wheel: needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11+)" >&2
  exit 2
fi
if ! command -v cargo >/dev/null; then
  echo "wheel: needs Rust 1.92+ ('cargo' is not on PATH; https://rustup.rs installs it)" >&2
  exit 2
fi
venv="${AEGIS_MATURIN_VENV:-$root/.tools/maturin}"
maturin="$venv/bin/maturin"
want="$(sha256sum scripts/tools/maturin.txt | cut -d' ' -f1)"
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$maturin" ]; then
  echo "wheel: installing maturin (scripts/tools/maturin.txt) into $venv" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check -r scripts/tools/maturin.txt
  echo "$want" > "$venv/.stamp"
fi
mkdir -p "$out"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
if [ "$profile" = test ]; then
  profile=dev
  # Cargo.toml's [profile.test] keys as CARGO_PROFILE_DEV_* variables (the test profile inherits dev).
  while IFS='=' read -r key value; do
    export "CARGO_PROFILE_DEV_$key=$value"
  done < <("$py" - <<'PY'
import tomllib
test = tomllib.load(open("Cargo.toml", "rb")).get("profile", {}).get("test", {})
for key, value in test.items():
    if not isinstance(value, dict):
        print(f"{key.upper().replace('-', '_')}={str(value).lower() if isinstance(value, bool) else value}")
PY
)
fi

build() { # $1: folder holding the pyproject.toml, $2: distribution file-name prefix
  rm -f "$out/$2"-*.whl
  (cd "$1" && "$maturin" build --quiet --profile "$profile" --out "$out" >&2)
  ls "$out/$2"-*.whl
}

build "$root" aegis_backdoor_audit
if [ "$gpu" = 1 ]; then
  build "$root/packaging/gpu" aegis_backdoor_audit_gpu
fi
