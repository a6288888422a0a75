"""A ``version`` class attribute computed when first read, so that listing plugins imports no codec library."""
from __future__ import annotations

from typing import Any, Callable


class LazyVersion:
    """A codec's ``version`` (a part of every cache key) computed on first read, then kept.

    ``compute()`` returns the version string, typically naming the versions of the libraries that
    make the bytes. Where it raises and ``fallback`` is given, ``fallback(exc)`` is the version of
    that read (e.g. "library unavailable": encoding will say why) and the next read computes again.
    Use it as ``version = LazyVersion(compute)`` in the class body; instances read the same string.
    """

    def __init__(self, compute: Callable[[], str], fallback: Callable[[Exception], str] | None = None) -> None:
        self._compute = compute
        self._fallback = fallback
        self._value: str | None = None

    def __get__(self, obj: Any, objtype: Any = None) -> str:
        if self._value is None:
            try:
                self._value = self._compute()
            except Exception as exc:
                if self._fallback is None:
                    raise
                return self._fallback(exc)
        return self._value

    @staticmethod
    def installed(package: str) -> str:
        """``"<package> <version>"`` of an installed distribution, or ``"<package> missing"``; imports nothing."""
        from importlib import metadata  # here: importing it costs every worker process ~14 ms

        try:
            return f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            return f"{package} missing"
