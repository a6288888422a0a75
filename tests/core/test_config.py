from __future__ import annotations

from pathlib import Path

import pytest

from taskcodec.config import load_config, parse_config
from taskcodec.errors import ConfigError
from taskcodec.pluginmanager import PluginManager
from tests.helpers import REPO

BASE = {
    "benchmark": "demo",
    "dataset": {"name": "synthetic-faces", "split": "test"},
    "codecs": [{"name": "jpeg", "rate_points": [10, 50]}],
}


@pytest.fixture(scope="module")
def registry():
    return PluginManager().registry


def with_(**changes):
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    raw.update(changes)
    return raw


def error(raw, registry) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "cfg.yaml", registry)
    return str(err.value)


def test_valid_config_parses(registry):
    cfg = parse_config(with_(), "cfg.yaml", registry)
    assert cfg.codecs[0].row == "jpeg" and cfg.codecs[0].rate_points == (10, 50)
    assert cfg.reference and cfg.task is None and cfg.dataset.root is None


def test_unknown_top_level_key_lists_allowed(registry):
    message = error(with_(codec=[]), registry)
    assert message.startswith("cfg.yaml: (top level): unknown key 'codec'")
    assert "allowed keys:" in message and "codecs" in message


def test_unknown_codec_names_key_path_and_suggests(registry):
    message = error(with_(codecs=[{"name": "jpeg"}, {"name": "jpeg200"}]), registry)
    assert "cfg.yaml: codecs[1].name: no codec named 'jpeg200'" in message
    assert "Did you mean 'jpeg2000'" in message


def test_bad_rate_point_names_its_index(registry):
    message = error(with_(codecs=[{"name": "jpeg", "rate_points": [10, 500]}]), registry)
    assert "codecs[0].rate_points[1]" in message and "500" in message


def test_wrong_type_and_missing_key(registry):
    assert "dataset: missing required key 'name'" in error(with_(dataset={"split": "test"}), registry)
    assert "runner.workers: expected a positive integer" in error(with_(runner={"workers": 0}), registry)
    assert "runner.device: expected one of 'auto', 'cpu', 'cuda'" in error(with_(runner={"device": "tpu"}), registry)
    assert "codecs[0].options" in error(with_(codecs=[{"name": "jpeg", "options": {"nonsense": 1}}]), registry)


def test_bad_split_lists_splits(registry):
    message = error(with_(dataset={"name": "synthetic-faces", "split": "dev"}), registry)
    assert "dataset.split" in message and "'train'" in message


def test_duplicate_rows_and_reserved_label(registry):
    assert "duplicate row name 'jpeg'" in error(with_(codecs=["jpeg", "jpeg"]), registry)
    assert "reserved" in error(with_(codecs=[{"name": "jpeg", "row": "none"}]), registry)


def test_relative_root_resolves_against_taskcodec_data(monkeypatch, tmp_path, registry):
    monkeypatch.setenv("TASKCODEC_DATA", str(tmp_path))
    cfg = parse_config(with_(dataset={"name": "kodak", "root": "kodak"}), "cfg.yaml", registry)
    assert cfg.dataset.root == (tmp_path / "kodak").resolve()
    absolute = parse_config(with_(dataset={"name": "kodak", "root": "/data/k"}), "cfg.yaml", registry)
    assert absolute.dataset.root == Path("/data/k")


def test_dataset_needing_root(registry):
    assert "dataset.root" in error(with_(dataset={"name": "kodak"}), registry)


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("benchmark: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")


def _not_committed() -> dict[str, str]:
    """leaderboard/models/not-committed.yaml: model path -> the training config that rebuilds it."""
    from taskcodec.config import read_yaml

    listed = read_yaml(REPO / "leaderboard" / "models" / "not-committed.yaml")
    return {entry["path"]: entry["rebuild"] for entry in listed["models"]}


