"""Catalogue of bad benchmark/training configs: each is a ConfigError naming the file, the key path
(and the line, for YAML-level faults) and what was expected. One case per input."""
from __future__ import annotations

from pathlib import Path

import pytest

from taskcodec.config import load_config, parse_config
from taskcodec.errors import ConfigError
from taskcodec.pluginmanager import PluginManager
from taskcodec.codec_training_config import build_request, load_training_config

BASE = {
    "benchmark": "demo",
    "dataset": {"name": "synthetic-faces", "split": "test"},
    "codecs": [{"name": "jpeg", "rate_points": [10, 50]}],
}


@pytest.fixture(scope="module")
def plugins():
    return PluginManager()


def config_error(raw, plugins) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "bad.yaml", plugins.registry)
    return str(err.value)


# ------------------------------------------------------------------ duplicate YAML keys (file and line)
GOOD_HEAD = "benchmark: demo\ndataset: {name: synthetic-faces}\n"
DUPLICATE_KEY_FILES = {
    "codecs-twice": (GOOD_HEAD + "codecs: [jpeg]\ncodecs: [png]\n", 4, "'codecs'"),
    "dataset-option-twice": ("benchmark: demo\ndataset:\n  name: synthetic-faces\n  options:\n    size: [64, 64]\n"
                             "    size: [32, 32]\ncodecs: [jpeg]\n", 6, "'size'"),
    "codec-entry-rate_points-twice": (GOOD_HEAD + "codecs:\n  - name: jpeg\n    rate_points: [10]\n    rate_points: [20]\n",
                                   6, "'rate_points'"),
    "flow-mapping-key-twice": (GOOD_HEAD + "codecs: [{name: jpeg, options: {optimize: true, optimize: false}}]\n",
                               3, "'optimize'"),
    "leaderboard-anchor-twice": (GOOD_HEAD + "codecs: [jpeg, png]\nleaderboard:\n  anchor: jpeg\n  anchor: png\n",
                                 6, "'anchor'"),
}


@pytest.mark.parametrize("case", sorted(DUPLICATE_KEY_FILES))
def test_duplicate_yaml_key_names_file_line_and_key(case, tmp_path, plugins):
    text, line, key = DUPLICATE_KEY_FILES[case]
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, plugins.registry)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: duplicate key {key}"), message
    assert "first given at line" in message


