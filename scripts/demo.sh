#!/usr/bin/env bash
# README "Quick start": installs ONNX Runtime only (`scripts/setup.sh --runtime`: the shared library from the
# onnxruntime wheel into .ort/, no PyTorch), builds aegis-audit, and audits the
# bundled robust MNIST model with a localised trigger (fixtures/zoo/robust_localised.onnx) on the
# bundled MNIST subset, writing a SARIF log, a JSON report and visual evidence under out/demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --runtime
cargo build --release
mkdir -p out/demo
code=0
./target/release/aegis-audit fixtures/zoo/robust_localised.onnx --data fixtures/mnist-subset \
  --sarif out/demo/report.sarif --json out/demo/report.json --evidence out/demo/evidence "$@" || code=$?
case $code in
  0) echo "demo: exit 0 (no backdoor found)" ;;
  1) echo "demo: exit 1 (backdoor suspected)" ;;
  3) echo "demo: exit 3 (AEGIS does not apply: the model is not robust)" ;;
  *) echo "demo: aegis-audit failed with exit $code" >&2; exit "$code" ;;
esac
echo "demo: SARIF out/demo/report.sarif, JSON out/demo/report.json, evidence out/demo/evidence/index.html"
