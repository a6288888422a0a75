"""The image-metric contract, checked on an instance (``taskcodec check metric NAME``).

An image metric passes when, on gray and RGB images of odd sizes: ``compute(original, decoded)``
returns a finite-or-infinite number or None (never NaN, never another type), the same value every
time, and a value on identical images at least as good as on a distorted copy (by
``higher_is_better``). (Task metrics are checked through the boards' tests: they need a task's rows.)
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..metric import ImageMetric
from .common import natural_image, require


def _value(metric: ImageMetric, original: np.ndarray, decoded: np.ndarray, where: str) -> float | None:
    value = metric.compute(original, decoded)
    if value is None:
        return None
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    require(number and not math.isnan(float(value)), f"{where}: compute returned {value!r} ({type(value).__name__}); "
            f"expected a number (inf allowed) or None")
    return float(value)


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for shape in ((37, 53), (53, 37, 3), (64, 64, 3)):
        image = natural_image(shape[0], shape[1], color=len(shape) == 3, seed=21)
        noise = np.random.default_rng(3).integers(-12, 13, image.shape)
        distorted = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        out.append(("x".join(map(str, shape)), image, distorted))
    return out


def check_values(metric: ImageMetric) -> None:
    for name, image, distorted in _pairs():
        same = _value(metric, image, image.copy(), f"{name} identical images")
        worse = _value(metric, image, distorted, f"{name} distorted image")
        require(_value(metric, image, distorted, f"{name} again") == worse, f"{name}: compute gives another value "
                f"on the same images")
        if same is not None and worse is not None:
            better = same >= worse if metric.higher_is_better else same <= worse
            require(better, f"{name}: identical images score {same} and a distorted copy {worse}, but "
                    f"higher_is_better={metric.higher_is_better}")


IMAGE_METRIC_CHECKS: dict[str, Callable[[ImageMetric], None]] = {"values": check_values}