def test_duplicate_key_in_training_config_names_file_and_line(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("train_codec:\n  codec: learned\n  mode: rd\n  rate_points: [0.01]\n  out: models\n"
                    "  mode: task\ndataset: {name: synthetic-faces}\n")
    with pytest.raises(ConfigError, match=r"train\.yaml:6: duplicate key 'mode' \(first given at line 3\)"):
        load_training_config(path)


# ------------------------------------------------------------------ rate points
RATE_POINTS = {
    "same-integer-twice": ([10, 10, 50], "codecs[0].rate_points[1]"),
    "integer-and-float-equal": ([10, 10.0], "codecs[0].rate_points[1]"),
    "third-repeats-first": ([10, 50, 10], "codecs[0].rate_points[2]"),
}


@pytest.mark.parametrize("case", sorted(RATE_POINTS))
def test_duplicate_rate_point_names_its_index(case, plugins):
    rate_points, where = RATE_POINTS[case]
    message = config_error({**BASE, "codecs": [{"name": "jpeg", "rate_points": rate_points}]}, plugins)
    assert message.startswith(f"bad.yaml: {where}: rate point") and "listed twice" in message


def test_empty_rate_points_list_says_to_omit_it(plugins):
    message = config_error({**BASE, "codecs": [{"name": "jpeg", "rate_points": []}]}, plugins)
    assert message.startswith("bad.yaml: codecs[0].rate_points:")
    assert "omit 'rate_points'" in message and "default rate points" in message


def test_rate_points_equal_after_the_codecs_canonical_form(plugins):
    # jpeg2000's psnr targets are floats; 30 and 30.0 are one point however they are spelt
    message = config_error({**BASE, "codecs": [{"name": "jpeg2000", "rate_points": [30.0, 32, 30]}]}, plugins)
    assert "codecs[0].rate_points[2]" in message and "twice" in message


# ------------------------------------------------------------------ unknown plugin options
OPTIONS = {
    "dataset-typo": ({"dataset": {"name": "synthetic-faces", "options": {"sise": [64, 64]}}},
                     "dataset.options", "'sise'", "dataset 'synthetic-faces'", "size", "Did you mean 'size'"),
    "dataset-split-as-option": ({"dataset": {"name": "synthetic-faces", "options": {"split": "train"}}},
                                "dataset.options", "'split'", "dataset 'synthetic-faces'", "size", "dataset.split"),
    "dataset-cache-dir-as-option": ({"dataset": {"name": "image-dir", "root": "/x", "options": {"cache_dir": "/c"}}},
                                    "dataset.options", "'cache_dir'", "dataset 'image-dir'", "patterns", ""),
    "task-typo": ({"task": {"name": "expression-cnn", "options": {"epoch": 3}}},
                  "task.options", "'epoch'", "task 'expression-cnn'", "epochs", "Did you mean 'epochs'"),
    "row-task-options-typo": ({"task": {"name": "expression-cnn"},
                               "codecs": ["png", {"name": "jpeg", "task_options": {"checkpiont": "m.pt"}}]},
                              "codecs[1].task_options", "'checkpiont'", "task 'expression-cnn'", "checkpoint",
                              "Did you mean 'checkpoint'"),
    "mobilefacenet-typo": ({"task": {"name": "mobilefacenet", "options": {"weight": "w.ckpt"}}},
                           "task.options", "'weight'", "task 'mobilefacenet'", "weights", "Did you mean 'weights'"),
    "facenet-typo": ({"task": {"name": "facenet", "options": {"pretrain": "vggface2"}}},
                     "task.options", "'pretrain'", "task 'facenet'", "pretrained", "Did you mean 'pretrained'"),
    "jpeg-typo": ({"codecs": [{"name": "jpeg", "options": {"subsample": "444"}}]},
                  "codecs[0].options", "'subsample'", "codec 'jpeg'", "subsampling", "Did you mean 'subsampling'"),
    "learned-typo": ({"codecs": [{"name": "learned", "options": {"model": "models/"}}]},
                     "codecs[0].options", "'model'", "codec 'learned'", "models", "Did you mean 'models'"),
    "option-on-optionless-codec": ({"codecs": [{"name": "png", "options": {"level": 9}}]},
                                   "codecs[0].options", "'level'", "codec 'png'", "(none)", ""),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_unknown_option_names_option_plugin_and_accepted(case, plugins):
    change, where, option, plugin, accepted, hint = OPTIONS[case]
    message = config_error({**BASE, **change}, plugins)
    assert message.startswith(f"bad.yaml: {where}: unknown option {option} for {plugin}"), message
    assert "accepted options:" in message and accepted in message.split("accepted options:")[1]
    assert hint in message


def test_unknown_dataset_option_in_training_config_fails_before_building_data(tmp_path, plugins):
    path = tmp_path / "train.yaml"
    path.write_text("train_codec: {codec: learned, mode: rd, rate_points: [0.01], out: models}\n"
                    "dataset: {name: synthetic-faces, options: {sise: [32, 32]}}\n")
    with pytest.raises(ConfigError) as err:
        build_request(load_training_config(path), plugins, tmp_path / "store")
    assert str(err.value).startswith(f"{path}: dataset.options: unknown option 'sise' for dataset 'synthetic-faces'")
    assert not (tmp_path / "store").exists()  # nothing built, nothing written


def test_unknown_task_option_in_training_config(tmp_path, plugins):
    path = tmp_path / "train.yaml"
    path.write_text("train_codec: {codec: learned, mode: task, rate_points: [0.01], out: models}\n"
                    "dataset: {name: synthetic-faces}\ntask: {name: expression-cnn, options: {epoch: 1}}\n")
    with pytest.raises(ConfigError, match=r"task\.options: unknown option 'epoch' for task 'expression-cnn'"):
        build_request(load_training_config(path), plugins, tmp_path / "store")


# ------------------------------------------------------------------ leaderboard anchors
ANCHORS = {
    "anchor-not-a-row": ({"anchor": "webp"}, "leaderboard.anchor", "'webp' is not a row"),
    "anchor-is-reference-row": ({"anchor": "none"}, "leaderboard.anchor", "'none' is not a row"),
    "extra-anchor-not-a-row": ({"extra_anchors": ["jpeg2000"]}, "leaderboard.extra_anchors[0]",
                               "'jpeg2000' is not a row"),
    "extra-anchor-twice": ({"anchor": "jpeg", "extra_anchors": ["png", "png"]}, "leaderboard.extra_anchors[1]",
                           "listed twice"),
    "extra-anchor-is-the-anchor": ({"anchor": "jpeg", "extra_anchors": ["jpeg"]}, "leaderboard.extra_anchors[0]",
                                   "already leaderboard.anchor"),
}


@pytest.mark.parametrize("case", sorted(ANCHORS))
def test_bad_anchor_names_the_key_and_lists_the_rows(case, plugins):
    leaderboard, where, problem = ANCHORS[case]
    message = config_error({**BASE, "codecs": ["jpeg", "png"], "leaderboard": leaderboard}, plugins)
    assert message.startswith(f"bad.yaml: {where}: ") and problem in message
    if "not a row" in problem:
        assert "its codec rows are: jpeg, png" in message


# ------------------------------------------------------------------ values accepted silently before
OTHER = {
    "reference-quoted-yes": ({"reference": "yes"}, "reference", "true or false"),
    "negative-seed": ({"seed": -1}, "seed", "an integer seed >= 0"),
    "row-with-newline": ({"codecs": [{"name": "jpeg", "row": "jpeg\nq"}]}, "codecs[0].row", "one line"),
    "empty-row": ({"codecs": [{"name": "jpeg", "row": ""}]}, "codecs[0].row", "a row name"),
    "row-with-trailing-space": ({"codecs": [{"name": "jpeg", "row": "jpeg "}]}, "codecs[0].row", "spaces"),
    "title-with-newline": ({"title": "Quick\nstart"}, "title", "one line"),
    "benchmark-with-backslash": ({"benchmark": "a\\b"}, "benchmark", "plain folder name"),
    "dataset-options-list": ({"dataset": {"name": "synthetic-faces", "options": []}}, "dataset.options", "mapping"),
    "codec-options-empty-string": ({"codecs": [{"name": "jpeg", "options": ""}]}, "codecs[0].options", "mapping"),
    "task-options-list": ({"task": {"name": "expression-cnn", "options": []}}, "task.options", "mapping"),
    "runner-list": ({"runner": []}, "runner", "mapping"),
    "leaderboard-empty-string": ({"leaderboard": ""}, "leaderboard", "mapping"),
    "empty-dataset-root": ({"dataset": {"name": "kodak", "root": ""}}, "dataset.root", "a folder path"),
    "metric-twice": ({"metrics": ["psnr", "psnr"]}, "metrics[1]", "listed twice"),
}


@pytest.mark.parametrize("case", sorted(OTHER))
def test_value_once_accepted_silently_is_an_error(case, plugins):
    change, where, expected = OTHER[case]
    message = config_error({**BASE, **change}, plugins)
    assert message.startswith(f"bad.yaml: {where}: "), message
    assert expected in message


TRAINING = {
    "negative-seed": ("seed: -3\n", "seed", ">= 0"),
    "options-list": ("", "train_codec.options", "mapping"),
    "runner-list": ("runner: []\n", "runner", "mapping"),
}


@pytest.mark.parametrize("case", sorted(TRAINING))
def test_training_config_value_once_accepted_silently(case, tmp_path):
    extra, where, expected = TRAINING[case]
    options = "[]" if case == "options-list" else "{}"
    path = tmp_path / "train.yaml"
    path.write_text(f"train_codec: {{codec: learned, mode: rd, rate_points: [0.01], out: m, options: {options}}}\n"
                    f"dataset: {{name: synthetic-faces}}\n{extra}")
    with pytest.raises(ConfigError) as err:
        load_training_config(path)
    assert str(err.value).startswith(f"{path}: {where}: ") and expected in str(err.value)
