"""Escaping for text that users and plugins supply (row names, titles, options, notes) where a
leaderboard renders it as Markdown, so that a label such as ``a|b``, ``<script>`` or one with a
newline shows as typed instead of breaking a table or injecting HTML."""
from __future__ import annotations

import html
import re
from typing import Any

# Characters with a meaning in (GitHub-flavoured) Markdown inline text and tables.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#!~])")
_BACKTICK_RUNS = re.compile(r"`+")


def _one_line(value: Any) -> str:
    return " ".join(str(value).splitlines()) if value is not None else ""


def md_text(value: Any) -> str:
    """``value`` as literal inline Markdown text (table cells, headings, list items)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(_one_line(value), quote=False))


def md_code(value: Any, in_table: bool = False) -> str:
    """``value`` as a code span: a backtick fence longer than any backtick run inside it. In a table
    a ``|`` still ends the cell inside a code span, so there it is escaped too."""
    text = _one_line(value)
    longest = max((len(run) for run in _BACKTICK_RUNS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def md_note(value: Any) -> str:
    """A config note: Markdown by design (code spans, emphasis stay), but on one line and with
    HTML shown as text, never rendered."""
    return html.escape(_one_line(value), quote=False)
