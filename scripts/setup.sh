#!/usr/bin/env bash
# Installs everything aegis-audit needs into project-local, git-ignored folders:
#   .venv/  Python virtual environment with the pinned plugin dependencies (PyTorch, ONNX, ONNX Runtime,
#           scikit-learn), created once and reused;
#   .ort/   the ONNX Runtime shared library from the official `onnxruntime==1.31.1` wheel, which the
#           binary loads with ort's `load-dynamic` feature.
# Idempotent: a second run only checks. `AEGIS_GPU=1` also installs `onnxruntime-gpu==1.31.1` for CUDA.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
req="plugins/torch/requirements.txt"
stamp=".venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$py" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned Python dependencies (PyTorch is a large download, once)" >&2
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check -r "$req"
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check --no-deps -e plugins/torch 2>/dev/null || true
  echo "$want" > "$stamp"
fi
if [ "${AEGIS_GPU:-0}" = "1" ]; then
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check onnxruntime-gpu==1.31.1
fi
ortdir="$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
mkdir -p .ort
for f in "$ortdir"/libonnxruntime.so.1.31.1 "$ortdir"/libonnxruntime_providers_*.so; do
  [ -e "$f" ] && cp -u "$f" .ort/
done
[ -e .ort/libonnxruntime.so.1.31.1 ] || { echo "setup: libonnxruntime.so.1.31.1 not found in $ortdir" >&2; exit 1; }
echo "setup: ONNX Runtime at $root/.ort/libonnxruntime.so.1.31.1" >&2
