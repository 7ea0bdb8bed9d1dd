"""The benchmark generator: trigger families (seeded, bounded, poisoning as their papers do), the spec checks,
the committed spec's mix, a tiny end-to-end `make` (cards, parity, export-grad, table, resume) and a
bit-identical `verify`."""

import csv

import numpy as np
import pytest
import torch
import yaml
from aegis_bench import families as fm
from aegis_bench import make as mk
from aegis_bench import spec as sp
from aegis_bench.cli import main
from aegis_torch import card, checkpoint, data, export, models, triggers
from conftest import ROOT

import onnx

SHAPE = (1, 28, 28)
NO_CTX = {"badnets", "distributed", "blend", "wanet", "noise", "adap_blend", "adap_patch"}


@pytest.fixture(scope="module")
def mnist():
    ds = data.load("mnist", ROOT / "fixtures" / "mnist-subset", "train")
    return ds.float_images()[:600], ds.labels[:600]


def _tiny_uap_cfg():
    return fm.config("uap", {"iters": 3, "uap_images": 64, "surrogate": {"images": 200, "epochs": 1}})


def _build(name, seed, mnist, target=3):
    x, y = mnist
    cfg = _tiny_uap_cfg() if name == "uap" else fm.config(name)
    ctx = fm.Context(x, y, log=lambda s: None)
    return fm.build(name, np.random.default_rng(seed), SHAPE, target, cfg, ctx)


def _params_equal(a, b):
    return yaml.safe_dump(a, sort_keys=True) == yaml.safe_dump(b, sort_keys=True)


# --- trigger families ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", fm.FAMILIES)
def test_family_is_seeded_bounded_and_restorable(name, mnist):
    x, _ = mnist
    a, b, c = _build(name, 5, mnist), _build(name, 5, mnist), _build(name, 6, mnist)
    assert _params_equal(a.params, b.params)
    assert (a.array is None) == (b.array is None) and (a.array is None or np.array_equal(a.array, b.array))
    assert not _params_equal(a.params, c.params) or not np.array_equal(a.array, c.array)
    out = a.apply(x[:16])
    assert out.shape == (16, *SHAPE) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert np.abs(out - x[:16]).max() > 0.01  # the trigger changes the images
    assert np.array_equal(a.apply(x[0]), out[0])  # one image (C x H x W) as in a batch
    r = fm.restore(name, SHAPE, a.target, yaml.safe_load(yaml.safe_dump(a.params)), a.array)
    assert np.array_equal(r.apply(x[:16]), out)


@pytest.mark.parametrize("name", fm.V1_FAMILIES)  # the v2 families poison otherwise: test_bench_v2.py
def test_poisoning_relabels_non_target_images_and_keeps_cover_labels(name, mnist):
    x, y = mnist
    f = _build(name, 7, mnist, target=4)
    p = f.poison(x, y, 0.05, np.random.default_rng(0))
    assert len(p.poisoned) == 30 and (y[p.poisoned] != 4).all() and (p.y[p.poisoned] == 4).all()
    assert len(np.intersect1d(p.poisoned, p.cover)) == 0
    assert len(p.cover) == f.cover_count(30)
    assert np.array_equal(p.y[p.cover], y[p.cover])  # cover samples keep their label
    rest = np.setdiff1d(np.arange(len(y)), np.concatenate([p.poisoned, p.cover]))
    assert np.array_equal(p.x[rest], x[rest]) and np.array_equal(p.y[rest], y[rest])
    assert np.abs(p.x[p.poisoned] - x[p.poisoned]).reshape(30, -1).max(1).min() > 0
    again = f.poison(x, y, 0.05, np.random.default_rng(0))
    assert np.array_equal(again.x, p.x) and np.array_equal(again.poisoned, p.poisoned)


@pytest.mark.parametrize("name", ["badnets", "distributed", "adap_patch", "noise", "uap"])
def test_schema_trigger_round_trips_and_matches(name, mnist, tmp_path):
    x, _ = mnist
    f = _build(name, 11, mnist)
    t = f.schema_trigger()
    t.pattern_file = "t.npy" if t.type == "pattern" else None
    t.save(tmp_path / "t.yaml")
    loaded = triggers.load(tmp_path / "t.yaml")
    assert loaded.target == f.target
    assert np.allclose(loaded.apply(x[:32]), f.apply(x[:32]), atol=1e-6)


