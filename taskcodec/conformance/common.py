"""What every contract shares: the failure, a check's result, running checks, the test image."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


class ContractFailure(AssertionError):
    """A plugin broke its contract; the message says which rule, where, and what was expected."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


def natural_image(height: int, width: int, color: bool = True, seed: int = 0) -> np.ndarray:
    """A deterministic natural-looking image: smooth gradients, a few shapes, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    v, u = y / max(height - 1, 1), x / max(width - 1, 1)
    lum = 70 + 90 * u + 40 * np.sin(2.5 * np.pi * v) * (1 - 0.5 * u)
    lum = np.where(((u - 0.5) / 0.28) ** 2 + ((v - 0.45) / 0.36) ** 2 < 1, lum * 0.6 + 90, lum)  # "face"
    lum = np.where((np.abs(u - 0.2) < 0.08) & (np.abs(v - 0.8) < 0.1), 35, lum)  # a dark square
    lum = np.where((u - 0.78) ** 2 + (v - 0.2) ** 2 < 0.01, 230, lum)  # a bright disc
    if color:
        tint = np.array([1.0, 0.85, 0.7]) + 0.15 * np.stack([u, v, 1 - u], axis=-1)
        img = lum[..., None] * tint
    else:
        img = lum
    img = img + rng.normal(0.0, 3.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractFailure(message)


def run_checks(checks: dict[str, Callable[[Any], None]], target: Any, names: list[str] | None = None) -> list[CheckResult]:
    """Each named check (default: all) on ``target``; a check that raises anything fails with the reason."""
    results = []
    for name in names or list(checks):
        try:
            checks[name](target)
        except ContractFailure as exc:
            results.append(CheckResult(name, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a failed check is reported, not raised
            results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
        else:
            results.append(CheckResult(name, True))
    return results
