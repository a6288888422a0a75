"""The task interface: a downstream model evaluated on decoded images, and what the runner gives it."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from .dataset import Dataset
from .differentiable_task import DifferentiableTask
from .errors import TaskcodecError


@dataclass
class TaskContext:
    """What the runner gives a task before it evaluates anything.

    ``load_split(name)`` builds the benchmark's dataset for another split (e.g. to
    train on); ``cache_dir`` is a folder in the store for trained weights and the like;
    ``device`` is ``"cpu"`` or ``"cuda"``; ``seed`` is the benchmark's seed.
    """

    load_split: Any
    cache_dir: Path
    device: str = "cpu"
    seed: int = 0
    progress: bool = True
    log: Any = print


@dataclass
class TaskTrainingRequest:
    """What ``taskcodec train CONFIG`` hands to :meth:`Task.train` (as :class:`CodecTrainingRequest`
    is what ``train-codec`` hands to ``Codec.train``): ``context``, the one :meth:`Task.prepare`
    gets (``load_split`` builds the config's dataset for any split); ``out``, where to write the
    result (None: the task's own choice, e.g. a path among its options)."""

    context: TaskContext
    out: Path | None = None


class Task(abc.ABC):
    """A downstream task model evaluated on decoded images.

    The runner calls :meth:`prepare` once (train or load weights), then
    :meth:`predict` on batches of images (originals for the reference row, decoded
    images for codec rows), and caches each image's output keyed by
    :meth:`fingerprint`. :meth:`sample_rows` turns the outputs of a whole dataset into
    per-sample rows, from which :class:`TaskMetric` plugins compute the headline numbers.

    Class attributes: ``name``; ``task_type`` (``"classification"``, ``"verification"``...):
    metrics declare which task types they accept; ``default_metrics``; ``description``.
    Outputs must be JSON-serialisable (lists, numbers, strings).

    Options: constructed as ``TaskClass(**options)`` (``task.options`` merged with a row's
    ``task_options``). Set the class attribute ``accepted_options`` to the option names the task
    takes, and a config naming any other option fails at load time (the names of ``__init__``'s
    keyword parameters are used when it has no ``**options``). Without either, options are not
    checked: this base class stores whatever it is given.
    """

    name: ClassVar[str]
    task_type: ClassVar[str] = "classification"
    default_metrics: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    accepted_options: ClassVar[tuple[str, ...] | None] = None  # None: not checked (see the class doc)

    def __init__(self, **options: Any) -> None:
        self._options = options

    def options(self) -> dict[str, Any]:
        """The options this instance was built with (JSON-serialisable; published with the results)."""
        return dict(self._options)

    @abc.abstractmethod
    def prepare(self, dataset: Dataset, context: TaskContext) -> None:
        """Get ready to predict on ``dataset`` (train, or load weights)."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Identity of the prepared model (e.g. a hash of its weights); valid after prepare.

        A rerun that finds every output in the store calls only :meth:`prepare`, this and
        :meth:`provenance`: a task that can answer them without loading its network (e.g. from facts
        about its weights file remembered in ``context.cache_dir``, loading it on the first
        :meth:`predict`) keeps such reruns free of torch's import and the weights' load.
        """

    @abc.abstractmethod
    def predict(self, images: Sequence[np.ndarray]) -> list[Any]:
        """One JSON-serialisable output per image."""

    @abc.abstractmethod
    def sample_rows(self, dataset: Dataset, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        """Per-sample rows (e.g. ``image, label, pred``) from outputs keyed by sample id. Read the labels with
        ``dataset.ids_and_labels()``: iterating the dataset reads every image again where it reads on demand."""

    def reference_outputs(self, dataset: Dataset, outputs: dict[str, Any]) -> None:
        """The outputs on the uncompressed images, keyed by sample id: the runner passes them before
        any :meth:`sample_rows` call when the benchmark has the reference row (also when it only
        re-renders a leaderboard, without :meth:`prepare`). Default: ignored. A task whose rows compare
        with the clean result (e.g. a verification threshold fixed on clean images) keeps them."""

    def provenance(self) -> dict[str, Any]:
        """What to publish about the model: weights hash, training config, metrics.

        A model that can run at more than one precision says which one ran as ``"inference_precision"``
        (e.g. ``"bf16"``, ``"fp32"``): a merge refused over another fingerprint then names it.
        """
        return {"fingerprint": self.fingerprint(), "options": self.options()}

    def train(self, request: TaskTrainingRequest) -> dict[str, Any]:
        """Optional: train the model ahead of a run and save it (``taskcodec train CONFIG``).

        ``request``: see :class:`TaskTrainingRequest`. A long training should save its state as it goes and resume
        from it when called again after an interruption. Returns facts to report (JSON types),
        including ``"checkpoint"``: the file written. Tasks that cannot be trained ahead keep
        this default, which raises.
        """
        raise TaskcodecError(f"task {self.name!r} has no training command (it does not implement Task.train)")

    def differentiable(self, context: TaskContext) -> DifferentiableTask:
        """Optional: the task model as torch code, for task-aware codec training.

        Returns a :class:`taskcodec.DifferentiableTask` (``module``, ``features``,
        ``target_features``, ``loss``, ``accuracy``, ``save``) built for ``context.device``.
        Tasks that cannot be differentiated keep this default, which raises.
        """
        raise TaskcodecError(f"task {self.name!r} cannot be used for task-aware codec training "
                             f"(it does not implement Task.differentiable)")
