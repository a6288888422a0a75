"""Plugin options: which names a plugin class accepts from a config (checked when the config is loaded),
and the one way a plugin checks their values (:func:`read_options`, :class:`Accept`), so that every
bad option is an :class:`OptionError` in the same words: plugin, option, value, what it accepts.

A check is a callable ``value -> the value to use`` that raises ``ValueError(what it accepts)``,
e.g. ``ValueError("an integer in 0..6")``.
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable, Iterable, Mapping

from .codec import Codec
from .dataset import Dataset
from .errors import OptionError
from .task import Task

PLUGIN_BASES: dict[str, type] = {"codec": Codec, "dataset": Dataset, "task": Task}

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


# ---------------------------------------------------------------------------------------------- values
Check = Callable[[Any], Any]  # value -> the value to use; raises ValueError(<what it accepts>)
OptionSpecs = Mapping[str, tuple[Any, Check]]  # option name -> (default, check)


def describe_plugin(plugin: Any) -> str:
    """``"codec 'jpeg'"``: the kind and name of a plugin class or instance, as every option error starts."""
    cls = plugin if isinstance(plugin, type) else type(plugin)
    kind = next((kind for kind, base in PLUGIN_BASES.items() if issubclass(cls, base)), "plugin")
    return f"{kind} {getattr(plugin, 'name', cls.__name__)!r}"


def invalid_option(plugin: Any, option: str, value: Any, accepted: str) -> OptionError:
    """The error for ``option = value`` of ``plugin``; ``accepted`` says what it takes ("an integer in 0..6")."""
    return OptionError(f"{describe_plugin(plugin)}: option {option!r} = {value!r} is invalid; expected {accepted}")


def unknown_options(plugin: Any, unknown: Iterable[str], accepted: Iterable[str]) -> OptionError:
    """The error for option names ``plugin`` does not have (Python would say only 'unexpected keyword')."""
    return OptionError(f"{describe_plugin(plugin)}: unknown option(s) {sorted(unknown)}; its options are "
                       f"{', '.join(sorted(accepted)) or '(none)'}")


def read_option(plugin: Any, option: str, value: Any, check: Check) -> Any:
    """``check(value)``, its ValueError turned into the :class:`OptionError` naming plugin, option and value."""
    try:
        return check(value)
    except ValueError as exc:
        raise invalid_option(plugin, option, value, str(exc)) from None


def read_options(plugin: Any, given: Mapping[str, Any], specs: OptionSpecs) -> dict[str, Any]:
    """Every option of ``specs`` checked, from ``given`` or its default; names ``specs`` lacks are refused."""
    unknown = set(given) - set(specs)
    if unknown:
        raise unknown_options(plugin, unknown, specs)
    return {key: read_option(plugin, key, given.get(key, default), check) for key, (default, check) in specs.items()}


class Accept:
    """Checks for the common kinds of option value (YAML turns ``1`` into an int and ``yes`` into a bool,
    so types are checked, not coerced; bools are never numbers). ``optional``: None is accepted too."""

    @staticmethod
    def one_of(*allowed: Any, optional: bool = False) -> Check:
        """One of ``allowed`` (compared with ==)."""
        def check(value: Any) -> Any:
            if value is None and optional:
                return None
            if isinstance(value, bool) or value not in allowed:
                raise ValueError(f"one of {list(allowed)}" + (" or null" if optional else ""))
            return value

        return check

    @staticmethod
    def integer(lo: int, hi: int | None = None, *, optional: bool = False) -> Check:
        """An integer in ``lo..hi`` (no upper bound when ``hi`` is None), returned as int."""
        def check(value: Any) -> int | None:
            if value is None and optional:
                return None
            if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo
                    or (hi is not None and value > hi)):
                accepted = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
                raise ValueError(accepted + (" or null" if optional else ""))
            return int(value)

        return check

    @staticmethod
    def boolean(value: Any) -> bool:
        """true or false."""
        if not isinstance(value, bool):
            raise ValueError("true or false")
        return value
