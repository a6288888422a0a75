"""The JSON Schemas of the files a board publishes, and their validation when written and when read.

Each schema is a versioned file of this package (``<kind>-<version>.schema.json``, JSON Schema 2020-12),
checked with the ``jsonschema`` library. A document that does not match is refused with the file,
the JSON path of the offending value and what the schema expected::

    from taskcodec.schemas import read_json, validate
    document = read_json(Path("leaderboard/lfw/results.json"), "results")
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import PublishError

# kind -> (the version written today, the versions read)
VERSIONS = {"results": (3, (3,)), "manifest": (1, (1,)), "bundle": (1, (1,))}


class SchemaError(PublishError):
    """A results, manifest or bundle file does not match its JSON Schema."""


def schema_path(kind: str, version: int | None = None) -> Path:
    """The packaged schema file of ``kind`` (default: the version written today)."""
    current, _ = _versions(kind)
    return Path(str(resources.files(__name__) / f"{kind}-{version or current}.schema.json"))


@lru_cache(maxsize=None)
def _validator(kind: str, version: int):
    import jsonschema  # off the core's import path: only reading or writing a board needs it

    schema = json.loads(schema_path(kind, version).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _versions(kind: str) -> tuple[int, tuple[int, ...]]:
    if kind not in VERSIONS:
        raise ValueError(f"unknown schema kind {kind!r}: one of {sorted(VERSIONS)}")
    return VERSIONS[kind]


def _json_path(path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def validate(document: Any, kind: str, source: str | Path) -> None:
    """Raise SchemaError naming ``source`` unless ``document`` matches the schema of its ``format``."""
    current, readable = _versions(kind)
    version = document.get("format", current) if isinstance(document, dict) else current
    if version not in readable:
        raise SchemaError(f"{source}: {kind} format {version!r}; this taskcodec reads format(s) "
                          f"{', '.join(map(str, readable))} (upgrade taskcodec to read newer boards)")
    errors = sorted(_validator(kind, version).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_json_path(e.absolute_path)}: {e.message}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise SchemaError(f"{source}: does not match the {kind} schema (format {version}, "
                          f"{schema_path(kind, version).name}){more}:\n  " + "\n  ".join(lines))


def read_json(path: Path, kind: str) -> dict[str, Any]:
    """The JSON document at ``path``, parsed and validated; errors name the file (and the line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read the {kind} file: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}, line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from exc
    validate(document, kind, path)
    return document
