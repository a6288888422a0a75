"""The published leaderboard/ferplus/: its numbers recompute from its own files, the clean accuracy is
high and the curves span collapse to recovery."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from taskcodec_plugins.metrics.classification import balanced_accuracy, macro_f1
from tests.helpers import REPO

FOLDER = REPO / "leaderboard" / "ferplus"
pytestmark = pytest.mark.skipif(not (FOLDER / "results.csv").is_file(), reason="leaderboard/ferplus not published")
CODECS = ("jpeg", "jpeg2000", "webp", "avif", "jpegxl")


@pytest.fixture(scope="module")
def board():
    results = pd.read_csv(FOLDER / "results.csv")
    with gzip.open(FOLDER / "samples.csv.gz", "rt") as fh:
        samples = pd.read_csv(fh)
    return results, samples


def test_rows_and_columns(board):
    results, samples = board
    for column in ("codec", "rate_point", "bpp", "payload_bpp", "psnr", "accuracy", "balanced_accuracy", "macro_f1"):
        assert column in results.columns
    assert list(samples.columns) == ["codec", "rate_point", "image", "label", "pred"]
    assert (results["codec"] == "none").sum() == 1
    for codec in CODECS:
        assert (results["codec"] == codec).sum() >= 5, codec
    assert (results["images"] == 3137).all()


def test_every_metric_recomputes_from_samples(board):
    results, samples = board
    for _, row in results.iterrows():
        same = samples["rate_point"].isna() if pd.isna(row["rate_point"]) else samples["rate_point"] == row["rate_point"]
        mine = samples[(samples["codec"] == row["codec"]) & same]
        assert len(mine) == 3137
        labels, preds = mine["label"].tolist(), mine["pred"].tolist()
        assert row["accuracy"] == pytest.approx((mine["label"] == mine["pred"]).mean(), abs=5e-6)
        assert row["balanced_accuracy"] == pytest.approx(balanced_accuracy(labels, preds), abs=5e-6)
        assert row["macro_f1"] == pytest.approx(macro_f1(labels, preds), abs=5e-6)


def test_clean_accuracy_and_the_curves_span_collapse_to_recovery(board):
    results, _ = board
    clean = float(results.loc[results["codec"] == "none", "accuracy"].iloc[0])
    assert clean >= 0.84
    for codec in CODECS:
        acc = results.loc[results["codec"] == codec, "accuracy"]
        assert acc.min() < clean - 0.10, codec  # collapses
        assert acc.max() > clean - 0.01, codec  # recovers to within a point


def test_readme_and_files(board):
    readme = (FOLDER / "README.md").read_text()
    assert "payload" in readme and "1.15 bpp" in readme
    assert "minus one point" in readme
    for codec in CODECS:
        assert f"| {codec} " in readme
    for name in ("rd.png", "confusion.png", "results.json", "images.csv.gz", "config.yaml"):
        assert (FOLDER / name).is_file(), name
    provenance = json.loads((FOLDER / "results.json").read_text())["provenance"]
    assert provenance["dataset"]["metadata"]["label_mode"] == "majority"
    assert provenance["task"]["source"] == "checkpoint"
    assert provenance["task"]["test_time_augmentation"] == "none"
