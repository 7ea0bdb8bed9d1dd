"""Writes fixtures/fuzz/: the models that crashed aegis-audit before its hardening (issue 14),
replayed by `cargo test --test fuzz_models corpus`. Each is a 28x28 grayscale classifier with one
hostile attribute, name or opset; the `*_gap` variants keep a GlobalAveragePool head so that ONNX
Runtime's own shape inference accepts the graph and the negative dimensions reach the `ort`
bindings (which panicked).

Run: .venv/bin/python scripts/gen_fuzz_corpus.py
"""

from pathlib import Path

import numpy as np

from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "fuzz"


def cnn(conv_attrs=None, pool_attrs=None, gap=False, bias=8, flatten_axis=1, names=None, opset=17):
    rng = np.random.default_rng(0)
    names = names or {}
    conv = names.get("conv", "conv1")
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, (8, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(bias, np.float32), "b1"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name=conv, **{"pads": [1, 1, 1, 1], **(conv_attrs or {})}),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node(
            "MaxPool", ["r1"], ["p1"], name="pool1", **(pool_attrs or {"kernel_shape": [2, 2], "strides": [2, 2]})
        ),
    ]
    if gap:
        nodes.append(helper.make_node("GlobalAveragePool", ["p1"], ["g1"], name="gap"))
        nodes.append(helper.make_node("Flatten", ["g1"], ["f"], name="flatten", axis=1))
        features = 8
    else:
        nodes.append(helper.make_node("Flatten", ["p1"], ["f"], name="flatten", axis=flatten_axis))
        features = 8 * 14 * 14
    inits.append(numpy_helper.from_array(rng.normal(0, 0.01, (10, features)).astype(np.float32), "wf"))
    inits.append(numpy_helper.from_array(np.zeros(10, np.float32), "bf"))
    nodes.append(helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name=names.get("fc", "fc"), transB=1))
    graph = helper.make_graph(
        nodes,
        "cnn28",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


CASES = {
    "conv_kernel_100_gap": cnn(conv_attrs={"kernel_shape": [100, 100]}, gap=True),
    "conv_dilations_50_gap": cnn(conv_attrs={"dilations": [50, 50]}, gap=True),
    "maxpool_kernel_100_gap": cnn(pool_attrs={"kernel_shape": [100, 100]}, gap=True),
    "maxpool_kernel_100": cnn(pool_attrs={"kernel_shape": [100, 100]}),
    "conv_kernel_0": cnn(conv_attrs={"kernel_shape": [0, 3]}),
    "conv_stride_0": cnn(conv_attrs={"strides": [0, 1]}),
    "conv_negative_pads": cnn(conv_attrs={"pads": [1, -3, 1, 1]}),
    "conv_group_3": cnn(conv_attrs={"group": 3}),
    "conv_bias_5": cnn(bias=5),
    "conv_auto_pad_bogus": cnn(conv_attrs={"auto_pad": "SAME_SIDEWAYS"}),
    "flatten_axis_0": cnn(flatten_axis=0),
    "opset_1": cnn(opset=1),
    "opset_99": cnn(opset=99),
    "names_with_escapes": cnn(
        names={"conv": "conv\n\x1b[2J\x00\u202e", "fc": "fc\x1b]0;title\x07"}, conv_attrs={"group": 3}
    ),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, model in CASES.items():
        (OUT / f"{name}.onnx").write_bytes(model.SerializeToString())
    print(f"wrote {len(CASES)} models to {OUT}")


if __name__ == "__main__":
    main()
