"""Bjontegaard-delta metrics for rate vs task-quality curves.

BD-rate (G. Bjontegaard, "Calculation of average PSNR differences between RD-curves", VCEG-M33, 2001):
for each curve interpolate log(rate) as a function of quality, integrate both over the quality interval the
two curves share, take the average difference ``d`` and report ``exp(d) - 1`` (``-0.25`` = 25% fewer bits
than the anchor at equal quality). VCEG-M33 fits one cubic polynomial per curve (``method="cubic"``);
current JVET common-test-condition practice uses piecewise cubic interpolation instead (``method="pchip"``,
the default here). BD-quality (BD-PSNR, BD-accuracy) swaps the axes: the average quality difference over the
shared log-rate interval.

Task accuracy is neither monotone in rate nor unbounded (it saturates), so every curve is first reduced to
its upper Pareto front (:func:`monotone_front`), as MPEG's coding-for-machines tools do before BD. Results
carry the overlap of the two curves and a ``reliable`` flag: BD from a handful of points over a sliver of
shared quality range says little, and :func:`bootstrap_bd_rate` puts an interval on it by resampling images.

Pure numpy; scipy is imported inside the functions that need it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

__all__ = [
    "MIN_FRONT_POINTS",
    "MIN_OVERLAP_FRACTION",
    "BDResult",
    "BootstrapResult",
    "bd_quality",
    "bd_rate",
    "bootstrap_bd_rate",
    "interval_from_replicates",
    "monotone_front",
    "rate_at_quality",
]

#: Below this overlap (shared range / narrower curve's range) a BD value is flagged unreliable.
MIN_OVERLAP_FRACTION = 0.5
#: A curve whose monotone front has fewer points than this makes a BD value unreliable.
MIN_FRONT_POINTS = 4

Method = Literal["pchip", "cubic"]


class _JsonFriendly:
    """``as_dict`` for the result dataclasses: their fields as a dict, tuples as lists."""

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class BDResult(_JsonFriendly):
    """One BD number and what it rests on.

    ``value`` is the BD-rate as a fraction (``-0.25`` = 25% fewer bits) for :func:`bd_rate`, or the average
    quality difference test - anchor (in the quality's units) for :func:`bd_quality`; ``None`` when it
    cannot be computed (``note`` says why). ``overlap`` is the shared interval on the integration axis
    (quality for BD-rate, log(rate) for BD-quality); ``overlap_fraction`` is its length over the narrower of
    the two curves' spans on that axis.
    """

    value: float | None
    overlap: tuple[float, float] | None
    overlap_fraction: float
    reliable: bool
    note: str
    anchor_points: int
    test_points: int
    method: str = "pchip"


@dataclass(frozen=True)
class BootstrapResult(_JsonFriendly):
    """A bootstrap interval of BD-rate; ``interval`` is ``None`` when too few replicates were defined."""

    estimate: float | None
    interval: tuple[float, float] | None
    confidence: float
    n_boot: int
    n_valid: int
    seed: int
    paired: bool
    note: str = ""


# ----------------------------------------------------------------------------------------------- fronts
#: Relative difference below which two qualities count as equal on the front (far above float noise,
#: far below any real difference: one sample in 10^9).
TIE_TOLERANCE = 1e-9


def monotone_front(rates, qualities, higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The upper Pareto front of a rate-quality curve, sorted by rate.

    A point is kept only if its quality is strictly better than that of every point at lower or equal rate;
    of points with equal quality the lowest-rate one is kept. Non-finite points and non-positive rates (which
    have no logarithm) are dropped. Returns ``(rates, qualities)`` as float arrays; along the front both are
    strictly monotone (rate increasing, quality improving).
    """
    r = np.asarray(rates, dtype=float).ravel()
    q = np.asarray(qualities, dtype=float).ravel()
    if r.shape != q.shape:
        raise ValueError(f"rates and qualities differ in length: {r.size} vs {q.size}")
    ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[ok], q[ok]
    s = q if higher_is_better else -q
    # by rate, then best quality first, so the first point at a rate is the one to compare
    order = np.lexsort((-s, r))
    keep: list[int] = []
    best = -np.inf
    for i in order:
        # "better" by more than float noise: two points whose qualities tie exactly (two rate points with
        # the same accuracy) must tie on every CPU, whatever the last bits their means got there
        if s[i] > best + TIE_TOLERANCE * max(1.0, abs(best)) or best == -np.inf:
            keep.append(i)
            best = s[i]
    idx = np.asarray(keep, dtype=int)
    return r[idx], q[idx]


def _front_log(rates, qualities, higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Front as (log rate, quality oriented so that higher is better)."""
    r, q = monotone_front(rates, qualities, higher_is_better)
    return np.log(r), (q if higher_is_better else -q)


# ---------------------------------------------------------------------------------------- integration
def _mean_over(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Mean of the interpolant of y(x) (x strictly increasing) over [lo, hi]."""
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi)) / (hi - lo)
    if method == "cubic":
        # VCEG-M33's least-squares cubic (exact through 4 points), fewer points -> lower degree.
        # Polynomial.fit is np.polyfit on a rescaled axis: same fit, better conditioned for PSNR-sized x.
        poly = np.polynomial.Polynomial.fit(x, y, deg=min(3, x.size - 1))
        antideriv = poly.integ()
        return float(antideriv(hi) - antideriv(lo)) / (hi - lo)
    raise ValueError(f"unknown BD method {method!r}; expected 'pchip' or 'cubic'")


