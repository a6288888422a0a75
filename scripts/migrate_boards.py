"""Migrate published leaderboard folders to the current names and layout, in place, without recomputing.

Two migrations, each applied once and recorded in results.json's ``migrations``:

- ``result files schema 3``: a codec's rate point is the column ``rate_point`` (it was ``setting``);
  a config's codec row names its row with ``row`` (was ``label``) and its rate points with
  ``rate_points`` (was ``settings``);
- ``configs by board``: configs live in ``configs/<board>/`` (``board.yaml``, ``notes.md``,
  ``train/``), the FER+ models shared by two boards in ``leaderboard/models/ferplus/``; a board's
  notes are read from ``notes.md`` (``leaderboard.notes_file``), which the board keeps beside its
  config.yaml.

Each rewrites the folder's files as the current renderer writes them from the same numbers: the CSV
headers, results.json (rows, the recorded config and paths), config.yaml, notes.md, README.md (the
results tables re-padded, the recorded provenance) and the manifest. Every number stays as it is.

    python scripts/migrate_boards.py leaderboard/*/
    taskcodec verify leaderboard/*/          # the numbers still recompute from the per-sample files
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
import textwrap
from pathlib import Path

import yaml
from tabulate import tabulate

from taskcodec.publish import _gzip_bytes as publish_gzip  # the renderer's own: no timestamp, no name

SCHEMA_3 = {"to": "result files schema 3", "renamed": "column setting -> rate_point; codec keys settings -> "
                                                       "rate_points, label -> row", "by": "scripts/migrate_boards.py"}
LAYOUT = {"to": "configs by board", "moved": "configs/<board>.yaml -> configs/<board>/board.yaml, notes -> "
                                             "notes.md, FER+ models -> leaderboard/models/ferplus/",
          "by": "scripts/migrate_boards.py"}
CODEC_KEYS = {"settings": "rate_points", "label": "row"}
PATH_MOVES = [
    ("configs/quickstart.yaml", "configs/quickstart/board.yaml"),
    ("configs/kodak.yaml", "configs/kodak/board.yaml"),
    ("configs/ferplus.yaml", "configs/ferplus/board.yaml"),
    ("configs/ferplus-loss-weights.yaml", "configs/ferplus-loss-weights/board.yaml"),
    ("configs/lfw.yaml", "configs/lfw/board.yaml"),
    ("configs/lfw-compress-then-align.yaml", "configs/lfw-compress-then-align/board.yaml"),
    ("configs/train/ferplus-learned-joint.yaml", "configs/ferplus/train/learned-joint.yaml"),
    ("configs/train/ferplus-learned-mse-8000.yaml", "configs/ferplus/train/learned-mse-8000.yaml"),
    ("configs/train/ferplus-learned-mse-long.yaml", "configs/ferplus/train/learned-mse-long.yaml"),
    ("configs/train/ferplus-learned-mse.yaml", "configs/ferplus/train/learned-mse.yaml"),
    ("configs/train/ferplus-learned-pretrain.yaml", "configs/ferplus/train/learned-pretrain.yaml"),
    ("configs/train/ferplus-learned-task-8000.yaml", "configs/ferplus/train/learned-task-8000.yaml"),
    ("configs/train/ferplus-learned-task-long.yaml", "configs/ferplus/train/learned-task-long.yaml"),
    ("configs/train/ferplus-learned-task.yaml", "configs/ferplus/train/learned-task.yaml"),
    ("configs/train/ferplus-study-a0.05-b0.5-g1.yaml", "configs/ferplus-loss-weights/train/study-a0.05-b0.5-g1.yaml"),
    ("configs/train/ferplus-study-a0.2-b0.5-g1.yaml", "configs/ferplus-loss-weights/train/study-a0.2-b0.5-g1.yaml"),
    ("configs/train/ferplus-study-a1-b0-g1.yaml", "configs/ferplus-loss-weights/train/study-a1-b0-g1.yaml"),
    ("configs/train/ferplus-study-a1-b1-g0.yaml", "configs/ferplus-loss-weights/train/study-a1-b1-g0.yaml"),
    ("configs/train/lfw-compnet-joint.yaml", "configs/lfw/train/compnet-joint.yaml"),
    ("configs/train/lfw-compnet-rd.yaml", "configs/lfw/train/compnet-rd.yaml"),
    ("configs/train/lfw-learned-joint.yaml", "configs/lfw/train/learned-joint.yaml"),
    ("configs/train/lfw-learned-mse.yaml", "configs/lfw/train/learned-mse.yaml"),
    ("configs/train/lfw-learned-pretrain.yaml", "configs/lfw/train/learned-pretrain.yaml"),
    ("configs/train/lfw-learned-task.yaml", "configs/lfw/train/learned-task.yaml"),
    ("configs/train/README.md", "configs/README.md"),
    ("leaderboard/ferplus/expression-cnn-ferplus.pt", "leaderboard/models/ferplus/expression-cnn-ferplus.pt"),
    ("leaderboard/ferplus/models", "leaderboard/models/ferplus"),
]
NOTES_FILE = "notes.md"


# ------------------------------------------------------------------------------ helpers
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def moved_paths(text: str) -> str:
    """Every old path replaced by its new one (a folder also as a prefix of longer paths)."""
    for old, new in sorted(PATH_MOVES, key=lambda m: -len(m[0])):
        text = re.sub(re.escape(old) + r"(?![\w.-])", new, text)
    return text


def nested_dump(provenance: dict) -> str:
    """The provenance block of README.md, as the renderer writes it."""
    nested = {k: v for k, v in provenance.items() if isinstance(v, (dict, list, tuple))}
    return json.dumps(nested, indent=2, default=str)


def notes_markdown(notes: list[str]) -> str:
    """A notes file that reads back (taskcodec.config.read_notes_file) as exactly these notes."""
    lines: list[str] = []
    for note in notes:
        if "\n" in note or "  " in note or note != note.strip():
            raise SystemExit(f"a note cannot be written to {NOTES_FILE} unchanged: {note[:80]!r}")
        lines += textwrap.wrap(note, width=100, initial_indent="- ", subsequent_indent="  ",
                               break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ schema 3
def rename_csv_header(data: bytes) -> bytes:
    head, sep, rest = data.partition(b"\n")
    cells = ["rate_point" if c == "setting" else c for c in head.decode().split(",")]
    return ",".join(cells).encode() + sep + rest


def renamed_config(raw: dict) -> dict:
    if isinstance(raw.get("codecs"), list):
        raw = {**raw, "codecs": [{CODEC_KEYS.get(k, k): v for k, v in c.items()} if isinstance(c, dict) else c
                                 for c in raw["codecs"]]}
    return raw


def repad_table(lines: list[str]) -> list[str]:
    """A pipe table as tabulate writes it (the renderer's to_markdown), the column renamed."""
    split = [[c.strip() for c in line.strip()[1:-1].split("|")] for line in lines]
    header, rule, body = split[0], split[1], split[2:]
    align = ["right" if r.endswith(":") and not r.startswith(":") else "left" for r in rule]
    header = ["rate point" if h == "setting" else h for h in header]
    return tabulate(body, headers=header, tablefmt="pipe", disable_numparse=True, colalign=align).split("\n")


def repad_tables(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1]):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            cells = [c.strip() for c in lines[i].strip()[1:-1].split("|")]
            out += repad_table(lines[i:j]) if "setting" in cells else lines[i:j]
            i = j
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def schema_3(folder: Path, document: dict, files: dict[str, bytes]) -> dict:
    files["results.csv"] = rename_csv_header(files["results.csv"])
    for name in ("images.csv.gz", "samples.csv.gz"):
        if name in files:
            files[name] = publish_gzip(rename_csv_header(gzip.decompress(files[name])))
    document["rows"] = [{"rate_point" if k == "setting" else k: v for k, v in row.items()} for row in document["rows"]]
    document["provenance"] = {**document["provenance"], "config": renamed_config(document["provenance"]["config"])}
    files["config.yaml"] = yaml.safe_dump(renamed_config(yaml.safe_load(files["config.yaml"])), sort_keys=False).encode()
    files["README.md"] = repad_tables(files["README.md"].decode()).encode()
    return document


