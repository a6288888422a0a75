"""Catalogue of bad inputs and faults for the runner and store, one case per input.

Each case asserts (a) the error type, (b) that the message names the culprit (codec, row, rate
point, image, metric, file) and, where something was stored before, (c) that it is unchanged;
the damaged-stream cases assert recovery instead: the stream is encoded again and the log line
names row, rate point, image and file.
"""
from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from taskcodec import CodecError
from taskcodec.errors import PluginError, StoreError
from taskcodec.pluginmanager import PluginManager
from taskcodec.store import Store, reference_key
from tests.integrity_plugins import IntegrityPlugin, config, run


@pytest.fixture
def plugins():
    return PluginManager(extra_plugins=[("integrity", IntegrityPlugin)])


def stored(store) -> list[tuple]:
    """Everything the store holds about encodings and outputs, to compare before and after."""
    db = sqlite3.connect(store / "results.sqlite")
    rows = [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("encodings", "image_metrics", "task_outputs")]
    db.close()
    return rows


# ------------------------------------------------------------------ numbers from plugins
@pytest.mark.parametrize("value", ["-1", "n + 1", "2.5", "True", "'3'", "np.float64(3)"],
                         ids=["negative", "longer-than-stream", "float", "bool", "str", "numpy-float"])
def test_payload_bytes_out_of_range_or_not_an_int(plugins, tmp_path, monkeypatch, value):
    monkeypatch.setenv("BAD_PAYLOAD", value)
    with pytest.raises(CodecError) as info:
        run(plugins, config(plugins, [{"name": "bad-payload"}]), tmp_path / "s")
    message = str(info.value)
    assert "'bad-payload'" in message and "payload_bytes" in message and "sq000" in message
    assert stored(tmp_path / "s")[0] == []


@pytest.mark.parametrize("value, expected", [("image.astype(np.float32)", "decode output: expected a numpy uint8"),
                                             ("image[:-1]", "decoded shape"), ("image[..., None]", "HxW or HxWx3"),
                                             ("image.tolist()", "decode output: expected a numpy uint8 array, got list")],
                         ids=["float", "shorter", "extra-axis", "list"])
def test_decode_output_of_another_type_or_shape(plugins, tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("BAD_DECODE", value)
    with pytest.raises(CodecError) as info:
        run(plugins, config(plugins, [{"name": "odd-decode-output"}]), tmp_path / "s")
    message = str(info.value)
    assert "'odd-decode-output'" in message and "sq000" in message and expected in message
    assert stored(tmp_path / "s")[0] == []


def test_decode_output_of_an_ndarray_subclass_is_an_image(plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("BAD_DECODE", "image.view(MarkedArray)")
    odd, _ = run(plugins, config(plugins, [{"name": "odd-decode-output"}], metrics=("accuracy", "psnr", "half-defined")),
                 tmp_path / "s")
    raw, _ = run(plugins, config(plugins, [{"name": "raw-test"}], metrics=("accuracy", "psnr", "half-defined")),
                 tmp_path / "s")
    assert [{k: v for k, v in r.items() if k != "codec"} for r in odd.images] == \
           [{k: v for k, v in r.items() if k != "codec"} for r in raw.images]
    assert {type(r["half_defined"]) for r in odd.images} == {float}  # numpy float32 stored as a float


@pytest.mark.parametrize("workers", [1, 2])
def test_codec_error_late_in_a_run_keeps_the_chunks_finished_before_it(plugins, tmp_path, monkeypatch, workers):
    monkeypatch.setenv("FAILS_AT", "250")  # image 250 of 256, in the last of several chunks
    cfg = config(plugins, [{"name": "fails-late"}], count=256, workers=workers)
    with pytest.raises(CodecError, match="'fails-late'.*sq250.*this image is refused"):
        run(plugins, cfg, tmp_path / "s")
    kept = len(stored(tmp_path / "s")[0])
    assert 0 < kept < 256  # finished chunks are committed even though they had not reached a commit yet
    monkeypatch.setenv("FAILS_AT", "-1")
    collected, _ = run(plugins, cfg, tmp_path / "s")  # resumes: only the rest is encoded
    fresh, _ = run(plugins, cfg, tmp_path / "fresh")
    assert collected.images == fresh.images and collected.rows == fresh.rows


@pytest.mark.parametrize("every, commits", [(1e9, 1), (0.0, 5)],  # 0 s: the reference outputs, then each chunk
                         ids=["one-commit", "commit-per-chunk"])
def test_finished_chunks_and_outputs_are_committed_together(plugins, tmp_path, monkeypatch, every, commits):
    from taskcodec import runner as runner_module

    monkeypatch.setattr(runner_module, "STORE_EVERY_SECONDS", every)
    calls = []
    original = Store.put_results

    def counted(self, records, metrics, outputs=()):
        records, outputs = list(records), list(outputs)
        calls.append((len(records), len(outputs)))
        # no output is committed without the encoding it was computed from, now or earlier
        have = {row[0] for row in self.db.execute("SELECT key FROM encodings")} | {r.key for r in records}
        assert {key for key, _, _ in outputs if not key.startswith(reference_key(""))} <= have
        return original(self, records, metrics, outputs)

    monkeypatch.setattr(Store, "put_results", counted)
    cfg = config(plugins, [{"name": "raw-test"}], count=256)
    collected, _ = run(plugins, cfg, tmp_path / "s")
    assert len(calls) == commits and sum(n for n, _ in calls) == 256  # 4 chunks of 64
    assert sum(n for _, n in calls) == 2 * 256  # the reference row's outputs and the codec row's
    monkeypatch.setattr(Store, "put_results", original)
    fresh, _ = run(plugins, cfg, tmp_path / "fresh")
    assert collected.images == fresh.images and collected.samples == fresh.samples


@pytest.mark.parametrize("metric", ["nan-metric", "text-metric"])
def test_image_metric_returning_nan_or_text(plugins, tmp_path, metric):
    with pytest.raises(PluginError) as info:
        run(plugins, config(plugins, [{"name": "raw-test"}], metrics=("accuracy", metric)), tmp_path / "s")
    message = str(info.value)
    assert repr(metric) in message and "'raw-test'" in message and "sq000" in message
    assert stored(tmp_path / "s")[0] == []


def test_task_output_that_json_cannot_hold(plugins, tmp_path):
    with pytest.raises(StoreError) as info:
        run(plugins, config(plugins, [{"name": "raw-test"}], task="object-task"), tmp_path / "s")
    assert "object-task" in str(info.value) and "JSON" in str(info.value)


# ------------------------------------------------------------------ worker processes
def test_codec_that_cannot_be_pickled_for_workers(plugins, tmp_path):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "unpicklable"}], task=None, metrics=("psnr",),
                 count=80, workers=2)
    with pytest.raises(CodecError) as info:
        run(plugins, cfg, tmp_path / "s")
    assert "'unpicklable'" in str(info.value) and "pickled" in str(info.value)
    assert stored(tmp_path / "s")[0] == []  # refused before any work, the picklable codec's included


