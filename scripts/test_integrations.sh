#!/usr/bin/env bash
# Lints (ruff) and tests (pytest) the integration plugins, plugins/{runner,modelscan,mlflow,fanout}, against
# the real modelscan, MLflow and Ray (scripts/test.sh calls it; it also runs on its own).
#   .venv-integrations/  git-ignored venv with the pinned tools (plugins/requirements-integrations.txt, every
#                        transitive dependency pinned by plugins/constraints-integrations.txt), created once
#                        and reinstalled when a pin or a plugin's pyproject.toml changes;
#   the binary under test is the aegis-backdoor-audit wheel (dist/, built by scripts/wheel.sh when missing)
#   installed into that venv with its onnxruntime dependency, run as users run it: found in the venv's
#   scripts folder, ONNX Runtime found inside the same environment (ORT_DYLIB_PATH is unset here).
# The tests run in a private network namespace with only loopback up (`unshare -rn`): Ray then binds
# 127.0.0.1 instead of the host's address, and MLflow, modelscan and Ray are shown to need no network.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
venv=.venv-integrations
plugins=(plugins/runner plugins/modelscan plugins/mlflow plugins/fanout)
stamp="$venv/.requirements.sha256"
wheel="$(ls dist/aegis_backdoor_audit-*-py3-none-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  echo "test_integrations: building the aegis-backdoor-audit wheel (scripts/wheel.sh --profile test)" >&2
  bash scripts/wheel.sh --profile test >/dev/null
  wheel="$(ls dist/aegis_backdoor_audit-*-py3-none-*.whl | head -1)"
fi
want="$(cat plugins/requirements-integrations.txt plugins/constraints-integrations.txt \
  "${plugins[@]/%//pyproject.toml}" "$wheel" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "test_integrations: creating $venv" >&2
  "$py" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test_integrations: installing pinned modelscan, MLflow, Ray, pytest, ruff (once)" >&2
  pip=("$venv/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check)
  "${pip[@]}" -r plugins/requirements-integrations.txt -c plugins/constraints-integrations.txt
  # The plugins with their dependencies, aegis-backdoor-audit from dist/ (until it is on PyPI) with its
  # onnxruntime; then the wheel itself again, since pip keeps an installed version with the same number.
  # The MLflow gate with its `sql` extra, as docs/integrations.md installs it: the SQLite registry of its
  # tests works only if that extra brings SQLAlchemy and alembic (requirements-integrations.txt does not).
  "${pip[@]}" --find-links dist -c plugins/constraints-integrations.txt --no-build-isolation \
    -eplugins/runner -eplugins/modelscan "-eplugins/mlflow[sql]" -eplugins/fanout
  "${pip[@]}" --force-reinstall --no-deps "$wheel"
  echo "$want" > "$stamp"
fi
unset ORT_DYLIB_PATH
bin="${AEGIS_AUDIT_BIN:-$root/$venv/bin/aegis-audit}"
echo "test_integrations: aegis-audit $("$bin" --version | awk '{print $NF}') at $bin" >&2

"$venv/bin/ruff" check "${plugins[@]}"
"$venv/bin/ruff" format --check "${plugins[@]}"

tests=(-q -p no:cacheprovider --import-mode=importlib "${plugins[@]/%//tests}")
# Bring loopback up inside the namespace: `ip` when there, else the same ioctl from Python.
lo_up='import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))'
if unshare -rn true 2>/dev/null; then
  unshare -rn "$venv/bin/python" -c "$lo_up"'
import os, sys
os.execv(sys.argv[1], sys.argv[1:])' "$venv/bin/python" -m pytest "${tests[@]}"
else
  echo "test_integrations: unshare -rn is not permitted here: running on the host network" >&2
  "$venv/bin/python" -m pytest "${tests[@]}"
fi
