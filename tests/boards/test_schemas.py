"""The result files' JSON Schemas: every board written validates, every published board in the
repository validates, and a malformed results.json or manifest is refused with the file, the JSON
path of the value and what was expected."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from taskcodec.cli import main
from taskcodec.publish import publish, up_to_date
from taskcodec.schemas import SchemaError, read_json, schema_path, validate

from tests.helpers import REPO, make_collected


def board(tmp_path):
    collected, config = make_collected()
    publish(collected, config, tmp_path / "board")
    return tmp_path / "board"


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=1))


def test_a_written_board_carries_its_format_and_validates(tmp_path):
    folder = board(tmp_path)
    results = read_json(folder / "results.json", "results")
    assert results["format"] == 3
    assert read_json(folder / "manifest.json", "manifest")["format"] == 1


@pytest.mark.parametrize("folder", sorted(p.parent for p in (REPO / "leaderboard").glob("*/results.json")),
                         ids=lambda p: p.name)
def test_every_published_board_matches_the_schemas(folder):
    read_json(folder / "results.json", "results")
    read_json(folder / "manifest.json", "manifest")


def test_the_schemas_ship_with_the_package():
    for kind in ("results", "manifest"):
        assert schema_path(kind).is_file() and json.loads(schema_path(kind).read_text())["$schema"]


@pytest.mark.parametrize("change, where", [
    (lambda d: d["rows"][1].update(bpp="0.5"), "$.rows[1].bpp"),
    (lambda d: d["rows"][0].update(images=-1), "$.rows[0].images"),
    (lambda d: d["provenance"]["dataset"].update(fingerprint="abc"), "$.provenance.dataset.fingerprint"),
    (lambda d: d.pop("rows"), "'rows' is a required property"),
    (lambda d: d.update(extra=1), "'extra' was unexpected"),
])
def test_a_malformed_results_file_is_refused_naming_the_value(tmp_path, change, where):
    folder = board(tmp_path)
    edit_json(folder / "results.json", change)
    with pytest.raises(SchemaError) as caught:
        read_json(folder / "results.json", "results")
    assert str(folder / "results.json") in str(caught.value) and where in str(caught.value)
    result = CliRunner().invoke(main, ["verify", str(folder)])
    assert result.exit_code != 0 and where in result.output


def test_a_newer_format_is_refused_with_what_this_version_reads(tmp_path):
    folder = board(tmp_path)
    edit_json(folder / "results.json", lambda d: d.update(format=4))
    with pytest.raises(SchemaError, match="results format 4; this taskcodec reads format.s. 3"):
        read_json(folder / "results.json", "results")


def test_broken_json_names_the_line(tmp_path):
    folder = board(tmp_path)
    text = (folder / "results.json").read_text().splitlines()
    text[3] = text[3] + ","  # a trailing comma inside the rows
    (folder / "results.json").write_text("\n".join(text))
    with pytest.raises(SchemaError, match=r"results.json, line \d+ column \d+: not valid JSON"):
        read_json(folder / "results.json", "results")


def test_a_malformed_manifest_is_reported_by_verify_and_rendered_again(tmp_path):
    folder = board(tmp_path)
    edit_json(folder / "manifest.json", lambda d: d["files"].update({"README.md": "not-a-digest"}))
    result = CliRunner().invoke(main, ["verify", str(folder)])
    assert result.exit_code == 1 and "$.files.README.md" in result.output
    collected, config = make_collected()
    from taskcodec.publish import content_digest

    assert up_to_date(folder, content_digest(collected, config)) is None  # so the next run renders it again
    assert publish(collected, config, folder)
    read_json(folder / "manifest.json", "manifest")


def test_validate_names_the_source_it_is_given():
    with pytest.raises(SchemaError, match="^bundle x: does not match the manifest schema"):
        validate({"format": 1, "content_digest": "0" * 64, "files": {}}, "manifest", "bundle x")
