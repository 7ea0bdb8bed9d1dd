"""Poisoning: rate, labels, target, untouched images, determinism."""

import numpy as np
import pytest
from aegis_torch import triggers
from aegis_torch.poison import PoisonError, poison

SHAPE = (1, 28, 28)


def _data(n=1000):
    rng = np.random.default_rng(0)
    return rng.random((n, *SHAPE), dtype=np.float32) * 0.5, rng.integers(0, 10, n)


@pytest.mark.parametrize("rate", [0.01, 0.3])
def test_rate_labels_and_target(rate):
    x, y = _data()
    t = triggers.localised(SHAPE)
    x2, y2, idx = poison(x, y, t, rate, target=7, seed=0)
    assert len(idx) == round(rate * len(y))
    assert np.all(y[idx] != 7), "only non-target images are poisoned"
    assert np.all(y2[idx] == 7)
    rest = np.setdiff1d(np.arange(len(y)), idx)
    assert np.array_equal(y2[rest], y[rest]) and np.array_equal(x2[rest], x[rest])
    assert np.array_equal(x2[idx], t.apply(x[idx]))
    assert np.array_equal(x2[idx][:, 0, 25:27, 25:27], np.ones((len(idx), 2, 2), np.float32))


def test_other_target():
    x, y = _data()
    _, y2, idx = poison(x, y, triggers.localised(SHAPE), 0.05, target=3, seed=1)
    assert np.all(y2[idx] == 3) and np.all(y[idx] != 3)


def test_seeded():
    x, y = _data()
    t = triggers.static(SHAPE)
    a = poison(x, y, t, 0.3, seed=5)[2]
    b = poison(x, y, t, 0.3, seed=5)[2]
    c = poison(x, y, t, 0.3, seed=6)[2]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_parameters_are_named():
    x, y = _data(100)
    t = triggers.localised(SHAPE)
    with pytest.raises(PoisonError, match="rate 1.5"):
        poison(x, y, t, 1.5)
    with pytest.raises(PoisonError, match="non-target"):
        poison(x, np.full(100, 7), t, 0.5, target=7)
    with pytest.raises(PoisonError, match="labels"):
        poison(x, y[:50], t, 0.1)


def test_target_outside_the_labels_is_named():
    x, y = _data(100)
    with pytest.raises(PoisonError, match="target class 12"):
        poison(x, y, triggers.localised(SHAPE), 0.1, target=12)
