"""The verification metrics against independent brute-force computations on generated scores."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from taskcodec_plugins.metrics import verification


def generated_rows(seed=0, folds=10, per_class=30, separation=1.5, clean_shift=None, fail_every=0):
    """Per-pair rows like the face tasks write: matched pairs score higher on average."""
    rng = np.random.default_rng(seed)
    rows = []
    index = 0
    for fold in range(1, folds + 1):
        for same in (True, False):
            for _ in range(per_class):
                score = rng.normal(separation if same else 0.0, 1.0)
                score = round(float(score), 2)  # coarse: plenty of ties
                row = {"fold": fold, "same": int(same), "score": score, "image1": f"a{index}", "image2": f"b{index}",
                       "failed1": 0, "failed2": 0}
                if clean_shift is not None:
                    row["clean_score"] = round(score + clean_shift * rng.normal(), 2)
                if fail_every and index % fail_every == 0:
                    row["score"], row["failed1"] = math.nan, 1
                rows.append(row)
                index += 1
    return rows


def brute_accuracy(rows):
    """Literal protocol: per fold, try every midpoint threshold of the training scores with plain loops."""
    fold_ids = sorted({r["fold"] for r in rows})
    accs = []
    for k in fold_ids:
        train = [r for r in rows if r["fold"] != k]
        test = [r for r in rows if r["fold"] == k]

        def score_of(r):
            s = r["score"]
            if s is None or (isinstance(s, float) and math.isnan(s)):
                return -math.inf if r["same"] else math.inf
            return s

        finite = sorted({score_of(r) for r in train if math.isfinite(score_of(r))})
        cands = [-math.inf] + [(a + b) / 2 for a, b in zip(finite, finite[1:])] + [finite[-1]]
        best_acc, best = -1.0, []
        for t in cands:
            acc = sum((score_of(r) > t) == bool(r["same"]) for r in train) / len(train)
            if acc > best_acc + 1e-15:
                best_acc, best = acc, [t]
            elif abs(acc - best_acc) <= 1e-15:
                best.append(t)
        t = best[(len(best) - 1) // 2]
        accs.append(sum((score_of(r) > t) == bool(r["same"]) for r in test) / len(test))
    return float(np.mean(accs)), float(np.std(accs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fold_accuracy_matches_brute_force(seed):
    rows = generated_rows(seed=seed)
    out = verification.Verification().compute(rows)
    acc, std = brute_accuracy(rows)
    assert out["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert out["accuracy_std"] == pytest.approx(std, abs=1e-12)
    assert 0.6 < out["accuracy"] < 0.95


def test_training_threshold_is_optimal_on_a_fine_grid():
    rows = generated_rows(seed=5)
    folds, same, scores = verification.pair_arrays(rows)
    for k in range(1, 11):
        train = folds != k
        t = verification.best_threshold(scores[train], same[train])
        chosen = np.mean((scores[train] > t) == same[train])
        grid = np.linspace(scores[train].min() - 1, scores[train].max() + 1, 4001)
        best_grid = max(np.mean((scores[train] > g) == same[train]) for g in grid)
        assert chosen >= best_grid - 1e-12


def test_failed_detections_are_wrong_decisions():
    rows = generated_rows(seed=3, separation=8.0, fail_every=7)  # perfectly separable but for the failures
    out = verification.Verification().compute(rows)
    failed_pairs = sum(1 for r in rows if r["failed1"])
    assert out["accuracy"] == pytest.approx(1 - failed_pairs / len(rows))
    assert out["detection_failures"] == failed_pairs  # distinct images a0, a7, ...
    acc, _ = brute_accuracy(rows)
    assert out["accuracy"] == pytest.approx(acc)
    assert out["auc"] < 1.0


def brute_tar_at_far(rows, far=1e-3):
    tars = []
    for k in sorted({r["fold"] for r in rows}):
        imp = sorted((r["score"] for r in rows if r["fold"] != k and not r["same"]), reverse=True)
        allowed = math.floor(far * len(imp) + 1e-9)
        # the lowest threshold t (among the impostor scores) accepting at most `allowed` impostors (score > t)
        t = min(s for s in imp if sum(x > s for x in imp) <= allowed)
        gen = [r["score"] for r in rows if r["fold"] == k and r["same"]]
        tars.append(sum(g > t for g in gen) / len(gen))
    return float(np.mean(tars))


@pytest.mark.parametrize("far", [1e-3, 0.02, 0.1])
def test_tar_at_far_matches_brute_force(far):
    rows = generated_rows(seed=7, per_class=60)
    folds, same, scores = verification.pair_arrays(rows)
    tars, fars = verification.kfold_tar_at_far(folds, same, scores, far=far)
    assert float(np.mean(tars)) == pytest.approx(brute_tar_at_far(rows, far))
    if far == 1e-3:
        assert verification.Verification().compute(rows)["tar_at_far_1e-3"] == pytest.approx(brute_tar_at_far(rows, far))


def test_auc_and_eer_against_pairwise_counts():
    rows = generated_rows(seed=11)
    _, same, scores = verification.pair_arrays(rows)
    gen, imp = scores[same], scores[~same]
    wins = sum((g > i) + 0.5 * (g == i) for g, i in itertools.product(gen, imp))
    assert verification.roc_auc(same, scores) == pytest.approx(wins / (len(gen) * len(imp)))
    eer = verification.equal_error_rate(same, scores)
    # at the EER the false accept and false reject rates meet: within a step of the step curves' crossing
    ts = np.r_[np.unique(scores), np.inf]
    far = np.array([np.mean(imp >= t) for t in ts])
    frr = np.array([np.mean(gen < t) for t in ts])
    assert abs(eer - np.min(np.maximum(far, frr))) <= 2.0 / min(len(gen), len(imp))
    # a textbook case: one impostor outscores every genuine pair: FAR = FRR = 0.2
    same2 = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    scores2 = np.array([0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.95])
    assert verification.roc_auc(same2, scores2) == pytest.approx(16 / 20)
    assert verification.equal_error_rate(same2, scores2) == pytest.approx(0.2)


def test_fixed_threshold_equals_standard_on_clean_rows_and_uses_clean_scores():
    rows = generated_rows(seed=4, clean_shift=0.0)
    for r in rows:
        r["clean_score"] = r["score"]
    assert verification.FixedThresholdVerification().compute(rows)["fixed_accuracy"] == pytest.approx(
        verification.Verification().compute(rows)["accuracy"])
    # scores shifted up by a "codec": the clean threshold now accepts more impostors
    shifted = [dict(r, score=r["score"] + 1.0) for r in rows]
    fixed = verification.FixedThresholdVerification().compute(shifted)
    assert fixed["fixed_far_at_far_1e-3"] > 0.01
    assert fixed["fixed_accuracy"] < verification.Verification().compute(shifted)["accuracy"]
    # brute force: per fold, the threshold from the clean scores of the other folds
    clean_rows = [dict(r, score=r["clean_score"]) for r in rows]
    accs = []
    for k in range(1, 11):
        f, s, c = verification.pair_arrays([r for r in clean_rows if r["fold"] != k])
        t = verification.best_threshold(c, s)
        test = [r for r in shifted if r["fold"] == k]
        accs.append(np.mean([(r["score"] > t) == bool(r["same"]) for r in test]))
    assert fixed["fixed_accuracy"] == pytest.approx(np.mean(accs))


def test_fixed_threshold_without_reference_is_nan():
    out = verification.FixedThresholdVerification().compute(generated_rows(seed=1))
    assert all(math.isnan(v) for v in out.values())


def test_single_fold_files_are_split_into_ten_stratified_folds():
    rows = generated_rows(seed=2, folds=1, per_class=50)
    folds, same, _ = verification.pair_arrays(rows)
    assert sorted(set(folds)) == list(range(1, 11))
    for k in range(1, 11):
        assert same[folds == k].sum() == 5 and (~same[folds == k]).sum() == 5
    assert 0.5 < verification.Verification().compute(rows)["accuracy"] <= 1.0


# ---------------------------------------------------------------------------- bootstrap replicates
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resampled_accuracy_equals_recomputing_each_materialised_resample(seed):
    """Weighted by draw counts, the 10-fold accuracy must be the metric's own on the resampled pairs (ties,
    failed detections and clean-score thresholds included): the interval is of the published statistic."""
    rows = generated_rows(seed=seed, per_class=12, clean_shift=0.3, fail_every=17)
    folds, same, scores = verification.pair_arrays(rows)
    _, _, clean = verification.pair_arrays(rows, "clean_score")
    counts = verification.stratified_counts(folds, same, 25, seed)
    for select in (None, clean):
        replicates = verification.resampled_kfold_accuracy(folds, same, scores, counts, select)
        for b in range(len(counts)):
            drawn = np.repeat(np.arange(len(same)), counts[b])
            accs, _ = verification.kfold_accuracy(folds[drawn], same[drawn], scores[drawn],
                                                  None if select is None else select[drawn])
            assert replicates[b] == pytest.approx(accs.mean(), abs=1e-12)


def test_resamples_keep_each_folds_matched_and_mismatched_counts():
    rows = generated_rows(per_class=7)
    folds, same, _ = verification.pair_arrays(rows)
    counts = verification.stratified_counts(folds, same, 40, 3)
    for k in range(1, 11):
        for label in (True, False):
            assert (counts[:, (folds == k) & (same == label)].sum(axis=1) == 7).all()
    assert (counts != 1).any()  # an actual resample, not the data again
    assert np.array_equal(counts, verification.stratified_counts(folds, same, 40, 3))


def _frame(codec_rows):
    import pandas as pd

    return pd.DataFrame([dict(r, codec=codec, rate_point=point) for (codec, point), rows in codec_rows.items()
                         for r in rows])


def test_replicates_are_paired_and_refused_for_rows_of_other_pairs():
    metric = verification.Verification()
    noisy = generated_rows(seed=5, separation=0.8)
    clean = generated_rows(seed=5)
    samples = _frame({("a", 1.0): clean, ("a", 2.0): noisy})
    method, replicates = metric.bootstrap_replicates(samples, "accuracy", 30, 0)
    assert "pairs" in method and set(replicates) == {("a", 1.0), ("a", 2.0)}
    # the same resamples for both rows: a row's replicates do not depend on which other rows are there
    alone = metric.bootstrap_replicates(_frame({("a", 2.0): noisy}), "accuracy", 30, 0)[1]
    assert np.array_equal(alone[("a", 2.0)], replicates[("a", 2.0)])
    assert replicates[("a", 1.0)].mean() > replicates[("a", 2.0)].mean()
    assert metric.bootstrap_replicates(samples, "auc", 30, 0) is None  # not a 10-fold accuracy
    shuffled = _frame({("a", 1.0): clean, ("b", 1.0): clean[::-1]})
    assert metric.bootstrap_replicates(shuffled, "accuracy", 30, 0) is None


def test_fixed_accuracy_replicates_use_the_clean_thresholds():
    rows = generated_rows(seed=2, clean_shift=0.5)
    samples = _frame({("a", 1.0): rows})
    metric = verification.FixedThresholdVerification()
    fixed = metric.bootstrap_replicates(samples, "fixed_accuracy", 20, 0)[1][("a", 1.0)]
    plain = metric.bootstrap_replicates(samples, "accuracy", 20, 0)[1][("a", 1.0)]
    assert not np.array_equal(fixed, plain)
    assert metric.bootstrap_replicates(_frame({("a", 1.0): generated_rows()}), "fixed_accuracy", 20, 0) is None
