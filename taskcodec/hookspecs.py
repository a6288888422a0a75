"""The hooks through which plugins register things. Hooks only register.

A plugin is a module (or object) with functions marked ``@taskcodec.hookimpl`` whose
names are those below. Each receives a ``register`` callable and calls it once per
class it provides, e.g.::

    import taskcodec

    @taskcodec.hookimpl
    def register_codecs(register):
        register(MyCodec)

It is loaded from the entry-point group ``taskcodec`` of any installed distribution
(``[project.entry-points.taskcodec] my_plugin = "my_package.my_module"``); the
built-in plugins are registered exactly the same way.
"""
from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "taskcodec"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_codecs(register: Callable[[type], None]) -> None:
    """Register :class:`taskcodec.Codec` subclasses: call ``register(CodecClass)`` for each."""


@hookspec
def register_datasets(register: Callable[[type], None]) -> None:
    """Register :class:`taskcodec.Dataset` subclasses: call ``register(DatasetClass)`` for each."""


@hookspec
def register_tasks(register: Callable[[type], None]) -> None:
    """Register :class:`taskcodec.Task` subclasses: call ``register(TaskClass)`` for each."""


@hookspec
def register_metrics(register: Callable[[type], None]) -> None:
    """Register :class:`taskcodec.ImageMetric` or :class:`taskcodec.TaskMetric` subclasses."""
