"""Leaderboard rendering from small hand-made results."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from taskcodec.leaderboard import render_leaderboard

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_IMAGES = 100  # accuracies below are multiples of 0.01, so per-sample means reproduce them exactly

CURVES = {
    "jpeg": ([0.5, 1.0, 2.0, 4.0, 8.0], [0.50, 0.65, 0.75, 0.79, 0.80]),
    "half": ([0.25, 0.5, 1.0, 2.0, 4.0], [0.50, 0.65, 0.75, 0.79, 0.80]),  # jpeg at half the bits
    "late": ([1.0, 2.0, 4.0, 8.0], [0.78, 0.85, 0.90, 0.95]),  # shares only [0.78, 0.80] with jpeg
}
PROVENANCE = {
    "command": "taskcodec leaderboard configs/demo.yaml",
    "git_revision": "0123abc",
    "dataset_fingerprint": "sha256:feed",
    "versions": {"numpy": np.__version__, "taskcodec": "0.1.0"},
    "seeds": {"bootstrap": 0},
}


def _results() -> pd.DataFrame:
    rows = [dict(codec="none", rate_point="-", bpp=24.0, payload_bpp=math.nan, psnr=math.inf, accuracy=0.80,
                 macro_f1=0.70)]
    for codec, (bpp, acc) in CURVES.items():
        for i, (b, a) in enumerate(zip(bpp, acc)):
            rows.append(dict(codec=codec, rate_point=i + 1, bpp=b, payload_bpp=b - 0.1 if codec == "jpeg" else math.nan,
                             psnr=25.0 + 3 * i, accuracy=a, macro_f1=a - 0.1))
    return pd.DataFrame(rows)


def _per_sample() -> pd.DataFrame:
    image = np.arange(N_IMAGES)
    spread = np.where(image % 2 == 0, 0.9, 1.1)  # per-image bpp varies, its mean is the nominal rate
    difficulty = (image + 0.5) / N_IMAGES       # image i is correct when accuracy > its difficulty
    parts = [pd.DataFrame({"codec": codec, "rate_point": i + 1, "image": image, "bpp": b * spread,
                           "correct": (difficulty < a).astype(int)})
             for codec, (bpp, acc) in CURVES.items() for i, (b, a) in enumerate(zip(bpp, acc))]
    return pd.concat(parts, ignore_index=True)


def _render(folder, results=None, **kw):
    args = dict(title="Demo leaderboard", quality_metric="accuracy", provenance=PROVENANCE)
    args.update(kw)
    return render_leaderboard(folder, _results() if results is None else results, **args)


def _rows(readme: str) -> list[list[str]]:
    """Cells of every markdown table row, stripped."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in readme.splitlines() if line.startswith("|")]


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 400 and height > 300


