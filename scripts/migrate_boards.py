"""Migrate published leaderboard folders to the current names, in place, without recomputing.

Schema 3 of the result files names a codec's rate point ``rate_point`` (it was ``setting``) and a
config's codec row ``row`` (it was ``label``; ``settings`` became ``rate_points``). This rewrites a
board folder's files the way the current renderer would have written them from the same numbers:
the CSV headers, results.json (rows, the recorded config), config.yaml, README.md (the results
tables re-padded, the recorded config) and the manifest. Numbers and every other byte stay as they
are; a ``migrations`` entry in results.json records what was renamed. Idempotent.

    python scripts/migrate_boards.py leaderboard/*/
    taskcodec verify leaderboard/*/          # the numbers still recompute from the per-sample files
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import yaml
from tabulate import tabulate

COLUMN = ("setting", "rate_point")
CODEC_KEYS = {"settings": "rate_points", "label": "row"}
TABLE_HEADER = ("setting", "rate point")
RECORD = {"to": "result files schema 3", "renamed": "column setting -> rate_point; codec keys settings -> "
                                                     "rate_points, label -> row", "by": "scripts/migrate_boards.py"}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rename_csv_header(data: bytes) -> bytes:
    head, sep, rest = data.partition(b"\n")
    cells = [COLUMN[1] if c == COLUMN[0] else c for c in head.decode().split(",")]
    return ",".join(cells).encode() + sep + rest


def gzip_bytes(data: bytes) -> bytes:
    """As the renderer writes them: no timestamp, no file name."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as fh:
        fh.write(data)
    return buffer.getvalue()


def migrate_config(raw: dict) -> dict:
    if isinstance(raw.get("codecs"), list):
        raw = {**raw, "codecs": [{CODEC_KEYS.get(k, k): v for k, v in c.items()} if isinstance(c, dict) else c
                                 for c in raw["codecs"]]}
    return raw


def migrate_rows(rows: list) -> list:
    return [{COLUMN[1] if k == COLUMN[0] else k: v for k, v in row.items()} for row in rows]


def repad_table(lines: list[str]) -> list[str]:
    """A pipe table as tabulate writes it, with the old column name replaced."""
    split = [[c.strip() for c in line.strip()[1:-1].split("|")] for line in lines]
    header, rule, body = split[0], split[1], split[2:]
    align = ["right" if r.endswith(":") and not r.startswith(":") else "left" for r in rule]
    header = [TABLE_HEADER[1] if h == TABLE_HEADER[0] else h for h in header]
    text = tabulate(body, headers=header, tablefmt="pipe", disable_numparse=True, colalign=align)
    return text.split("\n")


def nested_dump(provenance: dict) -> str:
    """The provenance block of README.md, as the renderer writes it."""
    nested = {k: v for k, v in provenance.items() if isinstance(v, (dict, list, tuple))}
    return json.dumps(nested, indent=2, default=str)


def migrate_readme(text: str, old_provenance: dict, new_provenance: dict) -> str:
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1]):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            cells = [c.strip() for c in line.strip()[1:-1].split("|")]
            out += repad_table(lines[i:j]) if TABLE_HEADER[0] in cells else lines[i:j]
            i = j
            continue
        out.append(line)
        i += 1
    text = "\n".join(out)
    old_dump = nested_dump(old_provenance)
    if old_dump not in text:
        raise SystemExit(f"README.md: its provenance block is not the one results.json records; not migrated")
    return text.replace(old_dump, nested_dump(new_provenance))


def migrate(folder: Path) -> bool:
    document = json.loads((folder / "results.json").read_text())
    if any(m.get("to") == RECORD["to"] for m in document.get("migrations", [])):
        return False
    files: dict[str, bytes] = {}
    files["results.csv"] = rename_csv_header((folder / "results.csv").read_bytes())
    for name in ("images.csv.gz", "samples.csv.gz"):
        if (folder / name).is_file():
            files[name] = gzip_bytes(rename_csv_header(gzip.decompress((folder / name).read_bytes())))
    old_provenance = document["provenance"]
    new_provenance = {**old_provenance, "config": migrate_config(old_provenance["config"])}
    old_digest = document["content_digest"]
    new_digest = sha256_bytes(json.dumps([old_digest, RECORD], sort_keys=True).encode())
    document = {**document, "content_digest": new_digest, "rows": migrate_rows(document["rows"]),
                "provenance": new_provenance,
                "migrations": [*document.get("migrations", []), {**RECORD, "content_digest_before": old_digest}]}
    files["results.json"] = (json.dumps(document, indent=1, sort_keys=False, default=str) + "\n").encode()
    files["config.yaml"] = yaml.safe_dump(migrate_config(yaml.safe_load((folder / "config.yaml").read_text())),
                                          sort_keys=False).encode()
    files["README.md"] = migrate_readme((folder / "README.md").read_text(), old_provenance, new_provenance).encode()
    for name, data in files.items():
        tmp = folder / f".{name}.migrating"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = manifest["files"]
    manifest = {**manifest, "content_digest": new_digest,
                "files": {name: sha256_bytes((folder / name).read_bytes()) for name in listed}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return True


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(("migrated " if migrate(Path(arg)) else "already current ") + arg)
