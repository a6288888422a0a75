"""Model cards: made when a board renders (from training.json beside a codec's weights and the task
model's provenance), stored in results.json, shown in the README; the overlap statement's rules."""
from __future__ import annotations

import json

from taskcodec.model_cards import board_model_cards, overlap_statement
from taskcodec.publish import publish
from taskcodec_plugins.datasets.fer.datasets import FerPlus

from tests.helpers import make_collected

EVALUATED = {"name": "ferplus", "split": "test", "fingerprint": "e" * 64}
TRAINING = {"codec": "integer-hyperprior", "config": "configs/x/train/mse.yaml", "mode": "rd", "rate_points": {
    "0.01": {"training_data": {"dataset": "FerPlus", "split": "train", "images": 25045, "fingerprint": "t" * 64},
             "training": {"seconds": 1813.2, "images_per_s": 105.9, "steps": 1500, "batch_size": 128,
                          "hardware": {"cpu": "AMD EPYC", "torch_threads": 1}}}}}


def test_overlap_rules():
    assert overlap_statement(None, EVALUATED).startswith("unknown")
    assert overlap_statement({"dataset": "ferplus", "fingerprint": "e" * 64}, EVALUATED).startswith("TRAINED ON THE EVALUATED IMAGES")
    assert overlap_statement({"dataset": "FerPlus", "split": "test"}, EVALUATED).startswith("TRAINED ON THE EVALUATED SPLIT")
    assert "another dataset (CASIA)" in overlap_statement({"dataset": "CASIA", "split": "train"}, EVALUATED)
    assert "shared people or sources not measured" in overlap_statement({"dataset": "ferplus", "split": "val"}, EVALUATED)
    told = overlap_statement({"dataset": "ferplus", "split": "train"}, EVALUATED,
                             lambda name, a, b: FerPlus.split_relation(a, b))
    assert "FER2013Train vs the evaluated FER2013Test" in told


def test_cards_come_from_training_json_and_the_task_provenance(tmp_path):
    (tmp_path / "models" / "mse").mkdir(parents=True)
    (tmp_path / "models" / "mse" / "training.json").write_text(json.dumps(TRAINING))
    provenance = {"dataset": EVALUATED,
                  "task": {"weights_file": "clf.pt", "weights_sha256": "w" * 64, "train_split": "train",
                           "train_fingerprint": "t" * 64, "train_images": 25045, "train_time_s": 2381.0},
                  "row_tasks": {"joint": {"weights_file": "joint.pt"}},
                  "config": {"codecs": [{"name": "jpeg"}, {"name": "integer-hyperprior", "row": "mse",
                                                           "options": {"models": "models/mse"}},
                                        {"name": "integer-hyperprior", "row": "gone", "options": {"models": "models/gone"}}]}}
    cards = {c["row"]: c for c in board_model_cards(provenance, tmp_path)}
    assert set(cards) == {"(the board's task model)", "joint", "mse", "gone"}
    assert cards["mse"]["trained_on"]["images"] == 25045 and cards["mse"]["cost"]["seconds"] == 1813.2
    assert cards["mse"]["mode"] == "rd" and "another split" in cards["mse"]["overlap"]
    assert cards["(the board's task model)"]["cost"]["seconds"] == 2381.0
    assert cards["joint"]["trained_on"] is None and "trained outside taskcodec" in cards["joint"]["overlap"]
    assert cards["gone"]["overlap"] == "unknown: models/gone/training.json is not in this checkout"


def test_a_jointly_trained_task_model_gets_its_codec_s_training_data(tmp_path):
    (tmp_path / "models" / "j").mkdir(parents=True)
    (tmp_path / "models" / "j" / "training.json").write_text(json.dumps({**TRAINING, "mode": "joint"}))
    provenance = {"dataset": EVALUATED, "task": {"weights_file": "clf.pt"},
                  "row_tasks": {"joint": {"weights_file": "joint.pt", "weights_sha256": "j" * 64},
                                "uncompressed/joint": {"weights_file": "joint.pt", "weights_sha256": "j" * 64}},
                  "config": {"codecs": [{"name": "integer-hyperprior", "row": "joint", "options": {"models": "models/j"}}]}}
    cards = board_model_cards(provenance, tmp_path)
    tasks = {c["row"]: c for c in cards if c["kind"] == "task model"}
    for row in ("joint", "uncompressed/joint"):
        assert tasks[row]["mode"] == "joint" and tasks[row]["trained_on"]["images"] == 25045
        assert tasks[row]["cost"] == {"trained with": "codec row joint (its cost)"}
    assert tasks["(the board's task model)"]["trained_on"] is None


def test_a_published_board_stores_and_shows_its_cards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # model paths in configs are relative to the working directory
    (tmp_path / "models" / "mse").mkdir(parents=True)
    (tmp_path / "models" / "mse" / "training.json").write_text(json.dumps(TRAINING))
    collected, config = make_collected(("jpeg", "mse <b>x</b>"))
    collected.provenance["config"]["codecs"][1]["options"] = {"models": "models/mse"}
    publish(collected, config, tmp_path / "board")
    document = json.loads((tmp_path / "board" / "results.json").read_text())
    cards = document["provenance"]["model_cards"]
    assert [c["row"] for c in cards] == ["mse <b>x</b>"] and cards[0]["trained_on"]["dataset"] == "FerPlus"
    readme = (tmp_path / "board" / "README.md").read_text()
    section = readme.split("## Model cards", 1)[1].split("## Provenance", 1)[0]
    assert "mse &lt;b&gt;x&lt;/b&gt;" in section and "FerPlus train, 25045 images" in section
    assert "seconds 1813.2" in section and "model_cards" not in readme.split("## Provenance", 1)[1]
