"""Test setup: import the benchmark and the PyTorch plugin it builds on from the source tree."""

import sys
from pathlib import Path

import torch

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "torch"))
sys.path.insert(0, str(PLUGIN))
torch.set_num_threads(1)
