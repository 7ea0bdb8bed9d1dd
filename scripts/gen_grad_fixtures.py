#!/usr/bin/env python3
"""Small classifiers in styles this project did not write, exported by PyTorch, with autograd
gradients as reference fixtures for the gradient graph (tests/grad_fixtures.rs).

Writes fixtures/grad/<name>.onnx (float32, opset 17, dynamo=False) and
fixtures/grad/<name>.gradcheck.json with keys: model (ONNX file name), shape ([N, C, H, W]),
x, y, logits, loss (per-example cross-entropy), grad (dloss/dx), all flat lists, computed with
the model in float64. Run: .venv/bin/python scripts/gen_grad_fixtures.py
"""  # noqa: EXE001

import json
import os

import torch
import torch.nn.functional as F
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "grad")


def randomize_bn(m: nn.Module, g: torch.Generator) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


class ResNetBlock(nn.Module):
    """In-graph normalisation, Conv-BN-ReLU stem, a residual block (Conv-BN-ReLU-Conv-BN + Add),
    AveragePool, GlobalAveragePool, Flatten and a Gemm head."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1))
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU())
        self.c1 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(6)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = (x - self.mean) / self.std
        h = self.stem(x)
        r = self.b2(self.c2(F.relu(self.b1(self.c1(h)))))
        h = F.relu(h + r)
        h = self.pool(h)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return self.fc(h)


class ConcatPad(nn.Module):
    """Pad, strided/dilated/grouped convolutions, a Concat of two branches, overlapping MaxPool,
    LeakyRelu/Sigmoid/Tanh/Clip activations, Mul by a constant and a Transpose+MatMul head."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(1, 4, 3, stride=2, dilation=2, padding=2)
        self.g = nn.Conv2d(8, 8, 3, groups=4, padding=(1, 0))
        self.w = nn.Parameter(torch.randn(5, 8 * 3 * 2) * 0.2)

    def forward(self, x):
        x = F.pad(x, (1, 2, 0, 1))
        a = F.leaky_relu(self.a(x), 0.1)
        b = torch.sigmoid(self.b(x))
        h = torch.cat([a, b], dim=1)
        h = torch.tanh(self.g(h)) * 1.5
        h = F.max_pool2d(h, 3, stride=2, padding=1)
        h = torch.clamp(h, -0.9, 0.8)
        h = h.flatten(1)
        return h @ self.w.t()


class BnFirst(nn.Module):
    """BatchNorm on the input before the first ReLU, ceil-mode AveragePool with padding excluded
    from the divisor, Dropout, a Conv head via Reshape, and a final Softmax (dropped: the logits
    are its input)."""

    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(2)
        self.c = nn.Conv2d(2, 5, 3)
        self.bn1 = nn.BatchNorm2d(5)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(5 * 5 * 5, 3)
        self.softmax = True

    def forward(self, x):
        h = F.relu(self.bn0(x))
        h = F.relu6(self.bn1(self.c(h)))
        h = self.pool(h)
        h = self.drop(h)
        h = h.reshape(h.shape[0], -1)
        logits = self.fc(h)
        return F.softmax(logits, dim=1) if self.softmax else logits


MODELS = [
    ("resnet_block", ResNetBlock, (3, 3, 10, 10), 4),
    ("concat_pad", ConcatPad, (2, 1, 11, 9), 5),
    ("bn_first", BnFirst, (3, 2, 11, 11), 3),
]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for i, (name, cls, shape, classes) in enumerate(MODELS):
        torch.manual_seed(1000 + i)
        g = torch.Generator().manual_seed(2000 + i)
        model = cls()
        with torch.no_grad():
            randomize_bn(model, g)
        model.eval()
        x = torch.rand(shape, generator=g)
        y = torch.randint(0, classes, (shape[0],), generator=g)
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(
            model,
            (x,),
            path,
            input_names=["image"],
            output_names=["output"],
            dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        ref = model.double()
        if hasattr(ref, "softmax"):
            ref.softmax = False
        xd = x.double().requires_grad_(True)
        logits = ref(xd)
        loss = F.cross_entropy(logits, y, reduction="none")
        loss.sum().backward()
        record = {
            "model": f"{name}.onnx",
            "shape": list(shape),
            "x": x.flatten().tolist(),
            "y": y.tolist(),
            "logits": logits.detach().flatten().tolist(),
            "loss": loss.detach().tolist(),
            "grad": xd.grad.flatten().tolist(),
        }
        with open(os.path.join(OUT, f"{name}.gradcheck.json"), "w") as f:
            json.dump(record, f)
        print(name, "grad norm", float(xd.grad.norm()))


if __name__ == "__main__":
    main()
