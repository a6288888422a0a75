"""The datasets' option checks, through the core's (:func:`taskcodec.read_option`): each failure is
the one option error naming the dataset, the option, the value given and what is accepted (config
files are typed by hand; YAML turns ``1`` into an int, ``yes`` into a bool and ``[1]`` into a list,
so types are checked, not coerced). Here: the checks the datasets share, one call each."""
from __future__ import annotations

from typing import Any, Sequence

import taskcodec


def reject_unknown(plugin: taskcodec.Dataset, unknown: dict[str, Any], allowed: Sequence[str]) -> None:
    """Refuse options the plugin does not have (Python would say only 'unexpected keyword argument')."""
    if unknown:
        raise taskcodec.unknown_options(plugin, unknown, allowed)


def choice(plugin: taskcodec.Dataset, option: str, value: Any, choices: Sequence[Any]) -> Any:
    return taskcodec.read_option(plugin, option, value, taskcodec.Accept.one_of(*choices))


def boolean(plugin: taskcodec.Dataset, option: str, value: Any) -> bool:
    return taskcodec.read_option(plugin, option, value, taskcodec.Accept.boolean)


def integer(plugin: taskcodec.Dataset, option: str, value: Any, lo: int = 1, hi: int | None = None, *,
            optional: bool = False) -> int | None:
    """An integer in lo..hi (bools are not integers here); None only when ``optional``."""
    return taskcodec.read_option(plugin, option, value, taskcodec.Accept.integer(lo, hi, optional=optional))


def text(plugin: taskcodec.Dataset, option: str, value: Any, *, optional: bool = False,
         what: str = "a non-empty string") -> str | None:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ValueError(what + (" or null" if optional else ""))
        return value

    return taskcodec.read_option(plugin, option, value, check)


def text_list(plugin: taskcodec.Dataset, option: str, value: Any, *,
              what: str = "a non-empty list of distinct, non-empty strings",
              optional: bool = False) -> list[str] | None:
    def check(value: Any) -> list[str] | None:
        if value is None and optional:
            return None
        if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
                or not all(isinstance(v, str) and v.strip() for v in value) or len(set(value)) != len(value)):
            raise ValueError(what + (" or null" if optional else ""))
        return list(value)

    return taskcodec.read_option(plugin, option, value, check)
