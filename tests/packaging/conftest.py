"""Fixtures of the packaging tests (helpers.py has the paths and helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_venv, pip_offline, wheel


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the aegis-backdoor-audit wheel and onnxruntime, installed offline;
    returns the environment's folder."""
    env_dir = tmp_path_factory.mktemp("wheel") / "venv"
    python = make_venv(env_dir)
    pip_offline(python, str(wheel("aegis_backdoor_audit")))
    return env_dir
