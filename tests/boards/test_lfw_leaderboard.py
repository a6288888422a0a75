"""The published LFW leaderboards: every task number in results.csv recomputes from samples.csv.gz.

Also usable as a script: ``python tests/boards/test_lfw_leaderboard.py leaderboard/lfw`` prints the check.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers import REPO

BOARDS = [REPO / "leaderboard" / "lfw", REPO / "leaderboard" / "lfw-compress-then-align"]
COLUMNS = ("accuracy", "accuracy_std", "tar_at_far_1e-3", "auc", "eer", "detection_failures",
           "fixed_accuracy", "fixed_accuracy_std", "fixed_tar_at_far_1e-3", "fixed_far_at_far_1e-3")


def _key(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.6g}"


def check_board(folder: Path) -> list[tuple[str, str, str, float, float]]:
    """(codec, rate point, column, published, recomputed) for every task column of results.csv."""
    from taskcodec_plugins.metrics import verification

    results = pd.read_csv(folder / "results.csv")
    samples = pd.read_csv(folder / "samples.csv.gz")
    samples["_key"] = samples.rate_point.map(_key)
    groups = {k: g for k, g in samples.groupby(["codec", "_key"])}
    out = []
    for _, row in results.iterrows():
        rows = groups[(row.codec, _key(row.rate_point))].drop(columns=["codec", "rate_point", "_key"])
        rows = rows.to_dict(orient="records")
        values = verification.Verification().compute(rows) | verification.FixedThresholdVerification().compute(rows)
        for column in COLUMNS:
            if column in results.columns:
                out.append((row.codec, _key(row.rate_point), column, float(row[column]), float(values[column])))
    return out


@pytest.mark.parametrize("folder", BOARDS, ids=lambda p: p.name)
def test_published_numbers_recompute_from_the_samples(folder):
    if not (folder / "results.csv").is_file():
        pytest.skip(f"{folder} not published yet")
    checked = check_board(folder)
    results = pd.read_csv(folder / "results.csv")
    assert len(checked) >= len(results) * 6
    samples = pd.read_csv(folder / "samples.csv.gz", usecols=["codec"])
    assert len(samples) == 6000 * len(results)  # one row per pair and rate point
    for codec, rate_point, column, published, recomputed in checked:
        same = (math.isnan(published) and math.isnan(recomputed)) or abs(published - recomputed) <= 1e-6 * max(
            1.0, abs(published))
        assert same, (codec, rate_point, column, published, recomputed)


if __name__ == "__main__":
    for arg in sys.argv[1:] or [str(b) for b in BOARDS]:
        checked = check_board(Path(arg))
        bad = [c for c in checked if not (abs(c[3] - c[4]) <= 1e-6 * max(1.0, abs(c[3])) or
                                          (math.isnan(c[3]) and math.isnan(c[4])))]
        print(f"{arg}: {len(checked)} numbers checked, {len(bad)} differ")
        for c in bad[:20]:
            print("  ", c)
