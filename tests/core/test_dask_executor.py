"""``runner.executor: dask``: the codec chunks on a Dask LocalCluster of two workers give byte-identical
boards to the local executor, and a worker killed mid-chunk costs a retry, not the run."""
from __future__ import annotations

import pytest

from taskcodec.pluginmanager import PluginManager
from taskcodec.publish import publish

from tests.helpers import board_digests
from tests.integrity_plugins import IntegrityPlugin, config, run

pytest.importorskip("distributed")

CODECS = [{"name": "jpeg", "rate_points": [20, 80]}, {"name": "webp", "rate_points": [30]},
          {"name": "raw-test"}]


@pytest.fixture(scope="module")
def plugins():
    return PluginManager(extra_plugins=[("integrity", IntegrityPlugin)])


def _board(plugins, codecs, tmp_path, name, **runner):
    cfg = config(plugins, codecs, metrics=("accuracy", "psnr"), count=80, workers=2)
    collected, logs = run(plugins, cfg, tmp_path / f"store-{name}", **runner)
    publish(collected, cfg, tmp_path / name)
    digests = board_digests(tmp_path / name)
    return {f: digests[f] for f in ("results.csv", "images.csv.gz", "samples.csv.gz")}, logs


def test_dask_gives_the_boards_of_the_local_executor(plugins, tmp_path):
    local, _ = _board(plugins, CODECS, tmp_path, "local")
    dask, _ = _board(plugins, CODECS, tmp_path, "dask", executor="dask")
    assert dask == local


def test_a_worker_killed_mid_chunk_is_replaced_and_the_results_do_not_change(plugins, tmp_path, monkeypatch):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("DIES_ONCE_MARKER", str(marker))  # the LocalCluster's workers inherit it
    codecs = [{"name": "dies-once"}, {"name": "jpeg", "rate_points": [50]}]
    survived, _ = _board(plugins, codecs, tmp_path, "dask", executor="dask")
    assert marker.exists()  # a worker did die, in a chunk
    reference, _ = _board(plugins, [{"name": "raw-test", "row": "dies-once"}, {"name": "jpeg", "rate_points": [50]}],
                          tmp_path, "local")
    assert survived == reference


def test_executor_settings_are_checked(plugins):
    from taskcodec.config import parse_config
    from taskcodec.errors import ConfigError

    base = {"benchmark": "b", "dataset": {"name": "squares"}, "codecs": [{"name": "raw-test"}]}
    assert parse_config({**base, "runner": {"executor": "dask"}}, "b.yaml", plugins.registry).runner.executor == "dask"
    with pytest.raises(ConfigError, match=r"runner.executor.*'local', 'dask'.*'spark'"):
        parse_config({**base, "runner": {"executor": "spark"}}, "b.yaml", plugins.registry)
    with pytest.raises(ConfigError, match="runner.scheduler.*needs runner.executor: dask"):
        parse_config({**base, "runner": {"scheduler": "tcp://h:8786"}}, "b.yaml", plugins.registry)
    cfg = parse_config(base, "b.yaml", plugins.registry)
    assert parse_config({**base, "runner": {"executor": "dask"}}, "b.yaml", plugins.registry).key() == cfg.key()
