"""Name -> plugin class lookup per kind, with duplicate checks and did-you-mean errors.

A name that two plugins register is *conflicted*: neither wins (load order must never decide
which code produces a result), every other name of both plugins stays usable, and looking the
name up is a DuplicatePluginError naming both plugins. Plugins that failed to load are
remembered, so that a name nobody registered can say which failed plugin may have provided it.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable

from .codec import Codec
from .dataset import Dataset
from .errors import DuplicatePluginError, PluginError, UnknownPluginError
from .metric import ImageMetric, TaskMetric
from .task import Task

KINDS: dict[str, tuple[type, ...]] = {
    "codec": (Codec,),
    "dataset": (Dataset,),
    "task": (Task,),
    "metric": (ImageMetric, TaskMetric),
}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


@dataclass(frozen=True)
class RegisteredPlugin:
    """A registry entry: the class, and the plugin (entry point) that registered it."""

    kind: str
    name: str
    target: type
    plugin: str
    source: str
    version: str = ""


class Registry:
    """Holds what plugins registered; one instance per plugin manager."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, RegisteredPlugin]] = {kind: {} for kind in KINDS}
        self._conflicts: dict[str, dict[str, list[RegisteredPlugin]]] = {kind: {} for kind in KINDS}
        self.load_failures: list[tuple[str, str]] = []  # (plugin, error) of plugins that did not load

    def add(self, kind: str, cls: type, plugin: str, source: str, version: str = "") -> RegisteredPlugin:
        """Register ``cls`` under its ``name``; raises on a bad class or a taken name."""
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; expected one of {sorted(KINDS)}")
        bases = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, bases)):
            expected = " or ".join(f"taskcodec.{b.__name__}" for b in bases)
            raise PluginError(f"plugin {plugin!r} registered {cls!r} as a {kind}; expected a subclass of {expected}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(
                f"plugin {plugin!r}: {cls.__qualname__}.name = {name!r}; expected a lowercase-hyphen name like 'my-codec'"
            )
        entry = RegisteredPlugin(kind=kind, name=name, target=cls, plugin=plugin, source=source, version=version)
        taken = self._entries[kind].pop(name, None)
        if taken is not None or name in self._conflicts[kind]:
            claimants = self._conflicts[kind].setdefault(name, [])
            if taken is not None:
                claimants.append(taken)
            claimants.append(entry)
            raise DuplicatePluginError(self._conflict_message(kind, name))
        self._entries[kind][name] = entry
        return entry

    def _conflict_message(self, kind: str, name: str) -> str:
        claimants = ", ".join(f"plugin {e.plugin!r} ({e.target.__module__}.{e.target.__qualname__}, from {e.source})"
                              for e in self._conflicts[kind][name])
        return (f"{kind} {name!r} is registered by more than one plugin: {claimants}; neither is used. "
                f"Uninstall or disable one (TASKCODEC_DISABLE_PLUGINS=<plugin>)")

    def conflicts(self) -> list[tuple[str, str, list[str]]]:
        """Every conflicted name: ``(kind, name, [plugins that registered it])``."""
        return [(kind, name, [e.plugin for e in entries])
                for kind in KINDS for name, entries in sorted(self._conflicts[kind].items())]

    def get(self, kind: str, name: str) -> RegisteredPlugin:
        """The entry for ``name``; UnknownPluginError with close matches and the full list if absent."""
        entries = self._entries[kind]
        if name in entries:
            return entries[name]
        if name in self._conflicts[kind]:
            raise DuplicatePluginError(self._conflict_message(kind, name))
        available = sorted(entries)
        close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        failed = ""
        if self.load_failures:
            failed = (" Plugins that failed to load, and may provide it: "
                      + "; ".join(f"{plugin!r} ({error})" for plugin, error in self.load_failures)
                      + " (details: `taskcodec plugins --traceback`).")
        raise UnknownPluginError(
            f"no {kind} named {name!r}.{hint} Available {kind}s: {', '.join(available) or '(none)'}.{failed}"
        )

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> Iterable[RegisteredPlugin]:
        kinds = [kind] if kind else list(KINDS)
        for k in kinds:
            yield from (self._entries[k][n] for n in sorted(self._entries[k]))
