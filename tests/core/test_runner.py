"""Runner + store: results, caching, resume after SIGKILL, and the leaderboard folder."""
from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import taskcodec
import taskcodec.errors
from taskcodec import runner as runner_module
from taskcodec.config import parse_config
from taskcodec.pluginmanager import PluginManager
from taskcodec.publish import publish
from taskcodec.runner import Runner
from taskcodec.store import Store
from tests.helpers import Patches, natural_image, textconfig, write_images


class Brightness(taskcodec.Task):
    """A real (if simple) classifier: is the image brighter than the dataset's training threshold?"""

    name = "brightness"
    task_type = "classification"
    default_metrics = ("accuracy",)

    def prepare(self, dataset, context):
        self.threshold = 128.0

    def fingerprint(self):
        return f"threshold-{self.threshold}"

    def predict(self, images):
        return [int(float(np.mean(im)) > self.threshold) for im in images]

    def sample_rows(self, dataset, outputs):
        return [{"image": s.id, "label": s.label, "pred": outputs[s.id]} for s in dataset]


class UntrainedStandIn(taskcodec.Codec):
    """A codec whose identity says its models are untrained (as learned codecs' stand-ins do)."""

    name = "untrained-stand-in"
    rate_parameter = None
    default_rate_points = (None,)

    def identity(self):
        return {**super().identity(), "untrained": True}

    def encode(self, image, rate_point):
        return np.ascontiguousarray(image).tobytes() + bytes(image.shape[:2])

    def decode(self, data):
        h, w = data[-2], data[-1]
        return np.frombuffer(data[:-2], np.uint8).reshape(h, w)


class TestPlugin:
    @staticmethod
    @taskcodec.hookimpl
    def register_tasks(register):
        register(Brightness)

    @staticmethod
    @taskcodec.hookimpl
    def register_codecs(register):
        register(UntrainedStandIn)

    @staticmethod
    @taskcodec.hookimpl
    def register_datasets(register):
        register(Patches)


@pytest.fixture
def plugins(third_party_plugin):
    return PluginManager(extra_plugins=[("test-plugin", TestPlugin)])


def task_config(**extra):
    raw = {
        "benchmark": "patches",
        "dataset": {"name": "patches"},
        "task": {"name": "brightness"},
        "metrics": ["accuracy", "psnr"],
        "codecs": [{"name": "quant-zlib", "rate_points": [2, 8, 64]}, {"name": "png"}],
        "runner": {"workers": 1},
    }
    raw.update(extra)
    return raw


