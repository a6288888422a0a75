"""The hashes that identify things in cache keys: an image's digest, canonical JSON of rate points and options."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def image_digest(image: np.ndarray) -> str:
    """sha256 of an image's shape and pixels: its identity in every cache key."""
    h = hashlib.sha256()
    h.update(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def stable_json(value: Any) -> str:
    """Canonical JSON used for hashing rate points and options."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
