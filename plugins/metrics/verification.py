"""Face-verification metrics over per-pair rows ``fold, same, score`` (higher score = more similar).

``verification`` (the standard LFW protocol, any pair file, any embedder), columns:

- ``accuracy``: for each fold k, the threshold that maximises accuracy on the pairs of the
  other folds is applied to fold k; the mean of the fold accuracies. ``accuracy_std``: their
  standard deviation (population, ddof = 0, as the LFW evaluation code of SphereFace and
  insightface reports it).
- ``tar_at_far_1e-3``: for each fold k, the threshold is the one that accepts at most
  floor(1e-3 x n) of the n impostor pairs of the other folds (accept iff score > t, t = the
  (floor(1e-3 n) + 1)-th largest impostor score); TAR = share of fold k's matched pairs
  accepted; the mean over folds.
- ``auc``: ROC AUC over all pairs pooled (Mann-Whitney: ties count one half).
- ``eer``: equal error rate over all pairs pooled: the point of the ROC polyline where the
  false accept rate equals the false reject rate (linear interpolation between ROC points).
- ``detection_failures``: distinct images without an embedding (rows ``failed1``/``failed2``).

``verification-fixed-threshold`` (deployment: the thresholds are fixed on the clean images and
applied to compressed ones), from the rows' ``clean_score`` (the same pair's score on the
uncompressed images, which the task adds when the benchmark has the reference row):

- ``fixed_accuracy`` / ``fixed_accuracy_std``: for each fold k, the accuracy threshold chosen
  (as above) on the CLEAN scores of the other folds, applied to fold k's scores on the decoded
  images. On the reference row it equals ``accuracy``.
- ``fixed_tar_at_far_1e-3`` / ``fixed_far_at_far_1e-3``: the FAR = 1e-3 threshold chosen on the
  clean impostor scores of the other folds; the TAR and the FAR that it actually gives on fold
  k's decoded images (a codec that makes strangers look alike raises the FAR).

Rules shared by both:

- Threshold choice: decisions are "same iff score > t"; the candidates are -inf, the midpoints
  between consecutive distinct finite scores, and the largest finite score. Among the
  candidates of maximal accuracy, the lower median is taken (deterministic, and not biased to
  either end of a plateau).
- A pair with a failed detection (score NaN/None) is a wrong decision at every threshold: its
  score becomes -inf if matched (always rejected) and +inf if mismatched (always accepted).
  Such pairs are never dropped.
- Rows carrying a single fold (View 1 pair files) are split into 10 folds: the i-th matched and
  the i-th mismatched pair go to fold (i mod 10) + 1.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from taskcodec import TaskMetric, hookimpl

FAR_TARGET = 1e-3


# ---------------------------------------------------------------------------- arrays
def pair_arrays(rows: Sequence[dict[str, Any]], column: str = "score") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(folds int, same bool, scores float with failures as -inf/+inf) from per-pair rows."""
    same = np.array([bool(r["same"]) for r in rows], dtype=bool)
    raw = np.array([_number(r.get(column)) for r in rows], dtype=np.float64)
    scores = np.where(np.isnan(raw), np.where(same, -np.inf, np.inf), raw)
    folds = np.array([int(r["fold"]) for r in rows], dtype=np.int64)
    if len(np.unique(folds)) < 2:
        folds = stratified_folds(same)
    return folds, same, scores


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def stratified_folds(same: np.ndarray, k: int = 10) -> np.ndarray:
    """Fold numbers 1..k: the i-th matched and the i-th mismatched pair go to fold (i mod k) + 1."""
    folds = np.empty(len(same), dtype=np.int64)
    for label in (True, False):
        idx = np.flatnonzero(same == label)
        folds[idx] = np.arange(len(idx)) % k + 1
    return folds


# ---------------------------------------------------------------------------- thresholds
def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    finite = np.unique(scores[np.isfinite(scores)])
    if len(finite) == 0:
        return np.array([0.0])
    return np.concatenate([[-np.inf], (finite[:-1] + finite[1:]) / 2.0, [finite[-1]]])


