"""Sites built once per test session: every committed board, and a small board with hostile labels."""
from __future__ import annotations

from pathlib import Path

import pytest

from taskcodec.publish import publish
from taskcodec.site import build_site

from tests.helpers import make_collected

REPO = Path(__file__).resolve().parents[2]
HOSTILE = ("jpeg", "<script>alert(1)</script>", 'a"b&c</td>', "<img src=x onerror=alert(2)>")
HOSTILE_NOTE = "<script>alert(3)</script> and <b>bold</b> stay text; `code` and *emphasis* are Markdown"


@pytest.fixture(scope="session")
def committed_site(tmp_path_factory) -> Path:
    return build_site(REPO / "leaderboard", tmp_path_factory.mktemp("site") / "out").out


@pytest.fixture(scope="session")
def hostile_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    collected, config = make_collected(HOSTILE, title="Title <b>bold</b> </script>", notes=[HOSTILE_NOTE])
    publish(collected, config, root / "boards" / "demo")
    (root / "boards" / "demo" / "notes.md").write_text(f"- {HOSTILE_NOTE}\n", encoding="utf-8")
    return build_site(root / "boards", root / "site").out