def test_task_leaderboard_with_bootstrap(tmp_path):
    summary = _render(tmp_path, per_sample=_per_sample(), sample_score_column="correct",
                      notes=["demo numbers"])
    readme = (tmp_path / "README.md").read_text()
    _assert_png(tmp_path / "rd.png")

    # leaderboard rows: bpp 3 decimals, accuracy in % with 2 decimals, reference first
    rows = _rows(readme)
    assert rows[0] == ["codec", "rate point", "bpp", "payload bpp", "accuracy (%)", "macro_f1 (%)", "PSNR (dB)"]
    assert ["none", "-", "24.000", "-", "80.00", "70.00", "inf"] in rows
    assert ["jpeg", "1", "0.500", "0.400", "50.00", "40.00", "25.00"] in rows
    assert ["late", "4", "8.000", "-", "95.00", "85.00", "34.00"] in rows
    assert readme.index("| none ") < readme.index("| jpeg ") < readme.index("| half ")

    json.dumps(summary, allow_nan=False)  # goes into results.json as is
    bd = {r["codec"]: r for r in summary["bd"]}
    assert set(bd) == {"half", "late"} and all(r["anchor"] == "jpeg" for r in bd.values())
    assert bd["half"]["bd_rate"] == pytest.approx(-0.5, abs=1e-9)
    assert bd["half"]["bd_rate_ci95"] == pytest.approx([-0.5, -0.5], abs=1e-9)  # paired, exact halving
    assert bd["half"]["reliable"] and bd["half"]["overlap_fraction"] == pytest.approx(1.0)
    assert ["half", "jpeg", "-50.0%", "[-50.0%, -50.0%]"] in [r[:4] for r in rows]
    assert not bd["late"]["reliable"]
    assert "quality ranges barely overlap (12% of the narrower range)" in readme
    assert summary["front_points"] == {"jpeg": 5, "half": 5, "late": 4}

    # one point below the reference (0.80 -> 0.79): jpeg at 4, half at 2, late between 1 and 2 bpp
    drop = summary["one_point_drop"]
    assert drop["target"] == pytest.approx(0.79)
    assert drop["bpp"]["jpeg"] == pytest.approx(4.0) and drop["bpp"]["half"] == pytest.approx(2.0)
    assert drop["bpp"]["late"] == pytest.approx(2 ** (1 / 7))
    assert ["late", "4", "4", "1.104", "-", "-", "78.00", "85.00"] in rows and "bpp at 79.00%" in readme

    # rate-matched columns: the front's accuracy at 0.25, 0.5, 1 and 2 bpp, none outside the covered rates
    matched = summary["rate_matched"]
    assert matched["bpp"] == [0.25, 0.5, 1.0, 2.0]
    jpeg = matched["quality"]["jpeg"]
    assert jpeg[0] is None and jpeg[1:] == pytest.approx([0.50, 0.65, 0.75])
    assert matched["quality"]["half"] == pytest.approx([0.50, 0.65, 0.75, 0.79])
    assert "accuracy at 0.5 bpp" in readme

    assert "![rate-quality](rd.png)" in readme and "- demo numbers" in readme
    assert "Regenerate with: `taskcodec leaderboard configs/demo.yaml`" in readme
    assert "0123abc" in readme and '"bootstrap": 0' in readme


def test_png_is_byte_identical_across_renders(tmp_path):
    _render(tmp_path / "a")
    _render(tmp_path / "b")
    digest = [hashlib.sha256((tmp_path / d / "rd.png").read_bytes()).hexdigest() for d in "ab"]
    assert digest[0] == digest[1]
    assert (tmp_path / "a" / "README.md").read_text() == (tmp_path / "b" / "README.md").read_text()


def test_missing_anchor_is_a_note_not_a_crash(tmp_path):
    summary = _render(tmp_path, anchor="webp", extra_anchors=["jpeg"])
    readme = (tmp_path / "README.md").read_text()
    assert "anchor `webp` is not among the results" in readme
    assert any("webp" in n for n in summary["notes"])
    assert {r["anchor"] for r in summary["bd"]} == {"jpeg"}  # the extra anchor still works


def test_incomplete_per_sample_data(tmp_path):
    per_sample = _per_sample()
    summary = _render(tmp_path, per_sample=per_sample[per_sample["codec"] != "late"].rename(columns={"image": "x"}),
                      sample_score_column="correct")
    bd = {r["codec"]: r for r in summary["bd"]}
    assert bd["half"]["bd_rate_ci95"] == pytest.approx([-0.5, -0.5], abs=1e-9)  # ids fall back to row order
    assert bd["late"]["bd_rate_ci95"] is None
    assert "too few complete per-sample rows" in (tmp_path / "README.md").read_text()


def test_no_bd_at_all_still_renders(tmp_path):
    results = _results()
    summary = _render(tmp_path, results[results["codec"].isin(["none", "half"])])
    assert summary["bd"] == []
    assert "No BD-rates: a BD-rate compares the rate-quality curves of two codecs, and this board has one codec curve" \
        in (tmp_path / "README.md").read_text()
    _assert_png(tmp_path / "rd.png")


def test_single_point_rows_are_named_not_tabled_as_bd(tmp_path):
    """A row with one rate point (e.g. a lossless reference) has no curve: it is left out of the BD
    table and named in a note, and the curves beside it keep their BD-rates."""
    results = _results()
    lossless = dict(codec="png", rate_point="-", bpp=12.0, payload_bpp=math.nan, psnr=math.inf, accuracy=0.80,
                    macro_f1=0.70)
    summary = _render(tmp_path, pd.concat([results, pd.DataFrame([lossless])], ignore_index=True), anchor="jpeg")
    assert "png" not in {r["codec"] for r in summary["bd"]} and {"half", "late"} <= {r["codec"] for r in summary["bd"]}
    assert "one rate point, so no BD-rate (compare bpp and quality directly): `png`" in (tmp_path / "README.md").read_text()


