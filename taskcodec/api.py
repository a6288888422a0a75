"""The public interfaces that plugins implement: Codec, Dataset, Task, metrics.

Images are ``numpy.uint8`` arrays, ``H x W`` (grayscale) or ``H x W x 3`` (RGB).
Plugins subclass these, set the class attributes, and register the class through a
hook in :mod:`taskcodec.hookspecs`. Keep module-level imports light: import torch or
codec libraries inside methods so that ``taskcodec plugins`` stays fast.
"""
from __future__ import annotations

import abc
import functools
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from .errors import CodecError, TaskcodecError

Setting = Any  # a rate point: a number, or None for codecs without a rate parameter

# Constructor arguments the framework passes itself; a config's ``options`` may not name them.
FRAMEWORK_ARGUMENTS: dict[str, tuple[str, ...]] = {"dataset": ("root", "split", "cache_dir"), "codec": (), "task": ()}


def option_names(cls: type, kind: str) -> tuple[str, ...] | None:
    """The option names a plugin class accepts from a config, or None when it does not say.

    A class attribute ``accepted_options`` (a tuple of names) wins; plugins whose ``__init__``
    takes ``**options`` set it so that the framework can check a config's option names at
    load time. Otherwise the names are the keyword parameters of ``__init__`` (minus the
    framework's own arguments, see ``FRAMEWORK_ARGUMENTS``). An ``__init__`` with ``**kwargs``
    and no ``accepted_options``: None, the names are not checked (the plugin's own constructor
    is the only check).
    """
    declared = getattr(cls, "accepted_options", None)
    if declared is not None:
        return tuple(declared)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    framework = FRAMEWORK_ARGUMENTS.get(kind, ())
    return tuple(p.name for p in parameters if p.kind in keyword and p.name not in framework)


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


