"""End to end through the runner: lfw + mobilefacenet + verification metrics, published and recomputed."""
from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from taskcodec.config import parse_config
from taskcodec.pluginmanager import PluginManager
from taskcodec.publish import publish
from taskcodec.runner import Runner
from taskcodec.store import Store
from taskcodec_plugins.metrics import verification
from tests.helpers import fake_lfw
from tests.helpers import random_checkpoint


def config(root, weights, **extra):
    raw = {
        "benchmark": "lfw-mini",
        "dataset": {"name": "lfw", "root": str(root), "options": {"align": "none"}},
        "task": {"name": "mobilefacenet", "options": {"weights": str(weights), "precision": "fp32"}},
        "metrics": ["verification", "verification-fixed-threshold", "psnr"],
        "codecs": [{"name": "jpeg", "rate_points": [5, 90]}],
        "runner": {"workers": 1},
        "leaderboard": {"quality_metric": "accuracy"},
    }
    raw.update(extra)
    return parse_config(raw, "lfw-mini.yaml", PluginManager().registry)


def recompute(samples: pd.DataFrame, codec: str, rate_point) -> dict[str, float]:
    mine = samples[(samples.codec == codec) & (samples.rate_point.isna() if rate_point is None else samples.rate_point == rate_point)]
    rows = mine.to_dict(orient="records")
    return verification.Verification().compute(rows) | verification.FixedThresholdVerification().compute(rows)


def test_run_publish_and_recompute(tmp_path):
    root = fake_lfw(tmp_path / "data")
    cfg = config(root, random_checkpoint(tmp_path / "w.ckpt"))
    store = Store(tmp_path / "store")
    collected = Runner(cfg, store, PluginManager(), progress=False).run()
    rows = pd.DataFrame(collected.rows)
    assert list(rows.codec) == ["none", "jpeg", "jpeg"]
    for column in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "auc", "eer", "detection_failures",
                   "fixed_accuracy", "fixed_far_at_far_1e-3"):
        assert column in rows.columns
    assert rows.loc[0, "fixed_accuracy"] == pytest.approx(rows.loc[0, "accuracy"])
    assert (rows.detection_failures == 0).all()
    samples = pd.DataFrame(collected.samples)
    assert len(samples) == 3 * 8
    assert {"codec", "rate_point", "fold", "same", "score", "clean_score", "image1", "image2"} <= set(samples.columns)
    ref = samples[samples.codec == "none"]
    assert np.allclose(ref.score, ref.clean_score)

    folder = tmp_path / "board"
    publish(collected, cfg, folder)
    with gzip.open(folder / "samples.csv.gz") as fh:
        published = pd.read_csv(fh)
    results = pd.read_csv(folder / "results.csv")
    for _, row in results.iterrows():
        rate_point = None if isinstance(row.rate_point, float) and math.isnan(row.rate_point) else row.rate_point
        again = recompute(published, row.codec, rate_point)
        for column, value in again.items():
            assert value == pytest.approx(row[column], abs=1e-6), (row.codec, rate_point, column)

    # re-rendering from the store (no prepare) gives the same numbers, deployment columns included
    again = Runner(cfg, Store(tmp_path / "store"), PluginManager(), progress=False).run(compute=False)
    pd.testing.assert_frame_equal(pd.DataFrame(again.rows), rows)
    assert collected.provenance["task"]["weights_sha256"]
    store.close()
