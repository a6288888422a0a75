"""Codec.encode_with_stats: wrapping, storage as `stat:<name>` image metrics, and row columns."""
from __future__ import annotations

import sqlite3
import zlib

import numpy as np
import pandas as pd
import pytest

import taskcodec
from taskcodec import CodecError
from taskcodec.config import parse_config
from taskcodec.pluginmanager import PluginManager
from taskcodec.publish import publish, quality_metric
from taskcodec.runner import Runner
from taskcodec.store import Store
from tests.helpers import natural_image


class Counted(taskcodec.Codec):
    """zlib of the pixels' 7 high bits; reports an estimated rate (90% of the payload) and the payload size."""

    name = "counted"
    rate_parameter = "level"
    rate_point_range = (1, 9)
    integer_rate_points = True
    default_rate_points = (1, 9)
    description = "zlib with stats (test codec)"

    def encode(self, image, rate_point):
        return self.encode_with_stats(image, rate_point)[0]

    def encode_with_stats(self, image, rate_point):
        if rate_point == 7:
            raise RuntimeError("the library failed")  # turned into CodecError by the wrapper
        shape = np.array(image.shape + (1,) * (3 - image.ndim), dtype=np.uint16).tobytes()
        payload = zlib.compress((image >> 1).tobytes(), rate_point)
        stats = {"estimated_bits": 0.9 * 8 * len(payload), "payload-len": len(payload)}
        if image.shape[1] == 21:  # only some images get this stat: it must not become a row column
            stats["partial"] = 1.0
        return shape + payload, stats

    def decode(self, data):
        h, w, c = np.frombuffer(data[:6], np.uint16)
        pixels = np.frombuffer(zlib.decompress(data[6:]), np.uint8) << 1
        return pixels.reshape((h, w) if c == 1 else (h, w, c)).copy()


class Plain(Counted):
    """No encode_with_stats of its own: the default returns (encode(), {})."""

    name = "plain"
    encode_with_stats = taskcodec.Codec.encode_with_stats

    def encode(self, image, rate_point):
        shape = np.array(image.shape + (1,) * (3 - image.ndim), dtype=np.uint16).tobytes()
        return shape + zlib.compress(image.tobytes(), rate_point)


