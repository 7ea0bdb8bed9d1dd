#!/usr/bin/env bash
# Builds the Python wheels of aegis-audit with maturin (installed by scripts/tools.sh into .tools/venv):
#   dist/aegis_backdoor_audit-VERSION-py3-none-manylinux_*.whl       the binary + onnxruntime==1.31.1
#   dist/aegis_backdoor_audit_gpu-VERSION-py3-none-manylinux_*.whl   with --gpu: + onnxruntime-gpu==1.31.1
#
#   bash scripts/wheel.sh [--gpu] [--profile NAME] [--out DIR]
#
# --profile: the Cargo profile (default release, what users get). The packaging tests pass the profile
# `cargo test` already built its binary with, so maturin reuses those artefacts instead of compiling
# everything again in release (docs/ci.md). Cargo's target/ is shared by both wheels: the second build
# only repackages.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gpu=0
profile=release
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
maturin="$root/.tools/venv/bin/maturin"
[ -x "$maturin" ] || bash scripts/tools.sh
mkdir -p "$out"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

build() { # $1: folder holding the pyproject.toml, $2: distribution file-name prefix
  rm -f "$out/$2"-*.whl
  (cd "$1" && "$maturin" build --quiet --profile "$profile" --out "$out" >&2)
  ls "$out/$2"-*.whl
}

build "$root" aegis_backdoor_audit
if [ "$gpu" = 1 ]; then
  build "$root/packaging/gpu" aegis_backdoor_audit_gpu
fi
