"""The dataset interface: a finite, ordered collection of samples (id, image, label) from one split."""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from .hashing import image_digest, stable_json


@dataclass(frozen=True)
class Sample:
    """One image of a dataset, with its id (unique, stable) and label (None if unlabelled)."""

    id: str
    image: np.ndarray
    label: Any = None


@dataclass(frozen=True, slots=True)  # slots: a run keeps one per sample
class SampleInfo:
    """What a run keeps of a sample once its image is digested: id, label and the image's shape."""

    id: str
    label: Any
    shape: tuple[int, ...]


class Dataset(abc.ABC):
    """A finite, ordered collection of samples from one split.

    Constructed as ``DatasetClass(root=Path|None, split=str, **options)``. ``root`` is
    already resolved against ``TASKCODEC_DATA`` by the framework. Raise DatasetError
    naming the missing/malformed file. Class attributes: ``name``, ``splits`` (the split
    names it accepts), ``needs_root``, ``wants_cache_dir`` (the runner then also passes
    ``cache_dir``, a folder in the store for derived data such as detected landmarks), ``parallel_reads``
    (``__getitem__`` is thread-safe: the runner may read samples from several threads),
    ``classes`` (label names for classification, may be set per instance), ``description``.
    The config's ``dataset.options`` are checked at load time against the keyword parameters of
    ``__init__`` other than ``root``, ``split`` and ``cache_dir`` (the dataset is not built then),
    or against the class attribute ``accepted_options`` where ``__init__`` takes ``**options``.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("test",)
    needs_root: ClassVar[bool] = True
    wants_cache_dir: ClassVar[bool] = False  # True: constructed with cache_dir=<a folder in the store>
    description: ClassVar[str] = ""
    accepted_options: ClassVar[tuple[str, ...] | None] = None  # None: the keyword parameters of __init__
    # True: ``__getitem__`` may run in several threads at once (the runner then reads the images, e.g.
    # decodes files, in parallel while its workers start)
    parallel_reads: ClassVar[bool] = False
    classes: tuple[str, ...] = ()

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of samples."""

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Sample:
        """The sample at ``index`` (0 <= index < len), the same one every time."""

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def ids_and_labels(self) -> list[tuple[str, Any]]:
        """``(id, label)`` of every sample, in order. Tasks read labels through this (e.g. in
        ``sample_rows``): a dataset that reads its images on demand overrides it to skip the pixels; the
        default reads every sample."""
        return [(s.id, s.label) for s in self]

    def fingerprint(self) -> str:
        """sha256 over every sample's id, label and pixels: changes whenever the data does."""
        samples = list(self)
        return samples_fingerprint(samples, [image_digest(s.image) for s in samples])

    def metadata(self) -> dict[str, Any]:
        """Facts about the data worth publishing (source, counts, exclusions)."""
        return {}

    @classmethod
    def split_relation(cls, train_split: str, eval_split: str) -> str | None:
        """How a model trained on ``train_split`` relates to ``eval_split`` (shared images, people, sources),
        in one sentence for its model card; None where the plugin does not know (the card then says so)."""
        return None


def samples_fingerprint(samples: Sequence[Sample], digests: Sequence[str]) -> str:
    """The dataset fingerprint of ``samples`` whose image digests are already known."""
    h = hashlib.sha256()
    for sample, digest in zip(samples, digests):
        h.update(stable_json([sample.id, sample.label]).encode())
        h.update(digest.encode())
    return h.hexdigest()