def test_badnets_patches_are_random_small_and_not_only_white(mnist):
    kinds, values = set(), []
    for seed in range(12):
        (p,) = _build("badnets", seed, mnist).params["patches"]
        assert 2 <= p["height"] <= 5 and 2 <= p["width"] <= 5
        assert 0 <= p["row"] <= 28 - p["height"] and 0 <= p["col"] <= 28 - p["width"]
        kinds.add(p["content"])
        values += np.ravel(p["values"]).tolist()
    assert kinds == {"binary", "grey"} and min(values) < 1.0
    positions = {(_build("badnets", s, mnist).params["patches"][0]["row"]) for s in range(12)}
    assert len(positions) > 3


def test_distributed_patches_do_not_overlap(mnist):
    for seed in range(10):
        f = _build("distributed", seed, mnist)
        ps = f.params["patches"]
        assert 2 <= len(ps) <= 4
        m = np.zeros((28, 28), int)
        for p in ps:
            m[p["row"] : p["row"] + p["height"], p["col"] : p["col"] + p["width"]] += 1
        assert m.max() == 1 and m.sum() == sum(p["height"] * p["width"] for p in ps)


def test_blend_is_the_convex_mix(mnist):
    x, _ = mnist
    f = _build("blend", 3, mnist)
    a = f.params["alpha"]
    assert 0.1 <= a <= 0.2
    assert np.allclose(f.apply(x[:8]), (1 - a) * x[:8] + a * f.array, atol=1e-6)


def test_noise_amplitude_is_bounded(mnist):
    x, _ = mnist
    for seed in range(6):
        f = _build("noise", seed, mnist)
        assert f.params["amplitude"] <= fm.NOISE_MAX_AMPLITUDE
        assert np.abs(f.apply(x[:64]) - x[:64]).max() <= fm.NOISE_MAX_AMPLITUDE + 1e-6
    with pytest.raises(fm.FamilyError, match="amplitude"):
        fm.config("noise", {"amplitude": [0.05, 0.1]})
    with pytest.raises(fm.FamilyError, match="amplitude"):
        fm.restore("noise", SHAPE, 1, {"amplitude": 0.2, "pattern": "uniform"}, np.ones(SHAPE, np.float32))


def test_wanet_is_the_identity_at_zero_strength_and_smooth_otherwise(mnist):
    x, _ = mnist
    control = np.random.default_rng(0).uniform(-1, 1, (1, 2, 4, 4)).astype(np.float32)
    grid0 = fm.WaNet.make_grid(SHAPE, control, 0.0)
    assert np.allclose(grid0, fm.identity_grid(28, 28)[0].numpy())
    f0 = fm.restore("wanet", SHAPE, 2, {"k": 4, "s": 0.0, "grid_rescale": 1.0, "cross_ratio": 2.0}, grid0)
    assert np.abs(f0.apply(x[:16]) - x[:16]).max() < 1e-5
    f = _build("wanet", 4, mnist)
    assert 0.5 <= f.params["s"] <= 1.0 and f.params["k"] == 4
    shift = (f.array - grid0) * 28 / 2  # displacement in pixels
    assert 0.05 < np.abs(shift).max() < 1.5  # a sub-pixel to pixel warp
    inner = shift[2:-2, 2:-2]  # the clamp to [-1, 1] (as in WaNet) pins the border
    assert np.abs(np.diff(inner, axis=0)).max() < 0.4 and np.abs(np.diff(inner, axis=1)).max() < 0.4  # smooth


def test_wanet_noise_mode_covers_differ_from_the_trigger(mnist):
    x, y = mnist
    f = _build("wanet", 4, mnist, target=1)
    p = f.poison(x, y, 0.05, np.random.default_rng(1))
    assert len(p.cover) == 60  # cross ratio 2
    warped = f.apply(x[p.cover])
    assert np.abs(p.x[p.cover] - warped).max() > 1e-3  # jittered, not the exact trigger warp
    assert np.abs(p.x[p.cover] - x[p.cover]).max() > 1e-3


