"""Checks for dataset plugin options: each failure is a DatasetError naming the plugin, the option,
the value given and what is accepted (config files are typed by hand; YAML turns ``1`` into an int,
``yes`` into a bool and ``[1]`` into a list, so types are checked, not coerced)."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

from taskcodec import DatasetError


def _fail(plugin: str, option: str, value: Any, accepted: str) -> DatasetError:
    return DatasetError(f"dataset {plugin!r}: option {option!r} = {value!r} is invalid; expected {accepted}")


def reject_unknown(plugin: str, unknown: dict[str, Any], allowed: Sequence[str]) -> None:
    """Refuse options the plugin does not have (Python would say only 'unexpected keyword argument')."""
    if unknown:
        raise DatasetError(f"dataset {plugin!r}: unknown option(s) {sorted(unknown)}; its options are "
                           f"{', '.join(sorted(allowed))}")


def choice(plugin: str, option: str, value: Any, choices: Sequence[Any]) -> Any:
    if isinstance(value, bool) or value not in choices:
        raise _fail(plugin, option, value, f"one of {list(choices)}")
    return value


def boolean(plugin: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(plugin, option, value, "true or false")
    return value


def integer(plugin: str, option: str, value: Any, lo: int = 1, hi: int | None = None, *,
            optional: bool = False) -> int | None:
    """An integer in lo..hi (bools are not integers here); None only when ``optional``."""
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        accepted = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
        raise _fail(plugin, option, value, accepted + (" or null" if optional else ""))
    return int(value)


def text(plugin: str, option: str, value: Any, *, optional: bool = False, what: str = "a non-empty string") -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(plugin, option, value, what + (" or null" if optional else ""))
    return value


def text_list(plugin: str, option: str, value: Any, *, what: str = "a non-empty list of distinct, non-empty strings",
              optional: bool = False) -> list[str] | None:
    if value is None and optional:
        return None
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, str) and v.strip() for v in value) or len(set(value)) != len(value)):
        raise _fail(plugin, option, value, what + (" or null" if optional else ""))
    return list(value)
