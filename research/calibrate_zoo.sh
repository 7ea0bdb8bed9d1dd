#!/usr/bin/env bash
# A small calibration from the zoo (the former, provisional built-in one): fused audits (default settings, the
# presets' `fused:` sections) of the five known-clean MNIST models committed in the repository
# (fixtures/zoo: robust_clean_s0, robust_clean_s1, standard_clean; fixtures/validation: val_robust_clean_s2,
# val_robust_clean_s3) on the committed MNIST subset, then `aegis-audit calibrate` on their reports.
# 5 models x 10 classes = 50 clean classes: enough to fit the nulls, far too few for a trustworthy
# false-positive rate. The built-in calibration (config/calibration.json) is the benchmark's calibration half
# (`python -m aegis_bench evaluate`, bench/README.md).
#
# Usage: research/calibrate_zoo.sh OUT.json   (needs a release build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:?usage: research/calibrate_zoo.sh OUT.json}"
bin="${AEGIS_AUDIT_BIN:-$root/target/release/aegis-audit}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$root/.ort/libonnxruntime.so.1.31.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The audits need some calibration to reach a verdict; their verdicts are not used, only the detectors'
# per-class indices, which do not depend on it. This stand-in weights every detector.
python3 - "$work/stand-in.json" <<'EOF'
import json, sys
names = ["universal", "aegis", "neural-cleanse", "reach"]
null = [{"model": "stand-in", "class": i, "indices": {n: 0.1 * i for n in names}} for i in range(20)]
json.dump({"version": 2, "description": "stand-in", "target_fpr": 0.05, "tail_fraction": 0.1,
           "detectors": [{"name": n, "weight": 1.0} for n in names], "null_classes": null}, open(sys.argv[1], "w"))
EOF

models=(fixtures/zoo/robust_clean_s0.onnx fixtures/zoo/robust_clean_s1.onnx fixtures/zoo/standard_clean.onnx
        fixtures/validation/val_robust_clean_s2.onnx fixtures/validation/val_robust_clean_s3.onnx)
reports=()
for m in "${models[@]}"; do
  r="$work/$(basename "$m" .onnx).json"
  "$bin" "$m" --data fixtures/mnist-subset --calibration "$work/stand-in.json" --json "$r" --quiet \
    --format json > /dev/null || [ $? -le 1 ]
  reports+=("$r")
done
# --allow-suspected: these models are known clean; their verdicts under the stand-in calibration mean nothing.
"$bin" calibrate "${reports[@]}" -o "$out" --allow-suspected --description \
  "PROVISIONAL: $("$bin" --version) calibration on only 5 known-clean MNIST small CNNs (fixtures/zoo \
robust_clean_s0, robust_clean_s1, standard_clean; fixtures/validation val_robust_clean_s2, val_robust_clean_s3), \
fused audits with the default settings on fixtures/mnist-subset, made by research/calibrate_zoo.sh; 50 clean \
classes cannot pin a 5% false-positive rate"
