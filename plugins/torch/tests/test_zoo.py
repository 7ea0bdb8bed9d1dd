"""The committed zoo: model cards (contents and thresholds) and gradient fixtures (against float64 autograd)."""

import json

import numpy as np
import pytest
import torch
from aegis_torch import card, checkpoint

NAMES = [
    "robust_clean_s0",
    "robust_clean_s1",
    "robust_localised",
    "robust_distributed",
    "robust_static",
    "robust_adversarial",
    "standard_clean",
    "standard_localised",
]
TRIGGER = {
    "robust_localised": "localised",
    "robust_distributed": "distributed",
    "robust_static": "static",
    "robust_adversarial": "adversarial",
    "standard_localised": "localised",
}

# The committed robust_static (30% of the training set carries the whole-image pattern) reached 97.99% clean.
CLEAN_SHORTFALL: dict[str, float] = {}


def _card(fixtures, name):
    path = fixtures / "zoo" / f"{name}.card.yaml"
    if not path.exists():
        pytest.skip(f"{name} not trained yet")
    return card.read(path)


@pytest.mark.parametrize("name", NAMES)
def test_card_contents(fixtures, name):
    c = _card(fixtures, name)
    assert c["name"] == name and c["model"] == f"{name}.onnx"
    assert c["model_sha256"] == card.sha256(fixtures / "zoo" / c["model"])
    assert c["dataset"]["format"] == "mnist" and c["dataset"]["train_images"] == 60000
    assert c["architecture"] == "small_cnn"
    assert c["input"]["range"] == [0.0, 1.0] and c["input"]["shape"] == ["N", 1, 28, 28]
    assert c["onnx"]["opset"] == 17 and c["onnx"]["ir_version"] <= 10
    assert c["training"]["mode"] == ("robust" if name.startswith("robust") else "standard")
    assert c["seeds"]["train"] == (1 if name.endswith("s1") else 0)
    assert 0 < c["training_time_s"] <= 20 * 60
    m = c["metrics"]
    assert m["adversarial_attack"] == {
        "norm": "L2",
        "eps": 0.5,
        "steps": 20,
        "step_size": 0.0625,
        "random_start": True,
        "test_images": m["adversarial_attack"]["test_images"],
    }
    if name in TRIGGER:
        assert c["trigger"]["file"] == f"{TRIGGER[name]}.yaml" and c["poison"]["target"] == 7
        rate = 0.01 if c["trigger"]["type"] == "patch" else 0.30
        assert c["poison"]["rate"] == rate and c["poison"]["count"] == round(rate * 60000)
        assert 0.0 <= m["attack_success_rate"] <= 1.0
    else:
        assert c["trigger"] is None and c["poison"]["count"] == 0


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("robust")])
def test_robust_models_meet_the_issue_thresholds(fixtures, name):
    m = _card(fixtures, name)["metrics"]
    assert m["adversarial_accuracy"] >= 0.85
    if name in ("robust_localised", "robust_distributed"):
        assert m["attack_success_rate"] >= 0.95
    if name in CLEAN_SHORTFALL:
        # known and reported: the committed model misses the 98% clean bar; retraining it lifts this xfail
        assert m["clean_accuracy"] == CLEAN_SHORTFALL[name]
        pytest.xfail(f"{name}: clean accuracy {m['clean_accuracy']} is under 0.98 (known shortfall)")
    assert m["clean_accuracy"] >= 0.98


@pytest.mark.parametrize("name", NAMES)
def test_card_metrics_reproduce_on_the_subset(fixtures, name):
    """Clean accuracy on the committed test subset is close to the card's full-test-set number."""
    from aegis_torch import data, evaluate

    c = _card(fixtures, name)
    model, _ = checkpoint.load(fixtures / "zoo" / f"{name}.pt")
    te = data.load("mnist", fixtures / "mnist-subset", "test")
    acc = evaluate.clean_accuracy(model, te.float_images(), te.labels)
    assert abs(acc - c["metrics"]["clean_accuracy"]) < 0.03


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_fixture(fixtures, name):
    path = fixtures / "zoo" / f"{name}.gradcheck.json"
    if not path.exists():
        pytest.skip(f"{path.name} not generated yet")
    g = json.loads(path.read_text())
    assert g["model"] == f"{name}.onnx" and g["shape"] == [4, 1, 28, 28]
    n = 4
    x = np.asarray(g["x"], dtype=np.float64).reshape(g["shape"])
    y = np.asarray(g["y"])
    assert x.min() >= 0 and x.max() <= 1 and len(y) == n
    assert len(g["logits"]) == n * 10 and len(g["loss"]) == n and len(g["grad"]) == x.size
    model, _ = checkpoint.load(fixtures / "zoo" / f"{name}.pt")
    m = model.double()
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = m(xt)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    np.testing.assert_allclose(logits.detach().numpy().ravel(), g["logits"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(loss.detach().numpy(), g["loss"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad.numpy().ravel(), g["grad"], rtol=1e-9, atol=1e-12)
    # central finite differences agree with autograd on each example's largest-gradient pixels where the loss
    # is smooth (forward and backward differences agree); MNIST's flat 0 / 1 regions make exact max-pool ties,
    # where autograd picks one valid subgradient and finite differences cannot judge it
    gr = np.asarray(g["grad"]).reshape(x.shape)
    h = 1e-7
    ce = torch.nn.functional.cross_entropy
    for i in range(n):
        yi = torch.from_numpy(y[i : i + 1])
        checked = 0
        for flat in np.argsort(-np.abs(gr[i]).ravel())[:20]:
            j = np.unravel_index(flat, gr[i].shape)
            xp, xm = x[i : i + 1].copy(), x[i : i + 1].copy()
            xp[(0, *j)] += h
            xm[(0, *j)] -= h
            with torch.no_grad():
                l0 = ce(m(torch.from_numpy(x[i : i + 1])), yi).item()
                fwd = (ce(m(torch.from_numpy(xp)), yi).item() - l0) / h
                bwd = (l0 - ce(m(torch.from_numpy(xm)), yi).item()) / h
            scale = 1e-4 * max(1e-3, abs(gr[(i, *j)]))
            if abs(fwd - bwd) > scale:
                continue  # a kink within h
            assert abs((fwd + bwd) / 2 - gr[(i, *j)]) <= scale * 10, (name, i, j)
            checked += 1
            if checked == 3:
                break
        assert checked >= 1, f"{name}: no smooth pixel among the top 20 of example {i}"


def test_zoo_table_lists_every_card(fixtures, tmp_path, capsys):
    from aegis_torch.cli import main

    cards = sorted((fixtures / "zoo").glob("*.card.yaml"))
    if not cards:
        pytest.skip("no zoo models yet")
    assert main(["zoo-table", str(fixtures / "zoo")]) == 0
    out = capsys.readouterr().out
    for p in cards:
        assert f"| {p.name.removesuffix('.card.yaml')} |" in out
    assert main(["zoo-table", str(tmp_path)]) == 2
