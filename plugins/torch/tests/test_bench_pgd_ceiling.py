"""research/bench_pgd.py's arithmetic count and convolution ceiling (docs/pgd.md, "Why the 2x target is out of
reach"): the count is the forward pass plus the input gradient only (frozen weights), and the ceiling times every
convolution of the model, nested ones included, at its own input shape, counted twice."""

import importlib.util

import pytest
import torch
from conftest import ROOT
from torch import nn


@pytest.fixture(scope="module")
def bench_pgd():
    spec = importlib.util.spec_from_file_location("bench_pgd", ROOT / "research" / "bench_pgd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.ReLU())
        self.head = nn.Linear(6 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.body(self.stem(x)).flatten(1))


def test_step_flops_counts_the_forward_pass_and_the_input_gradient_only(bench_pgd):
    model = bench_pgd.frozen(Nested())
    macs = 8 * 8 * 4 * (1 * 9) + 4 * 4 * 6 * (4 * 9) + 96 * 10  # stem, strided conv, linear: per image
    # 2 FLOP per multiply-add, once forward and once for the input gradient; no weight gradient.
    assert bench_pgd.step_flops(model, torch.rand(5, 1, 8, 8)) == 4 * macs
    # With trainable weights the weight gradients would be counted too: the count does see them.
    trainable = Nested().eval()
    assert bench_pgd.step_flops(trainable, torch.rand(5, 1, 8, 8)) > 4 * macs


def test_conv_ceiling_times_every_convolution_at_its_input_shape_twice(bench_pgd):
    model = bench_pgd.frozen(Nested())
    ceiling = bench_pgd.conv_ceiling(model, torch.rand(3, 1, 8, 8))
    layers = ceiling["layers"]
    assert [(layer["input"], layer["weight"]) for layer in layers] == [
        ([3, 1, 8, 8], [4, 1, 3, 3]),
        ([3, 4, 8, 8], [6, 4, 3, 3]),
    ]
    assert all(layer["format"] in ("nchw", "channels-last") and layer["seconds"] > 0 for layer in layers)
    assert ceiling["seconds_per_batch"] == pytest.approx(2 * sum(layer["seconds"] for layer in layers))
    assert ceiling["step_images_per_s"] == pytest.approx(3 / ceiling["seconds_per_batch"])
    # The hooks are removed afterwards: a later forward pass records nothing.
    assert all(not conv._forward_hooks for conv in model.modules() if isinstance(conv, nn.Conv2d))
