"""The results store: a SQLite database plus a content-addressed folder of bitstreams.

Every encoding is keyed by sha256 of (codec identity — name, version, library versions,
options —, rate point, image digest); its bitstream lives in a pack file, ``streams/packs/<name>.pack``
(the streams of one chunk of work, concatenated: one file per chunk rather than per stream, whose
creation cost more than coding a small image), at the offset its record holds (stores written
before schema 4: one file per stream, ``streams/<k[:2]>/<k>``), and its sizes, the sha256 of its
bytes (``stream_sha256``) and its image metrics in the database. A stream is checked against that
sha256 before it is decoded again. Task outputs are keyed by (encoding key, task fingerprint). A process killed at any point leaves only complete entries, and a rerun
recomputes exactly what is missing: database writes are transactions, and a pack is written before
its records (under a new name, see :func:`taskcodec.files.write_new`), so a short pack left by a
killed worker has no record, and its images are encoded again into another.

The default location is ``.taskcodec/`` in the current directory; ``--store`` or the
environment variable ``TASKCODEC_STORE`` choose another.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import StoreError
from .hashing import stable_json

STORE_ENV = "TASKCODEC_STORE"
# 2: encodings.stream_sha256; 3: encodings.setting renamed rate_point; 4: encodings.pack, pack_offset
# (streams in pack files). Older stores are migrated in place; their streams stay where they are.
SCHEMA_VERSION = 4
PACKS = "packs"  # the folder of streams/ holding the pack files
STAT_PREFIX = "stat:"  # image_metrics rows named stat:<name> hold a codec's encode_with_stats numbers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS encodings (
    key TEXT PRIMARY KEY,
    codec TEXT NOT NULL,
    rate_point TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    n_bytes INTEGER NOT NULL,
    payload_bytes INTEGER,
    decoded_digest TEXT NOT NULL,
    encode_seconds REAL,
    decode_seconds REAL,
    stream_sha256 TEXT,
    pack TEXT,
    pack_offset INTEGER
);
CREATE TABLE IF NOT EXISTS image_metrics (
    key TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (key, metric)
);
CREATE TABLE IF NOT EXISTS task_outputs (
    key TEXT NOT NULL, task TEXT NOT NULL, output TEXT NOT NULL,
    PRIMARY KEY (key, task)
);
CREATE TABLE IF NOT EXISTS runs (
    benchmark_key TEXT PRIMARY KEY,
    benchmark TEXT NOT NULL,
    info TEXT NOT NULL
);
"""


def default_store_dir() -> Path:
    return Path(os.environ.get(STORE_ENV) or ".taskcodec")


def encoding_key(codec_identity: dict[str, Any], rate_point: Any, image_digest: str) -> str:
    """The cache key of one image encoded by one codec at one rate point.

    The key's JSON keeps the field name "setting" (the rate point's name before schema 3), so that
    streams stored before the rename stay valid.
    """
    blob = stable_json({"codec": codec_identity, "setting": rate_point, "image": image_digest})
    return hashlib.sha256(blob.encode()).hexdigest()


def encoding_keys(codec_identity: dict[str, Any], rate_point: Any, image_digests: Iterable[str]) -> list[str]:
    """``encoding_key`` of each digest, with the JSON around the digest built once (6 instead of 28 ms
    for 3,137 FER+ images): canonical JSON sorts the keys, so the digest (hex, never escaped) sits
    between the codec and the rate point; any other digest takes the general path."""
    head = stable_json({"codec": codec_identity})[:-1] + ',"image":"'
    tail = '","setting":' + stable_json(rate_point) + "}"
    return [hashlib.sha256((head + digest + tail).encode()).hexdigest() if digest.isalnum() and digest.isascii()
            else encoding_key(codec_identity, rate_point, digest) for digest in image_digests]


def reference_key(image_digest: str) -> str:
    """The key under which task outputs on the uncompressed image are stored."""
    return "none:" + image_digest


