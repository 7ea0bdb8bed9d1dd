#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls it): installs what is missing
# (scripts/setup.sh), then runs the Rust tests, the PyTorch plugin's tests and the integration plugins' tests
# (scripts/test_integrations.sh: modelscan, MLflow, Ray).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export ORT_DYLIB_PATH="$root/.ort/libonnxruntime.so.1.31.1"
cargo test 2>&1
if [ -d plugins/torch/tests ]; then
  .venv/bin/python -m pytest -q plugins/torch/tests 2>&1
fi
# The integrations run the binary `cargo test` just built (a release build would add minutes to CI).
AEGIS_AUDIT_BIN="${AEGIS_AUDIT_BIN:-$root/target/debug/aegis-audit}" bash scripts/test_integrations.sh 2>&1
