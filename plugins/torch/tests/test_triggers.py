"""Trigger geometry, intensity bounds, determinism and the YAML schema."""

import numpy as np
import pytest
import yaml
from aegis_torch import triggers
from aegis_torch.triggers import Patch, Trigger, TriggerError

SHAPE = (1, 28, 28)


def test_localised_is_one_square_bottom_right_under_one_percent():
    t = triggers.localised(SHAPE)
    m = t.mask()
    assert len(t.patches) == 1
    assert m.sum() < 0.01 * 28 * 28
    rows, cols = np.nonzero(m)
    assert rows.min() >= 14 and cols.min() >= 14
    assert rows.max() == 26 and cols.max() == 26


def test_distributed_has_squares_top_left_and_bottom_right():
    t = triggers.distributed(SHAPE)
    m = t.mask()
    assert len(t.patches) == 2
    assert m[:14, :14].any() and m[14:, 14:].any()
    assert not m[:14, 14:].any() and not m[14:, :14].any()


def test_patch_replaces_only_its_pixels():
    x = np.random.default_rng(0).random((3, *SHAPE), dtype=np.float32)
    t = triggers.distributed(SHAPE)
    out = t.apply(x)
    m = t.mask()
    assert np.all(out[:, :, m] == 1.0)
    assert np.array_equal(out[:, :, ~m], x[:, :, ~m])
    assert np.array_equal(x, np.random.default_rng(0).random((3, *SHAPE), dtype=np.float32)), "input mutated"


def test_static_pattern_is_bounded_by_intensity_and_clamped():
    t = triggers.static(SHAPE, intensity=0.1, seed=0)
    x = np.random.default_rng(1).random((4, *SHAPE), dtype=np.float32)
    out = t.apply(x)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - x).max() <= 0.1 + 1e-6
    assert np.abs(out - x).mean() > 0.01


def test_static_is_deterministic_per_seed():
    a, b, c = triggers.static(SHAPE, seed=3), triggers.static(SHAPE, seed=3), triggers.static(SHAPE, seed=4)
    assert np.array_equal(a.pattern, b.pattern)
    assert not np.array_equal(a.pattern, c.pattern)


def test_yaml_round_trip(tmp_path):
    for t in (triggers.localised(SHAPE), triggers.distributed(SHAPE), triggers.static(SHAPE, seed=2)):
        t.target = 7
        t.save(tmp_path / f"{t.name}.yaml")
        back = triggers.load(tmp_path / f"{t.name}.yaml")
        assert back.to_dict() == t.to_dict()
        x = np.random.default_rng(0).random((2, *SHAPE), dtype=np.float32)
        assert np.array_equal(back.apply(x), t.apply(x))


def test_committed_specs_load_and_match_the_paper_setup(fixtures):
    for name in ("localised", "distributed", "static", "adversarial"):
        path = fixtures / "triggers" / f"{name}.yaml"
        if not path.exists():
            pytest.skip(f"{path} not generated yet")
        t = triggers.load(path)
        assert t.shape == SHAPE and t.target == 7
        if name in ("static", "adversarial"):
            assert t.type == "pattern" and t.intensity <= 0.2
            delta = t.apply(np.full((1, *SHAPE), 0.5, dtype=np.float32)) - 0.5
            assert np.abs(delta).max() <= t.intensity + 1e-6
        else:
            assert t.type == "patch"


@pytest.mark.parametrize(
    "patch, msg",
    [(Patch(27, 27, 2, 2, 1.0), "leaves"), (Patch(0, 0, 0, 2, 1.0), "size"), (Patch(0, 0, 1, 1, 1.5), "value")],
)
def test_invalid_patches_are_named(patch, msg):
    with pytest.raises(TriggerError, match=msg):
        Trigger("bad", "patch", SHAPE, patches=[patch])


def test_invalid_yaml_is_named(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"type": "blend", "image": {"channels": 1, "height": 28, "width": 28}}))
    with pytest.raises(TriggerError, match="'blend' unknown"):
        triggers.load(p)
    p.write_text(
        yaml.safe_dump(
            {
                "type": "pattern",
                "image": {"channels": 1, "height": 28, "width": 28},
                "pattern": "missing.npy",
                "intensity": 0.1,
            }
        )
    )
    with pytest.raises(TriggerError, match="missing.npy"):
        triggers.load(p)
    with pytest.raises(TriggerError, match="intensity"):
        Trigger("p", "pattern", SHAPE, pattern=np.zeros(SHAPE, np.float32), intensity=2.0)
    with pytest.raises(TriggerError, match="pattern shape"):
        Trigger("p", "pattern", SHAPE, pattern=np.zeros((1, 4, 4), np.float32), intensity=0.1)


def test_apply_rejects_wrong_image_shape():
    with pytest.raises(TriggerError, match="is for images"):
        triggers.localised(SHAPE).apply(np.zeros((2, 3, 32, 32), np.float32))