def _load_shipped(path: Path, registry) -> None:
    """Validate a shipped config whole, except the rows whose models are listed as not committed (each such
    model must be absent, and rebuildable from a training config that exists); any other missing model fails."""
    from taskcodec.config import read_yaml

    absent = _not_committed()
    raw = read_yaml(path)
    kept, dropped = [], set()
    for row in raw["codecs"]:
        named = [v for v in ((row.get("options") or {}).get("models"), (row.get("task_options") or {}).get("checkpoint"))
                 if isinstance(row, dict) and v]
        if any(v in absent for v in named):
            for v in named:
                assert v not in absent or not (REPO / v).exists(), f"{v} is listed as not committed but exists"
            dropped.add(row.get("row") or row["name"])
            continue
        kept.append(row)
    kept = kept or [{"name": "png"}]  # a board of only such rows: the rest of it (data, task, metrics) still checked
    board = dict(raw.get("leaderboard") or {})
    if "extra_anchors" in board:
        board["extra_anchors"] = [a for a in board["extra_anchors"] if a not in dropped]
    if board.get("anchor") in dropped:
        board.pop("anchor")
    parse_config({**raw, "codecs": kept, **({"leaderboard": board} if board else {})}, str(path), registry)


def test_models_listed_as_not_committed_are_absent_and_rebuildable():
    for model, rebuild in _not_committed().items():
        assert not (REPO / model).exists(), model
        assert (REPO / rebuild).is_file(), rebuild


def test_shipped_configs_are_valid(registry, monkeypatch):
    monkeypatch.setenv("TASKCODEC_DATA", "/nonexistent")  # validation does not need the data
    boards = sorted((REPO / "configs").glob("*/board.yaml"))
    assert len(boards) >= 6
    for path in boards:
        _load_shipped(path, registry)
    assert not list((REPO / "configs").glob("*.yaml")), "configs live in one folder per board"


def test_shipped_training_and_published_configs_are_valid(registry, monkeypatch):
    from taskcodec.codec_training_config import load_training_config

    monkeypatch.setenv("TASKCODEC_DATA", "/nonexistent")
    for path in sorted((REPO / "leaderboard").glob("*/config.yaml")):  # what `taskcodec leaderboard DIR` reads
        _load_shipped(path, registry)
    training = sorted((REPO / "configs").glob("*/train/*.yaml"))
    assert training
    for path in training:
        load_training_config(path)


def test_null_or_absent_rate_points_mean_the_codec_defaults(registry):
    cfg = parse_config(with_(codecs=[{"name": "jpeg", "rate_points": None}, {"name": "png"}]), "cfg.yaml", registry)
    assert cfg.codecs[0].rate_points == () and cfg.codecs[1].rate_points == ()


def test_omitted_anchor_still_defaults_to_jpeg(registry):
    cfg = parse_config(with_(codecs=["png", "webp"]), "cfg.yaml", registry)
    assert cfg.leaderboard.anchor == "jpeg"  # the leaderboard notes that no such row exists
    cfg = parse_config(with_(codecs=["png", "webp"], leaderboard={"anchor": "webp", "extra_anchors": ["png"]}),
                       "cfg.yaml", registry)
    assert cfg.leaderboard.anchor == "webp" and cfg.leaderboard.extra_anchors == ("png",)


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    from taskcodec.config import read_yaml

    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {epochs: 1, lr: 0.1}\nother:\n  <<: *b\n  epochs: 5\n")
    assert read_yaml(path)["other"] == {"epochs": 5, "lr": 0.1}


def test_option_names_come_from_the_declaration_else_the_signature():
    from taskcodec.options import option_names

    class Plain:
        def __init__(self, root=None, split="test", *, size=3, cache_dir=None):
            pass

    class Open:
        def __init__(self, **options):
            pass

    class Declared(Open):
        accepted_options = ("a", "b")

    assert option_names(Plain, "dataset") == ("size",)  # root, split, cache_dir are the framework's
    assert option_names(Plain, "task") == ("root", "split", "size", "cache_dir")
    assert option_names(Open, "task") is None  # not checked
    assert option_names(Declared, "codec") == ("a", "b")


