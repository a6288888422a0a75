"""Classification metrics against hand-computed cases and a brute-force reference."""
from __future__ import annotations

import numpy as np
import pytest

from taskcodec import TaskcodecError
from taskcodec_plugins.metrics.classification import Accuracy, BalancedAccuracy, MacroF1


def rows(labels, preds):
    return [{"image": f"i{k}", "label": t, "pred": p} for k, (t, p) in enumerate(zip(labels, preds))]


def scores(labels, preds):
    r = rows(labels, preds)
    return {**Accuracy().compute(r), **BalancedAccuracy().compute(r), **MacroF1().compute(r)}


def brute_force(labels, preds):
    """Independent reference: plain Python counting, per class, straight from the definitions."""
    n = len(labels)
    acc = sum(1 for t, p in zip(labels, preds) if t == p) / n
    true_classes = []
    for t in labels:
        if t not in true_classes:
            true_classes.append(t)
    all_classes = list(true_classes)
    for p in preds:
        if p not in all_classes:
            all_classes.append(p)
    recalls = []
    for c in true_classes:
        hits = sum(1 for t, p in zip(labels, preds) if t == c and p == c)
        recalls.append(hits / sum(1 for t in labels if t == c))
    f1s = []
    for c in all_classes:
        tp = sum(1 for t, p in zip(labels, preds) if t == c and p == c)
        fp = sum(1 for t, p in zip(labels, preds) if t != c and p == c)
        fn = sum(1 for t, p in zip(labels, preds) if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {"accuracy": acc, "balanced_accuracy": sum(recalls) / len(recalls), "macro_f1": sum(f1s) / len(f1s)}


def test_hand_computed_case():
    # recall: class 0 2/3, class 1 1/2, class 2 1/1; F1: 0.8, 0.5, 2/3
    got = scores([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2])
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert got["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_class_only_predicted():
    # class 2 is never true: ignored by balanced accuracy, counts with F1 = 0 in macro F1
    got = scores([0, 0, 1, 1], [0, 2, 1, 1])
    assert got == pytest.approx({"accuracy": 0.75, "balanced_accuracy": 0.75, "macro_f1": (2 / 3 + 1 + 0) / 3})


def test_imbalanced_majority_guess():
    got = scores([0] * 9 + [1], [0] * 10)
    assert got["accuracy"] == pytest.approx(0.9)
    assert got["balanced_accuracy"] == pytest.approx(0.5)
    assert got["macro_f1"] == pytest.approx((2 * 9 / (18 + 1) + 0) / 2)


def test_perfect_and_all_wrong():
    assert scores([0, 1, 2, 2], [0, 1, 2, 2]) == {"accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0}
    assert scores([0, 0, 1], [1, 1, 0]) == {"accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0}


@pytest.mark.parametrize("seed", range(8))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 60)), int(rng.integers(1, 7))
    labels = rng.integers(0, k, n).tolist()
    preds = [t if rng.random() < 0.6 else int(rng.integers(0, k + 1)) for t in labels]
    assert scores(labels, preds) == pytest.approx(brute_force(labels, preds))


def test_string_and_numpy_labels():
    labels = ["happy", "sad", "sad", "angry"]
    preds = ["happy", "sad", "angry", "angry"]
    assert scores(labels, preds) == pytest.approx(brute_force(labels, preds))
    np_labels = [np.int64(v) for v in [0, 1, 1, 2]]
    assert scores(np_labels, [0, 1, 2, 2]) == pytest.approx(brute_force([0, 1, 1, 2], [0, 1, 2, 2]))


def test_values_are_fractions():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 5, 200).tolist(), rng.integers(0, 5, 200).tolist()
    for value in scores(labels, preds).values():
        assert isinstance(value, float) and 0.0 <= value <= 1.0


@pytest.mark.parametrize("metric", [Accuracy(), BalancedAccuracy(), MacroF1()])
def test_bad_rows(metric):
    with pytest.raises(TaskcodecError, match="no rows"):
        metric.compute([])
    with pytest.raises(TaskcodecError, match="'pred'"):
        metric.compute([{"image": "a", "label": 1}])
    with pytest.raises(TaskcodecError, match="no label"):
        metric.compute([{"image": "a", "label": None, "pred": 1}])


def test_metadata_and_registration():
    from taskcodec.pluginmanager import PluginManager

    pm = PluginManager()
    for cls, column in [(Accuracy, "accuracy"), (BalancedAccuracy, "balanced_accuracy"), (MacroF1, "macro_f1")]:
        assert pm.get("metric", cls.name).target is cls
        assert cls.task_types == ("classification",) and cls.higher_is_better
        assert list(cls().compute(rows([1], [1]))) == [column]
