"""The dataset contract, checked on an instance (``taskcodec check dataset NAME``).

A dataset passes when: its class attributes are usable (``splits`` a non-empty tuple of names,
``description`` a str) and ``metadata()`` is JSON; it has samples, each a :class:`taskcodec.Sample` with
a unique non-empty str id, a uint8 gray (H x W) or RGB (H x W x 3) image and a JSON label; the same
index gives the same sample every time, and a fresh instance the same samples; an index past the end
raises IndexError; a dataset that needs a root refuses a missing one with a DatasetError naming it.
Only the first ``limit`` samples are read (datasets can be large, or slow to prepare).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..dataset import Dataset, Sample
from ..errors import DatasetError, TaskcodecError
from ..hashing import image_digest
from ..images import check_image
from .common import ContractFailure, require


class DatasetUnderTest:
    """A dataset instance, how to build another one like it, and how many samples to read."""

    def __init__(self, dataset: Dataset, rebuild: Callable[..., Dataset], limit: int = 64):
        self.dataset, self.rebuild, self.limit = dataset, rebuild, limit

    def indices(self) -> range:
        return range(min(len(self.dataset), self.limit))


def check_attributes(case: DatasetUnderTest) -> None:
    cls = type(case.dataset)
    require(isinstance(cls.splits, tuple) and bool(cls.splits) and all(isinstance(s, str) for s in cls.splits),
            f"splits {cls.splits!r}: expected a non-empty tuple of split names")
    require(isinstance(cls.description, str), "description: expected a str")
    try:
        json.dumps(case.dataset.metadata())
    except (TypeError, ValueError) as exc:
        raise ContractFailure(f"metadata() is not JSON: {exc}") from None


def check_samples(case: DatasetUnderTest) -> None:
    require(len(case.dataset) > 0, "the dataset has no samples")
    seen: set[str] = set()
    for i in case.indices():
        sample = case.dataset[i]
        require(isinstance(sample, Sample), f"dataset[{i}] is a {type(sample).__name__}, expected taskcodec.Sample")
        require(isinstance(sample.id, str) and bool(sample.id), f"dataset[{i}].id {sample.id!r}: expected a non-empty str")
        require(sample.id not in seen, f"dataset[{i}].id {sample.id!r} repeats an earlier sample's id")
        seen.add(sample.id)
        try:
            check_image(sample.image, f"sample {sample.id!r}")
        except TaskcodecError as exc:
            raise ContractFailure(str(exc)) from None
        try:
            json.dumps(sample.label)
        except (TypeError, ValueError):
            raise ContractFailure(f"sample {sample.id!r}: label {sample.label!r} is not a JSON value") from None


def _signature(dataset: Dataset, index: int) -> tuple[Any, ...]:
    sample = dataset[index]
    return sample.id, json.dumps(sample.label), image_digest(sample.image)


def check_stable(case: DatasetUnderTest) -> None:
    fresh = case.rebuild()
    require(len(fresh) == len(case.dataset), f"a fresh instance has {len(fresh)} samples, this one {len(case.dataset)}")
    for i in case.indices():
        first = _signature(case.dataset, i)
        require(_signature(case.dataset, i) == first, f"dataset[{i}] ({first[0]!r}) changes from one read to the next")
        require(_signature(fresh, i) == first, f"dataset[{i}] ({first[0]!r}) differs in a fresh instance")
    try:
        case.dataset[len(case.dataset)]
    except IndexError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise ContractFailure(f"dataset[len(dataset)] raised {type(exc).__name__}, expected IndexError") from exc
    else:
        raise ContractFailure("dataset[len(dataset)] returned a sample; expected IndexError")


def check_missing_root(case: DatasetUnderTest) -> None:
    if not type(case.dataset).needs_root:
        return
    missing = Path("/nonexistent/taskcodec-check-root")
    try:
        case.rebuild(root=missing)
    except DatasetError as exc:
        require(str(missing) in str(exc), f"the DatasetError for a missing root does not name it: {exc}")
        return
    except Exception as exc:  # noqa: BLE001
        raise ContractFailure(f"a missing root raised {type(exc).__name__} ({exc}), expected DatasetError") from exc
    raise ContractFailure(f"a missing root ({missing}) was accepted; expected a DatasetError naming it")


DATASET_CHECKS: dict[str, Callable[[DatasetUnderTest], None]] = {
    "attributes": check_attributes, "samples": check_samples, "stable": check_stable, "missing-root": check_missing_root,
}
