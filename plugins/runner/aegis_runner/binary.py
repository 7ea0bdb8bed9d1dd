"""Where the aegis-audit binary is: an explicit setting, then $AEGIS_AUDIT_BIN, then the running
interpreter's scripts folder (where `pip install aegis-backdoor-audit` puts it), then PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

ENV_VAR = "AEGIS_AUDIT_BIN"
BINARY_NAME = "aegis-audit"


class BinaryNotFound(RuntimeError):
    """No usable aegis-audit binary: the message says where it was looked for."""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The aegis-audit binary to run.

    An explicit path (a plugin setting or command-line option) or `$AEGIS_AUDIT_BIN` must name an
    executable file: a wrong one is an error, never silently replaced by another binary.
    """
    for source, value in (("the setting", explicit), (f"${ENV_VAR}", os.environ.get(ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if not _executable(path):
                raise BinaryNotFound(f"{source} names {path}, which is not an executable file")
            return path
    scripts = sysconfig.get_path("scripts")
    if scripts and _executable(Path(scripts) / BINARY_NAME):
        return Path(scripts) / BINARY_NAME
    found = shutil.which(BINARY_NAME)
    if found:
        return Path(found)
    raise BinaryNotFound(
        f"{BINARY_NAME} not found: pass its path, set ${ENV_VAR}, or `pip install aegis-backdoor-audit` "
        f"(looked in {scripts} and on PATH)"
    )


def tool_version(binary: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> str | None:
    """The version the binary reports (`aegis-audit --version` → "0.1.0"), or None if it says nothing usable."""
    try:
        out = subprocess.run(
            [str(find_binary(binary)), "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, BinaryNotFound):
        return None
    words = out.stdout.split()
    if out.returncode != 0 or not words:
        return None
    return words[-1]
