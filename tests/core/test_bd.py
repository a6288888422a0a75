"""BD metrics against hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from taskcodec.bd import (
    MIN_OVERLAP_FRACTION,
    bd_quality,
    bd_rate,
    bootstrap_bd_rate,
    monotone_front,
    rate_at_quality,
)

METHODS = ["pchip", "cubic"]
RATES = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
ACC = np.array([0.55, 0.68, 0.76, 0.81, 0.83])


# ------------------------------------------------------------------------------------ monotone front
def test_front_drops_dominated_and_saturated_points():
    r = [2.0, 0.5, 1.0, 4.0, 8.0, 3.0]
    q = [0.80, 0.60, 0.58, 0.80, 0.79, 0.81]
    fr, fq = monotone_front(r, q)
    # 1.0 is worse than 0.5; 4.0 ties 2.0 at higher rate; 8.0 worse than 3.0
    assert fr.tolist() == [0.5, 2.0, 3.0]
    assert fq.tolist() == [0.60, 0.80, 0.81]


def test_front_duplicates_and_lower_is_better():
    fr, fq = monotone_front([1, 1, 2, 2], [0.5, 0.7, 0.7, 0.9])
    assert fr.tolist() == [1, 2] and fq.tolist() == [0.7, 0.9]
    fr, fq = monotone_front([1, 2, 3], [10.0, 12.0, 5.0], higher_is_better=False)  # e.g. an error rate
    assert fr.tolist() == [1, 3] and fq.tolist() == [10.0, 5.0]


def test_front_drops_nonfinite_and_nonpositive_rates():
    fr, fq = monotone_front([0.0, np.nan, 1.0, 2.0], [0.9, 0.9, 0.5, np.nan])
    assert fr.tolist() == [1.0] and fq.tolist() == [0.5]


# ---------------------------------------------------------------------------------------- BD-rate
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale, expected", [(0.5, -0.5), (1.2, 0.2), (1.0, 0.0)])
def test_bd_rate_scaled_rates(method, scale, expected):
    res = bd_rate(RATES, ACC, RATES * scale, ACC, method=method)
    assert res.value == pytest.approx(expected, abs=1e-12)
    assert res.overlap == pytest.approx((0.55, 0.83))
    assert res.overlap_fraction == pytest.approx(1.0)
    assert res.reliable and res.note == ""
    assert (res.anchor_points, res.test_points) == (5, 5)


@pytest.mark.parametrize("method", METHODS)
def test_bd_rate_linear_partial_overlap_by_hand(method):
    # anchor: ln r = q on q in [0, 1]; test: ln r = 0.5 q + 0.1 on q in [0.4, 1.4].
    # Shared q interval [0.4, 1]: mean ln r anchor = 0.7, test = 0.5*0.7 + 0.1 = 0.45 -> d = -0.25.
    qa = np.linspace(0.0, 1.0, 4)
    qt = np.linspace(0.4, 1.4, 5)
    res = bd_rate(np.exp(qa), qa, np.exp(0.5 * qt + 0.1), qt, method=method)
    assert res.value == pytest.approx(math.exp(-0.25) - 1, abs=1e-12)
    assert res.overlap == pytest.approx((0.4, 1.0))
    assert res.overlap_fraction == pytest.approx(0.6)
    assert res.reliable


def test_bd_rate_non_monotone_input_uses_front():
    noisy_r = np.r_[RATES, 3.0, 8.0]
    noisy_q = np.r_[ACC, 0.70, 0.825]  # a dip and a saturated drop: both off the front
    clean = bd_rate(RATES, ACC, RATES * 0.7, ACC)
    noisy = bd_rate(noisy_r, noisy_q, RATES * 0.7, ACC)
    assert noisy.value == pytest.approx(clean.value, abs=1e-12)
    assert noisy.anchor_points == 5
    assert clean.value == pytest.approx(-0.3, abs=1e-12)


def test_bd_rate_no_overlap_is_none_with_note():
    res = bd_rate([1, 2, 4, 8], [0.1, 0.2, 0.3, 0.4], [1, 2, 4, 8], [0.5, 0.6, 0.7, 0.8])
    assert res.value is None and res.overlap is None
    assert "do not overlap" in res.note
    assert not res.reliable


def test_bd_rate_too_few_points_is_none():
    res = bd_rate([1.0], [0.5], [1, 2], [0.4, 0.6])
    assert res.value is None
    assert "fewer than 2 front points" in res.note and "anchor" in res.note
    # two points on the front but saturated duplicates: still only one front point
    res = bd_rate([1, 2, 4], [0.5, 0.5, 0.5], [1, 2], [0.4, 0.6])
    assert res.value is None and res.anchor_points == 1


def test_bd_rate_small_overlap_is_unreliable():
    q = np.array([0.1, 0.2, 0.3, 0.4])
    res = bd_rate(np.exp(q), q, np.exp(q), q + 0.32)  # test starts at 0.42 > 0.4: no overlap at all
    assert res.value is None
    res = bd_rate(np.exp(q), q, np.exp(q), q + 0.27)  # shared [0.37, 0.4] = 10% of 0.3
    assert res.value is not None
    assert res.overlap_fraction == pytest.approx(0.1)
    assert res.overlap_fraction < MIN_OVERLAP_FRACTION
    assert not res.reliable
    assert "barely overlap (10% of the narrower range)" in res.note


def test_bd_rate_few_points_flagged_but_computed():
    res = bd_rate(RATES[:3], ACC[:3], RATES[:3] / 2, ACC[:3])
    assert res.value == pytest.approx(-0.5)
    assert not res.reliable and "fewer than 4 front points" in res.note


@pytest.mark.parametrize("method", METHODS)
def test_bd_rate_lower_is_better_matches_negated_quality(method):
    err = 1 - ACC
    a = bd_rate(RATES, ACC, RATES * 0.8, ACC + 0.01, method=method)
    b = bd_rate(RATES, err, RATES * 0.8, err - 0.01, method=method, higher_is_better=False)
    assert b.value == pytest.approx(a.value, abs=1e-12)
    lo, hi = b.overlap
    assert lo < hi and lo == pytest.approx(1 - a.overlap[1])


def test_pchip_and_cubic_agree_on_smooth_curves():
    r = np.geomspace(0.1, 2.0, 6)
    qa = 0.9 - 0.4 * np.exp(-2.0 * r)
    qt = 0.9 - 0.4 * np.exp(-3.0 * r)  # reaches the same accuracy with 2/3 of the bits
    p = bd_rate(r, qa, r, qt, method="pchip").value
    c = bd_rate(r, qa, r, qt, method="cubic").value
    assert p == pytest.approx(-1 / 3, abs=0.02)
    assert abs(p - c) < 0.02


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="pchip"):
        bd_rate(RATES, ACC, RATES, ACC, method="akima")


# ------------------------------------------------------------------------------------- BD-quality
@pytest.mark.parametrize("method", METHODS)
def test_bd_quality_constant_shift(method):
    res = bd_quality(RATES, ACC, RATES, ACC + 0.03, method=method)
    assert res.value == pytest.approx(0.03, abs=1e-12)
    assert res.overlap == pytest.approx((math.log(0.25), math.log(4.0)))
    assert res.reliable


@pytest.mark.parametrize("method", METHODS)
def test_bd_quality_linear_partial_overlap_by_hand(method):
    # anchor q = ln r on ln r in [0, 1]; test q = ln r + 0.05 on ln r in [0.5, 1.5]: shared [0.5, 1] (50%)
    la, lt = np.linspace(0, 1, 5), np.linspace(0.5, 1.5, 5)
    res = bd_quality(np.exp(la), la, np.exp(lt), lt + 0.05, method=method)
    assert res.value == pytest.approx(0.05, abs=1e-12)
    assert res.overlap_fraction == pytest.approx(0.5)


def test_bd_quality_lower_is_better_keeps_metric_sign():
    res = bd_quality(RATES, 1 - ACC, RATES, 1 - ACC - 0.02, higher_is_better=False)
    assert res.value == pytest.approx(-0.02, abs=1e-12)


# -------------------------------------------------------------------------------------- bootstrap
def _per_sample(n, rng, rate_scale=1.0):
    """Per-image bpp around the nominal rates, correctness drawn from the ACC curve."""
    bpp = RATES[:, None] * rate_scale * rng.uniform(0.8, 1.2, size=(RATES.size, n))
    u = rng.uniform(size=n)  # one difficulty per image: harder images fail first (nested correctness)
    correct = (u[None, :] < ACC[:, None]).astype(float)
    return bpp, correct


def test_bootstrap_contains_estimate_and_shrinks():
    rng = np.random.default_rng(1)
    widths = []
    for n in (300, 3000):
        ar, asc = _per_sample(n, rng)
        tr, tsc = ar * 0.6, asc.copy()
        tsc[:, rng.uniform(size=n) < 0.05] = 1.0  # the test codec also rescues some images
        res = bootstrap_bd_rate(ar, asc, tr, tsc, n_boot=200, seed=0)
        assert res.n_valid == 200 and res.interval is not None
        lo, hi = res.interval
        assert lo <= res.estimate <= hi
        assert res.estimate < -0.4
        widths.append(hi - lo)
    assert widths[1] < widths[0]


def test_bootstrap_is_deterministic_and_exact_for_pure_rate_scaling():
    rng = np.random.default_rng(2)
    ar, asc = _per_sample(200, rng)
    a = bootstrap_bd_rate(ar, asc, ar * 0.5, asc, n_boot=50, seed=3)
    b = bootstrap_bd_rate(ar, asc, ar * 0.5, asc, n_boot=50, seed=3)
    assert a == b
    # paired resampling of an exactly halved curve: every replicate is -50%
    assert a.interval == pytest.approx((-0.5, -0.5), abs=1e-9)


def test_bootstrap_unpaired_and_shape_errors():
    rng = np.random.default_rng(4)
    ar, asc = _per_sample(100, rng)
    tr, tsc = _per_sample(150, rng, rate_scale=0.8)
    res = bootstrap_bd_rate(ar, asc, tr, tsc, paired=False, n_boot=50)
    assert res.interval is not None and not res.paired
    with pytest.raises(ValueError, match="paired"):
        bootstrap_bd_rate(ar, asc, tr, tsc)
    with pytest.raises(ValueError, match="points, samples"):
        bootstrap_bd_rate(ar[0], asc[0], tr, tsc, paired=False)


# --------------------------------------------------------------------------------- rate at quality
def test_rate_at_quality_interpolates_in_log_rate():
    # between (1, 0.70) and (4, 0.80): target 0.75 is halfway -> ln r = ln 2
    assert rate_at_quality([1, 4, 2.5], [0.70, 0.80, 0.60], 0.75) == pytest.approx(2.0)
    assert rate_at_quality([1, 4], [0.70, 0.80], 0.80) == pytest.approx(4.0)
    assert rate_at_quality([1, 4], [0.70, 0.80], 0.65) == pytest.approx(1.0)  # reached at the first point
    assert rate_at_quality([1, 4], [0.70, 0.80], 0.81) is None
    assert rate_at_quality([1, 4], [0.30, 0.20], 0.25, higher_is_better=False) == pytest.approx(2.0)


def test_quality_at_rate_reads_the_front_in_log_rate_without_extrapolating():
    from taskcodec.bd import quality_at_rate

    rates, quality = [1.0, 4.0, 2.0, 8.0], [0.6, 0.8, 0.55, 0.9]  # (2, 0.55) lies off the monotone front
    assert quality_at_rate(rates, quality, 2.0) == pytest.approx(0.7)  # halfway in log-rate from 1 to 4
    assert quality_at_rate(rates, quality, 1.0) == pytest.approx(0.6)
    assert quality_at_rate(rates, quality, 8.0) == pytest.approx(0.9)
    assert quality_at_rate(rates, quality, 0.5) is None and quality_at_rate(rates, quality, 9.0) is None
