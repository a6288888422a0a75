"""Boards made of the rows of published boards, from their files alone (nothing is recomputed).

Three uses of one mechanism (:func:`combine`):

- a derived board (``scripts/derive_board.py``, :mod:`taskcodec.board_derive`): the rows a config names,
  taken from one or more boards;
- a contributor's bundle (``taskcodec submit``): only the named rows of a config, run against the exact
  data, task model and protocol of a published board, written as a board folder plus ``bundle.json``;
- a merge (``taskcodec merge BOARD BUNDLE...``): every bundle checked (schema, the board's fingerprints
  and protocol, every number recomputed from its per-sample files, no colliding row), then its rows added
  to the board and everything re-rendered (BD-rates against the board's anchors, intervals, plots).

Every source must have evaluated the same images (dataset fingerprint) with the same task model and
give the same uncompressed row; anything that differs is refused with the fact named.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import PublishError
from .schemas import read_json, validate
from .verify import REFERENCE, rate_point_key

BUNDLE = "bundle.json"
BUNDLE_FORMAT = 1


@dataclass
class Source:
    """A published board (or bundle) folder and its results.json."""

    folder: Path
    document: dict[str, Any]

    @classmethod
    def read(cls, folder: Path) -> "Source":
        folder = Path(folder)
        if not (folder / "results.json").is_file():
            raise PublishError(f"{folder}: not a published board or bundle (no results.json)")
        return cls(folder, read_json(folder / "results.json", "results"))

    @property
    def provenance(self) -> dict[str, Any]:
        return self.document["provenance"]

    def row_names(self) -> list[str]:
        return list(dict.fromkeys(r["codec"] for r in self.document["rows"] if r["codec"] != REFERENCE))

    def points(self, row: str) -> set[str]:
        return {rate_point_key(r["rate_point"]) for r in self.document["rows"] if r["codec"] == row}

    def config_entry(self, row: str) -> dict[str, Any]:
        codecs = self.provenance["config"]["codecs"]
        return next(c for c in codecs if c.get("row", c.get("name")) == row)


# ------------------------------------------------------------------------------ what must agree
def task_identity(provenance: dict[str, Any]) -> dict[str, Any] | None:
    """The facts that make two runs' task model the same model (paths and timings aside)."""
    task = provenance.get("task")
    if task is None:
        return None
    return {"name": (provenance.get("config", {}).get("task") or {}).get("name"),
            "fingerprint": task.get("fingerprint"), "weights_sha256": task.get("weights_sha256")}


# Task options that say where the model is or how it runs rather than what is measured: the model they
# give is compared as the task model (its weights' sha256 and fingerprint, which holds the precision
# that actually ran: `precision: auto` resolves to bf16 on some CPUs and fp32 on others).
NOT_PROTOCOL_TASK_OPTIONS = ("checkpoint", "weights", "precision")


def protocol(provenance: dict[str, Any]) -> dict[str, Any]:
    """What a row's numbers depend on besides its codec: the data as configured, metrics, seed, task options."""
    config = provenance.get("config", {})
    dataset = dict(config.get("dataset") or {})
    dataset.pop("root", None)  # where the data lives on one machine; the fingerprint says what it is
    task = config.get("task") or {}
    return {"dataset": dataset, "metrics": list(config.get("metrics") or []), "seed": config.get("seed", 0),
            "task": {"name": task.get("name"), "options": {k: v for k, v in (task.get("options") or {}).items()
                                                           if k not in NOT_PROTOCOL_TASK_OPTIONS}}}


def ran_precision(task: dict[str, Any] | None) -> str | None:
    """The precision a task model ran in, as its provenance records it (None where it does not say)."""
    return (task or {}).get("inference_precision")


def precision_hint(here: dict[str, Any] | None, board: dict[str, Any] | None) -> str:
    """Why two task provenances with one model can still differ: the inference precision each ran in."""
    ran, wanted = ran_precision(here), ran_precision(board)
    if ran == wanted or not ran or not wanted:
        return ""
    return (f" (the task model ran in {ran} here and in {wanted} for the board: `precision: auto` picks per "
            f"CPU; set task.options.precision: {wanted})")


