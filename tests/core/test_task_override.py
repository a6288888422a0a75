"""codecs[i].task_options: rows evaluated with another model of the same task plugin."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import taskcodec
import taskcodec.errors
from taskcodec import runner as runner_module
from taskcodec.config import parse_config
from taskcodec.errors import ConfigError
from taskcodec.pluginmanager import PluginManager
from taskcodec.publish import publish
from taskcodec.runner import Runner
from taskcodec.store import Store
from tests.helpers import Patches


class Threshold(taskcodec.Task):
    """Brightness classifier whose model is its ``threshold`` option; its sample rows carry the
    prediction on the clean image (``clean_pred``), as verification tasks carry ``clean_score``."""

    name = "threshold"
    task_type = "classification"
    default_metrics = ("accuracy",)

    def prepare(self, dataset, context):
        self.threshold = float(self._options.get("threshold", 128))
        self.clean = None

    def fingerprint(self):
        return f"t{self.threshold}"

    def predict(self, images):
        return [int(float(np.mean(im)) > self.threshold) for im in images]

    def reference_outputs(self, dataset, outputs):
        self.clean = dict(outputs)

    def sample_rows(self, dataset, outputs):
        return [{"image": s.id, "label": s.label, "pred": outputs[s.id],
                 "clean_pred": None if self.clean is None else self.clean[s.id]} for s in dataset]


class OverridePlugin:
    @staticmethod
    @taskcodec.hookimpl
    def register_tasks(register):
        register(Threshold)

    @staticmethod
    @taskcodec.hookimpl
    def register_datasets(register):
        register(Patches)


STRICT = 208.0  # splits the bright patches (means 207-211): predictions differ from the main model's


@pytest.fixture
def plugins(third_party_plugin):
    return PluginManager(extra_plugins=[("override-plugin", OverridePlugin)])


def config(plugins, *, threshold: float = 128.0, override: bool = True, codecs=None):
    rows = codecs or [{"name": "quant-zlib", "rate_points": [2, 8]}, {"name": "png"}]
    if override:
        rows = [*rows, {"name": "quant-zlib", "row": "quant-zlib/strict", "rate_points": [2, 8],
                        "task_options": {"threshold": STRICT}}]
    raw = {"benchmark": "patches", "dataset": {"name": "patches"},
           "task": {"name": "threshold", "options": {"threshold": threshold}},
           "metrics": ["accuracy", "psnr"], "codecs": rows, "runner": {"workers": 1}}
    return parse_config(raw, "patches.yaml", plugins.registry)


def run(cfg, plugins, store, **kwargs):
    return Runner(cfg, Store(store), plugins, progress=False).run(**kwargs)


def _rows(collected, codec=None) -> pd.DataFrame:
    rows = pd.DataFrame(collected.rows)
    return rows if codec is None else rows[rows.codec == codec].reset_index(drop=True)


def _samples(collected, codec) -> pd.DataFrame:
    samples = pd.DataFrame(collected.samples)
    return samples[samples.codec == codec].reset_index(drop=True)


# ------------------------------------------------------------------------------ config
BASE = {"benchmark": "demo", "dataset": {"name": "synthetic-faces"},
        "task": {"name": "expression-cnn", "options": {"checkpoint": "main.pt"}}}


def test_task_options_parse_per_codec():
    cfg = parse_config({**BASE, "codecs": [
        {"name": "jpeg", "rate_points": [10, 50]},
        {"name": "jpeg", "row": "jpeg/joint-classifier", "rate_points": [10, 50],
         "task_options": {"checkpoint": "joint.pt"}},
    ]}, "cfg.yaml")
    assert cfg.codecs[0].task_options == {}
    assert cfg.codecs[1].task_options == {"checkpoint": "joint.pt"}


@pytest.mark.parametrize("value", [[], "joint.pt", 3])
def test_task_options_must_be_a_mapping(value):
    with pytest.raises(ConfigError, match=r"cfg\.yaml: codecs\[0\]\.task_options: expected a mapping"):
        parse_config({**BASE, "codecs": [{"name": "jpeg", "task_options": value}]}, "cfg.yaml")


def test_task_options_need_a_task():
    raw = {k: v for k, v in BASE.items() if k != "task"}
    with pytest.raises(ConfigError, match=r"cfg\.yaml: codecs\[1\]\.task_options: the config has no task"):
        parse_config({**raw, "codecs": ["png", {"name": "jpeg", "task_options": {"checkpoint": "x"}}]}, "cfg.yaml")


# ------------------------------------------------------------------------------ runner
def test_overridden_row_uses_its_own_model(plugins, tmp_path, monkeypatch):
    encoded: list[int] = []
    real_encode = runner_module.encode_chunk
    monkeypatch.setattr(runner_module, "encode_chunk",
                        lambda *a: encoded.append(len(a[3])) or real_encode(*a))  # a[3]: the chunk's images
    collected = run(config(plugins), plugins, tmp_path / "store")
    # the shared encodings (quant-zlib 2 and 8) are encoded once for both rows
    assert sum(encoded) == 3 * 24
    plain = run(config(plugins, override=False), plugins, tmp_path / "plain")
    strict = run(config(plugins, threshold=STRICT, override=False), plugins, tmp_path / "strict")

    # rows without task_options are those of a run without the override
    rows = _rows(collected)
    assert list(rows.codec) == ["none", "quant-zlib", "quant-zlib", "png", "quant-zlib/strict", "quant-zlib/strict"]
    assert rows[rows.codec != "quant-zlib/strict"].reset_index(drop=True).equals(_rows(plain))
    assert pd.DataFrame([s for s in collected.samples if s["codec"] != "quant-zlib/strict"]).equals(
        pd.DataFrame(plain.samples))
    # the overridden row is what the other model gives, clean predictions included (its own)
    mine, theirs = _rows(collected, "quant-zlib/strict"), _rows(strict, "quant-zlib")
    assert mine.drop(columns="codec").equals(theirs.drop(columns="codec"))
    assert _samples(collected, "quant-zlib/strict").drop(columns="codec").equals(
        _samples(strict, "quant-zlib").drop(columns="codec"))
    assert list(_samples(collected, "quant-zlib/strict").clean_pred[:24]) == list(_samples(strict, "none").pred)
    assert list(_samples(strict, "none").pred) != list(_samples(collected, "none").pred)  # not the main model's
    assert not _samples(collected, "quant-zlib/strict").pred.equals(_samples(collected, "quant-zlib").pred)
    assert (mine.accuracy != _rows(collected, "quant-zlib").accuracy).any()

    # the store keeps each model's outputs under its own id; the run records which row used which
    store = Store(tmp_path / "store")
    info = store.get_run(config(plugins).key())
    assert info["task_id"] == "threshold:t128.0"
    assert info["row_task_ids"] == {"quant-zlib/strict": f"threshold:t{STRICT}"}
    assert info["row_tasks"]["quant-zlib/strict"]["options"] == {"threshold": STRICT}
    assert collected.provenance["row_tasks"] == info["row_tasks"]
    assert "row_tasks" not in plain.provenance
    store.close()


def test_rerun_computes_nothing_and_collect_only_reproduces(plugins, tmp_path, monkeypatch):
    cfg = config(plugins)
    first = run(cfg, plugins, tmp_path / "store")

    def forbidden(*args, **kwargs):
        raise AssertionError("a warm rerun must not compute anything")

    monkeypatch.setattr(runner_module, "encode_chunk", forbidden)
    monkeypatch.setattr(Threshold, "predict", forbidden)
    second = run(cfg, plugins, tmp_path / "store")
    third = run(cfg, plugins, tmp_path / "store", compute=False)  # what `taskcodec leaderboard` does
    for again in (second, third):
        assert _rows(first).equals(_rows(again))
        assert pd.DataFrame(first.samples).equals(pd.DataFrame(again.samples))
        assert first.provenance["row_tasks"] == again.provenance["row_tasks"]


def test_collect_only_without_the_rows_task_id_fails(plugins, tmp_path):
    cfg = config(plugins)
    run(cfg, plugins, tmp_path / "store")
    store = Store(tmp_path / "store")
    info = store.get_run(cfg.key())
    store.put_run(cfg.key(), cfg.benchmark, {k: v for k, v in info.items() if k != "row_task_ids"})
    with pytest.raises(taskcodec.errors.StoreError, match="run `taskcodec run` first"):
        Runner(cfg, store, plugins, progress=False).run(compute=False)
    store.close()


def test_lost_outputs_of_the_other_model_are_recomputed(plugins, tmp_path):
    cfg = config(plugins)
    first = run(cfg, plugins, tmp_path / "store")
    store = Store(tmp_path / "store")
    with store.transaction() as db:
        db.execute("DELETE FROM task_outputs WHERE task = ?", (f"threshold:t{STRICT}",))
    second = Runner(cfg, store, plugins, progress=False).run()
    assert pd.DataFrame(first.samples).equals(pd.DataFrame(second.samples))
    store.close()


def test_leaderboard_readme_names_the_rows_model(plugins, tmp_path):
    cfg = config(plugins)
    publish(run(cfg, plugins, tmp_path / "store"), cfg, tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    assert 'row `quant-zlib/strict` is evaluated with task `threshold` options `{"threshold":208.0}`' in readme
    assert f"model `t{STRICT}`" in readme
