"""What a taskcodec image is: a numpy uint8 array, ``H x W`` (grayscale) or ``H x W x 3`` (RGB)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CodecError


def check_image(image: Any, where: str) -> np.ndarray:
    """Return ``image`` if it is a valid taskcodec image, else raise a clear error."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise CodecError(
            f"{where}: expected a numpy uint8 array, got {type(image).__name__}"
            + (f" of dtype {image.dtype}" if isinstance(image, np.ndarray) else "")
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise CodecError(f"{where}: expected shape HxW or HxWx3, got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise CodecError(f"{where}: empty image of shape {image.shape}")
    return image
