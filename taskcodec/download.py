"""Fetch a data file with a checksum, or say exactly where to put it when offline.

Plugins use :func:`fetch_file` for datasets and weights: it downloads to a temporary
name, checks the sha256, and renames into place, so a broken download never leaves a
file that looks complete. When the network is unreachable the error names the URL,
the expected sha256 and the path to put the file at.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .errors import DatasetError
from .files import sha256_file


def fetch_file(url: str, dest: str | Path, sha256: str | None, *, timeout: float = 60.0) -> Path:
    """Return ``dest``, downloading it from ``url`` first if it is absent; verify ``sha256``."""
    dest = Path(dest)
    if dest.is_file():
        if sha256 and sha256_file(dest) != sha256:
            raise DatasetError(f"{dest}: sha256 {sha256_file(dest)} does not match the expected {sha256}; delete it to re-download")
        return dest
    import urllib.error  # here: urllib.request costs every process importing taskcodec ~20 ms
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                h.update(block)
                out.write(block)
        if sha256 and h.hexdigest() != sha256:
            raise DatasetError(f"download of {url} has sha256 {h.hexdigest()}, expected {sha256}; not saved")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DatasetError(
            f"cannot download {url} ({exc}). Offline? Fetch it elsewhere and put it at {dest}"
            + (f" (sha256 {sha256})" if sha256 else "")
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
