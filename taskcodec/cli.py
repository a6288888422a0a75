"""The ``taskcodec`` command line."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from . import __version__
from .metric import ImageMetric
from .cli_support import _fail, _plugins, _resumable_errors
from .errors import PublishError, TaskcodecError

KIND_NAMES = {"codecs": "codec", "tasks": "task", "datasets": "dataset", "metrics": "metric"}
RUNS_DIR = "runs"  # a user's runs: ignored by git
BOARDS_DIR = "leaderboard"  # the published boards: written only with --publish


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="taskcodec")
def main() -> None:
    """Benchmark image codecs by how well a downstream task works on their output.

    \b
    Start here:
      taskcodec run configs/quickstart/board.yaml     run a benchmark, write runs/quickstart/
      taskcodec list codecs                     what can be benchmarked
      taskcodec plugins                         installed plugins, and any that failed to load
    A config names a dataset, a task, metrics and codecs with rate points (see README.md).
    Results are cached in a store (.taskcodec/ by default): rerunning computes only what is missing.
    """


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help=f"Leaderboard folder [default: {RUNS_DIR}/<benchmark>; with --publish: {BOARDS_DIR}/<benchmark>].")
@click.option("--publish", is_flag=True,
              help=f"Write the published board {BOARDS_DIR}/<benchmark>/ (refused when the git tree has uncommitted changes).")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), envvar="TASKCODEC_STORE",
              help="Results store [default: .taskcodec, or $TASKCODEC_STORE].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Codec worker processes [default: config, else up to all cores, started only for coding that "
                   "repays their start-up].")
@click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
@click.option("--executor", type=click.Choice(["local", "dask"]),
              help="Where codec chunks run: local worker processes, or Dask [default: config's runner.executor].")
@click.option("--scheduler", metavar="ADDRESS",
              help="A Dask scheduler (tcp://host:8786; implies --executor dask) [default: a LocalCluster here].")
@click.option("--check-determinism", is_flag=True,
              help="Encode and decode every image twice; fail, naming codec, rate point and image, if the bytes "
                   "or pixels differ (checks what this run encodes: use a fresh --store to check all).")
def run(config: Path, out: Path | None, publish: bool, store: Path | None, workers: int | None, no_progress: bool,
        executor: str | None, scheduler: str | None, check_determinism: bool) -> None:
    """Run the benchmark CONFIG (YAML) and render its leaderboard.

    Everything computed is kept in the store as soon as it is done: a run that is
    interrupted (even killed) resumes where it stopped when started again, and a
    rerun of a finished benchmark recomputes nothing. A run writes runs/<benchmark>/ (not
    tracked by git); --publish writes the published board leaderboard/<benchmark>/.
    """
    from .config import load_config
    from .publish import check_writable, publish as publish_board, require_clean_tree
    from .runner import Runner
    from .store import Store

    try:
        pm = _plugins()
        cfg = load_config(config, pm.registry)
        folder = out or Path(BOARDS_DIR if publish else RUNS_DIR) / cfg.benchmark
        if publish:
            require_clean_tree(BOARDS_DIR)
        check_writable(folder)  # before any work: an unwritable --out costs nothing and touches nothing
        started = time.perf_counter()
        st = Store(store)
        collected = Runner(cfg, st, pm, workers=workers, progress=not no_progress,
                           check_determinism=check_determinism, executor="dask" if scheduler else executor,
                           scheduler=scheduler).run()
        if publish:
            collected.provenance["command"] += " --publish"
        written = publish_board(collected, cfg, folder)
    except TaskcodecError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo("taskcodec: interrupted; finished work is kept in the store, run the same command to resume", err=True)
        sys.exit(130)
    state = "wrote" if written else "up to date:"
    click.echo(f"taskcodec: {state} {folder}/ ({len(collected.rows)} rows) in {time.perf_counter() - started:.1f} s")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write the trained model to [default: the task's choice, e.g. its checkpoint option].")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), envvar="TASKCODEC_STORE",
              help="Store for training state [default: .taskcodec, or $TASKCODEC_STORE].")
@click.option("--no-progress", is_flag=True, help="Do not show progress.")
def train(config: Path, out: Path | None, store: Path | None, no_progress: bool) -> None:
    """Train the task model of the benchmark CONFIG ahead of `taskcodec run`.

    Uses the config's dataset (its other splits, e.g. train and val), task options, seed and
    runner.device. Tasks that support it save their state as they go: run the same command
    again after an interruption to resume.
    """
    import json

    from .config import load_config
    from .runner import Runner
    from .store import Store
    from .task import TaskTrainingRequest

    with _resumable_errors():
        pm = _plugins()
        cfg = load_config(config, pm.registry)
        if cfg.task is None:
            raise TaskcodecError(f"{config}: the config has no task to train")
        task = pm.registry.get("task", cfg.task.name).target(**cfg.task.options)
        started = time.perf_counter()
        context = Runner(cfg, Store(store), pm, progress=not no_progress).task_context()
        facts = task.train(TaskTrainingRequest(context, out))
    click.echo(json.dumps(facts, indent=1, default=str))
    click.echo(f"taskcodec: train {cfg.task.name}: {facts.get('checkpoint')} ({time.perf_counter() - started:.1f} s)")


@main.command("train-codec")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), envvar="TASKCODEC_STORE",
              help="Store for training state [default: .taskcodec, or $TASKCODEC_STORE].")
@click.option("--no-progress", is_flag=True, help="Do not show progress.")
@click.option("--rate-points", "only", metavar="P1,P2,...",
              help="Train only these of the config's rate points (e.g. one process per core); "
                   "training.json keeps the others' records.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the resumable training state here instead of the store: commit the folder, and the same "
                   "command continues the training on another machine.")
def train_codec(config: Path, store: Path | None, no_progress: bool, only: str | None, state_dir: Path | None) -> None:
    """Train a codec's models (one per rate point) from the training CONFIG (YAML).

    The config names the codec, the mode (rd, task or joint), the rate points, the output
    folder, the training data and the task model of the task-aware losses (see
    taskcodec/codec_training_config.py and configs/<board>/train/). Training state is saved as it goes: run the
    same command again after an interruption to resume; finished models are not retrained.
    """
    import json

    from .store import Store
    from .codec_training_config import train_codec as run_training

    try:
        points = [float(p) for p in only.split(",")] if only else None
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {only!r}", param_hint="--rate-points") from None
    with _resumable_errors():
        started = time.perf_counter()
        facts = run_training(config, _plugins(), Store(store).root, progress=not no_progress,
                             log=lambda msg: click.echo(msg, err=True), only=points, state_dir=state_dir)
    click.echo(json.dumps(facts, indent=1, default=str))
    click.echo(f"taskcodec: train-codec {config}: done in {time.perf_counter() - started:.1f} s")


@main.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder to write [default: TARGET if a folder].")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), envvar="TASKCODEC_STORE",
              help="Results store [default: .taskcodec, or $TASKCODEC_STORE].")
@click.option("--from-files", is_flag=True,
              help="Render the published board TARGET again from its own files, without a store.")
def leaderboard(target: Path, out: Path | None, store: Path | None, from_files: bool) -> None:
    """Re-render a leaderboard from the store, computing nothing.

    TARGET is a leaderboard folder (its config.yaml is used) or a config file.
    Fails, naming what is missing, if the store lacks any result. With
    --from-files, TARGET is a published board, rendered again from its own
    results and per-sample files (no store needed), e.g. after an update of
    taskcodec added intervals or columns; its provenance records that.
    """
    if from_files:
        from .board_merge import rerender_board
        from .publish import require_clean_tree

        if out is not None:
            _fail(TaskcodecError(f"--from-files re-renders the published board {target} in place: no --out"))
        try:  # Source.read refuses a folder that is no published board
            if target.resolve().parent == Path(BOARDS_DIR).resolve():  # a published board names a clean revision
                require_clean_tree(BOARDS_DIR, boards_may_change=True)
            changed = rerender_board(target, BOARDS_DIR)
        except TaskcodecError as exc:
            _fail(exc)
        click.echo(f"taskcodec: {'re-rendered' if changed else 'already up to date:'} {target}/ from its files")
        return
    from .config import load_config
    from .errors import StoreError
    from .publish import check_writable, publish
    from .runner import Runner
    from .store import Store, default_store_dir

    try:
        pm = _plugins()
        config_path = target / "config.yaml" if target.is_dir() else target
        cfg = load_config(config_path, pm.registry)
        folder = out or (target if target.is_dir() else Path(RUNS_DIR) / cfg.benchmark)
        root = store or default_store_dir()
        if not (Path(root) / "results.sqlite").is_file():  # computing nothing includes creating no store
            raise StoreError(f"no results store at {root} (no {Path(root) / 'results.sqlite'}): "
                             f"run `taskcodec run {config_path}` first, or point --store at the store that has them")
        check_writable(folder)
        collected = Runner(cfg, Store(root), pm, progress=False).run(compute=False)
        publish(collected, cfg, folder, force=True)
    except TaskcodecError as exc:
        _fail(exc)
    click.echo(f"taskcodec: re-rendered {folder}/ from the store")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rows", "rows", required=True, multiple=True, metavar="NAME[,NAME...]",
              help="The config's rows to submit (repeat the option or separate with commas).")
@click.option("--board", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The published board the rows are for (its data, task model and protocol are used).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="The bundle folder to write.")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), envvar="TASKCODEC_STORE",
              help="Results store [default: .taskcodec, or $TASKCODEC_STORE].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Codec worker processes [default: config, else up to all cores, started only for coding that "
                   "repays their start-up].")
@click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
def submit(config: Path, rows: tuple[str, ...], board: Path, out: Path, store: Path | None, workers: int | None,
           no_progress: bool) -> None:
    """Run only the named rows of CONFIG for the published board --board and write a bundle to send.

    Refused, naming the differing fact, when the config's protocol (dataset options, metrics, seed, task
    options) or the local data (fingerprint) or task weights (sha256) are not the board's. The bundle is a
    board folder of those rows (per-image and per-sample files, manifest) plus bundle.json; the board's
    maintainer adds it with `taskcodec merge BOARD BUNDLE`.
    """
    from .board_merge import submit_bundle

    names = [name for value in rows for name in value.split(",") if name]
    with _resumable_errors():
        submit_bundle(config, names, board, out, store_root=store, workers=workers, progress=not no_progress)


@main.command()
@click.argument("board", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("bundles", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
def merge(board: Path, bundles: tuple[Path, ...]) -> None:
    """Add the rows of each bundle (from `taskcodec submit`) to the published BOARD, recomputing none.

    A bundle is refused, with the reason, unless it matches its schema, was made on the board's data
    (fingerprint), task model (weights sha256) and protocol, gives the board's uncompressed row, every
    number in it recomputes from its own per-sample files, and its rows do not collide with the board's.
    The board is then re-rendered (BD-rates against its anchors with their intervals, rate-matched
    columns, plots). Merging the same bundle again changes nothing; the order of bundles does not matter.
    """
    from .board_merge import merge_bundles

    with _resumable_errors():
        outcome = merge_bundles(board, list(bundles))
    if outcome.added:
        click.echo(f"taskcodec: merged rows {', '.join(outcome.added)} into {board}/"
                   + (f" ({', '.join(outcome.already_there)} already there)" if outcome.already_there else ""))
    else:
        click.echo(f"taskcodec: {board}/ already holds every row of the bundles ({', '.join(outcome.already_there)})")


def _board_folders(folders: tuple[Path, ...]) -> list[Path]:
    """Each folder that is a board (holds results.json), or the boards directly inside one that is not."""
    from .publish import boards_in

    boards: list[Path] = []
    for folder in folders:
        found = boards_in(folder)
        if not found:
            _fail(PublishError(f"{folder}: not a leaderboard folder (no results.json) and holds none"))
        boards += found
    return boards


@main.command()
@click.argument("boards", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "check_data", is_flag=True,
              help="Also rebuild each board's dataset here and compare its fingerprint, and hash local task checkpoints.")
@click.option("--write-manifest", is_flag=True,
              help="For a board published before manifests existed: write its manifest.json, only if every check passes.")
def verify(boards: tuple[Path, ...], check_data: bool, write_manifest: bool) -> None:
    """Recompute every headline number of the published BOARDS from their own files.

    A folder that is not a board itself (no results.json), such as ``leaderboard/``, stands for the
    boards directly inside it.

    Checks each board's files against its manifest (sha256), results.csv against results.json, each
    row's bpp and image metrics against images.csv.gz, its task metrics against samples.csv.gz, and the
    BD-rates, their 95% intervals and BD-quality. Prints a verdict per row; exits 1 on any mismatch.
    """
    from .publish import MANIFEST, certify_manifest
    from .verify import verify_board

    failed = 0
    for board in _board_folders(boards):
        try:
            verdicts = verify_board(board, _plugins().registry, check_data=check_data)
        except TaskcodecError as exc:
            _fail(exc)
        if write_manifest:
            rest = [v for v in verdicts if not v.subject.startswith("files")]
            if all(v.ok for v in rest) and not (board / MANIFEST).is_file():
                certify_manifest(board)
                verdicts = verify_board(board, _plugins().registry, check_data=check_data)
        bad = [v for v in verdicts if not v.ok]
        failed += bool(bad)
        for v in verdicts:
            click.echo(f"{'ok' if v.ok else 'MISMATCH':8s} {board.name}: {v.subject} ({v.checked} checked)")
            for problem in v.problems[:20]:
                click.echo(f"           {problem}")
            if len(v.problems) > 20:
                click.echo(f"           ... and {len(v.problems) - 20} more")
        checked = sum(v.checked for v in verdicts)
        click.echo(f"taskcodec verify {board}: {'FAILED' if bad else 'ok'}: {checked} numbers and files checked, "
                   f"{sum(len(v.problems) for v in verdicts)} mismatches")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("boards", default=BOARDS_DIR, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the site into (index.html, a page per board, assets/).")
def site(boards: Path, out: Path) -> None:
    """Write a static website of the published boards in BOARDS [default: leaderboard]: works offline."""
    from .site import build_site

    with _resumable_errors():
        report = build_site(boards, out)
    click.echo(f"taskcodec site: {len(report.boards)} board page(s) in {report.out}: {', '.join(report.boards)}"
               + (f" (not boards: {', '.join(report.skipped)})" if report.skipped else ""))
    click.echo(f"open {report.out / 'index.html'}")


@main.command()
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the full traceback of failed plugins.")
def plugins(show_traceback: bool) -> None:
    """List installed plugins: name, what they register, version, source, error if any."""
    pm = _plugins()
    rows = []
    for p in pm.plugins:
        provides = ", ".join(f"{kind} {name}" for kind, name in p.registered) or "-"
        status = "; ".join(filter(None, [p.error, *(f"conflict: {c}" for c in p.conflicts)])) or "ok"
        rows.append((p.name, provides, p.version or "-", p.source, status))
    _table(("plugin", "registers", "version", "source", "status"), rows)
    if show_traceback:
        for p in pm.failures:
            if p.traceback:
                click.echo(f"\n--- {p.name} ---\n{p.traceback}")
    if pm.failures:
        click.echo(f"\n{len(pm.failures)} plugin(s) failed; the others work. Use --traceback for details.", err=True)
    for kind, name, owners in pm.registry.conflicts():
        click.echo(f"{kind} {name!r} is registered by {', '.join(map(repr, owners))}: it cannot be used until "
                   f"one of them is removed or disabled (TASKCODEC_DISABLE_PLUGINS)", err=True)


@main.command("list")
@click.argument("kind", type=click.Choice(sorted(KIND_NAMES)))
def list_(kind: str) -> None:
    """List the registered codecs, tasks, datasets or metrics."""
    pm = _plugins()
    rows = []
    for entry in pm.registry.entries(KIND_NAMES[kind]):
        cls = entry.target
        if kind == "codecs":
            points = ", ".join(map(str, cls.default_rate_points))
            rows.append((entry.name, cls.rate_parameter or "-", points or "-", entry.plugin, cls.description))
        elif kind == "datasets":
            rows.append((entry.name, "/".join(cls.splits), "yes" if cls.needs_root else "no", entry.plugin, cls.description))
        elif kind == "tasks":
            rows.append((entry.name, cls.task_type, ", ".join(cls.default_metrics), entry.plugin, cls.description))
        else:
            on = "image pairs" if issubclass(cls, ImageMetric) else "/".join(cls.task_types) + " tasks"
            rows.append((entry.name, on, "higher" if cls.higher_is_better else "lower", entry.plugin, cls.description))
    headers = {
        "codecs": ("codec", "rate parameter", "default rate points", "plugin", "description"),
        "datasets": ("dataset", "splits", "needs root", "plugin", "description"),
        "tasks": ("task", "type", "default metrics", "plugin", "description"),
        "metrics": ("metric", "on", "better", "plugin", "description"),
    }[kind]
    _table(headers, rows)


def _table(headers, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    widths[-1] = 0  # the last column is free text
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    click.echo(line(headers))
    for r in rows:
        click.echo(line(r))



def _register_subcommands() -> None:
    from .cli_check import check  # taskcodec check codec|dataset|metric: the conformance kit's commands

    main.add_command(check)


_register_subcommands()

if __name__ == "__main__":
    main()
