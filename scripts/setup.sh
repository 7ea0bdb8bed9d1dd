#!/usr/bin/env bash
# Installs what aegis-audit needs into project-local, git-ignored folders.
#
#   bash scripts/setup.sh --runtime   the audit only: `.ort/` gets the ONNX Runtime shared library taken
#                                     out of the official `onnxruntime==1.31.1` wheel (one ~24 MB download,
#                                     no virtual environment, no PyTorch). scripts/demo.sh uses this.
#   bash scripts/setup.sh             everything (tests, PyTorch plugin, benchmark, fixture generators):
#                                     `.venv/` with the pinned plugin dependencies (PyTorch, ONNX, ONNX
#                                     Runtime, scikit-learn) and plugins/torch and plugins/bench installed
#                                     editable, created once and reused, and `.ort/` copied from it.
#
# The binary loads `.ort/libonnxruntime.so.1.31.1` with ort's `load-dynamic` feature. Idempotent: a second
# run only checks. `AEGIS_GPU=1` takes ONNX Runtime from `onnxruntime-gpu==1.31.1` instead (CUDA 13 and
# cuDNN 9 must be installed; with the full set-up the GPU package goes into `.venv/`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
lib="libonnxruntime.so.1.31.1"
case "${1:-}" in
  --runtime) mode=runtime ;;
  "") mode=full ;;
  *) echo "setup: unknown argument '$1' (use --runtime, or nothing for the full set-up)" >&2; exit 2 ;;
esac

if [ "$mode" = runtime ]; then
  pkg=onnxruntime
  [ "${AEGIS_GPU:-0}" = "1" ] && pkg=onnxruntime-gpu
  stamp=".ort/.source"
  if [ -e ".ort/$lib" ] && { [ ! -e "$stamp" ] || [ "$(cat "$stamp")" = "$pkg" ]; }; then
    echo "setup: ONNX Runtime at $root/.ort/$lib" >&2
    exit 0
  fi
  echo "setup: downloading the $pkg==1.31.1 wheel (no dependencies) for its shared library" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # The library does not depend on the Python version: ask for a cp312 wheel so any python3 with pip
  # can fetch it (ONNX Runtime 1.31 publishes no wheel for Python < 3.11).
  "$py" -m pip download -q --no-cache-dir --disable-pip-version-check --no-deps --only-binary :all: \
    --implementation cp --python-version 3.12 --platform "manylinux_2_28_$(uname -m)" \
    -d "$tmp" "$pkg==1.31.1"
  mkdir -p .ort
  "$py" - "$tmp" .ort <<'PY'
import pathlib, shutil, sys, zipfile
src, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(src.glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime")]
    for name in names:
        with z.open(name) as f, open(dest / pathlib.Path(name).name, "wb") as out:
            shutil.copyfileobj(f, out)
print(f"setup: {len(names)} libraries from {wheel.name}", file=sys.stderr)
PY
  [ -e ".ort/$lib" ] || { echo "setup: $lib not found in the $pkg wheel" >&2; exit 1; }
  echo "$pkg" > "$stamp"
  echo "setup: ONNX Runtime at $root/.ort/$lib" >&2
  exit 0
fi

req="plugins/torch/requirements.txt"
stamp=".venv/.requirements.sha256"
# Redone when a pin or either package's pyproject.toml changes.
want="$(cat "$req" plugins/torch/pyproject.toml plugins/bench/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$py" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned Python dependencies (PyTorch is a large download, once)" >&2
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check -r "$req"
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check --no-deps \
    -e plugins/torch -e plugins/bench 2>/dev/null || true
  echo "$want" > "$stamp"
fi
if [ "${AEGIS_GPU:-0}" = "1" ]; then
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check onnxruntime-gpu==1.31.1
fi
ortdir="$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
mkdir -p .ort
for f in "$ortdir/$lib" "$ortdir"/libonnxruntime_providers_*.so; do
  [ -e "$f" ] && { cmp -s "$f" ".ort/${f##*/}" || cp -f "$f" .ort/; }
done
[ -e ".ort/$lib" ] || { echo "setup: $lib not found in $ortdir" >&2; exit 1; }
rm -f .ort/.source
echo "setup: ONNX Runtime at $root/.ort/$lib" >&2
