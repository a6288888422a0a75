"""Helpers shared by the throughput benchmarks: a smooth synthetic test image, a median timer, fresh stores."""
from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def natural_image(height: int, width: int, seed: int) -> np.ndarray:
    """An RGB uint8 image with smooth gradients, an ellipse and mild noise: compresses like a photo
    (unlike noise or flat colour), so codec speeds are representative."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width] / np.array([height - 1, width - 1])[:, None, None]
    lum = 70 + 90 * u + 40 * np.sin(2.5 * np.pi * v + seed) * (1 - 0.5 * u)
    lum = np.where(((u - 0.5) / 0.28) ** 2 + ((v - 0.45) / 0.36) ** 2 < 1, lum * 0.6 + 90, lum)
    img = lum[..., None] * (np.array([1.0, 0.85, 0.7]) + 0.15 * np.stack([u, v, 1 - u], -1))
    return np.clip(np.rint(img + rng.normal(0.0, 3.0, img.shape)), 0, 255).astype(np.uint8)


def median_seconds(function: Callable[[], Any], rounds: int) -> float:
    """Median wall time of ``rounds`` calls after one warm-up call (the reference side of a comparison)."""
    function()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class FreshStores:
    """``pedantic(setup=...)`` for runs into an empty store each round: the previous round's store is
    deleted in the setup, outside the timed call (deleting thousands of stream files is the benchmark's
    housekeeping, not the runner's work; the bare loops it is compared with write nothing)."""

    def __init__(self, root: Path) -> None:
        self.root, self.rounds = Path(root), 0

    def setup(self, *args: Any, before: Callable[[], Any] | None = None
              ) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
        """A setup giving the timed function ``(*args, empty store folder)``; ``before`` (e.g. a
        :class:`PairedRounds`) runs first in each setup, untimed by the benchmark."""
        def make() -> tuple[tuple[Any, ...], dict[str, Any]]:
            if before is not None:
                before()
            self.clear()
            store = self.root / f"store-{self.rounds}"
            self.rounds += 1
            return (*args, store), {}

        return make

    def clear(self) -> None:
        for old in self.root.glob("store-*"):
            shutil.rmtree(old)


class PairedRounds:
    """The bare side of a paired comparison, run right before each round of the other side (as a
    ``FreshStores.setup(before=...)``) so that both see the same minutes of a shared machine: on these
    VMs the speed drifts by 10-30% between minutes, more than the differences being measured."""

    def __init__(self, bare: Callable[[], Any]) -> None:
        self.bare, self.seconds = bare, []

    def __call__(self) -> None:
        start = time.perf_counter()
        self.bare()
        self.seconds.append(time.perf_counter() - start)

    def throughput_ratios(self, other_seconds: list[float]) -> list[float]:
        """bare / other time of each pair; the first bare round paired the warm-up round and is dropped."""
        bare = self.seconds[len(self.seconds) - len(other_seconds):]
        return [b / o for b, o in zip(bare, other_seconds)]
