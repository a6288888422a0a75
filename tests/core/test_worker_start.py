"""Workers on demand: with the worker count left to the runner, codec worker processes start only for
coding that repays their start-up; the results never depend on where the images were coded."""
from __future__ import annotations

import pandas as pd
import pytest

import taskcodec.runner as runner_module
import taskcodec.worker_pool as worker_pool
from taskcodec.pluginmanager import PluginManager
from taskcodec.store import encoding_key, encoding_keys
from tests.integrity_plugins import IntegrityPlugin, config, run

CODECS = [{"name": "raw-test"}, {"name": "jpeg", "rate_points": [30, 70]}]


@pytest.fixture
def plugins():
    return PluginManager(extra_plugins=[("integrity", IntegrityPlugin)])


@pytest.fixture
def starts(monkeypatch):
    """The worker counts of the pools started (by either path), with two cores assumed."""
    monkeypatch.setattr(runner_module, "_default_workers", lambda: 2)
    started: list[int] = []
    original = worker_pool.WorkerPool._started

    def spy(self):
        if self._executor is None:
            started.append(self.workers)
        return original(self)

    monkeypatch.setattr(worker_pool.WorkerPool, "_started", spy)
    return started


def _rows(collected) -> pd.DataFrame:
    rows = pd.DataFrame(collected.rows)
    return rows.drop(columns=[c for c in rows if "seconds" in c])  # timings differ from run to run


def test_cheap_coding_stays_in_this_process_with_the_same_results(plugins, starts, tmp_path):
    on_demand, _ = run(plugins, config(plugins, CODECS, count=120, workers=None), tmp_path / "a")
    assert starts == []  # 360 tiny images: far below a worker's start-up
    pooled, _ = run(plugins, config(plugins, CODECS, count=120, workers=2), tmp_path / "b")
    assert starts == [2]  # an explicit count always gets its processes
    assert _rows(on_demand).equals(_rows(pooled))
    assert pd.DataFrame(on_demand.images).drop(columns=["encode_seconds", "decode_seconds"], errors="ignore").equals(
        pd.DataFrame(pooled.images).drop(columns=["encode_seconds", "decode_seconds"], errors="ignore"))


def test_coding_timed_as_slow_starts_the_workers_mid_run(plugins, starts, tmp_path, monkeypatch):
    monkeypatch.setattr(worker_pool, "POOL_WORTH_SECONDS", 0.0)  # any timed cost now repays the workers
    collected, _ = run(plugins, config(plugins, CODECS, count=120, workers=None), tmp_path / "s")
    assert starts == [2]
    reference, _ = run(plugins, config(plugins, CODECS, count=120, workers=1), tmp_path / "r")
    assert _rows(collected).equals(_rows(reference))


def test_many_pixels_start_the_workers_before_the_images_are_digested(plugins, starts, tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "PRESTART_IMAGE_VALUES", 1)
    run(plugins, config(plugins, CODECS, count=120, workers=None), tmp_path / "s")
    assert starts == [2]


def test_cost_estimate_waits_for_a_warm_chunk_and_counts_untimed_cells_at_the_mean(monkeypatch):
    monkeypatch.setattr(worker_pool, "POOL_WORTH_SECONDS", 1.0)
    costs = worker_pool.CodingCostEstimate()
    costs.timed(0, 5.0, 10)  # a first chunk: one-time costs, not used
    assert costs.wants_timing(0) and not costs.pool_pays({0: 1000})
    costs.timed(0, 0.01, 10)  # 1 ms per image
    assert not costs.wants_timing(0)
    assert not costs.pool_pays({0: 500, 1: 400})  # 0.9 s
    assert costs.pool_pays({0: 500, 1: 600})  # 1.1 s, the untimed cell at cell 0's cost
    single = worker_pool.CodingCostEstimate()
    single.timed(0, 0.5, 10, last=True)  # a cell coded in one chunk counts by it
    assert single.pool_pays({1: 30}) and not single.pool_pays({1: 10})  # 50 ms per image: 1.5 s, 0.5 s


@pytest.mark.parametrize("identity, rate_point", [
    ({"name": "jpeg", "version": "1", "options": {}}, 30),
    ({"name": "ü-codec", "version": "2.0", "options": {"b": [1, 2.5], "a": None, "é": "\"quoted\""}}, 0.018),
    ({"name": "png", "version": "1", "options": {}}, None),
])
def test_encoding_keys_equal_one_key_at_a_time(identity, rate_point):
    digests = ["0" * 64, "ab12" * 16, "not hex: \"odd\" ü"]
    assert encoding_keys(identity, rate_point, digests) == [encoding_key(identity, rate_point, d) for d in digests]
