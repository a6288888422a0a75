"""``taskcodec check codec|dataset|metric``: the plugin contracts of :mod:`taskcodec.conformance` run on an
installed plugin from the command line (registered on the main group by :mod:`taskcodec.cli`)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_support import _fail, _plugins, _resumable_errors
from .errors import TaskcodecError
from .metric import ImageMetric


@click.group()
def check() -> None:
    """Run a plugin contract on an installed plugin (taskcodec/conformance/): exit 0 when every check passes."""


def _option_values(options: tuple[str, ...]) -> dict:
    import yaml

    values = {}
    for text in options:
        key, sep, value = text.partition("=")
        if not sep or not key:
            _fail(TaskcodecError(f"--option {text!r}: expected KEY=VALUE"))
        values[key] = yaml.safe_load(value)
    return values


def _report(kind: str, name: str, checks: dict, target, only: tuple[str, ...]) -> None:
    """Run ``checks`` (or the ``only`` ones) on ``target``, print a line each, exit 1 if any failed."""
    from .conformance import run_checks

    unknown = sorted(set(only) - set(checks))
    if unknown:
        _fail(TaskcodecError(f"--only {unknown}: no such check; the checks are {', '.join(checks)}"))
    results = run_checks(checks, target, list(only) or None)
    for result in results:
        click.echo(f"{'ok  ' if result.passed else 'FAIL'}  {result.name}" + (f": {result.detail}" if result.detail else ""))
    failed = sum(not r.passed for r in results)
    click.echo(f"taskcodec check {kind} {name}: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


_OPTION = click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
                       help="An option of the plugin (VALUE read as YAML: 3, 0.5, true, 'text'); repeatable.")
_ONLY = click.option("--only", "only", multiple=True, help="Run only this check (repeatable); default: all.")


@check.command("codec")
@click.argument("name")
@_OPTION
@_ONLY
def check_codec(name: str, options: tuple[str, ...], only: tuple[str, ...]) -> None:
    """The codec contract on codec NAME: round trip (also in another process), shapes and dtype, determinism,
    gray and RGB at odd sizes, batches, rate order, bad rate points and images, damaged streams."""
    from .conformance import CODEC_CHECKS

    with _resumable_errors():
        codec = _plugins().get("codec", name).target(**_option_values(options))
    _report("codec", name, CODEC_CHECKS, codec, only)


@check.command("dataset")
@click.argument("name")
@click.option("--root", help="The data folder (relative: against $TASKCODEC_DATA).")
@click.option("--split", help="The split [default: the dataset's first].")
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True, help="Samples to read.")
@_OPTION
@_ONLY
def check_dataset(name: str, root: str | None, split: str | None, limit: int, options: tuple[str, ...],
                  only: tuple[str, ...]) -> None:
    """The dataset contract on dataset NAME: attributes, samples (ids, images, labels), stable reads, a missing
    root refused."""
    import tempfile

    from .config import resolve_root
    from .conformance import DATASET_CHECKS, DatasetUnderTest

    values = _option_values(options)
    with tempfile.TemporaryDirectory(prefix="taskcodec-check-") as scratch:  # derived data, removed after
        with _resumable_errors():
            cls = _plugins().get("dataset", name).target
            cache = {"cache_dir": Path(scratch)} if cls.wants_cache_dir else {}
            chosen = {"root": resolve_root(root), "split": split or cls.splits[0]}

            def build(**changes):
                return cls(**{**chosen, **changes}, **cache, **values)

            case = DatasetUnderTest(build(), build, limit)
        _report("dataset", name, DATASET_CHECKS, case, only)


@check.command("metric")
@click.argument("name")
@_OPTION
@_ONLY
def check_metric(name: str, options: tuple[str, ...], only: tuple[str, ...]) -> None:
    """The image-metric contract on metric NAME: numbers or None on gray and RGB images, stable values, identical
    images scored best."""
    from .conformance import IMAGE_METRIC_CHECKS

    with _resumable_errors():
        cls = _plugins().get("metric", name).target
        if not issubclass(cls, ImageMetric):
            raise TaskcodecError(f"metric {name!r} is a task metric: only image metrics have a contract to check here")
        metric = cls(**_option_values(options))
    _report("metric", name, IMAGE_METRIC_CHECKS, metric, only)