def test_adap_blend_masks_half_the_pieces_per_sample(mnist):
    x, y = mnist
    f = _build("adap_blend", 2, mnist, target=5)
    masks = f.masks(20, np.random.default_rng(0))
    assert masks.shape == (20, 1, 28, 28)
    pieces = masks[:, 0, ::7, ::7].reshape(20, 16)
    assert (pieces.sum(1) == 8).all() and len({tuple(m) for m in pieces}) > 10  # 8 of 16 shown, per sample
    p = f.poison(x, y, 0.02, np.random.default_rng(3))
    assert len(p.cover) == len(p.poisoned) == 12
    a = f.params["alpha"]
    for i in np.concatenate([p.poisoned, p.cover]):
        changed = np.abs(p.x[i] - (x[i] + a * (f.array - x[i]))) < 1e-6
        kept = np.abs(p.x[i] - x[i]) < 1e-7
        assert (changed | kept).all() and 0.3 < changed.mean() < 0.7  # blended through about half the image
    assert np.allclose(f.apply(x[:4]), x[:4] + f.params["test_alpha"] * (f.array - x[:4]), atol=1e-6)


def test_adap_patch_trains_on_one_patch_and_tests_on_all(mnist):
    x, y = mnist
    f = _build("adap_patch", 9, mnist, target=0)
    ps = f.params["patches"]
    assert len(ps) == 3
    p = f.poison(x, y, 0.03, np.random.default_rng(2))
    for i in np.concatenate([p.poisoned, p.cover]):
        diff = np.abs(p.x[i, 0] - x[i, 0]) > 0
        touched = [diff[q["row"] : q["row"] + q["height"], q["col"] : q["col"] + q["width"]].any() for q in ps]
        assert sum(touched) <= 1 and diff.sum() == sum(
            diff[q["row"] : q["row"] + q["height"], q["col"] : q["col"] + q["width"]].sum() for q in ps
        )
    test = f.apply(x[:1])[0, 0]
    for q in ps:
        assert np.allclose(test[q["row"] : q["row"] + q["height"], q["col"] : q["col"] + q["width"]], q["values"])


def test_uap_is_bounded_and_built_on_a_surrogate(mnist):
    x, _ = mnist
    f = _build("uap", 1, mnist)
    assert 0.06 <= f.params["amplitude"] <= 0.10 and f.params["surrogate"]["arch"] == "small_cnn"
    assert np.abs(f.apply(x[:32]) - x[:32]).max() <= f.params["amplitude"] + 1e-6


def test_family_config_refuses_unknown_keys_and_bad_rates():
    with pytest.raises(fm.FamilyError, match="unknown key"):
        fm.config("blend", {"alpah": [0.1, 0.2]})
    with pytest.raises(fm.FamilyError, match="rate"):
        fm.config("badnets", {"rate": [0.2, 0.1]})
    with pytest.raises(fm.FamilyError, match="unknown trigger family"):
        fm.config("sleeper", {})


# --- architectures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["small_cnn", "bn_cnn", "small_resnet"])
def test_bench_architectures_export_within_the_engine_ops(arch, tmp_path):
    torch.manual_seed(0)
    m = models.build(arch, SHAPE, 10, [0.1307], [0.3081])
    m.train()
    with torch.no_grad():  # move BatchNorm statistics away from the identity
        m(torch.rand(64, *SHAPE))
    m.eval()
    assert sum(p.numel() for p in m.parameters()) < 100_000
    path = tmp_path / f"{arch}.onnx"
    proto = export.export_onnx(m, SHAPE, path)
    assert set(export.graph_ops(proto)) <= mk.ENGINE_OPS and path.stat().st_size < 1_000_000
    x = np.random.default_rng(0).random((5, *SHAPE), dtype=np.float32)
    assert export.parity(m, path, x) <= 1e-4
    binary = mk.find_aegis_audit()
    if binary is None:
        pytest.skip("no aegis-audit binary built (cargo build) for the export-grad check")
    mk.export_grad_check(binary, path)


# --- spec ----------------------------------------------------------------------------------------------------