def image_digest(image: np.ndarray) -> str:
    """sha256 of an image's shape and pixels: its identity in every cache key."""
    h = hashlib.sha256()
    h.update(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def stable_json(value: Any) -> str:
    """Canonical JSON used for hashing settings and options."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------- codecs
class Codec(abc.ABC):
    """An image codec: ``encode(image, setting) -> bytes`` and ``decode(bytes) -> image``.

    The framework, never the codec, computes the rate from the returned bytes:
    ``8 * len(data) / (H * W)`` of the original image. Everything the decoder needs
    must be inside ``data``.

    Class attributes:
      name: registry key, lowercase-hyphen (``"jpeg"``).
      version: bump when the bytes the codec writes change; part of every cache key.
      rate_parameter: what a rate point means (``"quality"``), or None for a lossless codec.
      default_rate_points: rate points used when a config gives none.
      setting_range: ``(low, high)`` accepted by the default :meth:`validate_setting`.
      integer_settings: whether the default :meth:`validate_setting` demands integers.
      description: one line for ``taskcodec list codecs``.
      needs_options: True when the codec cannot work with its default options (e.g. it
        needs a folder of trained models). ``tests/test_codec_contract.py`` then skips it,
        and the plugin runs the contract itself on an instance with working options
        (see ``tests/test_learned_codec.py``). A codec may set ``default_rate_points``
        per instance when its rate points depend on its options.
    Constructor keyword arguments are the codec's options (from the config's
    ``options:``); :meth:`options` must return them so that they enter cache keys.
    A config's option names are checked at load time against the keyword parameters of
    ``__init__``; a codec whose ``__init__`` takes ``**options`` lists its names in the class
    attribute ``accepted_options`` (see :func:`option_names`).

    Subclasses' ``encode``, ``encode_with_stats`` and ``decode`` are wrapped (see
    ``__init_subclass__``): the image is checked, the setting validated, and any
    exception other than CodecError from the underlying library is re-raised as a
    CodecError naming the codec, so a plugin needs no error handling of its own.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    rate_parameter: ClassVar[str | None] = "quality"
    default_rate_points: ClassVar[tuple[Setting, ...]] = ()
    setting_range: ClassVar[tuple[float, float] | None] = None
    integer_settings: ClassVar[bool] = False
    description: ClassVar[str] = ""
    needs_options: ClassVar[bool] = False
    accepted_options: ClassVar[tuple[str, ...] | None] = None  # None: the keyword parameters of __init__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "encode" in cls.__dict__ and not getattr(cls.__dict__["encode"], "_guarded", False):
            cls.encode = _guard_encode(cls.__dict__["encode"])  # type: ignore[method-assign]
        stats = cls.__dict__.get("encode_with_stats")
        if stats is not None and not getattr(stats, "_guarded", False):
            cls.encode_with_stats = _guard_encode_with_stats(stats)  # type: ignore[method-assign]
        if "decode" in cls.__dict__ and not getattr(cls.__dict__["decode"], "_guarded", False):
            cls.decode = _guard_decode(cls.__dict__["decode"])  # type: ignore[method-assign]

    def __init__(self, **options: Any) -> None:
        if options:
            raise CodecError(f"codec {self.name!r} takes no options, got {sorted(options)}")

    def options(self) -> dict[str, Any]:
        """The options this instance was built with (JSON-serialisable)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What makes this codec's output what it is: name, version, library versions, options."""
        return {"name": self.name, "version": self.version, "options": self.options()}

    def validate_setting(self, setting: Setting) -> Setting:
        """Return the (canonical) setting if this codec accepts it, else raise CodecError naming it.

        The default accepts None when ``rate_parameter`` is None, else a finite number
        (an integer if ``integer_settings``) inside ``setting_range``.
        """
        if self.rate_parameter is None:
            if setting is not None:
                raise CodecError(f"codec {self.name!r} has no rate parameter; its only setting is null, got {setting!r}")
            return None
        expected = "an integer" if self.integer_settings else "a finite number"
        if self.setting_range is not None:
            expected += f" in {self.setting_range[0]:g}..{self.setting_range[1]:g}"
        problem = CodecError(f"codec {self.name!r}: {self.rate_parameter} must be {expected}, got {setting!r}")
        number = isinstance(setting, (int, float, np.integer, np.floating)) and not isinstance(setting, bool)
        if not number or not np.isfinite(setting):
            raise problem
        if self.integer_settings and float(setting) != int(setting):
            raise problem
        setting = int(setting) if float(setting) == int(setting) else float(setting)
        if self.setting_range is not None and not self.setting_range[0] <= setting <= self.setting_range[1]:
            raise problem
        return setting

    @abc.abstractmethod
    def encode(self, image: np.ndarray, setting: Setting) -> bytes:
        """Compress one image at one rate point into a self-contained bitstream."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Reconstruct an image of the original shape and dtype uint8 from ``encode``'s bytes."""

    def encode_with_stats(self, image: np.ndarray, setting: Setting) -> tuple[bytes, dict[str, float]]:
        """``encode``, plus numbers the codec measured while encoding this image: ``(data, stats)``.

        The framework calls this (not ``encode``) when it runs a benchmark, stores each stat as
        the image metric ``stat:<name>`` (store table ``image_metrics``) and adds to each
        result row the mean over images of every stat that all of the row's images have
        (column ``stat_<name>``). A stat named ``estimated_bits`` (the rate a codec's own
        model predicts, e.g. a learned codec's ``-log2`` likelihoods) becomes the column
        ``estimated_bpp`` instead: bits / pixels of the original image, per image, then the
        mean. Stats never replace the rate: ``bpp`` always comes from the bytes written.
        Values must be finite numbers. Default: ``(self.encode(image, setting), {})``.
        """
        return self.encode(image, setting), {}

    def payload_bytes(self, data: bytes) -> int | None:
        """Bytes of ``data`` that are not fixed headers/tables, where separable; else None."""
        return None

    @classmethod
    def train(cls, request: "CodecTrainingRequest") -> dict[str, Any]:
        """Optional: train this codec's models (``taskcodec train-codec CONFIG``).

        ``request`` carries the training data, the task model (for task-aware losses), the
        mode, the rate points and the codec's training options; write one model per rate point
        into ``request.out``, resumably (state under ``request.state_dir``). Returns facts to
        report (JSON types). Codecs that cannot be trained keep this default, which raises.
        """
        raise CodecError(f"codec {cls.name!r} has no training command (it does not implement Codec.train)")


