"""RunImages: a run holds no dataset in memory, codes exactly the pixels it digested, and checks any image it
must read again."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import taskcodec
from taskcodec.errors import DatasetError
from taskcodec.hashing import image_digest
from taskcodec.pluginmanager import PluginManager
from taskcodec.run_images import RunImages
from tests.integrity_plugins import IntegrityPlugin, Squares, config, run


class CountedSquares(Squares):
    """Squares that count their reads, and (with ``drift``) add one to image 3's pixels from its second read
    on: a dataset whose files change during a run."""

    name = "counted-squares"
    reads: dict[int, int] = {}
    drift = False

    def __getitem__(self, i):
        CountedSquares.reads[i] = CountedSquares.reads.get(i, 0) + 1
        sample = self.items[i]
        if CountedSquares.drift and i == 3 and CountedSquares.reads[i] > 1:
            return taskcodec.Sample(sample.id, sample.image + np.uint8(1), sample.label)
        return sample


class CountedPlugin:
    @staticmethod
    @taskcodec.hookimpl
    def register_datasets(register):
        register(CountedSquares)


@pytest.fixture
def plugins():
    CountedSquares.reads, CountedSquares.drift = {}, False
    return PluginManager(extra_plugins=[("integrity", IntegrityPlugin), ("counted", CountedPlugin)])


def _config(plugins, workers=1, task="numpy-task"):
    metrics = ("accuracy",) if task else ("psnr",)
    cfg = config(plugins, [{"name": "raw-test"}], count=12, workers=workers, task=task, metrics=metrics)
    return cfg.__class__(**{**cfg.__dict__, "dataset": cfg.dataset.__class__(**{**cfg.dataset.__dict__,
                                                                               "name": "counted-squares"})})


def test_labels_are_read_by_iterating_unless_a_dataset_knows_better():
    dataset = Squares(count=3)
    assert dataset.ids_and_labels() == [("sq000", 0), ("sq001", 1), ("sq002", 0)]


def test_images_are_copies_written_once_and_read_back_equal(tmp_path):
    dataset = Squares(count=5)
    images = RunImages(dataset, tmp_path, write=True)
    infos, digests = images.load(threads=1)
    assert [i.id for i in infos] == [s.id for s in dataset.items] and infos[0].shape == (16, 16)
    for index, sample in enumerate(dataset.items):
        again = images.get(index)
        assert np.array_equal(again, sample.image) and not np.shares_memory(again, sample.image)
        assert image_digest(again) == digests[index]
    images.close()
    assert list(tmp_path.iterdir()) == []  # the run's image file is gone with it


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cold_run_reads_each_image_from_the_dataset_once(plugins, tmp_path, workers):
    collected, _ = run(plugins, _config(plugins, workers, task=None), tmp_path / "s")  # (a task reads on its own)
    assert CountedSquares.reads == {i: 1 for i in range(12)}
    plain, _ = run(plugins, config(plugins, [{"name": "raw-test"}], count=12, workers=workers, task=None,
                                   metrics=("psnr",)), tmp_path / "plain")
    assert [r["bytes"] for r in collected.images] == [r["bytes"] for r in plain.images]


def _lose_task_outputs(store):
    db = sqlite3.connect(store / "results.sqlite")
    with db:
        db.execute("DELETE FROM task_outputs")
    db.close()


def test_an_image_read_again_must_be_the_one_digested(plugins, tmp_path):
    cfg = _config(plugins)
    first, _ = run(plugins, cfg, tmp_path / "s")
    _lose_task_outputs(tmp_path / "s")  # a finished benchmark that lost its outputs: its images are needed again
    CountedSquares.reads = {}
    again, _ = run(plugins, cfg, tmp_path / "s")
    # no image file (nothing was expected to compute): each image read again for its reference prediction,
    # besides digesting it and the task's own reading of the labels (two rows)
    assert CountedSquares.reads == {i: 1 + 1 + 2 for i in range(12)}
    assert again.rows == first.rows and again.samples == first.samples
    _lose_task_outputs(tmp_path / "s")
    CountedSquares.reads, CountedSquares.drift = {}, True  # image 3 changes after this run has read it once
    with pytest.raises(DatasetError, match=r"'counted-squares'.*sample 'sq003' \(index 3\) has other pixels"):
        run(plugins, cfg, tmp_path / "s")