@dataclass(frozen=True)
class EncodingRecord:
    key: str
    codec: str
    rate_point: Any
    image_digest: str
    height: int
    width: int
    n_bytes: int
    payload_bytes: int | None
    decoded_digest: str
    encode_seconds: float | None = None
    decode_seconds: float | None = None
    stream_sha256: str | None = None  # None only for rows migrated from a version 1 store, until verified
    pack: str | None = None  # the pack file holding the stream (None: its own file, stores before schema 4)
    pack_offset: int | None = None  # where in the pack the stream's n_bytes start


def stream_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store:
    """Open (creating if needed) the store in ``root``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_store_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {str(self.root)!r}: {exc}") from None
        self.streams_dir = self.root / "streams"
        self.models_dir = self.root / "models"
        self.db_path = self.root / "results.sqlite"
        try:
            self.db = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.db_path}: not a usable taskcodec results database: {exc}") from None
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif row[0] in ("1", "2", "3"):
            self._migrate()
        elif row[0] != str(SCHEMA_VERSION):
            raise StoreError(
                f"{self.db_path}: schema version {row[0]}, this taskcodec reads versions 1 to {SCHEMA_VERSION}: "
                f"use the taskcodec that wrote it, or move the store away (it is a cache)"
            )

    def _migrate(self) -> None:
        """Bring a version 1, 2 or 3 store to the current schema, in one transaction.

        Version 1 had no ``stream_sha256``: the column is added, empty. Old rows keep NULL rather
        than the hash of their file as found now: a file damaged in place with its size intact
        would otherwise be certified. A NULL row is verified the first time its stream is reused,
        by decoding it and comparing with ``decoded_digest`` (the runner then records the hash, or
        encodes the image again). Versions 1 and 2 called the rate point column ``setting``: it is renamed.
        Versions 1 to 3 kept each stream in its own file: ``pack`` and ``pack_offset`` are added, NULL.
        """
        with self.transaction() as db:
            columns = {r[1] for r in db.execute("PRAGMA table_info(encodings)")}
            if "stream_sha256" not in columns:
                db.execute("ALTER TABLE encodings ADD COLUMN stream_sha256 TEXT")
            if "setting" in columns:
                db.execute("ALTER TABLE encodings RENAME COLUMN setting TO rate_point")
            if "pack" not in columns:
                db.execute("ALTER TABLE encodings ADD COLUMN pack TEXT")
                db.execute("ALTER TABLE encodings ADD COLUMN pack_offset INTEGER")
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # bitstreams ---------------------------------------------------------------------
    def stream_path(self, key: str) -> Path:
        """Where a store before schema 4 kept the stream of ``key`` (its own file)."""
        return self.streams_dir / key[:2] / key

    def pack_path(self, pack: str) -> Path:
        return self.streams_dir / PACKS / pack

    def stream_location(self, rec: EncodingRecord) -> str:
        """Where the stream of ``rec`` lies, for messages."""
        if rec.pack is None:
            return f"its file {self.stream_path(rec.key)}"
        return f"its {rec.n_bytes} bytes at offset {rec.pack_offset} of {self.pack_path(rec.pack)}"

    def read_stream(self, rec: EncodingRecord) -> bytes:
        """The stored bitstream of ``rec``; StoreError naming the file if it is missing, shorter than
        recorded, or its sha256 is not the recorded one."""
        data = self.read_stream_if_present(rec)
        problem = self.stream_problem(rec, data)
        if problem:
            raise StoreError(f"bitstream {rec.key} is recorded but {problem}")
        return data  # type: ignore[return-value]

    def read_stream_if_present(self, rec: EncodingRecord) -> bytes | None:
        """The bytes where the stream of ``rec`` lies (fewer where its file was cut short), None without
        its file. Unchecked: see :meth:`stream_problem`."""
        try:
            if rec.pack is None:
                return self.stream_path(rec.key).read_bytes()
            with open(self.pack_path(rec.pack), "rb") as fh:
                fh.seek(int(rec.pack_offset or 0))
                return fh.read(rec.n_bytes)
        except OSError:
            return None

    def stream_problem(self, rec: EncodingRecord, data: bytes | None) -> str | None:
        """What is wrong with the bytes ``data`` read for ``rec`` (None: missing), or None if nothing."""
        where = self.stream_location(rec)
        if data is None:
            return f"{where}: missing"
        if len(data) != rec.n_bytes:
            return f"{where}: {len(data)} bytes there, {rec.n_bytes} were recorded"
        if rec.stream_sha256 is not None and stream_sha256(data) != rec.stream_sha256:
            return f"{where}: sha256 {stream_sha256(data)}, {rec.stream_sha256} was recorded"
        return None

    def set_stream_sha256(self, key: str, sha256: str) -> None:
        """Record the sha256 of a migrated row's stream once it has been verified by decoding."""
        with self.transaction() as db:
            db.execute("UPDATE encodings SET stream_sha256=? WHERE key=?", (sha256, key))

    # encodings ----------------------------------------------------------------------
    def put_results(self, records: Iterable[EncodingRecord], metrics: Iterable[tuple[str, str, float | None]],
                    outputs: Iterable[tuple[str, str, str]] = ()) -> None:
        """Record encodings (their streams must exist), image metrics and task outputs (rows from
        :meth:`task_output_rows`) in one transaction: none of the outputs is ever stored without the
        encodings before it. One commit for many chunks: each commit rewrites every B-tree page that its
        random keys touch (~1 ms for one 64-image chunk)."""
        rows, last, spelled = [], object(), ""
        for r in records:
            if r.rate_point is not last:  # a chunk's records share one rate point object: spell it once
                last, spelled = r.rate_point, stable_json(r.rate_point)
            rows.append((r.key, r.codec, spelled, r.image_digest, r.height, r.width, r.n_bytes, r.payload_bytes,
                         r.decoded_digest, r.encode_seconds, r.decode_seconds, r.stream_sha256, r.pack, r.pack_offset))
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO encodings (key, codec, rate_point, image_digest, height, width, n_bytes, "
                "payload_bytes, decoded_digest, encode_seconds, decode_seconds, stream_sha256, pack, pack_offset) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.executemany("INSERT OR REPLACE INTO image_metrics VALUES (?,?,?)", list(metrics))
            db.executemany("INSERT OR REPLACE INTO task_outputs VALUES (?,?,?)", list(outputs))

    def get_encodings(self, keys: list[str]) -> dict[str, EncodingRecord]:
        found: dict[str, EncodingRecord] = {}
        parsed: dict[str, Any] = {}
        for chunk in _chunks(keys, 500):
            q = (
                "SELECT key, codec, rate_point, image_digest, height, width, n_bytes, payload_bytes, decoded_digest, "
                "encode_seconds, decode_seconds, stream_sha256, pack, pack_offset "
                f"FROM encodings WHERE key IN ({','.join('?' * len(chunk))})"
            )
            for row in self.db.execute(q, chunk):
                found[row[0]] = EncodingRecord(row[0], row[1], _json_value(row[2], parsed), *row[3:])
        return found

    def get_sizes(self, keys: list[str]) -> dict[str, tuple[int, int | None, int, int]]:
        """``(n_bytes, payload_bytes, height, width)`` of each stored encoding of ``keys``: what a board's rows
        need, without building whole records (25,045 of them held 20 MB)."""
        found: dict[str, tuple[int, int | None, int, int]] = {}
        for chunk in _chunks(keys, 500):
            q = f"SELECT key, n_bytes, payload_bytes, height, width FROM encodings WHERE key IN ({','.join('?' * len(chunk))})"
            for key, *sizes in self.db.execute(q, chunk):
                found[key] = tuple(sizes)  # type: ignore[assignment]
        return found

    def encoded_keys(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` have an encoding record (what planning needs, without building the records)."""
        found: set[str] = set()
        for chunk in _chunks(keys, 500):
            q = f"SELECT key FROM encodings WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in self.db.execute(q, chunk))
        return found

    def get_image_metrics(self, keys: list[str], names: list[str]) -> dict[tuple[str, str], float | None]:
        found: dict[tuple[str, str], float | None] = {}
        if not names:
            return found
        for chunk in _chunks(keys, 400):
            q = (
                f"SELECT key, metric, value FROM image_metrics WHERE key IN ({','.join('?' * len(chunk))}) "
                f"AND metric IN ({','.join('?' * len(names))})"
            )
            for key, metric, value in self.db.execute(q, [*chunk, *names]):
                found[(key, metric)] = value
        return found

    def get_image_stats(self, keys: list[str]) -> dict[str, dict[str, float]]:
        """The codec stats of each key that has any: ``{key: {stat name (no prefix): value}}``."""
        found: dict[str, dict[str, float]] = {}
        for chunk in _chunks(keys, 500):
            q = (
                f"SELECT key, metric, value FROM image_metrics WHERE key IN ({','.join('?' * len(chunk))}) "
                f"AND substr(metric, 1, {len(STAT_PREFIX)}) = ?"
            )
            for key, metric, value in self.db.execute(q, [*chunk, STAT_PREFIX]):
                if value is not None:
                    found.setdefault(key, {})[metric[len(STAT_PREFIX):]] = value
        return found

    # task outputs -------------------------------------------------------------------
    @staticmethod
    def task_output_rows(task: str, outputs: dict[str, Any]) -> list[tuple[str, str, str]]:
        """The rows of task outputs for :meth:`put_results` (JSON; numpy scalars and arrays become Python
        numbers and lists); StoreError naming the task and key of an output JSON cannot hold."""
        rows = []
        for key, value in outputs.items():
            try:
                rows.append((key, task, json.dumps(json_types(value))))
            except (TypeError, ValueError) as exc:
                raise StoreError(f"task {task!r}: the output for {key} cannot be stored as JSON: {exc}") from None
        return rows

    def task_output_keys(self, task: str, keys: list[str]) -> set[str]:
        """Which of ``keys`` have an output of ``task`` (without parsing the outputs)."""
        found: set[str] = set()
        for chunk in _chunks(keys, 500):
            q = f"SELECT key FROM task_outputs WHERE task=? AND key IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in self.db.execute(q, [task, *chunk]))
        return found

    def get_task_outputs(self, task: str, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        parsed: dict[str, Any] = {}
        for chunk in _chunks(keys, 500):
            q = f"SELECT key, output FROM task_outputs WHERE task=? AND key IN ({','.join('?' * len(chunk))})"
            for key, output in self.db.execute(q, [task, *chunk]):
                found[key] = _json_value(output, parsed)
        return found

    # runs ---------------------------------------------------------------------------
    def put_run(self, benchmark_key: str, benchmark: str, info: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?)", (benchmark_key, benchmark, stable_json(info)))

    def get_run(self, benchmark_key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT info FROM runs WHERE benchmark_key=?", (benchmark_key,)).fetchone()
        return json.loads(row[0]) if row else None

    # A hint, never trusted for results: a benchmark whose computation finished here once is likely
    # to need no workers on a rerun (the runner then does not start them before planning).
    def mark_computed(self, benchmark_key: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", ("computed:" + benchmark_key,))

    def was_computed(self, benchmark_key: str) -> bool:
        row = self.db.execute("SELECT 1 FROM meta WHERE key=?", ("computed:" + benchmark_key,)).fetchone()
        return row is not None


_UNPARSED = object()


def _json_value(text: str, parsed: dict[str, Any]) -> Any:
    """``json.loads(text)``, once per distinct text where the value is immutable (a number, string, bool or
    null: a class index, a rate point); a list or dict is parsed every time, so that no two records share
    one."""
    value = parsed.get(text, _UNPARSED)
    if value is _UNPARSED:
        value = json.loads(text)
        if not isinstance(value, (list, dict)):
            parsed[text] = value
    return value


def json_types(value: Any) -> Any:
    """``value`` with numpy scalars and arrays (also inside lists, tuples and dicts) turned into
    Python numbers and lists, so that plugins may return what numpy gives them."""
    import numpy as np

    if isinstance(value, dict):
        return {json_types(k) if isinstance(k, np.generic) else k: json_types(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_types(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_types(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
