"""Helpers that every ``taskcodec`` command module shares: the plugin manager, and how errors end a command."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from .errors import TaskcodecError


def _plugins():
    from .pluginmanager import get_plugin_manager

    return get_plugin_manager()


def _fail(exc: BaseException) -> None:
    click.echo(f"taskcodec: error: {exc}", err=True)
    sys.exit(2)


@contextlib.contextmanager
def _resumable_errors() -> Iterator[None]:
    """Errors end the command with their message; Ctrl-C says how to resume a training."""
    try:
        yield
    except TaskcodecError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo("taskcodec: interrupted; run the same command to resume from the last saved state", err=True)
        sys.exit(130)
