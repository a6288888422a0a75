"""The hashes and canonical spellings that identify things: an image's digest, canonical JSON of rate points and
options, one spelling of a rate point for matching rows across files."""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np


def image_digest(image: np.ndarray) -> str:
    """sha256 of an image's shape and pixels: its identity in every cache key."""
    h = hashlib.sha256()
    h.update(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).reshape(-1).view(np.uint8))  # the pixel bytes, without a copy
    return h.hexdigest()


def stable_json(value: Any) -> str:
    """Canonical JSON used for hashing rate points and options."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def rate_point_key(value: Any) -> str:
    """One spelling of a rate point for the JSON rows and both CSV files (``""`` for none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return ""
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)