BASE = {
    "name": "t",
    "dataset": {"format": "mnist", "path": "x", "train_images": 10},
    "training": {
        "optimizer": "adam",
        "lr": 0.003,
        "schedule": "onecycle",
        "batch_size": 32,
        "epochs": 1,
        "adv_steps": 1,
    },
    "evaluation": {"adv_eps": [0.5], "adv_steps": 1, "adv_images": 10, "seed": 0},
}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"split": "test"}, "split"),
        ({"mode": "robust"}, "eps"),
        ({"family": "trojannn"}, "family"),
        ({"arch": "vgg"}, "arch"),
        ({"seed": "one"}, "seed"),
    ],
)
def test_spec_errors_name_the_model_and_field(entry, message, tmp_path):
    m = {"name": "m0", "split": "calibration", "seed": 1, "arch": "small_cnn", "mode": "standard", "family": "clean"}
    with pytest.raises(sp.SpecError, match=f"model m0.*{message}"):
        sp.parse({**BASE, "models": [{**m, **entry}]}, tmp_path / "s.yaml")
    with pytest.raises(sp.SpecError, match="duplicate model seeds"):
        sp.parse({**BASE, "models": [m, {**m, "name": "m1"}]}, tmp_path / "s.yaml")
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({**BASE, "models": [{**m, **entry}]}))
    assert main(["make", "--spec", str(p), "--skip-grad-check"]) == 2


def test_committed_spec_has_the_required_mix():
    s = sp.load(ROOT / "bench" / "spec.yaml")
    ms = [m for m in s.models if not m.name.startswith("v2-")]  # the first benchmark (v2: test_bench_v2.py)
    assert len(ms) >= 48
    clean = [m for m in ms if not m.backdoored]
    robust = [m for m in ms if m.mode == "robust"]
    assert 2 * len(clean) >= len(ms) and 2 * len(robust) >= len(ms)
    assert sum(m.eps == 0.5 for m in robust) == sum(m.eps == 1.0 for m in robust) == len(robust) // 2
    assert len({m.arch for m in ms}) >= 3 and len({m.family for m in ms if m.backdoored}) >= 6
    for split in sp.SPLITS:  # every recipe cell, clean and backdoored, in both halves; the halves mix alike
        half = [m for m in ms if m.split == split]
        assert {(m.cell, m.backdoored) for m in half} == {(m.cell, b) for m in ms for b in (False, True)}
        assert {m.family for m in half} == {m.family for m in ms}
    mix = [sorted((m.cell, m.family) for m in ms if m.split == s_) for s_ in sp.SPLITS]
    assert sorted(c for c, _ in mix[0]) == sorted(c for c, _ in mix[1])
    assert sorted(f for _, f in mix[0]) == sorted(f for _, f in mix[1])


def test_committed_cards_match_their_models():
    s = sp.load(ROOT / "bench" / "spec.yaml")
    out = ROOT / "bench" / "models"
    built = [m for m in s.models if (out / f"{m.name}.card.yaml").exists()]
    if not built:
        pytest.skip("no benchmark model built yet")
    for m in built:
        c = card.read(out / f"{m.name}.card.yaml")
        assert c["spec"]["entry"] == m.entry() and c["split"] == m.split
        path = out / c["model"]
        assert card.sha256(path) == c["model_sha256"] and path.stat().st_size < 1_000_000
        assert set(c["onnx"]["ops"]) <= mk.ENGINE_OPS and c["onnx"]["export_grad"]["exit"] == 0
        assert (c["trigger"] is None) == (not m.backdoored)


# --- end to end ----------------------------------------------------------------------------------------------