def _bd_core(xa, ya, xt, yt, method: str, axis_name: str):
    """Shared BD logic on two fronts given as x (integration axis, increasing) and y (integrand).

    Returns (mean difference test - anchor or None, overlap, fraction, reliable, note).
    """
    na, nt = xa.size, xt.size
    if na < 2 or nt < 2:
        which = [n for n, k in (("anchor", na), ("test", nt)) if k < 2]
        subject = "both curves have" if len(which) == 2 else f"{which[0]} curve has"
        return None, None, 0.0, False, f"{subject} fewer than 2 front points (anchor {na}, test {nt})"
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    span = min(xa[-1] - xa[0], xt[-1] - xt[0])
    if not hi > lo:
        return None, None, 0.0, False, f"{axis_name} ranges do not overlap"
    frac = float((hi - lo) / span)
    d = _mean_over(xt, yt, lo, hi, method) - _mean_over(xa, ya, lo, hi, method)
    notes = []
    if frac < MIN_OVERLAP_FRACTION:
        notes.append(f"{axis_name} ranges barely overlap ({frac:.0%} of the narrower range)")
    few = [f"{n} {k}" for n, k in (("anchor", na), ("test", nt)) if k < MIN_FRONT_POINTS]
    if few:
        notes.append(f"fewer than {MIN_FRONT_POINTS} front points ({', '.join(few)})")
    return float(d), (float(lo), float(hi)), frac, not notes, "; ".join(notes)


def _check_method(method: str) -> None:
    if method not in ("pchip", "cubic"):
        raise ValueError(f"unknown BD method {method!r}; expected 'pchip' or 'cubic'")


# ------------------------------------------------------------------------------------------ public BD
def bd_rate(anchor_rates, anchor_q, test_rates, test_q, method: Method = "pchip",
            higher_is_better: bool = True) -> BDResult:
    """BD-rate of the test curve against the anchor (VCEG-M33), on each curve's monotone front.

    ``value`` is ``exp(d) - 1`` where ``d`` is the mean of log(rate_test) - log(rate_anchor) over the
    quality interval both fronts cover: ``-0.5`` means the test codec needs half the bits for the same
    quality. ``overlap`` is that quality interval.
    """
    _check_method(method)
    la, qa = _front_log(anchor_rates, anchor_q, higher_is_better)
    lt, qt = _front_log(test_rates, test_q, higher_is_better)
    d, ov, frac, reliable, note = _bd_core(qa, la, qt, lt, method, "quality")
    if ov is not None and not higher_is_better:
        ov = (-ov[1], -ov[0])
    value = None if d is None else float(np.expm1(d))
    return BDResult(value, ov, frac, reliable, note, qa.size, qt.size, method)