def test_worker_process_that_dies(plugins, tmp_path):
    cfg = config(plugins, [{"name": "dies-in-worker"}], task=None, metrics=("psnr",), count=80, workers=2)
    with pytest.raises(CodecError) as info:
        run(plugins, cfg, tmp_path / "s")
    message = str(info.value)
    assert "'dies-in-worker'" in message and "rate_point=None" in message and "'sq000'" in message
    assert "worker process died" in message


def test_codec_whose_round_trip_works_only_in_one_process(plugins, tmp_path):
    cfg = config(plugins, [{"name": "global-cache"}], task=None, metrics=("psnr",), count=80, workers=2)
    with pytest.raises(CodecError) as info:
        run(plugins, cfg, tmp_path / "s")
    message = str(info.value)
    assert "'global-cache'" in message and "process" in message and "streams" in message
    assert stored(tmp_path / "s")[0] == []  # the chunk is refused before it is recorded


# ------------------------------------------------------------------ determinism
def test_nondeterministic_decoder_when_a_stored_stream_is_decoded_again(plugins, tmp_path):
    cfg = config(plugins, [{"name": "drifting-decoder"}])
    run(plugins, cfg, tmp_path / "s")
    db = sqlite3.connect(tmp_path / "s" / "results.sqlite")
    db.execute("DELETE FROM task_outputs WHERE key = (SELECT MIN(key) FROM encodings)")
    db.commit()
    db.close()
    before = stored(tmp_path / "s")
    with pytest.raises(CodecError) as info:
        run(plugins, cfg, tmp_path / "s")
    message = str(info.value)
    assert "'drifting-decoder'" in message and "not deterministic" in message and "streams" in message
    assert stored(tmp_path / "s") == before


def test_check_determinism_with_an_encoder_writing_random_bytes(plugins, tmp_path):
    with pytest.raises(CodecError) as info:
        run(plugins, config(plugins, [{"name": "random-padding"}]), tmp_path / "s", check_determinism=True)
    message = str(info.value)
    assert "'random-padding'" in message and "rate_point=None" in message and "'sq000'" in message
    assert "encoder is not deterministic" in message
    assert stored(tmp_path / "s")[0] == []


def test_check_determinism_with_a_decoder_drifting_between_calls(plugins, tmp_path):
    with pytest.raises(CodecError) as info:
        run(plugins, config(plugins, [{"name": "drifting-decoder"}]), tmp_path / "s", check_determinism=True)
    assert "'drifting-decoder'" in str(info.value) and "decoder is not deterministic" in str(info.value)


