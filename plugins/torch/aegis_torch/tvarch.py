"""torchvision classification architectures for the coverage table and the gradient tests.

``FULL`` lists the named torchvision builders (``resnet50``, ``vit_b_16``...) at the smallest input
size each allows; ``CI`` lists, for each of them, a reduced configuration of the same torchvision
class (same blocks, ops and head; fewer blocks and channels) so that exporting it with both
exporters and checking its gradient takes seconds. Every model gets random weights and
non-trivial BatchNorm running statistics and LayerNorm/layer-scale parameters (``randomize``).
Exports: ``torchscript`` (``dynamo=False``, opset 17) and ``dynamo`` (PyTorch's default exporter,
opset 18+), both with a dynamic batch axis.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

NUM_CLASSES = 10
EXPORTERS = ("torchscript", "dynamo")


@dataclass(frozen=True)
class Arch:
    """One architecture: its table name, torchvision family, input side and constructor."""

    name: str
    family: str
    size: int
    build: Callable[[], nn.Module] = field(compare=False, repr=False)


def randomize(model: nn.Module, seed: int, size: int) -> nn.Module:
    """Random BatchNorm affine parameters and running statistics, random LayerNorm affine parameters
    and layer scales (ConvNeXt), random values for all-zero parameters; eval mode.

    The running statistics are first measured on random [0, 1) images of side ``size`` (so that
    activations keep a realistic scale through deep stacks such as Inception's, where the builders'
    default statistics make them explode or vanish), then perturbed per channel (mean shifted by up
    to 0.3 standard deviations, variance scaled by 0.7 to 1.4). Last, the classifier layer is scaled
    so that the logits' standard deviation on such images is 2."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            if hasattr(m, "layer_scale") and isinstance(m.layer_scale, nn.Parameter):
                m.layer_scale.copy_(torch.rand(m.layer_scale.shape, generator=g) * 0.5 + 0.25)
        # Parameters a builder initialises to zero (ViT's head and class token, some biases) would
        # make the logits constant or hide a path: give them small random values.
        for p in model.parameters():
            if p.numel() > 1 and not torch.count_nonzero(p):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        if bns:
            model.eval()
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
                m.train()
            for _ in range(2):
                model(torch.rand(8, 3, size, size, generator=g))
            for m in bns:
                c = m.num_features
                sd = m.running_var.sqrt()
                m.running_mean.add_(torch.randn(c, generator=g) * 0.1 * sd)
                m.running_var.mul_(torch.rand(c, generator=g) * 0.7 + 0.7)
                m.momentum = 0.1
        # The classifier layer scaled so the logits spread by about 2 (random deep stacks can give
        # logits in the hundreds: a saturated softmax has no usable gradient).
        model.eval()
        logits = model(torch.rand(8, 3, size, size, generator=g))
        layers = [m for m in model.modules() if isinstance(m, nn.Linear)] or [
            m for m in model.modules() if isinstance(m, nn.Conv2d)
        ]
        spread = float(logits.std())
        if layers and spread > 0:
            layers[-1].weight.mul_(2.0 / spread)
            if layers[-1].bias is not None:
                layers[-1].bias.mul_(2.0 / spread)
    return model.eval()


def build(arch: Arch, seed: int = 0) -> nn.Module:
    """``arch``'s model with seeded random weights (see ``randomize``), float32, eval mode."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = arch.build()
    return randomize(model.float(), seed + 1, arch.size)


def export(model: nn.Module, size: int, path: str | Path, exporter: str) -> None:
    """Export ``model`` (input ``input`` [N, 3, size, size] -> ``logits``) with a dynamic batch axis.

    ``torchscript``: ``torch.onnx.export(dynamo=False, opset_version=17)``; ``dynamo``: the default
    exporter (``dynamo=True``, its default opset, weights in the model file).
    """
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    path = str(path)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            if exporter == "torchscript":
                torch.onnx.export(
                    model,
                    (x,),
                    path,
                    dynamo=False,
                    opset_version=17,
                    input_names=["input"],
                    output_names=["logits"],
                    dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                )
            elif exporter == "dynamo":
                _export_dynamo(model, x, path)
            else:
                raise ValueError(f"unknown exporter {exporter!r}; expected one of {EXPORTERS}")
        finally:
            logging.disable(logging.NOTSET)


def _export_dynamo(model: nn.Module, x: torch.Tensor, path: str) -> None:
    """The default exporter with a dynamic batch axis; where torch.export specialises batch size 1
    away (ViT, Swin, ConvNeXt: "Constraints violated (N)"), the batch range starts at 2 (the ONNX
    graph still runs at batch 1, which the gradient checks cover through aegis-audit's probe)."""
    for low in (None, 2):
        n = torch.export.Dim("N") if low is None else torch.export.Dim("N", min=low)
        try:
            torch.onnx.export(
                model, (x,), path, dynamo=True, input_names=["input"], output_names=["logits"], dynamic_shapes=({0: n},)
            )
            return
        except Exception as e:  # torch.onnx's TorchExportError wraps torch.export's UserError
            if low is not None or "Constraints violated" not in str(e):
                raise


def _resnet(block: str, **kw) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models import resnet

        return resnet.ResNet(getattr(resnet, block), [1, 1, 1, 1], num_classes=NUM_CLASSES, **kw)

    return make


def _mobilenet_v2() -> nn.Module:
    from torchvision.models import MobileNetV2

    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2]]
    return MobileNetV2(num_classes=NUM_CLASSES, width_mult=0.5, inverted_residual_setting=setting)


