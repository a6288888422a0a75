"""Write the static website of a folder of published boards: an index and a page per board, with the
board's downloadable files beside its page and every script the pages need in ``assets/``.

The pages work offline and from ``file://``: the chart library (Plotly's bundle, taken from the installed
``plotly`` package) is copied into the site, never loaded from a CDN. Templates are rendered by Jinja2
with autoescaping on, so every string a user or plugin supplied (row names, titles, options, notes)
is shown as text; the data the page script reads is embedded as JSON with ``<``, ``>`` and ``&``
escaped, so no label can end the script element it lives in.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import PublishError
from ..files import write_atomic
from ..publish import boards_in
from .board_view import board_view

ASSETS = ("site.css", "site.js")
CHART_BUNDLE = "plotly.min.js"


@dataclass
class SiteReport:
    out: Path
    boards: list[str]
    skipped: list[str]  # folders that are no board (no results.json), named for the log


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("taskcodec.site", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["json_script"] = json_for_script
    env.filters["fmt"] = format_value
    return env


def json_for_script(value: Any) -> str:
    """``value`` as JSON that is safe inside ``<script type="application/json">``: no ``</script>`` can form."""
    import markupsafe

    text = json.dumps(value, sort_keys=True, allow_nan=False, default=str)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return markupsafe.Markup(text)


def format_value(value: Any, column: dict[str, Any]) -> str:
    """A table cell as the board's README shows it (percent for fractions, 3 decimals for rates)."""
    if value is None or value == "":
        return "-"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    key = column["key"]
    if key == "rate_point":
        return f"{value:g}"
    if key == "images":
        return str(int(value))
    if column.get("rate"):
        return f"{value:.3f}"
    if column.get("percent"):
        return f"{100 * value:.2f}"
    return f"{value:.2f}" if key == "psnr" else f"{value:.4g}"


def _notes_html(markdown: str):
    """The board's notes (Markdown) as HTML; raw HTML in them is shown as text, never rendered."""
    import markupsafe
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return markupsafe.Markup(md.render(markdown))


def _copy_assets(out: Path) -> None:
    from plotly.offline import get_plotlyjs

    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        write_atomic(assets / name, resources.files("taskcodec.site").joinpath("static", name).read_bytes(),
                     durable=False)
    write_atomic(assets / CHART_BUNDLE, get_plotlyjs().encode("utf-8"), durable=False)


def build_site(boards_dir: Path, out: Path) -> SiteReport:
    """Write the site of every board under ``boards_dir`` (or of the one board it is) into ``out``."""
    boards_dir, out = Path(boards_dir), Path(out)
    if not boards_dir.is_dir():
        raise PublishError(f"{boards_dir}: no such folder of boards")
    if out.resolve() == boards_dir.resolve() or boards_dir.resolve() in out.resolve().parents:
        raise PublishError(f"--out {out}: the site must be written outside the boards' folder {boards_dir}")
    folders = boards_in(boards_dir)
    skipped = [] if folders == [boards_dir] else sorted(
        p.name for p in boards_dir.iterdir() if p.is_dir() and p not in folders)
    if not folders:
        raise PublishError(f"{boards_dir}: no published board in it (no */results.json)")
    env = _environment()
    views = []
    for folder in folders:
        try:
            view = board_view(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise PublishError(f"{folder}: cannot build its page: {exc}") from exc
        views.append(view)
        page = out / view["name"]
        (page / "files").mkdir(parents=True, exist_ok=True)
        for name in view["downloads"]:
            shutil.copyfile(folder / name, page / "files" / name)
        html = env.get_template("board.html").render(board=view, notes=_notes_html(view["notes_markdown"]))
        write_atomic(page / "index.html", html.encode("utf-8"), durable=False)
    index = env.get_template("index.html").render(boards=views)
    write_atomic(out / "index.html", index.encode("utf-8"), durable=False)
    _copy_assets(out)
    return SiteReport(out, [v["name"] for v in views], skipped)