def bd_quality(anchor_rates, anchor_q, test_rates, test_q, method: Method = "pchip",
               higher_is_better: bool = True) -> BDResult:
    """BD-quality (BD-PSNR, BD-accuracy): mean of quality_test - quality_anchor over the shared log-rate range.

    Positive is better when ``higher_is_better``; for a lower-is-better metric the difference keeps its sign
    in the metric's own units (negative = better). ``overlap`` is the shared interval of log(rate).
    """
    _check_method(method)
    la, qa = _front_log(anchor_rates, anchor_q, higher_is_better)
    lt, qt = _front_log(test_rates, test_q, higher_is_better)
    d, ov, frac, reliable, note = _bd_core(la, qa, lt, qt, method, "log-rate")
    if d is not None and not higher_is_better:
        d = -d
    return BDResult(d, ov, frac, reliable, note, qa.size, qt.size, method)


# ------------------------------------------------------------------------------------------ bootstrap
def _as_matrix(x, name: str, points: int | None = None) -> np.ndarray:
    m = np.asarray(x, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a (points, samples) matrix, got shape {m.shape}")
    if points is not None and m.shape[0] != points:
        raise ValueError(f"{name} has {m.shape[0]} points, expected {points}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} holds non-finite values; drop incomplete samples first")
    return m


def bootstrap_bd_rate(anchor_rates, anchor_scores, test_rates, test_scores, *, n_boot: int = 200,
                      seed: int = 0, confidence: float = 0.95, paired: bool = True,
                      method: Method = "pchip", higher_is_better: bool = True,
                      min_valid_fraction: float = 0.5) -> BootstrapResult:
    """Percentile bootstrap interval of BD-rate, resampling samples (images, pairs) with replacement.

    Each argument is a ``(points, samples)`` matrix: per-sample rate (bpp) and per-sample score (e.g.
    ``correct`` 0/1) of every point (rate_point) of a curve. A curve's point is (mean rate, mean score) over
    the samples, i.e. mean of per-image bpp and accuracy. With ``paired=True`` (same samples, same column
    order, in both curves) each replicate draws one set of samples for both curves, which is the right
    design when the codecs were run on the same test set; otherwise the curves are resampled independently.
    Replicates whose BD-rate is undefined (no overlap) are dropped; with fewer than ``min_valid_fraction``
    of them defined no interval is returned. ``estimate`` is the BD-rate of the full data.
    """
    ar = _as_matrix(anchor_rates, "anchor_rates")
    asc = _as_matrix(anchor_scores, "anchor_scores", ar.shape[0])
    tr = _as_matrix(test_rates, "test_rates")
    tsc = _as_matrix(test_scores, "test_scores", tr.shape[0])
    if asc.shape != ar.shape or tsc.shape != tr.shape:
        raise ValueError("rates and scores of a curve must have the same (points, samples) shape")
    if paired and ar.shape[1] != tr.shape[1]:
        raise ValueError(f"paired bootstrap needs the same samples in both curves: {ar.shape[1]} vs "
                         f"{tr.shape[1]}")
    _check_method(method)
    estimate = bd_rate(ar.mean(1), asc.mean(1), tr.mean(1), tsc.mean(1), method, higher_is_better).value

    rng = np.random.default_rng(seed)

    def resampled_means(n: int, *mats: np.ndarray) -> list[np.ndarray]:
        # counts[b, j] = how often sample j was drawn in replicate b; means via one matrix product.
        # Integer-valued scores (0/1 correct) are summed in integers: exact, so the same on every CPU
        # (a float BLAS product's last bits depend on its kernels, and ties between points then do too).
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        means = []
        for m in mats:
            if np.array_equal(m, np.round(m)) and np.abs(m).max(initial=0) < 2 ** 31:
                means.append((counts @ m.astype(np.int64).T) / n)
            else:
                means.append((counts.astype(float) / n) @ m.T)
        return means  # (n_boot, points) each

    if paired:
        mar, mas, mtr, mts = resampled_means(ar.shape[1], ar, asc, tr, tsc)
    else:
        mar, mas = resampled_means(ar.shape[1], ar, asc)
        mtr, mts = resampled_means(tr.shape[1], tr, tsc)
    return interval_from_replicates(mar, mas, mtr, mts, estimate=estimate, confidence=confidence, seed=seed,
                                    paired=paired, method=method, higher_is_better=higher_is_better,
                                    min_valid_fraction=min_valid_fraction)


def interval_from_replicates(anchor_rates, anchor_quality, test_rates, test_quality, *, estimate: float | None,
                             confidence: float = 0.95, seed: int = 0, paired: bool = True,
                             method: Method = "pchip", higher_is_better: bool = True,
                             min_valid_fraction: float = 0.5) -> BootstrapResult:
    """Percentile interval of BD-rate from bootstrap replicates of both curves.

    Each argument is a ``(replicates, points)`` matrix: replicate b's rate or quality at every point of a
    curve, however it was resampled (:func:`bootstrap_bd_rate` takes means of resampled samples; a metric
    that is not a mean, such as 10-fold verification accuracy, recomputes itself on each resample). For a
    paired interval, replicate b of both curves must come from the same resample. Replicates whose BD-rate
    is undefined (no overlap) are dropped; with fewer than ``min_valid_fraction`` of them defined no
    interval is returned. ``estimate``: the BD-rate of the full data, carried into the result.
    """
    mar, mas = np.asarray(anchor_rates, float), np.asarray(anchor_quality, float)
    mtr, mts = np.asarray(test_rates, float), np.asarray(test_quality, float)
    if mar.ndim != 2 or mar.shape != mas.shape or mtr.ndim != 2 or mtr.shape != mts.shape \
            or mar.shape[0] != mtr.shape[0]:
        raise ValueError(f"replicates must be (replicates, points) matrices with as many replicates in both "
                         f"curves: anchor {mar.shape}/{mas.shape}, test {mtr.shape}/{mts.shape}")
    _check_method(method)
    n_boot = mar.shape[0]
    values = []
    for b in range(n_boot):
        v = bd_rate(mar[b], mas[b], mtr[b], mts[b], method, higher_is_better).value
        if v is not None:
            values.append(v)
    n_valid = len(values)
    alpha = (1.0 - confidence) / 2.0
    if n_valid < max(2, min_valid_fraction * n_boot):
        return BootstrapResult(estimate, None, confidence, n_boot, n_valid, seed, paired,
                               f"BD-rate defined in only {n_valid} of {n_boot} replicates")
    lo, hi = np.quantile(np.asarray(values), [alpha, 1.0 - alpha])
    note = "" if n_valid == n_boot else f"BD-rate undefined in {n_boot - n_valid} of {n_boot} replicates"
    return BootstrapResult(estimate, (float(lo), float(hi)), confidence, n_boot, n_valid, seed, paired, note)


# ---------------------------------------------------------------------------------------- rate lookup
def quality_at_rate(rates, qualities, rate: float, higher_is_better: bool = True) -> float | None:
    """The monotone front's quality at ``rate``, linear in log(rate) between front points; ``None`` outside
    the front's rate range (no extrapolation)."""
    r, q = monotone_front(rates, qualities, higher_is_better)
    if r.size == 0 or not (r[0] <= rate <= r[-1]):
        return None
    k = int(np.searchsorted(r, rate))
    if r[k] == rate or k == 0:
        return float(q[k])
    w = (np.log(rate) - np.log(r[k - 1])) / (np.log(r[k]) - np.log(r[k - 1]))
    return float(q[k - 1] + w * (q[k] - q[k - 1]))


def rate_at_quality(rates, qualities, target: float, higher_is_better: bool = True) -> float | None:
    """The smallest rate at which the monotone front reaches ``target`` quality.

    Between two front points quality is taken as linear in log(rate). If the lowest-rate front point already
    reaches the target its rate is returned (no extrapolation below the measured range); ``None`` if no
    point reaches it.
    """
    r, q = monotone_front(rates, qualities, higher_is_better)
    s = q if higher_is_better else -q
    t = target if higher_is_better else -target
    if r.size == 0 or s[-1] < t:
        return None
    k = int(np.argmax(s >= t))
    if k == 0:
        return float(r[0])
    w = (t - s[k - 1]) / (s[k] - s[k - 1])
    return float(np.exp(np.log(r[k - 1]) + w * (np.log(r[k]) - np.log(r[k - 1]))))
