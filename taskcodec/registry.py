"""Name -> plugin class lookup per kind, with duplicate checks and did-you-mean errors."""
from __future__ import annotations

import difflib
import re
from typing import Iterable

from .api import Codec, Dataset, ImageMetric, RegisteredPlugin, Task, TaskMetric
from .errors import DuplicatePluginError, PluginError, UnknownPluginError

KINDS: dict[str, tuple[type, ...]] = {
    "codec": (Codec,),
    "dataset": (Dataset,),
    "task": (Task,),
    "metric": (ImageMetric, TaskMetric),
}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


class Registry:
    """Holds what plugins registered; one instance per plugin manager."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, RegisteredPlugin]] = {kind: {} for kind in KINDS}

    def add(self, kind: str, cls: type, plugin: str, source: str, version: str = "") -> RegisteredPlugin:
        """Register ``cls`` under its ``name``; raises on a bad class or a taken name."""
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; expected one of {sorted(KINDS)}")
        bases = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, bases)):
            expected = " or ".join(f"taskcodec.api.{b.__name__}" for b in bases)
            raise PluginError(f"plugin {plugin!r} registered {cls!r} as a {kind}; expected a subclass of {expected}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(
                f"plugin {plugin!r}: {cls.__qualname__}.name = {name!r}; expected a lowercase-hyphen name like 'my-codec'"
            )
        taken = self._entries[kind].get(name)
        if taken is not None:
            raise DuplicatePluginError(
                f"{kind} {name!r} from plugin {plugin!r} ({cls.__module__}.{cls.__qualname__}) is already "
                f"registered by plugin {taken.plugin!r} ({taken.target.__module__}.{taken.target.__qualname__})"
            )
        entry = RegisteredPlugin(kind=kind, name=name, target=cls, plugin=plugin, source=source, version=version)
        self._entries[kind][name] = entry
        return entry

    def get(self, kind: str, name: str) -> RegisteredPlugin:
        """The entry for ``name``; UnknownPluginError with close matches and the full list if absent."""
        entries = self._entries[kind]
        if name in entries:
            return entries[name]
        available = sorted(entries)
        close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownPluginError(
            f"no {kind} named {name!r}.{hint} Available {kind}s: {', '.join(available) or '(none)'}"
        )

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> Iterable[RegisteredPlugin]:
        kinds = [kind] if kind else list(KINDS)
        for k in kinds:
            yield from (self._entries[k][n] for n in sorted(self._entries[k]))
