"""What a board's page shows, read from the board's own files (results.json, results.csv, notes.md,
config.yaml): rows, columns, BD table, rate-matched and one-point-drop columns, provenance, model cards.

The result is plain JSON-able data; the page template and its script only display it. Nothing here
recomputes a number: the site shows what the board published (``taskcodec verify`` checks those).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..board_merge import Source
from ..leaderboard import HEADERS, IMAGE_METRICS, REFERENCE, is_fraction_column
from ..plots import row_styles
from ..model_cards import board_model_cards

#: Files of a board offered for download (those present are copied next to the page).
DOWNLOADS = ("results.csv", "results.json", "samples.csv.gz", "images.csv.gz", "config.yaml", "notes.md",
             "manifest.json", "rd.png", "confusion.png", "README.md")
#: Columns that describe a row rather than measure it.
_DESCRIPTIVE = ("codec", "rate_point", "parameter", "images")
_RATE_COLUMNS = ("bpp", "payload_bpp", "estimated_bpp")
# matplotlib line styles and markers of the static plot, in Plotly's names: the same look on the site
_DASHES = {"-": "solid", "--": "dash", "-.": "dashdot", ":": "dot"}
_SYMBOLS = {"o": "circle", "s": "square", "D": "diamond", "^": "triangle-up", "v": "triangle-down", "P": "cross",
            "*": "star", "X": "x", "h": "hexagon", "p": "pentagon", "<": "triangle-left", ">": "triangle-right"}


def _finite(value: Any) -> Any:
    """JSON has no NaN: missing numbers become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgb)


def board_view(folder: Path, repo_root: Path | None = None) -> dict[str, Any]:
    """The page data of the published board in ``folder`` (its results.json is schema-checked on reading).
    ``repo_root``: where the config's model paths are relative to (default: the folder above the boards' folder)."""
    source = Source.read(folder)
    document, provenance = source.document, source.provenance
    results = pd.read_csv(folder / "results.csv")
    if len(results) != len(document["rows"]):
        raise ValueError(f"{folder}: results.csv has {len(results)} rows, results.json {len(document['rows'])}")
    bd = document.get("bd") or {}
    quality = bd.get("quality_metric") or document.get("quality_metric")
    identities = provenance.get("codecs") or {}
    families = {row: ident.get("name", row) for row, ident in identities.items() if isinstance(ident, dict)}
    rows_order = list(dict.fromkeys(results["codec"].astype(str)))
    coded = [r for r in rows_order if r != REFERENCE]
    styles = row_styles(coded, families)

    measured = [c for c in results.columns if c not in _DESCRIPTIVE]
    first = [c for c in (*_RATE_COLUMNS, quality) if c in measured]
    ordered = first + [c for c in measured if c not in first and c not in IMAGE_METRICS] + \
        [c for c in IMAGE_METRICS if c in measured]
    columns = [{"key": c, "header": HEADERS.get(c, c.replace("_", " ")),
                "percent": is_fraction_column(results, c), "rate": c in _RATE_COLUMNS}
               for c in ("codec", "rate_point", *ordered, "images") if c in results.columns]
    metrics = [c["key"] for c in columns if c["key"] not in ("codec", "rate_point", "images") and not c["rate"]
               and pd.api.types.is_numeric_dtype(results[c["key"]]) and results[c["key"]].notna().any()]

    records = []
    for rec in results.to_dict("records"):
        row = str(rec["codec"])
        records.append({**{k: _finite(v) for k, v in rec.items()}, "codec": row,
                        "family": "reference" if row == REFERENCE else families.get(row, row)})
    return {
        "name": folder.name,
        "title": bd.get("title") or provenance.get("config", {}).get("title") or folder.name,
        "quality_metric": quality,
        "higher_is_better": bd.get("higher_is_better", True),
        "anchors": [a for a in [bd.get("anchor"), *(bd.get("extra_anchors") or [])] if a],
        "columns": columns,
        "metrics": metrics,
        "rows": records,
        "families": sorted({r["family"] for r in records}),
        "styles": {row: {"color": _hex(s["color"]), "dash": _DASHES.get(s["ls"], "solid"),
                         "symbol": _SYMBOLS.get(s["marker"], "circle")} for row, s in styles.items()},
        "bd": bd.get("bd") or [],
        "bd_method": bd.get("method"),
        "one_point_drop": bd.get("one_point_drop"),
        "rate_matched": bd.get("rate_matched"),
        "front_points": bd.get("front_points") or {},
        "provenance": _provenance_summary(provenance, identities),
        "provenance_full": provenance,
        # boards rendered before model cards existed get theirs from this checkout's training files
        "model_cards": provenance.get("model_cards") or board_model_cards(provenance, repo_root or folder.resolve().parent.parent),
        "downloads": [f for f in DOWNLOADS if (folder / f).is_file()],
        "notes_markdown": (folder / "notes.md").read_text(encoding="utf-8") if (folder / "notes.md").is_file() else "",
    }


def _provenance_summary(provenance: dict[str, Any], identities: dict[str, Any]) -> dict[str, Any]:
    """The facts a reader checks first, then each row's codec identity (name, version, options, weights)."""
    dataset = provenance.get("dataset") or {}
    task = provenance.get("task") or {}
    git = provenance.get("git") or {}
    rerendered = (provenance.get("rerendered") or {}).get("git") or {}
    facts = {
        "command": provenance.get("command"),
        "taskcodec": provenance.get("taskcodec"),
        "git revision": git.get("revision"),
        "git dirty": git.get("dirty"),
        "re-rendered at": rerendered.get("revision"),
        "dataset": f"{dataset.get('name')} split {dataset.get('split')}, {dataset.get('images')} images",
        "dataset fingerprint": dataset.get("fingerprint"),
        "task weights sha256": task.get("weights_sha256"),
        "seed": provenance.get("seed"),
        "device": provenance.get("device"),
        "machine": ", ".join(f"{k} {v}" for k, v in (provenance.get("machine") or {}).items()),
        "packages": ", ".join(f"{k} {v}" for k, v in (provenance.get("packages") or {}).items()),
    }
    rows = {}
    for row, ident in identities.items():
        if not isinstance(ident, dict):
            continue
        digests = sorted({m.get("digest") for m in ident.get("models") or [] if isinstance(m, dict) and m.get("digest")})
        rows[row] = {"codec": ident.get("name"), "version": ident.get("version"),
                     "options": {k: v for k, v in (ident.get("options") or {}).items() if v is not None},
                     "weights": digests}
    return {"facts": {k: v for k, v in facts.items() if v not in (None, "")}, "rows": rows}