def test_check_determinism_with_a_real_codec_at_a_rate_point(plugins, tmp_path, monkeypatch):
    """The message names the rate parameter and value (jpeg made nondeterministic here)."""
    import os

    jpeg = plugins.get("codec", "jpeg").target
    original = jpeg.encode
    monkeypatch.setattr(jpeg, "encode", lambda self, image, rate_point: original(self, image, rate_point) + os.urandom(1))
    with pytest.raises(CodecError) as info:
        run(plugins, config(plugins, [{"name": "jpeg", "rate_points": [25]}]), tmp_path / "s", check_determinism=True)
    assert "'jpeg'" in str(info.value) and "quality=25" in str(info.value) and "'sq000'" in str(info.value)


# ------------------------------------------------------------------ damaged stores
def _damage_first_stream(store, damage):
    """Apply ``damage(file, start, length)`` to the bytes of the first image's stream (in its pack, or its
    own file in a store before schema 4) and force its reuse; returns the file."""
    db = sqlite3.connect(store / "results.sqlite")
    key = db.execute("SELECT key FROM encodings ORDER BY image_digest LIMIT 1").fetchone()[0]
    db.execute("DELETE FROM task_outputs WHERE key = ?", (key,))
    db.commit()
    db.close()
    opened = Store(store)
    rec = opened.get_encodings([key])[key]
    opened.close()
    path = opened.pack_path(rec.pack) if rec.pack else opened.stream_path(key)
    damage(path, rec.pack_offset or 0, rec.n_bytes)
    return path


def _flip_a_byte(path, start, length):
    data = bytearray(path.read_bytes())
    data[start + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [_flip_a_byte, lambda p, start, n: p.write_bytes(p.read_bytes()[: start + 3]), lambda p, start, n: p.unlink()],
    ids=["byte-flipped-same-size", "truncated", "missing"],
)
def test_damaged_stored_stream(plugins, tmp_path, damage):
    cfg = config(plugins, [{"name": "raw-test"}, {"name": "jpeg", "rate_points": [30]}])
    first, _ = run(plugins, cfg, tmp_path / "s")
    path = _damage_first_stream(tmp_path / "s", damage)
    second, logs = run(plugins, cfg, tmp_path / "s")  # recovers: no error
    assert pd.DataFrame(first.rows).equals(pd.DataFrame(second.rows))
    assert pd.DataFrame(first.samples).equals(pd.DataFrame(second.samples))
    damaged = [line for line in logs if "damaged" in line]
    assert len(damaged) == 1 and str(path) in damaged[0] and "image 'sq" in damaged[0] and "row '" in damaged[0]
    assert "rate_point=None" in damaged[0] or "quality=30" in damaged[0]
    third, logs = run(plugins, cfg, tmp_path / "s")  # and the next run is clean
    assert not [line for line in logs if "damaged" in line]


def test_version_1_row_whose_stream_was_damaged_in_place(plugins, tmp_path):
    """A migrated row has no sha256: it is verified by decoding, and re-encoded when that disagrees."""
    cfg = config(plugins, [{"name": "raw-test"}])
    first, _ = run(plugins, cfg, tmp_path / "s")
    db = sqlite3.connect(tmp_path / "s" / "results.sqlite")
    db.execute("ALTER TABLE encodings RENAME COLUMN rate_point TO setting")
    db.execute("ALTER TABLE encodings DROP COLUMN stream_sha256")
    db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    db.commit()
    db.close()
    path = _damage_first_stream(tmp_path / "s", _flip_a_byte)
    second, logs = run(plugins, cfg, tmp_path / "s")
    assert pd.DataFrame(first.samples).equals(pd.DataFrame(second.samples))
    damaged = [line for line in logs if "damaged" in line]
    assert len(damaged) == 1 and str(path) in damaged[0] and "other pixels" in damaged[0]


def test_store_of_a_future_schema_version(plugins, tmp_path):
    run(plugins, config(plugins, [{"name": "raw-test"}]), tmp_path / "s")
    db = sqlite3.connect(tmp_path / "s" / "results.sqlite")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    before = stored(tmp_path / "s")
    with pytest.raises(StoreError) as info:
        Store(tmp_path / "s")
    assert "results.sqlite" in str(info.value) and "schema version 99" in str(info.value)
    assert stored(tmp_path / "s") == before


def test_metric_that_cannot_be_pickled_for_workers(plugins, tmp_path, monkeypatch):
    import threading

    from tests import integrity_plugins

    original_init = integrity_plugins.HalfDefined.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.handle = threading.Lock()

    monkeypatch.setattr(integrity_plugins.HalfDefined, "__init__", init)
    cfg = config(plugins, [{"name": "raw-test"}], task=None, metrics=("half-defined",), count=80, workers=2)
    with pytest.raises(PluginError) as info:
        run(plugins, cfg, tmp_path / "s")
    assert "'half-defined'" in str(info.value) and "pickled" in str(info.value)