def _mobilenet_v3(name: str, keep: list[int]) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf

        setting, last = _mobilenet_v3_conf(name, width_mult=0.5)
        return MobileNetV3([setting[i] for i in keep], last // 4, num_classes=NUM_CLASSES)

    return make


def _efficientnet(name: str, stages: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

        kw = {"width_mult": 0.5, "depth_mult": 0.3} if name.startswith("efficientnet_b") else {}
        setting, last = _efficientnet_conf(name, **kw)
        setting = list(setting)[:stages]
        if not name.startswith("efficientnet_b"):
            # Keep both block types of V2 (FusedMBConv, MBConv) with one layer each, narrow.
            setting = [
                type(s)(
                    s.expand_ratio, s.kernel, s.stride, max(8, s.input_channels // 4), max(8, s.out_channels // 4), 1
                )
                for s in setting
            ]
            last = 256
        return EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=NUM_CLASSES)

    return make


def _densenet() -> nn.Module:
    from torchvision.models import DenseNet

    return DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2, num_classes=NUM_CLASSES)


def _regnet(se: float | None) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models.regnet import BlockParams, RegNet

        params = BlockParams.from_init_params(depth=4, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=se)
        return RegNet(params, num_classes=NUM_CLASSES)

    return make


def _googlenet() -> nn.Module:
    """GoogLeNet without its shape-preserving inception modules 4b, 4c and 5a (every module kind and
    the head stay; the class has no size parameters)."""
    from torchvision.models import GoogLeNet

    m = GoogLeNet(num_classes=NUM_CLASSES, aux_logits=False, init_weights=True)
    m.inception4b, m.inception4c, m.inception5a = nn.Identity(), nn.Identity(), nn.Identity()
    return m


def _inception_v3() -> nn.Module:
    """Inception V3 without its repeated shape-preserving blocks Mixed_5d, 6c, 6d, 6e and 7c (one of
    each block type A to E stays)."""
    from torchvision.models import Inception3

    m = Inception3(num_classes=NUM_CLASSES, aux_logits=False, init_weights=True)
    for name in ("Mixed_5d", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"):
        setattr(m, name, nn.Identity())
    return m


def _narrow_classifier(model: nn.Module, in_features: int, hidden: int) -> nn.Module:
    """AlexNet's and VGG's Dropout-Linear-ReLU-Dropout-Linear-ReLU-Linear head with ``hidden`` units."""
    model.classifier = nn.Sequential(
        nn.Dropout(0.5),
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, NUM_CLASSES),
    )
    return model


def _alexnet() -> nn.Module:
    from torchvision.models import AlexNet

    m = AlexNet(num_classes=NUM_CLASSES)
    first = m.classifier[1]
    return _narrow_classifier(m, first.in_features, 64)


def _vgg() -> nn.Module:
    from torchvision.models.vgg import VGG, make_layers

    cfg = [8, "M", 16, "M", 16, "M", 32, "M", 32, "M"]
    m = VGG(make_layers(cfg, batch_norm=True), num_classes=NUM_CLASSES, init_weights=True)
    return _narrow_classifier(m, 32 * 7 * 7, 64)


def _squeezenet(version: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models import SqueezeNet

        return SqueezeNet(version, num_classes=NUM_CLASSES)

    return make


def _shufflenet() -> nn.Module:
    from torchvision.models import ShuffleNetV2

    return ShuffleNetV2([1, 1, 1], [8, 16, 32, 64, 128], num_classes=NUM_CLASSES)


def _mnasnet() -> nn.Module:
    """MNASNet 0.5 with one inverted-residual block per stack (the repeats are shape-preserving)."""
    from torchvision.models import MNASNet

    m = MNASNet(0.5, num_classes=NUM_CLASSES)
    for i, layer in enumerate(m.layers):
        if isinstance(layer, nn.Sequential) and len(layer) > 1:
            m.layers[i] = nn.Sequential(layer[0])
    return m


def _convnext() -> nn.Module:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)]
    return ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=NUM_CLASSES)


