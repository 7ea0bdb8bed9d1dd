#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls it): installs what is missing
# (scripts/setup.sh), then runs the Rust tests and builds the API docs with warnings as errors (broken or
# private intra-doc links), the PyTorch plugin's and the benchmark's tests (plugins/torch,
# plugins/bench: one pytest run, one PyTorch start-up), the packaging checks
# (scripts/test_packaging.sh: wheels, GitHub Action, pre-commit hook, and every SARIF log the tests wrote
# validated by Microsoft's SARIF Multitool with GitHub's rules) and the integration plugins' tests
# (scripts/test_integrations.sh: modelscan, MLflow, Ray).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export ORT_DYLIB_PATH="$root/.ort/libonnxruntime.so.1.31.1"
export AEGIS_SARIF_DUMP="$root/target/sarif-dump"
rm -rf "$AEGIS_SARIF_DUMP"
mkdir -p "$AEGIS_SARIF_DUMP"
cargo test 2>&1
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet 2>&1
.venv/bin/python -m pytest -q plugins/torch/tests plugins/bench/tests 2>&1
bash scripts/test_packaging.sh 2>&1
# The PyTorch plugin, the benchmark, the scripts, the study scripts and the scaling benchmark are ruff-clean (ruff
# pinned by scripts/tools.sh).
.tools/venv/bin/ruff check plugins/torch plugins/bench scripts research bench/scaling
.tools/venv/bin/ruff format --check plugins/torch plugins/bench scripts research bench/scaling
# The integrations run the wheel scripts/test_packaging.sh just built, installed as users install it.
bash scripts/test_integrations.sh 2>&1