def _reference_rows(source: Source) -> list[dict[str, Any]]:
    """The uncompressed row's numbers; a column only other rows fill (e.g. a learned row's estimated_bpp)
    is None there and says nothing about the reference."""
    return [{k: v for k, v in r.items() if v is not None} for r in source.document["rows"] if r["codec"] == REFERENCE]


def differences(first: Source, other: Source) -> list[str]:
    """Each fact two boards must share to be combined, that they do not share (empty: compatible)."""
    facts = (
        ("dataset fingerprint", lambda s: s.provenance["dataset"]["fingerprint"]),
        ("task model (name, fingerprint, weights sha256)", lambda s: task_identity(s.provenance)),
        ("protocol (dataset options, metrics, seed, task options)", lambda s: protocol(s.provenance)),
        ("uncompressed reference row", _reference_rows),
    )
    found = []
    for what, get in facts:
        if get(first) != get(other):
            found.append(f"{other.folder} and {first.folder} differ in their {what}: "
                         f"{json.dumps(get(other), default=str)[:300]} vs {json.dumps(get(first), default=str)[:300]}")
    return found


def require_same(first: Source, other: Source) -> None:
    found = differences(first, other)
    if found:
        hint = precision_hint(other.provenance.get("task"), first.provenance.get("task"))
        if not hint and any("reference row" in f for f in found):
            hint = (" (the same data and weights giving other uncompressed results: the task model's outputs differ "
                    "on this machine, e.g. reduced-precision kernels of another CPU)")
        raise PublishError("; ".join(found) + hint)


# ------------------------------------------------------------------------------ combining
@dataclass
class Pick:
    """One row of the new board: which source supplies it, at which rate points, with which identity."""

    row: str
    source: int
    points: set[str]
    identity: dict[str, Any]
    entry: dict[str, Any] = field(default_factory=dict)


def _csv_records(path: Path, points: dict[str, set[str]]) -> list[dict]:
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=True)
    keep = [str(c) in points and rate_point_key(p) in points[str(c)] for c, p in zip(frame["codec"], frame["rate_point"])]
    records = frame[keep].to_dict(orient="records")
    for record in records:  # empty cells come back as NaN: give the renderer the None it wrote them from
        for key, value in record.items():
            if isinstance(value, float) and value != value:
                record[key] = None
    return records


def _result_rows(source: Source, points: dict[str, set[str]]) -> list[dict]:
    """The source's result rows of ``points``, infinities restored (results.json stores them as null,
    results.csv keeps them)."""
    import pandas as pd

    def kept(r: dict) -> bool:
        return r["codec"] in points and rate_point_key(r["rate_point"]) in points[r["codec"]]

    rows = [dict(r) for r in source.document["rows"] if kept(r)]
    table = pd.read_csv(source.folder / "results.csv")
    lines = [line for _, line in table.iterrows() if kept({"codec": str(line["codec"]), "rate_point": line["rate_point"]})]
    for row, line in zip(rows, lines):
        for key, value in row.items():
            if value is None and isinstance(line.get(key), float) and abs(line[key]) == float("inf"):
                row[key] = float(line[key])
    return rows


def combine(sources: Sequence[Source], picks: Sequence[Pick], config, registry, provenance: dict[str, Any],
            out: Path, force: bool = False) -> bool:
    """Publish ``config``'s board at ``out`` from the ``picks`` (rows of ``sources``), with ``provenance``."""
    from .metric import ImageMetric
    from .publish import publish
    from .results import Collected

    chosen: list[dict[str, set[str]]] = [{} for _ in sources]
    chosen[0][REFERENCE] = {""}
    for pick in picks:
        chosen[pick.source][pick.row] = pick.points
    rows, images, samples = [], [], []
    for source, points in zip(sources, chosen):
        if not points:
            continue
        rows += _result_rows(source, points)
        images += _csv_records(source.folder / "images.csv.gz", points)
        if (source.folder / "samples.csv.gz").is_file():
            samples += _csv_records(source.folder / "samples.csv.gz", points)
    # in the order of the picks (the config's), whichever source holds a row: the same board from the same rows
    order = {REFERENCE: -1, **{pick.row: i for i, pick in enumerate(picks)}}
    rows, images, samples = (sorted(records, key=lambda r: order[str(r["codec"])]) for records in (rows, images, samples))
    task_metrics = [cls() for cls in (registry.get("metric", name).target for name in config.metrics)
                    if not issubclass(cls, ImageMetric)]
    return publish(Collected(rows, images, samples, provenance, task_metrics), config, out, force=force)


