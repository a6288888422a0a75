"""``image-folder``'s ``class_map``: folder names of another dataset (RAF-DB, CK+, Kaggle FER2013 copies)
mapped onto a classifier's classes, and the documented cross-dataset config run end to end with the
committed FER+ classifier on generated folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from taskcodec import DatasetError
from taskcodec.errors import OptionError
from taskcodec.config import load_config
from taskcodec.publish import publish
from taskcodec.runner import Runner
from taskcodec.store import Store
from taskcodec_plugins.datasets.images.class_folders import ImageFolder

from tests.helpers import face, save_png

REPO = Path(__file__).resolve().parents[3]
FERPLUS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
FOLDERS = {"angry": 2, "happy": 3, "neutral": 2, "sad": 1, "surprise": 2}


def _folders(root: Path, folders=FOLDERS, size=(60, 50)) -> Path:
    for k, (name, n) in enumerate(folders.items()):
        for i in range(n):
            save_png(root / "test" / name / f"{name}{i}.png", face(10 * k + i, size))
    return root


def test_folders_map_onto_the_classifiers_classes(tmp_path):
    data = ImageFolder(_folders(tmp_path), "test", classes=FERPLUS,
                       class_map={"happy": "happiness", "sad": "sadness", "angry": "anger"})
    assert data.classes == tuple(FERPLUS)
    labels = {s.id: FERPLUS[s.label] for s in data}
    assert labels["happy/happy0.png"] == "happiness" and labels["angry/angry1.png"] == "anger"
    assert labels["surprise/surprise0.png"] == "surprise" and labels["neutral/neutral0.png"] == "neutral"
    assert data.metadata()["class_map"] == {"happy": "happiness", "sad": "sadness", "angry": "anger"}


def test_a_folder_mapped_to_null_is_left_out_and_counted(tmp_path):
    data = ImageFolder(_folders(tmp_path), "test", class_map={"sad": None})
    assert "sad" not in data.classes and not [s for s in data if s.id.startswith("sad/")]
    assert data.metadata()["left_out_images"] == {"sad": 1}


@pytest.mark.parametrize("class_map, words", [
    ({"hapy": "happiness"}, ["option 'class_map'", "['hapy'] name no folder there", "'angry'"]),
    ({"happy": "joy"}, ["option 'class_map'", "'joy' (for folder 'happy') is not one of them"]),
    (["happy", "happiness"], ["option 'class_map'", "a mapping of folder names"]),
])
def test_bad_class_maps_are_refused_with_the_reason(tmp_path, class_map, words):
    with pytest.raises(OptionError) as err:
        ImageFolder(_folders(tmp_path), "test", classes=FERPLUS, class_map=class_map)
    for word in words:
        assert word in str(err.value)


def test_an_unmapped_foreign_folder_says_how_to_map_it(tmp_path):
    with pytest.raises(DatasetError, match=r"class folder .*angry.* is not one of the classes .*class_map"):
        ImageFolder(_folders(tmp_path), "test", classes=FERPLUS)


def test_the_documented_cross_dataset_config_runs_with_the_ferplus_classifier(tmp_path, monkeypatch):
    from taskcodec.pluginmanager import get_plugin_manager

    monkeypatch.chdir(REPO)  # the config names the committed classifier by its repository path
    monkeypatch.setenv("TASKCODEC_DATA", str(tmp_path / "data"))
    _folders(tmp_path / "data" / "expressions-folder")
    pm = get_plugin_manager()
    config = load_config(REPO / "configs" / "ferplus-cross-dataset" / "board.yaml", pm.registry)
    collected = Runner(config, Store(tmp_path / "store"), pm, progress=False).run()
    assert collected.provenance["dataset"]["metadata"]["class_map"] == {"happy": "happiness", "sad": "sadness",
                                                                      "angry": "anger"}
    assert collected.provenance["task"]["weights_sha256"]
    publish(collected, config, tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "No BD-rates: a BD-rate compares the rate-quality curves of two codecs, and this board has one codec curve" in readme
    assert [r["codec"] for r in collected.rows].count("jpeg") == 5 and collected.rows[0]["images"] == 10
