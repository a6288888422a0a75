"""Random numbers for synthetic-faces that are the same bits on every CPU and numpy version (see Draws)."""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

# Shifts and masks as uint64: numpy 1.x turns uint64 (op) Python int into float64 for scalars.
SHIFT_53, SHIFT_32, SHIFT_16 = np.uint64(11), np.uint64(32), np.uint64(16)
LOW_16_OF_32, LOW_32 = np.uint64(0x0000FFFF0000FFFF), np.uint64(0xFFFFFFFF)


class Draws:
    """Random numbers made from PCG64's raw 64-bit outputs by exact integer and float steps.

    The raw outputs of PCG64 seeded by a SeedSequence are fixed by their algorithms, unlike
    numpy's Generator distributions (free to change between versions; the normal's ziggurat
    tail calls libm's log). Every conversion here is exact or one correctly rounded operation.
    """

    def __init__(self, entropy: Sequence[int]) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence(list(entropy)))

    def raw(self, n: int) -> np.ndarray:
        return np.asarray(self._bits.random_raw(n), dtype=np.uint64).reshape(n)

    def unit(self, shape: int | tuple[int, ...] = ()) -> np.ndarray:
        """Uniform on [0, 1): the top 53 bits of a raw output times 2**-53 (exact)."""
        n = int(np.prod(shape))
        return ((self.raw(n) >> SHIFT_53).astype(np.float64) * 2.0 ** -53).reshape(shape)

    def uniform(self, lo: float, hi: float, shape: int | tuple[int, ...] = ()) -> Any:
        u = lo + (hi - lo) * self.unit(shape)
        return float(u) if u.ndim == 0 else u

    def normal(self, sigma: float, shape: int | tuple[int, ...] = ()) -> Any:
        """A normal-like draw: the centred sum of 12 uniforms (Irwin-Hall, variance 1, within +-6).

        Each uniform is a 16-bit field of a raw output: draw i of n sums the fields of raw
        outputs i, n + i and 2n + i. The sum is an integer and the scaling a power of two: no
        rounding anywhere.
        """
        n = int(np.prod(shape))
        raws = self.raw(3 * n).reshape(3, n)
        # Add the 16-bit fields lane-wise: each 32-bit half of `pairs` sums 6 fields (< 2**32).
        pairs = np.zeros(n, dtype=np.uint64)
        for r in raws:
            pairs += r & LOW_16_OF_32
            pairs += (r >> SHIFT_16) & LOW_16_OF_32
        total = (pairs & LOW_32) + (pairs >> SHIFT_32)
        centred = total.astype(np.int64) - 393210  # 12 fields average 12 * 32767.5
        z = sigma * (centred.astype(np.float64) * 2.0 ** -16).reshape(shape)
        return float(z) if z.ndim == 0 else z

    def below(self, k: int, n: int) -> np.ndarray:
        """n integers in 0..k-1: the top 32 bits of a raw output scaled by k (integer maths, k < 2**31)."""
        return ((self.raw(n) >> SHIFT_32) * np.uint64(k) >> SHIFT_32).astype(np.int64)

    def shuffled(self, values: np.ndarray) -> np.ndarray:
        """A copy of ``values`` in random order (Fisher-Yates, from the last position down)."""
        out = np.array(values)
        raws = self.raw(max(len(out) - 1, 0)) >> SHIFT_32
        for step, i in enumerate(range(len(out) - 1, 0, -1)):
            j = int(raws[step]) * (i + 1) >> 32  # uniform in 0..i
            out[i], out[j] = out[j], out[i]
        return out

    def choice(self, weights: Sequence[float]) -> int:
        """An index drawn with the given (unnormalised) weights."""
        cumulative = list(itertools.accumulate(float(w) for w in weights))
        target = float(self.unit()) * cumulative[-1]
        return next((i for i, c in enumerate(cumulative) if target < c), len(cumulative) - 1)
