"""Image classifier architectures of the zoo, with the input normalisation inside the model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ARCHITECTURES = ("small_cnn", "bn_cnn", "small_resnet", "resnet18")


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; exported as Sub and Div on the input."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} values but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std values must be positive, got {list(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Normalized(nn.Module):
    """A classifier taking [0, 1] pixels: ``net(normalize(x))``."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def small_cnn(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """conv8-relu-pool-conv16-relu-pool-flatten-linear64-relu-linear: Conv, Relu, MaxPool, Flatten, Gemm only.

    Sized to adversarially train on 2 CPU cores in minutes (about 55k parameters for 28x28 inputs).
    """
    if height % 4 or width % 4:
        raise ValueError(f"small_cnn needs height and width divisible by 4, got {height}x{width}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (height // 4) * (width // 4), 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.short(x))


def resnet18(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """CIFAR-style ResNet-18 (3x3 stem); global pooling by a fixed-size AvgPool so no Shape ops are exported."""
    if height % 8 or width % 8:
        raise ValueError(f"resnet18 needs height and width divisible by 8, got {height}x{width}")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
    ]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AvgPool2d((height // 8, width // 8)), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


def bn_cnn(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """conv12-BN-SiLU-avgpool-conv24-BN-LeakyReLU-avgpool-flatten-linear48-LeakyReLU-linear.

    The benchmark's second family: normalisation layers, smooth and leaky activations, average pooling
    (exported as Conv, BatchNormalization, Sigmoid + Mul, LeakyRelu, AveragePool, Flatten, Gemm; about 60k
    parameters for 28x28 inputs).
    """
    if height % 4 or width % 4:
        raise ValueError(f"bn_cnn needs height and width divisible by 4, got {height}x{width}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 12, 3, padding=1, bias=False),
        nn.BatchNorm2d(12),
        nn.SiLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(12, 24, 3, padding=1, bias=False),
        nn.BatchNorm2d(24),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24 * (height // 4) * (width // 4), 48),
        nn.LeakyReLU(0.1),
        nn.Linear(48, num_classes),
    )


def small_resnet(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """A small residual network: conv8 stem, two strided residual blocks (16, 32 channels), global average
    pooling, linear head. Exported as Conv, BatchNormalization, Relu, Add, GlobalAveragePool, Flatten, Gemm
    (about 19k parameters).
    """
    if height % 4 or width % 4:
        raise ValueError(f"small_resnet needs height and width divisible by 4, got {height}x{width}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, 1, 1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        _Block(8, 16, 2),
        _Block(16, 32, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )


def build(arch: str, shape: Sequence[int], num_classes: int, mean: Sequence[float], std: Sequence[float]) -> Normalized:
    """Build architecture ``arch`` for inputs of ``shape`` = (C, H, W), wrapped with normalisation."""
    c, h, w = shape
    if arch == "small_cnn":
        net = small_cnn(c, h, w, num_classes)
    elif arch == "bn_cnn":
        net = bn_cnn(c, h, w, num_classes)
    elif arch == "small_resnet":
        net = small_resnet(c, h, w, num_classes)
    elif arch == "resnet18":
        net = resnet18(c, h, w, num_classes)
    else:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    return Normalized(net, mean, std)
