#!/usr/bin/env bash
# Side-by-side benchmark of aegis-audit and scikit-learn on the same seeded inputs, in one run:
# t-SNE of 1,000 x 150 and 5,000 x 150 points, mean shift (estimated bandwidth) of 1,000 2-D points.
# Usage: research/bench_cluster.sh   (PROFILE=test to reuse the test build instead of --release)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PROFILE=${PROFILE:-release}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
echo "cores: $(nproc); scikit-learn $($PY -c 'import sklearn; print(sklearn.__version__)'); profile $PROFILE" >&2
"$PY" research/bench_cluster.py gen "$DIR"
cargo build -q --profile "$PROFILE" --example bench_cluster
target_dir=$([ "$PROFILE" = test ] && echo debug || echo "$PROFILE")
"target/$target_dir/examples/bench_cluster" "$DIR" | tee "$DIR/rust.jsonl" >&2
"$PY" research/bench_cluster.py sklearn "$DIR" | tee "$DIR/sklearn.jsonl" >&2
"$PY" research/bench_cluster.py report "$DIR"
