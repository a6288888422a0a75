"""Which option names a plugin class accepts from a config (checked when the config is loaded)."""
from __future__ import annotations

import inspect

# Constructor arguments the framework passes itself; a config's ``options`` may not name them.
FRAMEWORK_ARGUMENTS: dict[str, tuple[str, ...]] = {"dataset": ("root", "split", "cache_dir"), "codec": (), "task": ()}


def option_names(cls: type, kind: str) -> tuple[str, ...] | None:
    """The option names a plugin class accepts from a config, or None when it does not say.

    A class attribute ``accepted_options`` (a tuple of names) wins; plugins whose ``__init__``
    takes ``**options`` set it so that the framework can check a config's option names at
    load time. Otherwise the names are the keyword parameters of ``__init__`` (minus the
    framework's own arguments, see ``FRAMEWORK_ARGUMENTS``). An ``__init__`` with ``**kwargs``
    and no ``accepted_options``: None, the names are not checked (the plugin's own constructor
    is the only check).
    """
    declared = getattr(cls, "accepted_options", None)
    if declared is not None:
        return tuple(declared)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    framework = FRAMEWORK_ARGUMENTS.get(kind, ())
    return tuple(p.name for p in parameters if p.kind in keyword and p.name not in framework)