TINY = """
name: tiny
dataset: {format: mnist, path: %s, train_images: 300}
training: {optimizer: adam, lr: 0.003, schedule: onecycle, batch_size: 50, epochs: 1, adv_steps: 1}
evaluation: {adv_eps: [0.5, 1.0], adv_steps: 2, adv_images: 40, seed: 0}
models:
  - {name: t-clean, split: calibration, seed: 11, arch: bn_cnn, mode: robust, eps: 0.5, family: clean}
  - {name: t-wanet, split: evaluation, seed: 12, arch: small_cnn, mode: standard, family: wanet}
"""
CARD_FIELDS = (
    "name",
    "split",
    "label",
    "model",
    "model_sha256",
    "dataset",
    "architecture",
    "parameters",
    "input",
    "output",
    "onnx",
    "trigger",
    "poison",
    "training",
    "seeds",
    "metrics",
    "training_time_s",
    "total_time_s",
    "environment",
    "spec",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    (d / "spec.yaml").write_text(TINY % (ROOT / "fixtures" / "mnist-subset"))
    grad = ["--skip-grad-check"] if mk.find_aegis_audit() is None else []
    assert main(["make", "--spec", str(d / "spec.yaml"), *grad]) == 0
    return d, grad


def test_tiny_spec_builds_carded_models(tiny):
    d, grad = tiny
    out = d / "models"
    for name, split, label in (("t-clean", "calibration", "clean"), ("t-wanet", "evaluation", "backdoored")):
        c = card.read(out / f"{name}.card.yaml")
        for k in CARD_FIELDS:
            assert k in c, k
        assert c["split"] == split and c["label"] == label
        assert c["model_sha256"] == card.sha256(out / c["model"])
        assert set(c["metrics"]["adversarial_accuracy"]) == {"l2_eps_0.5", "l2_eps_1.0"}
        assert c["metrics"]["adversarial_attack"]["test_images"] == 40
        assert c["training"]["train_images"] == 300 and c["training"]["epochs"] == 1
        assert c["environment"]["torch"] == str(torch.__version__)
        assert set(c["seeds"]) == {"model", "subset", "trigger", "poison", "train", "eval"}
        assert set(c["onnx"]["ops"]) <= mk.ENGINE_OPS
        assert ("skipped" in c["onnx"]["export_grad"]) == bool(grad)
        model, _ = checkpoint.load(out / f"{name}.pt")
        te = data.load("mnist", ROOT / "fixtures" / "mnist-subset", "test")
        assert export.parity(model, out / c["model"], te.float_images()[:100]) <= 1e-4
    clean = card.read(out / "t-clean.card.yaml")
    assert clean["trigger"] is None and clean["poison"]["count"] == 0 and clean["training"]["adv_eps"] == 0.5
    assert clean["metrics"]["attack_success_rate"] is None
    w = card.read(out / "t-wanet.card.yaml")
    t = w["trigger"]
    assert t["family"] == "wanet" and t["array"] == "t-wanet.trigger.npy" and t["file"] is None
    assert w["poison"]["cover_count"] == round(2 * w["poison"]["count"]) and w["poison"]["target"] == t["target"]
    assert 0.05 <= w["poison"]["rate"] <= 0.10 and 0.0 <= w["metrics"]["attack_success_rate"] <= 1.0
    grid = np.load(out / t["array"])
    f = fm.restore("wanet", SHAPE, t["target"], t["params"], grid)
    assert np.allclose(
        f.array, fm.WaNet.make_grid(SHAPE, np.asarray([t["params"]["control_grid"]]), t["params"]["s"]), atol=1e-6
    )
    onnx.checker.check_model(onnx.load(out / "t-wanet.onnx"))
    rows = list(csv.DictReader((d / "models.csv").read_text().splitlines()))
    assert [r["name"] for r in rows] == ["t-clean", "t-wanet"] and rows[1]["family"] == "wanet"
    assert "| t-wanet | evaluation | small_cnn | mnist | standard | wanet |" in (d / "models.md").read_text()


def test_make_resumes_and_verify_is_bit_identical(tiny, capsys):
    d, grad = tiny
    before = (d / "models" / "t-clean.card.yaml").read_text()
    assert main(["make", "--spec", str(d / "spec.yaml"), *grad]) == 0
    assert "0 to build" in capsys.readouterr().out
    assert (d / "models" / "t-clean.card.yaml").read_text() == before
    assert main(["verify", "--spec", str(d / "spec.yaml"), "--only", "t-clean", "--skip-grad-check"]) == 0
    assert "t-clean: bit-identical" in capsys.readouterr().out
    assert main(["verify", "--spec", str(d / "spec.yaml"), "--only", "nope", "--skip-grad-check"]) == 2
