"""The benchmark evaluation's labels and metrics: hand-worked cases, and ROC-AUC against scikit-learn."""

import numpy as np
import pytest
from aegis_bench import evaluate as ev
from sklearn.metrics import roc_auc_score


def card(label="clean", asr=None, mode="standard", eps=None, family=None, target=None):
    return {
        "label": label,
        "metrics": {"attack_success_rate": asr},
        "training": {"mode": mode, "adv_eps": eps},
        "trigger": {"family": family} if family else None,
        "poison": {"target": target},
    }


def test_status_training_family_target():
    assert ev.status(card(), 0.5) == "clean"
    assert ev.status(card("backdoored", 0.9, family="badnets", target=3), 0.5) == "backdoored"
    assert ev.status(card("backdoored", 0.2, family="wanet", target=3), 0.5) == "not-implanted"
    assert ev.status(card("backdoored", 0.5), 0.5) == "backdoored"
    assert ev.training_of(card(mode="robust", eps=1.0)) == "robust-1.0"
    assert ev.training_of(card()) == "standard"
    assert ev.family_of(card()) == "clean" and ev.family_of(card(family="uap")) == "uap"
    assert ev.target_of(card(target=4)) == 4


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(40) < 0.5
    labels[0], labels[1] = True, False
    scores = np.round(rng.normal(size=40) + labels, 1)  # rounding makes ties
    got = ev.roc_auc(scores.tolist(), labels.tolist())
    assert got == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_roc_auc_needs_both_classes():
    assert ev.roc_auc([1.0, 2.0], [True, True]) is None


def row(status, score, flagged, target=None, family="clean", training="standard", seconds=10.0):
    return {
        "status": status,
        "score": score,
        "flagged": flagged,
        "target": target,
        "family": family,
        "training": training,
        "classes": 10,
        "seconds": seconds,
    }


def test_summarize_hand_worked():
    rows = [
        row("backdoored", 9.0, [3], 3, "badnets"),  # detected, exact
        row("backdoored", 5.0, [3, 8], 3, "badnets"),  # detected, one false-positive class
        row("backdoored", 0.5, [], 1, "wanet"),  # missed
        row("clean", 0.1, []),
        row("clean", 6.0, [2], seconds=20.0),  # a false-positive model
        row("not-implanted", 7.0, [5], 5, "noise"),  # neither positive nor negative
    ]
    m = ev.summarize(rows)
    assert (m["models"], m["backdoored"], m["clean"]) == (5, 3, 2)
    assert m["tpr"] == pytest.approx(2 / 3)
    assert m["fpr"] == 0.5
    assert m["exact_target"] == 0.5
    assert m["fp_classes"] == 2 and m["fp_class_rate"] == pytest.approx(2 / 50)
    # Pairs (bd, clean): (9, .1) (9, 6) (5, .1) win; (5, 6) (0.5, .1)... 0.5 > 0.1 wins, 0.5 < 6 loses.
    assert m["auc"] == pytest.approx(4 / 6)
    assert m["median_s"] == 10.0
    by_family = ev.breakdown(rows, "family")
    assert set(by_family) == {"badnets", "wanet", "noise"}
    assert by_family["badnets"]["tpr"] == 1.0 and by_family["badnets"]["clean"] == 2
    assert by_family["wanet"]["tpr"] == 0.0
    by_training = ev.breakdown(rows, "training")
    assert set(by_training) == {"standard"}


def test_decision_row_reads_the_decide_document():
    doc = {
        "models": [
            {
                "fused": {
                    "model_p_value": 1e-4,
                    "classes": [
                        {"class": 0, "flagged": False},
                        {"class": 7, "flagged": True},
                        {"class": 2, "flagged": True},
                    ],
                }
            }
        ]
    }
    s, flagged = ev.decision_row(doc)
    assert s == pytest.approx(4.0) and flagged == [2, 7]


def test_cards_of_one_half():
    from aegis_bench import spec as sp
    from conftest import ROOT

    s = sp.load(ROOT / "bench" / "spec.yaml")
    models = ROOT / "bench" / "models"
    every = ev._cards(s, models)
    cal = ev._cards(s, models, "calibration")
    evl = ev._cards(s, models, "evaluation")
    assert cal and evl and set(cal) | set(evl) == set(every) and not set(cal) & set(evl)
    assert {c["split"] for c in cal.values()} == {"calibration"}
    assert {c["split"] for c in evl.values()} == {"evaluation"}


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--stages", "audit,plot"], "unknown stage plot"),
        (["--stages", "calibrate", "--calibrations", "x"], "leave out the calibrate stage"),
        (["--stages", "calibrate,score", "--split", "evaluation"], "needs the calibration half"),
    ],
)
def test_evaluate_refuses_inconsistent_stages(flags, problem, tmp_path, capsys):
    from aegis_bench.cli import main
    from conftest import ROOT

    spec = str(ROOT / "bench" / "spec.yaml")
    args = ["evaluate", "--spec", spec, "--data", "d", "--out", str(tmp_path), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_evaluate_refuses_a_bad_neighbour_count(tmp_path, capsys):
    from aegis_bench.cli import main
    from conftest import ROOT

    spec = str(ROOT / "bench" / "spec.yaml")
    args = ["evaluate", "--spec", spec, "--data", "d", "--out", str(tmp_path), "--robustness-neighbours", "1"]
    assert main(args) == 2
    assert "--robustness-neighbours '1'" in capsys.readouterr().err