class Sizes(taskcodec.Dataset):
    name = "sizes"
    needs_root = False

    def __init__(self, root=None, split="test"):
        shapes = [(16, 20), (16, 21), (24, 20), (12, 33)]
        self.items = [taskcodec.Sample(f"s{i}", natural_image(h, w, color=False, seed=i)) for i, (h, w) in enumerate(shapes)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class StatsPlugin:
    @staticmethod
    @taskcodec.hookimpl
    def register_codecs(register):
        register(Counted)
        register(Plain)

    @staticmethod
    @taskcodec.hookimpl
    def register_datasets(register):
        register(Sizes)


@pytest.fixture
def plugins():
    return PluginManager(extra_plugins=[("stats-plugin", StatsPlugin)])


def test_default_encode_with_stats_is_encode_without_stats():
    image = natural_image(16, 20, color=True)
    data, stats = Plain().encode_with_stats(image, 5)
    assert data == Plain().encode(image, 5) and stats == {}


def test_encode_with_stats_is_guarded_like_encode():
    codec = Counted()
    image = natural_image(16, 20, color=False)
    data, stats = codec.encode_with_stats(image, 3)
    assert isinstance(data, bytes) and stats["payload-len"] == len(data) - 6
    assert all(type(v) is float for v in stats.values())
    with pytest.raises(CodecError, match="'counted'.*level must be"):
        codec.encode_with_stats(image, 12)  # rate point validated
    with pytest.raises(CodecError, match="'counted'"):
        codec.encode_with_stats(np.zeros((4, 4), np.float32), 3)  # image checked
    with pytest.raises(CodecError, match="RuntimeError: the library failed"):
        codec.encode_with_stats(image, 7)


class CountsChecks(Plain):
    """Plain, counting its rate point validations; level 8 makes the library fail."""

    name = "counts-checks"

    def __init__(self):
        self.validations = 0

    def validate_rate_point(self, rate_point):
        self.validations += 1
        return super().validate_rate_point(rate_point)

    def encode(self, image, rate_point):
        if rate_point == 8:
            raise ValueError("the library failed")
        shape = np.array(image.shape + (1,) * (3 - image.ndim), dtype=np.uint16).tobytes()
        return shape + zlib.compress(image.tobytes(), rate_point)  # not super().encode: that one is guarded too


def test_default_batch_methods_check_their_inputs_once_and_still_wrap_errors():
    codec = CountsChecks()
    images = [natural_image(16, 20, color=False, seed=i) for i in range(5)]
    coded = codec.encode_batch_with_stats(images, 5)
    assert codec.validations == 1  # the batch's guard; not again per image in encode_with_stats and encode
    assert coded == [codec.encode_with_stats(image, 5) for image in images]
    assert all(np.array_equal(a, codec.decode(data)) for a, (data, _) in zip(codec.decode_batch([d for d, _ in coded]), coded))
    with pytest.raises(CodecError, match="'counts-checks': encoding a batch of 5 images.*ValueError: the library failed"):
        codec.encode_batch_with_stats(images, 8)
    with pytest.raises(CodecError, match="'counts-checks': encoding a .* image.*ValueError: the library failed"):
        codec.encode_with_stats(images[0], 8)  # the default encode_with_stats, guarded, calls the bare encode
    with pytest.raises(CodecError, match="'counts-checks': cannot decode a batch of 1 streams"):
        codec.decode_batch([b"not zlib"])
    with pytest.raises(CodecError, match="'counts-checks'"):
        codec.encode_batch_with_stats([images[0], np.zeros((4, 4), np.float32)], 5)  # every image still checked


@pytest.mark.parametrize("rate_point", [10**400, float("inf"), float("nan"), True, "5"],
                         ids=["int-beyond-float", "inf", "nan", "bool", "str"])
def test_rate_point_that_is_not_a_finite_number_is_a_codec_error(rate_point):
    with pytest.raises(CodecError, match="'counted': level must be an integer in 1..9"):
        Counted().validate_rate_point(rate_point)


@pytest.mark.parametrize("bad", [b"bytes only", (b"x", {"nan": float("nan")}), (b"x", {"": 1.0}), (b"x", {"s": "1"})])
def test_bad_stats_are_codec_errors(bad):
    class Bad(Counted):
        name = "bad-stats"

        def encode_with_stats(self, image, rate_point):
            return bad

    with pytest.raises(CodecError, match="'bad-stats': encode_with_stats"):
        Bad().encode_with_stats(natural_image(8, 8, color=False), 3)


def _config(plugins, codecs):
    raw = {"benchmark": "stats", "dataset": {"name": "sizes"}, "metrics": ["psnr"], "codecs": codecs,
           "runner": {"workers": 1}}
    return parse_config(raw, "stats.yaml", plugins.registry)


def test_stats_are_stored_and_become_row_columns(plugins, tmp_path):
    cfg = _config(plugins, [{"name": "counted", "rate_points": [1, 9]}, {"name": "plain", "rate_points": [5]}])
    collected = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    rows, images = pd.DataFrame(collected.rows), pd.DataFrame(collected.images)

    db = sqlite3.connect(tmp_path / "store" / "results.sqlite")
    names = {m for (m,) in db.execute("SELECT DISTINCT metric FROM image_metrics")}
    db.close()
    assert names == {"psnr", "stat:estimated_bits", "stat:payload-len", "stat:partial"}

    counted = images[images.codec == "counted"]
    pixels = counted.image.map({s.id: s.image.size for s in Sizes()})
    np.testing.assert_allclose(counted.estimated_bpp, 0.9 * 8 * (counted.bytes - 6) / pixels)
    np.testing.assert_allclose(counted.stat_payload_len, counted.bytes - 6)
    for rate_point, part in counted.groupby("rate_point"):
        row = rows[(rows.codec == "counted") & (rows.rate_point == rate_point)].iloc[0]
        assert row.estimated_bpp == pytest.approx(part.estimated_bpp.mean())  # per image, then the mean
        assert row.stat_payload_len == pytest.approx(part.stat_payload_len.mean())
        assert row.estimated_bpp < row.bpp  # the rate itself still comes from the bytes
    assert "stat_partial" not in rows.columns  # not on every image: no row column
    assert rows[rows.codec == "plain"].estimated_bpp.isna().all()  # a codec without stats gets none
    assert rows[rows.codec == "none"].estimated_bpp.isna().all()

    # collect-only (taskcodec leaderboard) reads the same numbers back from the store
    again = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run(compute=False)
    assert pd.DataFrame(again.rows).equals(rows)


def test_stats_never_become_the_quality_axis(plugins, tmp_path):
    cfg = _config(plugins, [{"name": "counted", "rate_points": [1, 9]}])
    collected = Runner(cfg, Store(tmp_path / "store"), plugins, progress=False).run()
    results = pd.DataFrame(collected.rows)
    assert quality_metric(cfg, results) == ("psnr", True)
    publish(collected, cfg, tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "estimated bpp" in readme
    assert "estimated_bpp" in pd.read_csv(tmp_path / "board" / "results.csv").columns