def task_models_of_rows(sources: Sequence[Source], rows: Sequence[str]) -> dict[str, Any]:
    found = {r: t for s in sources for r, t in (s.provenance.get("row_tasks") or {}).items()}
    return {r: found[r] for r in rows if r in found}


# ------------------------------------------------------------------------------ bundles
def bundle_document(bundle: Source, board: Source, rows: Sequence[str], command: str) -> dict[str, Any]:
    """The bundle.json of a bundle made for ``board``: what it claims, checked again at merge time."""
    document = {
        "format": BUNDLE_FORMAT,
        "rows": list(rows),
        "results_content_digest": bundle.document["content_digest"],
        "board": {"benchmark": board.provenance["config"].get("benchmark"),
                  "content_digest": board.document["content_digest"],
                  "dataset_fingerprint": board.provenance["dataset"]["fingerprint"],
                  "task": task_identity(board.provenance)},
        "taskcodec": bundle.provenance.get("taskcodec"),
        "command": command,
    }
    validate(document, "bundle", bundle.folder / BUNDLE)
    return document


@dataclass
class MergeOutcome:
    added: list[str]
    already_there: list[str]
    written: bool


def _bundle_problems(bundle: Source, claims: dict[str, Any], board: Source, registry) -> list[str]:
    from .verify import verify_board

    problems = []
    if claims["results_content_digest"] != bundle.document["content_digest"]:
        problems.append(f"{bundle.folder / BUNDLE}: names results content digest {claims['results_content_digest'][:12]}..., "
                        f"results.json has {bundle.document['content_digest'][:12]}...")
    if sorted(claims["rows"]) != sorted(bundle.row_names()):
        problems.append(f"{bundle.folder / BUNDLE}: lists rows {sorted(claims['rows'])}, results.json holds "
                        f"{sorted(bundle.row_names())}")
    for verdict in verify_board(bundle.folder, registry):
        problems += [f"{verdict.subject}: {p}" for p in verdict.problems]
    problems += differences(board, bundle)
    problems += _missing_model_cards(bundle)
    return problems


def _missing_model_cards(bundle: Source) -> list[str]:
    """A row that brings its own model (a codec's ``models``, or ``task_options``) must come with its card."""
    cards = {(c["row"], c["kind"]): c for c in bundle.provenance.get("model_cards") or []}
    problems = []
    for row in bundle.row_names():
        entry = bundle.config_entry(row)
        brings = (["codec"] if isinstance((entry.get("options") or {}).get("models"), str) else []) + \
            (["task model"] if entry.get("task_options") else [])
        for kind in brings:
            card = cards.get((row, kind))
            if card is None or not card.get("trained_on"):
                problems.append(f"row {row!r} brings its own {kind} but the bundle has no model card saying what it "
                                f"was trained on (provenance.model_cards; `taskcodec submit` makes it from the "
                                f"model's training.json, which must be beside its weights)")
    return problems


