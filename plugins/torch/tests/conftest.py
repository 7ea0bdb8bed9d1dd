"""Test setup: import the package from the source tree; paths of the committed fixtures."""

import sys
from pathlib import Path

import pytest
import torch

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parents[1]
sys.path.insert(0, str(PLUGIN))
torch.set_num_threads(1)


@pytest.fixture
def fixtures() -> Path:
    return ROOT / "fixtures"
