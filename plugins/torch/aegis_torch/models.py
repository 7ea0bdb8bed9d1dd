"""Image classifier architectures of the zoo, with the input normalisation inside the model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ARCHITECTURES = (
    "small_cnn",
    "bn_cnn",
    "small_resnet",
    "resnet18",
    "gelu_resnet",
    "mlp",
    "dws_cnn",
    "tiny_vit",
    "convmixer",
)


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


class _GeluBlock(nn.Module):
    """A pre-activation-free residual block with GELU: conv-BN-GELU-conv-BN, added to the (projected) input."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.GELU()
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.short(x))


def gelu_resnet(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """A residual network with GELU (exported through Erf) and global average pooling: conv8 stem, residual
    blocks of 16, 32 and 48 channels (each stride 2), GlobalAveragePool, linear head (about 55k parameters).
    """
    if height % 4 or width % 4:
        raise ValueError(f"gelu_resnet needs height and width divisible by 4, got {height}x{width}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, 1, 1, bias=False),
        nn.BatchNorm2d(8),
        nn.GELU(),
        _GeluBlock(8, 16, 2),
        _GeluBlock(16, 32, 2),
        _GeluBlock(32, 48, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(48, num_classes),
    )


def mlp(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """A multi-layer perceptron, no convolution: flatten, two hidden ReLU layers, linear head. Hidden width 64
    for inputs of at most 1,024 values (51k parameters on 28x28), 32 above (52k on 28x56, 100k on 3x32x32)."""
    n = in_channels * height * width
    h = 64 if n <= 1024 else 32
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n, h),
        nn.ReLU(),
        nn.Linear(h, h),
        nn.ReLU(),
        nn.Linear(h, num_classes),
    )


def _dws(cin: int, cout: int, stride: int) -> list[nn.Module]:
    """Depthwise 3x3 (groups = channels) then pointwise 1x1, each with BatchNorm and ReLU6."""
    return [
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    ]


def dws_cnn(in_channels: int, height: int, width: int, num_classes: int = 10) -> nn.Sequential:
    """A MobileNet-like network of depthwise-separable convolutions: conv16 stem (stride 2), separable blocks of
    32, 64 (stride 2) and 96 channels, global average pooling, linear head. Exported as grouped Conv, Clip
    (ReLU6), GlobalAveragePool, Flatten, Gemm (about 12k parameters)."""
    if height % 4 or width % 4:
        raise ValueError(f"dws_cnn needs height and width divisible by 4, got {height}x{width}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU6(),
        *_dws(16, 32, 1),
        *_dws(32, 64, 2),
        *_dws(64, 96, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(96, num_classes),
    )


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, tokens: int):
        super().__init__()
        self.heads, self.tokens, self.dim = heads, tokens, dim
        self.scale = float((dim // heads) ** -0.5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, d = self.tokens, self.heads, self.dim // self.heads
        qkv = self.qkv(x).reshape(-1, n, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj(torch.matmul(att, v).permute(0, 2, 1, 3).reshape(-1, n, self.dim))


class _TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, tokens: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A tiny vision transformer: non-overlapping patches (a quarter of the height on a side) embedded by a
    strided convolution, a learned position embedding, ``depth`` pre-norm blocks (multi-head self-attention,
    GELU MLP), LayerNorm, mean over tokens, linear head. Exported as Conv, Reshape, Transpose, MatMul,
    Softmax, LayerNormalization, Erf, ReduceMean, Gemm (about 40k parameters with dim 48, depth 2)."""

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int = 10,
        dim: int = 48,
        depth: int = 2,
        heads: int = 3,
    ):
        super().__init__()
        if height % 4 or width % (height // 4):
            raise ValueError(f"tiny_vit needs height divisible by 4 and width by height/4, got {height}x{width}")
        p = height // 4
        self.dim, self.tokens = dim, (height // p) * (width // p)
        self.embed = nn.Conv2d(in_channels, dim, p, p)
        self.pos = nn.Parameter(torch.randn(1, self.tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[_TransformerBlock(dim, heads, self.tokens, 2 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).reshape(-1, self.dim, self.tokens).transpose(1, 2) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(x.mean(1))


class _Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


def convmixer(
    in_channels: int, height: int, width: int, num_classes: int = 10, dim: int = 32, depth: int = 4, kernel: int = 5
) -> nn.Sequential:
    """ConvMixer (Trockman & Kolter, "Patches are all you need?", TMLR'23): a 4 x 4 patch embedding, then
    ``depth`` isotropic blocks of a residual depthwise ``kernel`` x ``kernel`` convolution and a pointwise
    convolution, each followed by GELU and BatchNorm; global average pooling, linear head. Exported as Conv
    (grouped and pointwise), Erf, BatchNormalization, Add, GlobalAveragePool, Gemm (about 10k parameters)."""
    if height % 4 or width % 4:
        raise ValueError(f"convmixer needs height and width divisible by 4, got {height}x{width}")
    blocks = [
        nn.Sequential(
            _Residual(
                nn.Sequential(
                    nn.Conv2d(dim, dim, kernel, groups=dim, padding=kernel // 2), nn.GELU(), nn.BatchNorm2d(dim)
                )
            ),
            nn.Conv2d(dim, dim, 1),
            nn.GELU(),
            nn.BatchNorm2d(dim),
        )
        for _ in range(depth)
    ]
    return nn.Sequential(
        nn.Conv2d(in_channels, dim, 4, 4),
        nn.GELU(),
        nn.BatchNorm2d(dim),
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(dim, num_classes),
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
    elif arch == "gelu_resnet":
        net = gelu_resnet(c, h, w, num_classes)
    elif arch == "mlp":
        net = mlp(c, h, w, num_classes)
    elif arch == "dws_cnn":
        net = dws_cnn(c, h, w, num_classes)
    elif arch == "tiny_vit":
        net = TinyViT(c, h, w, num_classes)
    elif arch == "convmixer":
        net = convmixer(c, h, w, num_classes)
    else:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    return Normalized(net, mean, std)