# ------------------------------------------------------------------------------ configs by board
def notes_to_file(raw: dict) -> tuple[dict, list[str]]:
    board = raw.get("leaderboard") or {}
    notes = board.get("notes") or []
    if not notes:
        return raw, []
    board = {("notes_file" if k == "notes" else k): (NOTES_FILE if k == "notes" else v) for k, v in board.items()}
    return {**raw, "leaderboard": board}, list(notes)


def layout(folder: Path, document: dict, files: dict[str, bytes]) -> dict:
    provenance = json.loads(moved_paths(json.dumps(document["provenance"])))
    config, notes = notes_to_file(provenance["config"])
    document["provenance"] = {**provenance, "config": config}
    board_config, _ = notes_to_file(yaml.safe_load(moved_paths(files["config.yaml"].decode())))
    files["config.yaml"] = yaml.safe_dump(board_config, sort_keys=False).encode()
    if notes:
        files[NOTES_FILE] = notes_markdown([moved_paths(n) for n in notes]).encode()
    files["README.md"] = moved_paths(files["README.md"].decode()).encode()
    return document


MIGRATIONS = [(SCHEMA_3, schema_3), (LAYOUT, layout)]


def migrate(folder: Path) -> list[str]:
    """Apply the migrations the folder has not had; returns their names."""
    document = json.loads((folder / "results.json").read_text())
    done = {m.get("to") for m in document.get("migrations", [])}
    todo = [(record, step) for record, step in MIGRATIONS if record["to"] not in done]
    if not todo:
        return []
    names = ["results.csv", "images.csv.gz", "samples.csv.gz", "config.yaml", "README.md"]
    files = {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}
    for record, step in todo:
        old_provenance, old_digest = document["provenance"], document["content_digest"]
        document = step(folder, dict(document), files)
        readme = files["README.md"].decode()
        old_block = nested_dump(json.loads(moved_paths(json.dumps(old_provenance))) if step is layout
                                else old_provenance)
        if old_block not in readme:
            raise SystemExit(f"{folder / 'README.md'}: its provenance block is not the one results.json records")
        files["README.md"] = readme.replace(old_block, nested_dump(document["provenance"])).encode()
        document["content_digest"] = sha256_bytes(json.dumps([old_digest, record], sort_keys=True).encode())
        document["migrations"] = [*document.get("migrations", []), {**record, "content_digest_before": old_digest}]
    files["results.json"] = (json.dumps(document, indent=1, sort_keys=False, default=str) + "\n").encode()
    for name, data in files.items():
        tmp = folder / f".{name}.migrating"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = sorted({*manifest["files"], *files})
    manifest = {**manifest, "content_digest": document["content_digest"],
                "files": {name: sha256_bytes((folder / name).read_bytes()) for name in listed}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return [record["to"] for record, _ in todo]


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        done = migrate(Path(arg))
        print(f"{arg}: " + (", ".join(done) if done else "already current"))