def merge_bundles(board_folder: Path, bundle_folders: Sequence[Path]) -> MergeOutcome:
    """Add the rows of each bundle to the board at ``board_folder`` (see the module docstring)."""
    from .config import parse_config
    from .pluginmanager import get_plugin_manager

    registry = get_plugin_manager().registry
    board = Source.read(board_folder)
    bundles = [Source.read(folder) for folder in bundle_folders]
    merged = dict(board.provenance.get("merged") or {})
    board_rows = board.row_names()
    picks: list[Pick] = []
    already: list[str] = []
    for index, bundle in enumerate(bundles, start=1):
        claims = read_json(bundle.folder / BUNDLE, "bundle") if (bundle.folder / BUNDLE).is_file() else None
        if claims is None:
            raise PublishError(f"{bundle.folder}: not a bundle (no {BUNDLE}; `taskcodec submit` writes one)")
        problems = _bundle_problems(bundle, claims, board, registry)
        if problems:
            raise PublishError(f"bundle {bundle.folder} refused:\n  " + "\n  ".join(problems))
        for row in bundle.row_names():
            identity = bundle.provenance["codecs"][row]
            entry = dict(bundle.config_entry(row))
            entry["rate_points"] = sorted((r["rate_point"] for r in bundle.document["rows"] if r["codec"] == row),
                                          key=lambda p: (isinstance(p, str), p))
            earlier = next((p for p in picks if p.row == row), None)
            if row in board_rows or earlier is not None:
                holder = board if earlier is None else bundles[earlier.source - 1]
                if _same_row(holder, bundle, row):
                    already.append(row)
                    continue
                raise PublishError(f"bundle {bundle.folder}: row {row!r} is already on "
                                   f"{'the board ' + str(board.folder) if earlier is None else 'bundle ' + str(holder.folder)} "
                                   f"with other results or another codec; rename the row in the config and submit again")
            picks.append(Pick(row, index, bundle.points(row), identity, entry))
            merged[row] = {"bundle_content_digest": bundle.document["content_digest"],
                           "taskcodec": bundle.provenance.get("taskcodec"),
                           "plugins": bundle.provenance.get("plugins"), "machine": bundle.provenance.get("machine"),
                           "git": bundle.provenance.get("git"), "command": claims["command"]}
    if not picks:
        return MergeOutcome([], sorted(set(already)), False)
    # the board's own rows first, then every merged row by name: the same board whatever the merge order
    original = [c for c in board.provenance["config"]["codecs"] if c.get("row", c.get("name")) not in merged]
    earlier_merged = [c for c in board.provenance["config"]["codecs"] if c.get("row", c.get("name")) in merged]
    merged_entries = sorted(earlier_merged + [p.entry for p in picks], key=lambda c: c.get("row", c.get("name")))
    raw = dict(board.provenance["config"], codecs=original + merged_entries)
    sources = [board, *bundles]
    board_picks = [Pick(row, 0, board.points(row), board.provenance["codecs"][row]) for row in board_rows]
    order = [c.get("row", c.get("name")) for c in raw["codecs"]]
    all_picks = sorted(board_picks + picks, key=lambda p: order.index(p.row))
    config = _merged_config(raw, board.folder, parse_config)
    provenance = dict(board.provenance)
    base_command = provenance.get("board_command", provenance.get("command", ""))
    rows_merged = sorted(merged)
    provenance.update(
        board_command=base_command,
        command=f"{base_command}; then taskcodec merge {board.folder.name} with the bundles of rows "
                f"{', '.join(rows_merged)}",
        config=raw, benchmark_key=config.key(),
        codecs={p.row: p.identity for p in all_picks},
        merged={row: merged[row] for row in rows_merged},
        model_cards=[c for source in (board, *bundles) for c in source.provenance.get("model_cards") or []
                     if source is board or c["row"] in {p.row for p in picks}])
    row_tasks = task_models_of_rows(sources, [p.row for p in all_picks])
    if row_tasks:
        provenance["row_tasks"] = row_tasks
    written = combine(sources, all_picks, config, registry, provenance, board.folder)
    return MergeOutcome([p.row for p in picks], sorted(set(already)), written)


def rerender_board(folder: Path, boards_dir: str | None = None) -> bool:
    """Render the published board at ``folder`` again from its own files (e.g. after the renderer gained an
    interval or a column): the same rows, samples and provenance, plus a ``rerendered`` record (the git
    revision, dirty if anything outside ``boards_dir`` is uncommitted); nothing is recomputed and no store
    is needed. Rendered even where the content is unchanged (the renderer may have changed); False if
    every file came out as it was."""
    from . import __version__
    from .config import parse_config
    from .pluginmanager import get_plugin_manager
    from .provenance import git_revision
    from .publish import read_manifest

    registry = get_plugin_manager().registry
    board = Source.read(folder)
    config = _merged_config(board.provenance["config"], board.folder, parse_config)
    picks = [Pick(row, 0, board.points(row), board.provenance["codecs"][row]) for row in board.row_names()]
    provenance = dict(board.provenance)
    provenance["rerendered"] = {
        "git": git_revision(outside=boards_dir), "taskcodec": __version__, "command": f"taskcodec leaderboard {folder} --from-files",
        "note": "rendered again from the board's own results and per-sample files; nothing recomputed"}
    before = read_manifest(board.folder)  # the sha256 of every file, as publishing recorded them
    combine([board], picks, config, registry, provenance, board.folder, force=True)
    return (before or {}).get("files") != read_manifest(board.folder)["files"]


