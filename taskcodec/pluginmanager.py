"""Loads plugins from the entry-point group ``taskcodec`` and fills a :class:`Registry`.

Each plugin is loaded and asked to register in isolation: one that fails to import
or raises while registering is recorded in :attr:`PluginManager.failures` (shown by
``taskcodec plugins``) and the others carry on. ``TASKCODEC_PLUGINS``, a
comma-separated list of entry-point names, restricts which plugins load;
``TASKCODEC_DISABLE_PLUGINS`` excludes some.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import DuplicatePluginError, TaskcodecError
from .registry import Registry

ENTRY_POINT_GROUP = "taskcodec"
HOOK_KINDS = {
    "register_codecs": "codec",
    "register_datasets": "dataset",
    "register_tasks": "task",
    "register_metrics": "metric",
}


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, as ``taskcodec plugins`` lists it."""

    name: str
    source: str  # the distribution that provides it
    version: str
    module: str
    registered: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    error: str | None = None
    conflicts: list[str] = field(default_factory=list)  # names another plugin registered too (unusable)
    traceback: str | None = None


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable, "").strip()
    return {v.strip() for v in value.split(",") if v.strip()} if value else None


class PluginManager:
    """The registry filled from every ``taskcodec`` entry point (and any extra plugin objects)."""

    def __init__(self, entry_points: Iterable[Any] | None = None, extra_plugins: Iterable[tuple[str, Any]] = ()):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []
        only = _env_names("TASKCODEC_PLUGINS")
        disabled = _env_names("TASKCODEC_DISABLE_PLUGINS") or set()
        eps = list(entry_points) if entry_points is not None else list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        seen: set[str] = set()
        for ep in sorted(eps, key=lambda e: (e.dist.name if e.dist else "", e.name)):
            if ep.name in seen or ep.name in disabled or (only is not None and ep.name not in only):
                continue
            seen.add(ep.name)
            self._load_entry_point(ep)
        for name, obj in extra_plugins:
            self._register_plugin(PluginInfo(name, "(in process)", "", getattr(obj, "__name__", repr(obj))), obj)
        self.registry.load_failures = [(p.name, p.error) for p in self.plugins if p.error and not p.registered]
        for kind, name, owners in self.registry.conflicts():
            for info in self.plugins:
                if info.name in owners:
                    others = ", ".join(repr(o) for o in owners if o != info.name)
                    info.conflicts.append(f"{kind} {name!r} is also registered by {others}: not used")

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def _load_entry_point(self, ep: Any) -> None:
        dist = ep.dist.name if ep.dist is not None else "(unknown)"
        version = ep.dist.version if ep.dist is not None else ""
        info = PluginInfo(ep.name, dist, version, ep.value)
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            info.error = f"import failed: {type(exc).__name__}: {exc}"
            info.traceback = traceback.format_exc()
            self.plugins.append(info)
            return
        self._register_plugin(info, obj)

    def _register_plugin(self, info: PluginInfo, obj: Any) -> None:
        self.plugins.append(info)
        try:
            self.pm.register(obj, name=info.name)
        except Exception as exc:
            info.error = f"not a valid plugin: {type(exc).__name__}: {exc}"
            return
        for hook_name, kind in HOOK_KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != info.name:
                    continue

                def register(cls: type, _kind: str = kind) -> None:
                    # A rejected class (bad name, wrong base, a name taken) is recorded and skipped:
                    # raising here would stop the module's other registrations.
                    try:
                        self.registry.add(_kind, cls, plugin=info.name, source=info.source, version=info.version)
                    except DuplicatePluginError:
                        info.registered.append((_kind, cls.name))  # listed, and marked conflicted later
                    except TaskcodecError as exc:
                        problems.append(str(exc))
                    else:
                        info.registered.append((_kind, cls.name))

                problems: list[str] = []
                try:
                    impl.function(register=register)
                except TaskcodecError as exc:
                    problems.append(f"{hook_name} failed: {exc}")
                except Exception as exc:
                    problems.append(f"{hook_name} failed: {type(exc).__name__}: {exc}")
                if problems:
                    info.error = "; ".join(filter(None, [info.error, *problems]))

    # Convenience lookups -------------------------------------------------------------
    def get(self, kind: str, name: str):
        return self.registry.get(kind, name)


_default: PluginManager | None = None


def get_plugin_manager(refresh: bool = False) -> PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _default
    if _default is None or refresh:
        _default = PluginManager()
    return _default