def _call_encoder(codec: Codec, fn, image: np.ndarray, setting: Setting):
    """Check the image, validate the setting, run ``fn``; library errors become CodecError."""
    check_image(image, f"codec {codec.name!r}")
    setting = codec.validate_setting(setting)
    try:
        return fn(codec, image, setting)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(
            f"codec {codec.name!r}: encoding a {image.shape} image at {codec.rate_parameter}={setting!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _guard_encode(encode):
    @functools.wraps(encode)
    def guarded(self: Codec, image: np.ndarray, setting: Setting) -> bytes:
        return _call_encoder(self, encode, image, setting)

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _guard_encode_with_stats(encode_with_stats):
    @functools.wraps(encode_with_stats)
    def guarded(self: Codec, image: np.ndarray, setting: Setting) -> tuple[bytes, dict[str, float]]:
        return _check_stats_result(self, _call_encoder(self, encode_with_stats, image, setting))

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _check_stats_result(codec: Codec, result: Any) -> tuple[bytes, dict[str, float]]:
    where = f"codec {codec.name!r}: encode_with_stats"
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise CodecError(f"{where} must return (bytes, dict of stats), got {type(result).__name__}")
    data, stats = result
    checked: dict[str, float] = {}
    for name, value in stats.items():
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not isinstance(name, str) or not name or not number or not np.isfinite(value):
            raise CodecError(f"{where}: stat {name!r} = {value!r}; expected a non-empty name and a finite number")
        checked[name] = float(value)
    return data, checked


def _guard_decode(decode):
    @functools.wraps(decode)
    def guarded(self: Codec, data: bytes) -> np.ndarray:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"codec {self.name!r}: decode expects bytes, got {type(data).__name__}")
        if len(data) == 0:
            raise CodecError(f"codec {self.name!r}: cannot decode an empty bitstream")
        try:
            return decode(self, data)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(
                f"codec {self.name!r}: cannot decode a {len(data)}-byte stream (corrupt or not this codec's?): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


# --------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class Sample:
    """One image of a dataset, with its id (unique, stable) and label (None if unlabelled)."""

    id: str
    image: np.ndarray
    label: Any = None


class Dataset(abc.ABC):
    """A finite, ordered collection of samples from one split.

    Constructed as ``DatasetClass(root=Path|None, split=str, **options)``. ``root`` is
    already resolved against ``TASKCODEC_DATA`` by the framework. Raise DatasetError
    naming the missing/malformed file. Class attributes: ``name``, ``splits`` (the split
    names it accepts), ``needs_root``, ``wants_cache_dir`` (the runner then also passes
    ``cache_dir``, a folder in the store for derived data such as detected landmarks),
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
    classes: tuple[str, ...] = ()

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Sample: ...

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def fingerprint(self) -> str:
        """sha256 over every sample's id, label and pixels: changes whenever the data does."""
        samples = list(self)
        return samples_fingerprint(samples, [image_digest(s.image) for s in samples])

    def metadata(self) -> dict[str, Any]:
        """Facts about the data worth publishing (source, counts, exclusions)."""
        return {}


def samples_fingerprint(samples: Sequence[Sample], digests: Sequence[str]) -> str:
    """The dataset fingerprint of ``samples`` whose image digests are already known."""
    h = hashlib.sha256()
    for sample, digest in zip(samples, digests):
        h.update(stable_json([sample.id, sample.label]).encode())
        h.update(digest.encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- tasks
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


class Task(abc.ABC):
    """A downstream task model evaluated on decoded images.

    The runner calls :meth:`prepare` once (train or load weights), then
    :meth:`predict` on batches of images (originals for the reference row, decoded
    images for codec rows), and caches each image's output keyed by
    :meth:`fingerprint`. :meth:`sample_rows` turns the outputs of a whole dataset into
    per-sample rows, from which :class:`TaskMetric` plugins compute the headline numbers.

    Class attributes: ``name``; ``kind`` (``"classification"``, ``"verification"``...):
    metrics declare which kinds they accept; ``default_metrics``; ``description``.
    Outputs must be JSON-serialisable (lists, numbers, strings).

    Options: constructed as ``TaskClass(**options)`` (``task.options`` merged with a row's
    ``task_options``). Set the class attribute ``accepted_options`` to the option names the task
    takes, and a config naming any other option fails at load time (the names of ``__init__``'s
    keyword parameters are used when it has no ``**options``). Without either, options are not
    checked: this base class stores whatever it is given.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "classification"
    default_metrics: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    accepted_options: ClassVar[tuple[str, ...] | None] = None  # None: not checked (see the class doc)

    def __init__(self, **options: Any) -> None:
        self._options = options

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    @abc.abstractmethod
    def prepare(self, dataset: Dataset, context: TaskContext) -> None:
        """Get ready to predict on ``dataset`` (train, or load weights)."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Identity of the prepared model (e.g. a hash of its weights); valid after prepare."""

    @abc.abstractmethod
    def predict(self, images: Sequence[np.ndarray]) -> list[Any]:
        """One JSON-serialisable output per image."""

    @abc.abstractmethod
    def sample_rows(self, dataset: Dataset, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        """Per-sample rows (e.g. ``image, label, pred``) from outputs keyed by sample id."""

    def reference_outputs(self, dataset: Dataset, outputs: dict[str, Any]) -> None:
        """The outputs on the uncompressed images, keyed by sample id: the runner passes them before
        any :meth:`sample_rows` call when the benchmark has the reference row (also when it only
        re-renders a leaderboard, without :meth:`prepare`). Default: ignored. A task whose rows compare
        with the clean result (e.g. a verification threshold fixed on clean images) keeps them."""

    def provenance(self) -> dict[str, Any]:
        """What to publish about the model: weights hash, training config, metrics."""
        return {"fingerprint": self.fingerprint(), "options": self.options()}

    def train(self, context: TaskContext, out: Path | None = None) -> dict[str, Any]:
        """Optional: train the model ahead of a run and save it (``taskcodec train CONFIG``).

        ``context`` is the one :meth:`prepare` gets (``load_split`` builds the config's dataset
        for any split); ``out`` is where to write the result (None: the task's own choice, e.g.
        a path among its options). A long training should save its state as it goes and resume
        from it when called again after an interruption. Returns facts to report (JSON types),
        including ``"checkpoint"``: the file written. Tasks that cannot be trained ahead keep
        this default, which raises.
        """
        raise TaskcodecError(f"task {self.name!r} has no training command (it does not implement Task.train)")

    def differentiable(self, context: TaskContext) -> Any:
        """Optional: the task model as torch code, for task-aware codec training.

        Returns an object with
          ``module``: the ``torch.nn.Module`` whose parameters joint training updates;
          ``features(x)``: the feature extractor f of the papers' feature loss, for a float
            batch ``x`` (N x C x H x W, values in [0, 1], channels as the dataset's images);
          ``target_features(x)``: the same with the model as loaded, frozen (the feature loss's
            target: in joint training a target that moves with the model could collapse);
          ``loss(x_hat, x, labels)``: the task loss on reconstructions ``x_hat`` of ``x``
            (``labels``: the samples' labels, a list), a scalar tensor;
          ``accuracy(x_hat, x, labels)``: a task score in [0, 1] for reports (higher = better);
          ``save(path, metadata)``: write the (jointly trained) model as a file that this task
            loads through its option named ``checkpoint_option``.
        Tasks that cannot be differentiated keep this default, which raises.
        """
        raise TaskcodecError(f"task {self.name!r} cannot be used for task-aware codec training "
                             f"(it does not implement Task.differentiable)")


@dataclass
class CodecTrainingRequest:
    """What ``taskcodec train-codec`` hands to :meth:`Codec.train`.

    ``dataset``/``val_dataset``: the training split and an optional validation split;
    ``task``: the task plugin instance (not prepared; see :meth:`Task.differentiable`), or
    None for a plain rate-distortion training; ``mode``: ``"rd"``, ``"task"`` or ``"joint"``;
    ``rate_points``: one model per value (e.g. the lambdas); ``options``: the codec's training
    options from the config; ``out``: the folder to write the models to; ``state_dir``: a
    folder in the store for resumable training state; ``context``: device, seed, log;
    ``train_only``: the rate points to train in this run (None: all). A subset run must train
    exactly the models a whole run would (same keys, so either skips what the other did).
    """

    dataset: Dataset
    val_dataset: Dataset | None
    task: Task | None
    mode: str
    rate_points: tuple[Any, ...]
    options: dict[str, Any]
    out: Path
    state_dir: Path
    context: TaskContext
    config_source: str = ""
    train_only: tuple[Any, ...] | None = None


# --------------------------------------------------------------------------- metrics
class ImageMetric(abc.ABC):
    """A full-reference image quality metric, computed per image and averaged over images.

    ``compute`` returns None where the metric is undefined for that image (e.g.
    MS-SSIM on images too small for its five scales).
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def compute(self, original: np.ndarray, decoded: np.ndarray) -> float | None: ...


class TaskMetric(abc.ABC):
    """A metric over a task's per-sample rows; returns one or more named columns.

    Two optional methods add to a published board what a metric can make of the per-sample rows:
    :meth:`sample_scores` (per-sample scores for the BD-rates' bootstrap intervals) and
    :meth:`draw_figures` (figure files in the board folder). The framework calls them for the
    board's task metrics in config order, each implementation once even where several metrics
    share it (inherit it from one base class); ``taskcodec verify`` calls ``sample_scores`` too.
    """

    name: ClassVar[str]
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def compute(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]: ...

    def sample_scores(self, samples: Any) -> tuple[str, Any] | None:
        """Optional: one score per sample, for paired-bootstrap 95% intervals of the BD-rates.

        ``samples``: a pandas DataFrame of the board's per-sample rows that have an ``image`` column
        (``codec``, ``setting``, the task's columns from :meth:`Task.sample_rows`, and the image's
        ``bpp``). Return ``(column name, values)``, one value per row (e.g. ``("correct", pred ==
        label)``), or None where this metric gives no per-sample score for these rows. The first
        metric that returns one supplies the scores. Default: None.
        """
        return None

    def draw_figures(self, folder: Path, results: Any, samples: Any, provenance: dict[str, Any]) -> list[str]:
        """Optional: draw figures of a board into ``folder``; return one README note per file written.

        ``results``: the board's rows (a pandas DataFrame; the uncompressed reference row has codec
        ``none``); ``samples``: its per-sample rows (a DataFrame, or None when the task wrote none);
        ``provenance``: what the board records (e.g. ``provenance["dataset"]["classes"]``). The files
        go into the board's manifest: they must be byte-identical whenever the inputs are (e.g. PNGs
        saved without a timestamp). Default: draws nothing.
        """
        return []


@dataclass(frozen=True)
class RegisteredPlugin:
    """A registry entry: the class, and the plugin (entry point) that registered it."""

    kind: str
    name: str
    target: type
    plugin: str
    source: str
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
