"""`taskcodec site`: the pages and files it writes, without a browser (tests/site/test_site_browser.py
drives the pages in one)."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from taskcodec.errors import PublishError
from taskcodec.site import build_site
from taskcodec.site.build import json_for_script

from tests.site.conftest import HOSTILE, REPO


def _boards() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "leaderboard").glob("*/results.json"))


def _csv_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def test_every_committed_board_gets_a_page_with_all_its_rows_and_files(committed_site):
    index = (committed_site / "index.html").read_text(encoding="utf-8")
    for name in _boards():
        assert f'href="{name}/index.html"' in index
        page = (committed_site / name / "index.html").read_text(encoding="utf-8")
        body = page.split('<table id="results"', 1)[1].split("</table>", 1)[0]
        assert body.count("<tr data-family=") == _csv_rows(REPO / "leaderboard" / name / "results.csv")
        published = [f for f in ("results.csv", "results.json", "samples.csv.gz", "images.csv.gz")
                     if (REPO / "leaderboard" / name / f).is_file()]
        assert published[:2] == ["results.csv", "results.json"]
        for download in published:
            copied = committed_site / name / "files" / download
            assert copied.read_bytes() == (REPO / "leaderboard" / name / download).read_bytes()
            assert f'href="files/{download}"' in page
    assert (committed_site / "assets" / "plotly.min.js").stat().st_size > 1_000_000


def test_pages_load_nothing_from_the_network(committed_site):
    for page in committed_site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', text)
        assert sources and all(not re.match(r"[a-z]+:|//", s) for s in sources), (page, sources)


def test_learned_rows_have_model_cards_with_training_data_and_cost(committed_site):
    page = (committed_site / "ferplus" / "index.html").read_text(encoding="utf-8")
    cards = page.split('<table id="model-cards">', 1)[1].split("</table>", 1)[0]
    for row in ("integer-mse", "integer-task"):
        assert f"<td>{row}</td>" in cards
    assert "FerPlus train, 25045 images" in cards
    assert "another FER+ folder (FER2013Train vs the evaluated FER2013Test)" in cards
    assert "seconds 1813.2" in cards


def test_user_supplied_strings_are_text_in_the_html(hostile_site):
    page = (hostile_site / "demo" / "index.html").read_text(encoding="utf-8")
    for label in HOSTILE[1:]:
        assert label not in page  # nowhere raw: not in a cell, an attribute or the embedded JSON
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page and "<b>bold</b>" not in page
    assert "<em>emphasis</em>" in page and "<code>code</code>" in page  # notes are still Markdown
    data = page.split('<script type="application/json" id="board-data">', 1)[1].split("</script>", 1)[0]
    assert {r["codec"] for r in json.loads(data)["rows"]} >= set(HOSTILE)


def test_json_for_script_cannot_close_its_element():
    text = json_for_script({"label": "</script><script>alert(1)</script>", "amp": "&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"label": "</script><script>alert(1)</script>", "amp": "&"}


def test_refuses_a_folder_without_boards_and_an_output_inside_the_boards(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishError, match="no published board"):
        build_site(tmp_path / "empty", tmp_path / "site")
    with pytest.raises(PublishError, match="outside the boards"):
        build_site(REPO / "leaderboard", REPO / "leaderboard" / "site")
    with pytest.raises(PublishError, match="no such folder"):
        build_site(tmp_path / "missing", tmp_path / "site")


def test_a_damaged_board_is_refused_with_its_folder_named(tmp_path):
    import shutil

    shutil.copytree(REPO / "leaderboard" / "quickstart", tmp_path / "boards" / "quickstart")
    results = tmp_path / "boards" / "quickstart" / "results.csv"
    results.write_text("\n".join(results.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(PublishError, match=r"quickstart.*results.csv has \d+ rows, results.json \d+"):
        build_site(tmp_path / "boards", tmp_path / "site")