def test_psnr_leaderboard_without_task(tmp_path):
    results = _results().drop(columns=["accuracy", "macro_f1"])
    results = results[results["codec"] != "none"].assign(ms_ssim=0.95)
    results.loc[results["codec"] == "half", "psnr"] += 1.0
    summary = _render(tmp_path, results, title="Kodak", quality_metric="psnr")
    readme = (tmp_path / "README.md").read_text()
    _assert_png(tmp_path / "rd.png")
    assert "PSNR (dB)" in readme and "0.9500" in readme and "(%)" not in readme
    assert summary["one_point_drop"] is None and "bpp at" not in readme
    half = next(r for r in summary["bd"] if r["codec"] == "half")
    assert half["bd_quality"] is not None and half["bd_rate"] < -0.5  # same PSNR at half the bits, +1 dB


def test_missing_quality_column_raises(tmp_path):
    with pytest.raises(ValueError, match="balanced_accuracy"):
        _render(tmp_path, quality_metric="balanced_accuracy")


def test_metric_replicates_give_intervals_with_the_rows_rates(tmp_path):
    """A quality that is no mean of per-sample scores (10-fold verification accuracy) brings its own
    resampled values: the interval comes from them, the rates stay the rows'."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.01, 200)  # one draw per resample, shared by both curves: paired
    replicates = {(codec, f"{i + 1}"): np.asarray(acc)[i] + noise
                  for codec, (bpp, acc) in CURVES.items() for i in range(len(bpp))}
    summary = _render(tmp_path, quality_replicates=("resampled pairs (demo)", replicates))
    bd = {r["codec"]: r for r in summary["bd"]}
    assert bd["half"]["bd_rate"] == pytest.approx(-0.5, abs=1e-9)
    # the same shift of both curves keeps "half the bits" on the shared range: a tight interval around -50%
    low, high = bd["half"]["bd_rate_ci95"]
    assert low <= -0.5 <= high and high - low < 0.1
    readme = (tmp_path / "README.md").read_text()
    assert "95% intervals: resampled pairs (demo)." in readme and "over samples" not in readme

    del replicates[("late", "2")]
    summary = _render(tmp_path / "gap", quality_replicates=("resampled pairs (demo)", replicates))
    bd = {r["codec"]: r for r in summary["bd"]}
    assert bd["late"]["bd_rate_ci95"] is None and bd["half"]["bd_rate_ci95"] is not None


def test_a_codec_family_keeps_its_hue_and_its_variants_differ_by_marker_and_line():
    from matplotlib.colors import to_rgb

    from taskcodec.plots import family_color, row_styles

    families = {"jpeg2000-rate": "jpeg2000", "integer-mse": "integer-hyperprior", "integer-task": "integer-hyperprior"}
    one = row_styles(["jpeg", "jpeg2000", "jpeg2000-rate", "integer-mse", "integer-task", "my-codec"], families)
    other = row_styles(["integer-mse", "jpeg2000", "my-codec", "jpeg/joint-embedder"], families)
    assert one["jpeg"]["color"] == to_rgb(family_color("jpeg")) != one["jpeg2000"]["color"]
    # the first row of a family has the family's hue on every board, whatever else the board shows
    assert one["integer-mse"]["color"] == other["integer-mse"]["color"] and one["my-codec"] == other["my-codec"]
    # a family's further rows: another marker and dash pattern, a lighter shade of the same hue
    mse, task = one["integer-mse"], one["integer-task"]
    assert mse["marker"] != task["marker"] and mse["ls"] != task["ls"]
    assert all(t >= m for m, t in zip(mse["color"], task["color"])) and task["color"] != mse["color"]
    assert other["jpeg/joint-embedder"]["marker"] == one["jpeg"]["marker"]  # alone of its family there
    assert family_color("my-codec") == family_color("my-codec") and family_color("my-codec").startswith("#")
