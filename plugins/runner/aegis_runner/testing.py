"""Pytest fixtures shared by the integrations' tests (imported by each tests/conftest.py): the binary
under test (`$AEGIS_AUDIT_BIN`), the repository's zoo models and MNIST subset, the reduced audit
configuration, and a broken model."""

from __future__ import annotations

from pathlib import Path

import pytest

from .binary import find_binary

# A reduced configuration that keeps each audit to a few seconds on two cores and still flags class 7 of
# robust_localised (exit 1) and nothing on robust_clean_s0 (exit 0); see docs/integrations.md.
REDUCED_ARGS = (
    "--seeds-per-class", "40", "--steps", "30", "--precondition-images", "100", "--reducer", "pca",
    "--threads", "1",
)  # fmt: skip


def repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "fixtures" / "zoo").is_dir() and (parent / "Cargo.toml").is_file():
            return parent
    raise RuntimeError(f"no aegis-audit repository above {here}")


@pytest.fixture(scope="session")
def root() -> Path:
    return repo_root()


@pytest.fixture(scope="session")
def aegis_bin() -> Path:
    """The binary under test: `$AEGIS_AUDIT_BIN` when set, else the one the aegis-backdoor-audit wheel
    installed into this environment (scripts/test_integrations.sh installs it), found as users' code finds it."""
    return find_binary()


@pytest.fixture(scope="session")
def mnist(root: Path) -> Path:
    return root / "fixtures" / "mnist-subset"


@pytest.fixture(scope="session")
def zoo(root: Path) -> Path:
    return root / "fixtures" / "zoo"


@pytest.fixture(scope="session")
def reduced_args() -> tuple[str, ...]:
    return REDUCED_ARGS


@pytest.fixture(scope="session")
def broken_model(tmp_path_factory: pytest.TempPathFactory, zoo: Path) -> Path:
    """The first 5,000 bytes of a zoo model: a truncated protobuf (aegis-audit exits 2)."""
    path = tmp_path_factory.mktemp("broken") / "broken.onnx"
    path.write_bytes((zoo / "robust_clean_s0.onnx").read_bytes()[:5000])
    return path