def test_every_builtin_plugin_says_which_options_it_takes():
    from taskcodec.options import option_names
    from taskcodec_plugins.tasks.face_embedders.base import BASE_DEFAULTS, FaceEmbedderTask

    pm = PluginManager()
    builtin = [e for kind in ("codec", "dataset", "task") for e in pm.registry.entries(kind)
               if e.target.__module__.startswith("taskcodec_plugins.")]
    assert len(builtin) >= 12
    for entry in builtin:
        assert option_names(entry.target, entry.kind) is not None, entry.name
        if issubclass(entry.target, FaceEmbedderTask):
            assert set(entry.target.accepted_options) == {*BASE_DEFAULTS, *entry.target.extra_defaults}
        specs = getattr(entry.target, "option_specs", None)
        if specs is not None:
            assert entry.target.accepted_options == tuple(specs)


def test_declared_options_are_accepted(registry):
    cfg = parse_config(with_(dataset={"name": "synthetic-faces", "options": {"size": [32, 32], "count": 10}},
                             task={"name": "mobilefacenet", "options": {"weights": "w.ckpt", "flip": False}},
                             codecs=[{"name": "jpeg", "options": {"subsampling": "444"}},
                                     {"name": "webp", "task_options": {"workers": 1}}]), "cfg.yaml", registry)
    assert cfg.task.options["weights"] == "w.ckpt" and cfg.codecs[1].task_options == {"workers": 1}


@pytest.mark.parametrize("old, new", [("settings", "rate_points"), ("label", "row")])
def test_old_codec_key_names_say_the_new_one(registry, old, new):
    message = error(with_(codecs=[{"name": "jpeg", old: [10] if old == "settings" else "q"}]), registry)
    assert message == f"cfg.yaml: codecs[0].{old}: key {old!r} is now called {new!r}"


def test_benchmark_key_is_the_same_as_under_the_old_key_names(registry):
    """Stores key their recorded runs by this hash; it must not move with the rename."""
    cfg = parse_config(with_(codecs=[{"name": "jpeg", "row": "q", "rate_points": [10, 50]}]), "cfg.yaml", registry)
    old_raw = with_(codecs=[{"name": "jpeg", "label": "q", "settings": [10, 50]}])
    old_raw = {k: v for k, v in old_raw.items() if k not in ("runner", "leaderboard", "title")}
    import hashlib
    from taskcodec.hashing import stable_json
    assert cfg.key() == hashlib.sha256(stable_json(old_raw).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ notes files
def _board_config(tmp_path, notes_text, **leaderboard):
    (tmp_path / "notes.md").write_text(notes_text)
    return with_(leaderboard={"notes_file": "notes.md", **leaderboard})


def test_notes_file_items_become_the_notes_before_inline_ones(registry, tmp_path):
    raw = _board_config(tmp_path, "- First note,\n  continued.\n\n- Second `note`.\n", notes=["Inline."])
    cfg = parse_config(raw, str(tmp_path / "board.yaml"), registry)
    assert cfg.leaderboard.notes == ("First note, continued.", "Second `note`.", "Inline.")
    assert cfg.leaderboard.notes_file == "notes.md"


def test_notes_file_bad_line_names_file_and_line(registry, tmp_path):
    raw = _board_config(tmp_path, "- A note.\nNot a list item.\n")
    message = error_at(raw, tmp_path / "board.yaml", registry)
    assert f"{tmp_path / 'notes.md'}:2:" in message and "'- '" in message


@pytest.mark.parametrize("name", ["../notes.md", "sub/notes.md", "notes.txt", "README.md", ".notes.md"])
def test_notes_file_must_be_a_markdown_file_beside_the_config(registry, tmp_path, name):
    message = error_at(with_(leaderboard={"notes_file": name}), tmp_path / "board.yaml", registry)
    assert "leaderboard.notes_file" in message and repr(name) in message


def test_missing_notes_file_names_it(registry, tmp_path):
    message = error_at(with_(leaderboard={"notes_file": "absent.md"}), tmp_path / "board.yaml", registry)
    assert "leaderboard.notes_file" in message and str(tmp_path / "absent.md") in message


def error_at(raw, source, registry) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, str(source), registry)
    return str(err.value)