def _same_row(holder: Source, bundle: Source, row: str) -> bool:
    """The row as ``bundle`` has it is exactly the row ``holder`` has (merging it again changes nothing)."""
    if holder.provenance["codecs"].get(row) != bundle.provenance["codecs"].get(row):
        return False
    mine = sorted((json.dumps(r, sort_keys=True) for r in holder.document["rows"] if r["codec"] == row))
    theirs = sorted((json.dumps(r, sort_keys=True) for r in bundle.document["rows"] if r["codec"] == row))
    return mine == theirs


def _merged_config(raw: dict[str, Any], folder: Path, parse_config):
    """The merged board's config, read as if it were the board folder's config.yaml (where its notes file
    is); plugins are not needed to merge a row, only to rerun it."""
    return parse_config(raw, str(folder / "config.yaml"))


def submit_bundle(config_path: Path, rows: Sequence[str], board_folder: Path, out: Path, *, store_root: Path | None,
                  workers: int | None, progress: bool) -> Path:
    """Run only ``rows`` of ``config_path`` against ``board_folder``'s data, task model and protocol and write
    the bundle folder ``out`` (a board of those rows plus bundle.json); refused, before any coding, where the
    local data or weights are not the board's."""
    import shutil
    import sys

    from .config import load_config, parse_config
    from .errors import ConfigError
    from .files import write_atomic
    from .pluginmanager import get_plugin_manager
    from .publish import check_writable, publish
    from .runner import Runner
    from .store import Store

    pm = get_plugin_manager()
    board = Source.read(board_folder)
    full = load_config(config_path, pm.registry)
    names = [c.row for c in full.codecs]
    unknown = [r for r in rows if r not in names]
    if not rows or unknown:
        raise ConfigError(f"{config_path}: --rows {', '.join(unknown) or '(none given)'}: not rows of this config "
                          f"(its rows: {', '.join(names)})")
    raw = dict(full.raw)
    raw["codecs"] = [entry for entry, codec in zip(full.raw["codecs"], full.codecs) if codec.row in rows]
    # the bundle's own BD table is not what it is for: its rows are compared on the board they join
    raw["leaderboard"] = {"anchor": rows[0], **({"quality_metric": full.leaderboard.quality_metric}
                                                 if full.leaderboard.quality_metric else {})}
    config = parse_config(raw, str(config_path), pm.registry)
    if protocol({"config": raw}) != protocol(board.provenance):
        raise PublishError(f"{config_path}: its protocol {json.dumps(protocol({'config': raw}))} is not the "
                           f"board {board_folder}'s {json.dumps(protocol(board.provenance))} (dataset options, metrics, "
                           f"seed and task options must be the board's)")
    if out.exists() and any(out.iterdir()):
        raise PublishError(f"--out {out}: exists and is not empty (a bundle goes to a new folder)")
    check_writable(out)

    def expect(fingerprint: str, task: dict[str, Any] | None) -> None:
        wanted = board.provenance["dataset"]["fingerprint"]
        if fingerprint != wanted:
            raise PublishError(f"the local dataset {config.dataset.name!r} (split {config.dataset.split!r}) has "
                               f"fingerprint {fingerprint[:16]}..., the board {board_folder} was made on "
                               f"{wanted[:16]}...: other images or labels; get the board's data")
        here = task_identity({"task": task, "config": raw})
        if here != task_identity(board.provenance):
            raise PublishError(f"the local task model {json.dumps(here)} is not the board {board_folder}'s "
                               f"{json.dumps(task_identity(board.provenance))}"
                               + (precision_hint(task, board.provenance.get("task")) or ": other weights"))

    collected = Runner(config, Store(store_root), pm, workers=workers, progress=progress, expect=expect).run()
    command = f"taskcodec submit {config_path} --rows {','.join(rows)} --board {board_folder} --out {out}"
    collected.provenance["command"] = command
    publish(collected, config, out)
    bundle = Source.read(out)
    try:
        require_same(board, bundle)
        document = bundle_document(bundle, board, rows, command)
    except PublishError:
        shutil.rmtree(out, ignore_errors=True)  # nothing that looks like a bundle stays behind
        raise
    write_atomic(out / BUNDLE, (json.dumps(document, indent=1) + "\n").encode())
    print(f"taskcodec: bundle {out} of rows {', '.join(rows)} for {board_folder}", file=sys.stderr)
    return out
