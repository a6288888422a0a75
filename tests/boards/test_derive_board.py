"""scripts/derive_board.py: a board of some rows of a published board, from its files alone; refused when the
data, the task or a row's codec differs."""
from __future__ import annotations

import csv
import shutil
import importlib.util

import pytest
from click.testing import CliRunner

from taskcodec.cli import main
from taskcodec.errors import PublishError
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec.verify import verify_board

from tests.helpers import REPO

SOURCE = """benchmark: source
dataset: {name: synthetic-faces, split: test, options: {count: 12, size: [32, 32]}}
metrics: [psnr]
codecs:
  - {name: jpeg, rate_points: [20, 50, 90]}
  - {name: webp, rate_points: [20, 50, 90]}
  - {name: jpeg, row: jpeg-small, rate_points: [10, 30]}
leaderboard: {anchor: jpeg}
"""


def _derive():
    spec = importlib.util.spec_from_file_location("derive_board", REPO / "scripts" / "derive_board.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.derive


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("derive")
    (folder / "source.yaml").write_text(SOURCE)
    ran = CliRunner().invoke(main, ["run", str(folder / "source.yaml"), "--out", str(folder / "board"),
                                    "--store", str(folder / "store"), "--no-progress", "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    return folder


def test_derived_board_has_the_source_rows_and_verifies(source, tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(SOURCE.replace("benchmark: source", "benchmark: study").replace(
        "  - {name: webp, rate_points: [20, 50, 90]}\n", ""))
    assert _derive()(source / "board", config, tmp_path / "study")
    rows = list(csv.DictReader(open(tmp_path / "study" / "results.csv")))
    original = [r for r in csv.DictReader(open(source / "board" / "results.csv")) if r["codec"] != "webp"]
    assert rows == original and {r["codec"] for r in rows} == {"none", "jpeg", "jpeg-small"}
    assert all(v.ok for v in verify_board(tmp_path / "study", get_plugin_manager().registry))


@pytest.mark.parametrize("change,reason", [
    (("count: 12", "count: 13"), "dataset differs"),
    (("- {name: webp, rate_points: [20, 50, 90]}", "- {name: webp, options: {method: 6}, rate_points: [20]}"),
     "row 'webp' is not the codec"),
    (("row: jpeg-small", "row: jpeg-tiny"), "row 'jpeg-tiny' is on none of the boards"),
])
def test_a_derived_board_of_other_data_or_codecs_is_refused(source, tmp_path, change, reason):
    config = tmp_path / "study.yaml"
    config.write_text(SOURCE.replace(*change))
    with pytest.raises(PublishError, match=reason):
        _derive()(source / "board", config, tmp_path / "study")
    assert not (tmp_path / "study").exists()


def test_a_derived_board_keeps_only_the_configured_rate_points(source, tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(SOURCE.replace("{name: webp, rate_points: [20, 50, 90]}", "{name: webp, rate_points: [50, 90]}"))
    _derive()(source / "board", config, tmp_path / "study")
    rows = list(csv.DictReader(open(tmp_path / "study" / "results.csv")))
    assert sorted(r["rate_point"] for r in rows if r["codec"] == "webp") == ["50", "90"]
    assert all(v.ok for v in verify_board(tmp_path / "study", get_plugin_manager().registry))
    config.write_text(SOURCE.replace("{name: webp, rate_points: [20, 50, 90]}", "{name: webp, rate_points: [30]}"))
    with pytest.raises(PublishError, match=r"rate points \['30'\] are not on the board"):
        _derive()(source / "board", config, tmp_path / "other")


def _run(folder, name: str, text: str):
    (folder / f"{name}.yaml").write_text(text)
    ran = CliRunner().invoke(main, ["run", str(folder / f"{name}.yaml"), "--out", str(folder / name),
                                    "--store", str(folder / "store"), "--no-progress", "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    return folder / name


def test_rows_of_two_boards_merge_without_recomputing_and_verify(source, tmp_path):
    """A published board plus a run of only a new row: the merged board holds both boards' rows as published."""
    new_row = SOURCE.replace("benchmark: source", "benchmark: new-row").split("codecs:")[0] + (
        "codecs:\n  - {name: webp, row: webp-fast, options: {method: 0}, rate_points: [30, 70]}\n")
    second = _run(tmp_path, "new-row", new_row)
    config = tmp_path / "merged.yaml"
    config.write_text(SOURCE.replace("leaderboard:", "  - {name: webp, row: webp-fast, options: {method: 0}, "
                                     "rate_points: [30, 70]}\nleaderboard:"))
    assert _derive()([source / "board", second], config, tmp_path / "merged")
    rows = list(csv.DictReader(open(tmp_path / "merged" / "results.csv")))
    by_source = list(csv.DictReader(open(source / "board" / "results.csv"))) + [
        r for r in csv.DictReader(open(second / "results.csv")) if r["codec"] != "none"]
    key = lambda r: (r["codec"], r["rate_point"])  # noqa: E731
    assert sorted(map(key, rows)) == sorted(map(key, by_source))
    assert {key(r): r["bpp"] for r in rows} == {key(r): r["bpp"] for r in by_source}
    assert all(v.ok for v in verify_board(tmp_path / "merged", get_plugin_manager().registry))
    merged = __import__("json").loads((tmp_path / "merged" / "results.json").read_text())
    assert [d["rows"] for d in merged["provenance"]["derived_from"]] == [["jpeg", "jpeg-small", "none", "webp"],
                                                                         ["webp-fast"]]


def test_a_second_board_of_other_images_is_refused(source, tmp_path):
    other = _run(tmp_path, "other", SOURCE.replace("count: 12", "count: 11").replace("benchmark: source", "benchmark: o"))
    config = tmp_path / "merged.yaml"
    config.write_text(SOURCE.replace("count: 12", "count: 11"))
    with pytest.raises(PublishError, match="dataset differs"):
        _derive()([source / "board", other], config, tmp_path / "merged")


def test_an_unset_option_renamed_since_publishing_keeps_the_row_the_same_codec(source, tmp_path):
    import json

    board = tmp_path / "board"
    shutil.copytree(source / "board", board)
    document = json.loads((board / "results.json").read_text())
    options = document["provenance"]["codecs"]["webp"]["options"]
    options["old_name_of_an_unset_option"] = None  # as an older plugin version published it
    (board / "results.json").write_text(json.dumps(document, indent=1))
    config = tmp_path / "study.yaml"
    config.write_text(SOURCE.replace("benchmark: source", "benchmark: study"))
    assert _derive()(board, config, tmp_path / "study")
    options["method"] = 6 if options.get("method") != 6 else 5  # a set option that differs: another codec
    (board / "results.json").write_text(json.dumps(document, indent=1))
    with pytest.raises(PublishError, match="row 'webp' is not the codec"):
        _derive()(board, config, tmp_path / "other")


def test_a_board_published_with_precision_auto_derives_under_the_precision_it_ran_in():
    """`precision: auto` resolved per CPU; a config naming what it resolved to is that board's task, any other
    precision (or `auto` itself, which might resolve otherwise here) is refused."""
    from types import SimpleNamespace

    from taskcodec.board_derive import _require_same_config

    published = {"dataset": {"name": "lfw"}, "seed": 0, "metrics": ["verification"],
                 "task": {"name": "mobilefacenet", "options": {"flip": True}}}
    board = SimpleNamespace(folder="leaderboard/x", provenance={"config": published,
                                                                 "task": {"inference_precision": "fp32"}})

    def config(precision):
        task = {"name": "mobilefacenet", "options": {"flip": True, **({"precision": precision} if precision else {})}}
        return SimpleNamespace(source="x.yaml", raw={**published, "task": task})

    _require_same_config(board, config("fp32"))
    for other in ("bf16", "auto", None):
        with pytest.raises(PublishError, match="task differs .*the precision as it ran there"):
            _require_same_config(board, config(other))