def _rate_point_key(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def test_run_collects_rows_samples_and_rates(plugins, tmp_path):
    cfg = parse_config(task_config(), "patches.yaml", plugins.registry)
    collected = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    rows = pd.DataFrame(collected.rows)
    assert list(rows["codec"]) == ["none", "quant-zlib", "quant-zlib", "quant-zlib", "png"]
    assert rows.loc[0, "bpp"] == 8.0 and np.isnan(rows.loc[0, "psnr"])
    # the rate is computed by the framework from the stored bytes
    images = pd.DataFrame(collected.images)
    store = Store(tmp_path / "store")
    first = images.iloc[0]
    assert first["bpp"] == pytest.approx(8 * first["bytes"] / (24 * 20))
    assert first["payload_bytes"] == first["bytes"] - 6
    zlib_rows = rows[rows.codec == "quant-zlib"]
    assert list(zlib_rows["bpp"]) == sorted(zlib_rows["bpp"])  # more levels, more bits
    assert rows.loc[rows.codec == "png", "psnr"].isna().all() or np.isinf(rows.loc[rows.codec == "png", "psnr"]).all()
    # accuracy recomputes from the per-sample rows
    samples = pd.DataFrame(collected.samples)
    for _, row in rows.iterrows():
        same_rate_point = samples.rate_point.map(_rate_point_key) == _rate_point_key(row.rate_point)
        mine = samples[(samples.codec == row.codec) & same_rate_point]
        assert len(mine) == 24
        assert row["accuracy"] == pytest.approx((mine.label == mine.pred).mean())
    assert collected.provenance["dataset"]["fingerprint"] == Patches().fingerprint()
    assert collected.provenance["task"]["fingerprint"] == "threshold-128.0"
    store.close()


def test_warm_rerun_computes_nothing(plugins, tmp_path, monkeypatch):
    cfg = parse_config(task_config(), "patches.yaml", plugins.registry)
    first = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()

    def forbidden(*args, **kwargs):
        raise AssertionError("a warm rerun must not encode anything")

    monkeypatch.setattr(runner_module, "encode_chunk", forbidden)
    monkeypatch.setattr(Brightness, "predict", forbidden)
    second = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    assert pd.DataFrame(first.rows).equals(pd.DataFrame(second.rows))
    # collect-only (what `taskcodec leaderboard` does) works from the store alone
    third = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run(compute=False)
    assert pd.DataFrame(first.samples).equals(pd.DataFrame(third.samples))


def test_collect_only_names_what_is_missing(plugins, tmp_path):
    cfg = parse_config(task_config(), "patches.yaml", plugins.registry)
    with pytest.raises(taskcodec.errors.StoreError, match="run `taskcodec run` first"):
        Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run(compute=False)


def test_lost_task_outputs_are_recomputed_from_stored_streams(plugins, tmp_path, monkeypatch):
    cfg = parse_config(task_config(), "patches.yaml", plugins.registry)
    first = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    db = sqlite3.connect(tmp_path / "store" / "results.sqlite")
    db.execute("DELETE FROM task_outputs WHERE rowid % 3 = 0")
    db.commit()
    db.close()
    monkeypatch.setattr(runner_module, "encode_chunk", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-encoded")))
    second = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    assert pd.DataFrame(first.samples).equals(pd.DataFrame(second.samples))


def test_publish_writes_the_leaderboard_folder(plugins, tmp_path):
    cfg = parse_config(task_config(leaderboard={"anchor": "quant-zlib"}), "patches.yaml", plugins.registry)
    collected = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    out = tmp_path / "board"
    publish(collected, cfg, out)
    for name in ("results.csv", "results.json", "images.csv.gz", "samples.csv.gz", "README.md", "rd.png", "config.yaml"):
        assert (out / name).is_file(), name
    results = pd.read_csv(out / "results.csv")
    assert {"codec", "rate_point", "bpp", "payload_bpp", "psnr", "accuracy"} <= set(results.columns)
    samples = pd.read_csv(out / "samples.csv.gz")
    assert list(samples.columns[:5]) == ["codec", "rate_point", "image", "label", "pred"]
    with gzip.open(out / "samples.csv.gz") as fh:
        assert fh.read()  # a valid gzip member
    before = (out / "samples.csv.gz").read_bytes()
    publish(collected, cfg, out)
    assert (out / "samples.csv.gz").read_bytes() == before  # regenerating is byte-stable


# ---------------------------------------------------------------------------- SIGKILL
KODAK_LIKE = textconfig(
    """
    benchmark: killme
    dataset: {{name: image-dir, root: {root}}}
    metrics: [psnr]
    codecs:
      - {{name: quant-zlib, rate_points: [4, 16, 64]}}
      - {{name: png}}
    runner: {{workers: {workers}}}
    """
)


def _run(cfg, store, out, env, **kwargs):
    cmd = [sys.executable, "-m", "taskcodec.cli", "run", str(cfg), "--store", str(store), "--out", str(out), "--no-progress"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kwargs)


def _encodings(store) -> int:
    try:
        db = sqlite3.connect(f"file:{store}/results.sqlite?mode=ro", uri=True, timeout=1)
        n = db.execute("SELECT COUNT(*) FROM encodings").fetchone()[0]
        db.close()
        return n
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkilled_run_resumes_to_identical_results(third_party_plugin, tmp_path, workers):
    images = write_images(tmp_path / "images", count=40, size=(32, 40))
    cfg = tmp_path / "killme.yaml"
    cfg.write_text(KODAK_LIKE.format(root=images, workers=workers))
    env = dict(os.environ, QUANT_ZLIB_DELAY="0.02")

    reference = _run(cfg, tmp_path / "ref-store", tmp_path / "ref", env)
    assert reference.wait(timeout=120) == 0, reference.stderr.read().decode()

    victim = _run(cfg, tmp_path / "store", tmp_path / "out", env)
    deadline = time.time() + 60
    while _encodings(tmp_path / "store") < 10 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    assert victim.poll() is None, "the run finished before it could be killed"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    partial = _encodings(tmp_path / "store")
    assert 0 < partial < 160
    resumed = _run(cfg, tmp_path / "store", tmp_path / "out", dict(env, QUANT_ZLIB_DELAY="0"))
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read().decode()
    assert (tmp_path / "out" / "results.csv").read_bytes() == (tmp_path / "ref" / "results.csv").read_bytes()
    assert (tmp_path / "out" / "images.csv.gz").read_bytes() == (tmp_path / "ref" / "images.csv.gz").read_bytes()


def test_damaged_stream_is_encoded_again(plugins, tmp_path):
    """Streams are written without fsync; one truncated by a crash must not poison a resume."""
    cfg = parse_config(task_config(), "patches.yaml", plugins.registry)
    first = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    store = Store(tmp_path / "store")
    key = store.db.execute("SELECT key FROM encodings ORDER BY key LIMIT 1").fetchone()[0]
    rec = store.get_encodings([key])[key]
    pack = store.pack_path(rec.pack)
    pack.write_bytes(pack.read_bytes()[: rec.pack_offset + 3])  # a torn write
    db = sqlite3.connect(tmp_path / "store" / "results.sqlite")
    db.execute("DELETE FROM task_outputs WHERE key = ?", (key,))
    db.commit()
    db.close()
    second = Runner(cfg, store, plugins, progress=False).run()
    assert pd.DataFrame(first.samples).equals(pd.DataFrame(second.samples))
    again = store.get_encodings([key])[key]
    assert again.pack != rec.pack and store.read_stream(again)  # encoded again, into another pack


def test_leaderboard_warns_about_untrained_rows(plugins, tmp_path):
    cfg = parse_config(task_config(codecs=[{"name": "quant-zlib", "rate_points": [4, 16]}, {"name": "untrained-stand-in"}]),
                       "patches.yaml", plugins.registry)
    publish(Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run(), cfg, tmp_path / "board")
    assert "WARNING: rows `untrained-stand-in` use UNTRAINED models" in (tmp_path / "board" / "README.md").read_text()