def _vit() -> nn.Module:
    from torchvision.models import VisionTransformer

    return VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=NUM_CLASSES
    )


def _swin(v2: bool) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from torchvision.models import swin_transformer as st

        kw = {"block": st.SwinTransformerBlockV2, "downsample_layer": st.PatchMergingV2} if v2 else {}
        return st.SwinTransformer(
            patch_size=[4, 4],
            embed_dim=16,
            depths=[2, 2],
            num_heads=[2, 4],
            window_size=[2, 2],
            stochastic_depth_prob=0.0,
            num_classes=NUM_CLASSES,
            **kw,
        )

    return make


def _maxvit() -> nn.Module:
    from torchvision.models import MaxVit

    return MaxVit(
        input_size=(32, 32),
        stem_channels=8,
        partition_size=2,
        block_channels=[16, 32],
        block_layers=[1, 1],
        head_dim=8,
        stochastic_depth_prob=0.0,
        num_classes=NUM_CLASSES,
    )


def _named(name: str, **kw) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(num_classes=NUM_CLASSES, **kw)

    return make


_NO_AUX = {"aux_logits": False, "init_weights": True}

# (name, family, CI constructor, CI input side, full input side, full builder keyword arguments)
_TABLE: list[tuple[str, str, Callable[[], nn.Module], int, int, dict]] = [
    ("alexnet", "AlexNet", _alexnet, 224, 224, {}),
    ("vgg11", "VGG", _vgg, 224, 224, {}),
    ("resnet18", "ResNet", _resnet("BasicBlock"), 32, 32, {}),
    ("resnet50", "ResNet", _resnet("Bottleneck"), 32, 32, {}),
    ("resnext50_32x4d", "ResNeXt", _resnet("Bottleneck", groups=32, width_per_group=4), 32, 32, {}),
    ("wide_resnet50_2", "Wide ResNet", _resnet("Bottleneck", width_per_group=128), 32, 32, {}),
    ("googlenet", "GoogLeNet", _googlenet, 32, 32, _NO_AUX),
    ("inception_v3", "Inception V3", _inception_v3, 75, 75, _NO_AUX),
    ("densenet121", "DenseNet", _densenet, 32, 32, {}),
    ("squeezenet1_0", "SqueezeNet", _squeezenet("1_0"), 32, 32, {}),
    ("squeezenet1_1", "SqueezeNet", _squeezenet("1_1"), 32, 32, {}),
    ("shufflenet_v2_x0_5", "ShuffleNet V2", _shufflenet, 32, 32, {}),
    ("mobilenet_v2", "MobileNet V2", _mobilenet_v2, 32, 32, {}),
    ("mobilenet_v3_small", "MobileNet V3", _mobilenet_v3("mobilenet_v3_small", [0, 1, 3]), 32, 32, {}),
    ("mobilenet_v3_large", "MobileNet V3", _mobilenet_v3("mobilenet_v3_large", [0, 1, 3, 6]), 32, 32, {}),
    ("mnasnet0_5", "MNASNet", _mnasnet, 32, 32, {}),
    ("efficientnet_b0", "EfficientNet", _efficientnet("efficientnet_b0", 3), 32, 32, {}),
    ("efficientnet_v2_s", "EfficientNet V2", _efficientnet("efficientnet_v2_s", 4), 32, 32, {}),
    ("regnet_x_400mf", "RegNet", _regnet(None), 32, 32, {}),
    ("regnet_y_400mf", "RegNet", _regnet(0.25), 32, 32, {}),
    ("convnext_tiny", "ConvNeXt", _convnext, 32, 32, {}),
    ("vit_b_16", "ViT", _vit, 32, 32, {"image_size": 32}),
    ("swin_t", "Swin", _swin(False), 32, 32, {}),
    ("swin_v2_t", "Swin V2", _swin(True), 32, 32, {}),
    ("maxvit_t", "MaxViT", _maxvit, 32, 224, {}),
]

FULL: list[Arch] = [Arch(n, fam, size, _named(n, **kw)) for n, fam, _, _, size, kw in _TABLE]
CI: list[Arch] = [Arch(n, fam, size, make) for n, fam, make, size, _, _ in _TABLE]


def find(name: str, full: bool = False) -> Arch:
    """The entry named ``name`` in ``FULL`` (``full``) or ``CI``."""
    for a in FULL if full else CI:
        if a.name == name:
            return a
    raise KeyError(f"unknown architecture {name!r}; known: {', '.join(a.name for a in CI)}")