def accuracies(scores: np.ndarray, same: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of "same iff score > t" for every t in ``thresholds``."""
    gen = np.sort(scores[same])
    imp = np.sort(scores[~same])
    gen_accepted = len(gen) - np.searchsorted(gen, thresholds, side="right")
    imp_rejected = np.searchsorted(imp, thresholds, side="right")
    return (gen_accepted + imp_rejected) / max(len(scores), 1)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The accuracy-maximising threshold (lower median of the maximisers, see the module doc)."""
    cands = candidate_thresholds(scores)
    acc = accuracies(scores, same, cands)
    best = np.flatnonzero(acc == acc.max())
    return float(cands[best[(len(best) - 1) // 2]])


def far_threshold(impostor_scores: np.ndarray, far: float = FAR_TARGET) -> float:
    """Threshold accepting (score > t) at most floor(far x n) of the n impostor scores."""
    s = np.sort(impostor_scores)[::-1]
    if len(s) == 0:
        return math.inf
    m = int(math.floor(far * len(s) + 1e-9))
    return float(s[m]) if m < len(s) else -math.inf


# ---------------------------------------------------------------------------- protocol
def kfold_accuracy(folds, same, scores, select_scores=None) -> tuple[np.ndarray, np.ndarray]:
    """(fold accuracies, thresholds): threshold chosen on the other folds' ``select_scores``
    (default: ``scores`` themselves), applied to the fold's ``scores``."""
    select = scores if select_scores is None else select_scores
    accs, thresholds = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        t = best_threshold(select[train], same[train])
        accs.append(float(np.mean((scores[test] > t) == same[test])))
        thresholds.append(t)
    return np.array(accs), np.array(thresholds)


def kfold_tar_at_far(folds, same, scores, select_scores=None, far: float = FAR_TARGET) -> tuple[np.ndarray, np.ndarray]:
    """(per-fold TAR, per-fold FAR) on each fold at the FAR threshold of the other folds' impostors."""
    select = scores if select_scores is None else select_scores
    tars, fars = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        t = far_threshold(select[train & ~same], far)
        gen, imp = scores[test & same], scores[test & ~same]
        tars.append(float(np.mean(gen > t)) if len(gen) else math.nan)
        fars.append(float(np.mean(imp > t)) if len(imp) else math.nan)
    return np.array(tars), np.array(fars)


# ---------------------------------------------------------------------------- bootstrap
def stratified_counts(folds: np.ndarray, same: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, pairs) draw counts: each resample draws, with replacement, as many matched and as many
    mismatched pairs in each fold as the fold has, so every resample keeps the protocol's design."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(same)), dtype=np.int64)
    for k in np.unique(folds):
        for label in (True, False):
            members = np.flatnonzero((folds == k) & (same == label))
            if len(members):
                counts[:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)),
                                                     size=n_boot)
    return counts


def resampled_best_thresholds(scores: np.ndarray, same: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`best_threshold` of each resample (row of ``counts``: how often each pair was drawn), exactly
    as if the resampled pairs were materialised: the candidates are those of the drawn scores only."""
    order = np.argsort(scores, kind="stable")
    s, g = scores[order], same[order]
    w = counts[:, order].astype(np.int32)  # counts <= pairs < 2^31; int32 halves the memory traffic
    n_neg = int(np.searchsorted(s, -np.inf, side="right"))  # -inf scores: failed matched pairs
    finite = np.isfinite(s)
    values, starts = np.unique(s[finite], return_index=True)
    if len(values) == 0:
        return np.zeros(len(counts))
    starts = starts + n_neg
    ends = np.r_[starts[1:], n_neg + int(finite.sum())]  # each distinct finite score's block: [start, end)
    cum_gen = np.zeros((len(w), len(s) + 1), dtype=np.int32)  # [:, p]: drawn matched pairs among the first p
    cum_all = np.zeros_like(cum_gen)
    np.cumsum(np.where(g, w, 0), axis=1, out=cum_gen[:, 1:])
    np.cumsum(w, axis=1, out=cum_all[:, 1:])
    cuts = np.r_[n_neg, ends]  # reject the first p pairs: -inf alone, then after each distinct finite score
    # right decisions = matched accepted + mismatched rejected = total matched - matched cut + (cut - matched cut)
    correct = cum_gen[:, -1:] + cum_all[:, cuts] - 2 * cum_gen[:, cuts]
    present = cum_all[:, cuts] > cum_all[:, np.r_[0, starts]]
    present[:, 0] = True  # -inf is always a candidate
    correct[~present] = -1
    maximal = correct == correct.max(axis=1, keepdims=True)
    rank = (maximal.sum(axis=1) - 1) // 2  # lower median of the maximisers
    chosen = np.argmax(np.cumsum(maximal, axis=1) > rank[:, None], axis=1)
    # the threshold after value j is the midpoint to the next drawn value, or j itself if none is drawn
    later = present & (np.arange(present.shape[1])[None, :] > chosen[:, None])
    has_next = later.any(axis=1)
    v = np.r_[-np.inf, values]
    thresholds = np.where(has_next, (v[chosen] + v[np.argmax(later, axis=1)]) / 2.0, v[chosen])
    thresholds[chosen == 0] = -np.inf
    no_finite = ~present[:, 1:].any(axis=1)  # as candidate_thresholds: no finite score drawn
    return np.where(no_finite, 0.0, thresholds)


def resampled_kfold_accuracy(folds, same, scores, counts, select_scores=None) -> np.ndarray:
    """:func:`kfold_accuracy`'s mean on each resample of ``counts`` (n_boot,)."""
    select = scores if select_scores is None else select_scores
    fold_accuracies = []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        t = resampled_best_thresholds(select[train], same[train], counts[:, train])
        right = (scores[test][None, :] > t[:, None]) == same[test][None, :]
        w = counts[:, test]
        fold_accuracies.append((w * right).sum(axis=1) / w.sum(axis=1))
    return np.mean(np.array(fold_accuracies), axis=0)


def roc_auc(same: np.ndarray, scores: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_gen, n_imp = int(same.sum()), int((~same).sum())
    if n_gen == 0 or n_imp == 0:
        return math.nan
    ranks = rankdata(scores)  # average ranks: ties count one half; +-inf rank like any value
    return float((ranks[same].sum() - n_gen * (n_gen + 1) / 2.0) / (n_gen * n_imp))


def roc_curve(same: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct threshold, from (0, 0) (reject all) to (1, 1) (accept all)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], same[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # end of each run of tied scores
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    tar = np.r_[0.0, tp / max(same.sum(), 1)]
    far = np.r_[0.0, fp / max((~same).sum(), 1)]
    return far, tar


def equal_error_rate(same: np.ndarray, scores: np.ndarray) -> float:
    if same.all() or not same.any():
        return math.nan
    far, tar = roc_curve(same, scores)
    g = far + tar - 1.0  # FAR - FRR, non-decreasing along the curve, -1 at the start, +1 at the end
    i = int(np.argmax(g >= 0))
    if g[i] == 0 or i == 0:
        return float(far[i])
    frac = -g[i - 1] / (g[i] - g[i - 1])
    return float(far[i - 1] + frac * (far[i] - far[i - 1]))


def failed_images(rows: Sequence[dict[str, Any]]) -> int:
    failed = set()
    for r in rows:
        for flag, image in (("failed1", "image1"), ("failed2", "image2")):
            if _number(r.get(flag)) == 1:
                failed.add(r.get(image))
    return len(failed)


# ---------------------------------------------------------------------------- plugins
class _VerificationMetric(TaskMetric):
    """Shared by both metrics: bootstrap replicates of the 10-fold accuracies (``accuracy``,
    ``fixed_accuracy``) for the BD-rates' intervals, the pairs resampled within folds and labels."""

    task_types = ("verification",)
    RESAMPLED = {"accuracy": "score", "fixed_accuracy": "clean_score"}  # column -> its threshold scores

    def bootstrap_replicates(self, samples, column, n_boot, seed):
        select_column = self.RESAMPLED.get(column)
        if select_column is None or not {"codec", "rate_point", "fold", "same", "score", select_column} <= set(samples.columns):
            return None
        design, replicates, counts = None, {}, None
        for (codec, point), rows in samples.groupby(["codec", "rate_point"], sort=False, dropna=False):
            records = rows.to_dict("records")
            folds, same, scores = pair_arrays(records)
            pairs = [(r.get("image1"), r.get("image2"), bool(r["same"])) for r in records]
            if design is None:
                design, counts = (folds, pairs), stratified_counts(folds, same, n_boot, seed)
            elif not (np.array_equal(design[0], folds) and design[1] == pairs):
                return None  # rows on other pairs or in another order: no paired resample
            select = None if select_column == "score" else pair_arrays(records, select_column)[2]
            replicates[(codec, point)] = resampled_kfold_accuracy(folds, same, scores, counts, select)
        if not replicates:
            return None
        return ("paired percentile bootstrap over pairs, each fold's matched and mismatched pairs resampled "
                f"separately and the 10-fold accuracy recomputed on each resample ({n_boot} resamples, seed "
                f"{seed}; rates held at the rows')"), replicates


class Verification(_VerificationMetric):
    name = "verification"
    description = ("10-fold verification accuracy (threshold from the other folds) +- std, TAR at FAR=1e-3, "
                   "ROC AUC, EER, detection failures")

    def compute(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        if not rows:
            return {k: math.nan for k in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "auc", "eer")} | {
                "detection_failures": 0}
        folds, same, scores = pair_arrays(rows)
        accs, _ = kfold_accuracy(folds, same, scores)
        tars, _ = kfold_tar_at_far(folds, same, scores)
        return {
            "accuracy": float(accs.mean()),
            "accuracy_std": float(accs.std()),
            "tar_at_far_1e-3": float(np.nanmean(tars)),
            "auc": roc_auc(same, scores),
            "eer": equal_error_rate(same, scores),
            "detection_failures": failed_images(rows),
        }


class FixedThresholdVerification(_VerificationMetric):
    name = "verification-fixed-threshold"
    description = ("deployment: thresholds fixed on the clean images (other folds) applied to decoded ones: "
                   "accuracy, TAR and FAR at the clean FAR=1e-3 threshold")
    COLUMNS = ("fixed_accuracy", "fixed_accuracy_std", "fixed_tar_at_far_1e-3", "fixed_far_at_far_1e-3")

    def compute(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        if not rows or any("clean_score" not in r for r in rows):  # no reference row in the benchmark
            return {k: math.nan for k in self.COLUMNS}
        folds, same, scores = pair_arrays(rows)
        _, _, clean = pair_arrays(rows, "clean_score")
        accs, _ = kfold_accuracy(folds, same, scores, select_scores=clean)
        tars, fars = kfold_tar_at_far(folds, same, scores, select_scores=clean)
        return {
            "fixed_accuracy": float(accs.mean()),
            "fixed_accuracy_std": float(accs.std()),
            "fixed_tar_at_far_1e-3": float(np.nanmean(tars)),
            "fixed_far_at_far_1e-3": float(np.nanmean(fars)),
        }
