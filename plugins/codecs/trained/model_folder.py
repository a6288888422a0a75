"""What the codecs of trained models (``learned``, ``compnet-png``) share.

Each such codec has one trained model per rate point, read from a folder of checkpoints
(``models=FOLDER``) or built as deterministic untrained stand-ins (``untrained_seed=N``, for tests
only). This module holds the parts that do not depend on the model family: option checking
against a spec table, the folder scan and its consistency checks, the identity (the cache key:
the weights' digests, never the folder path), the rate point check, and a per-process model cache
(codecs reach workers pickled, without weights; each worker loads a model once and re-verifies
its digest). A subclass supplies its models module and the family-specific hooks below.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

import taskcodec
from taskcodec import Codec, CodecError
from taskcodec_plugins.codecs.trained.bitstream import MalformedStream

MODEL_CACHE_SIZE = 16
_MODELS: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (digest, device) -> ready model, per process

OptionSpecs = dict[str, tuple[Any, Callable[[Any], Any]]]  # name -> (default, check), see taskcodec.read_options


# ---------------------------------------------------------------------------------------------- options
def optional_path(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValueError("a folder path or null")


def optional_lambdas(value: Any) -> list[float] | None:
    """The stand-ins' lambdas: null, or a non-empty list of distinct positive numbers (returned ascending)."""
    if value is None:
        return None
    numbers_ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value)
    if not numbers_ok or len({float(v) for v in value}) != len(value):
        raise ValueError("a non-empty list of distinct positive numbers or null")
    return sorted(float(v) for v in value)


def option_specs(stand_ins: str, check_stand_ins: Callable[[Any], Any], architecture: OptionSpecs,
                 coding: OptionSpecs | None = None) -> OptionSpecs:
    """A trained-models codec's option table, in this order (the order the options are listed in): ``models``,
    ``untrained_seed``, the stand-ins' rate points (option ``stand_ins``), the ``architecture`` options and
    ``in_channels`` (with ``models``: each must match every checkpoint), the ``coding`` options, ``device``."""
    return {
        "models": (None, optional_path),
        "untrained_seed": (None, taskcodec.Accept.integer(0, 2**63 - 1, optional=True)),
        stand_ins: (None, check_stand_ins),
        **architecture,
        "in_channels": (None, taskcodec.Accept.one_of(1, 3, optional=True)),
        **(coding or {}),
        "device": ("cpu", taskcodec.Accept.one_of("cpu", "cuda")),
    }


def checked_options(plugin: Codec, options: dict[str, Any], specs: OptionSpecs,
                    stand_in_points: str) -> dict[str, Any]:
    """A trained-models codec's options validated against ``specs``: exactly one of ``models``
    and ``untrained_seed``; ``stand_in_points`` (the stand-ins' rate points) only with the latter."""
    checked = taskcodec.read_options(plugin, options, specs)
    codec = plugin.name
    if (checked["models"] is None) == (checked["untrained_seed"] is None):
        raise CodecError(f"codec {codec!r} needs exactly one of the options models (a folder of trained checkpoints) "
                         f"and untrained_seed (untrained stand-ins, for tests only)")
    if checked[stand_in_points] is not None and checked["untrained_seed"] is None:
        raise CodecError(f"codec {codec!r}: option {stand_in_points} goes with untrained_seed, not models")
    return checked


def cache_model(key: tuple[str, str], model: Any) -> None:
    """Keep a ready model for this process, dropping the least recently used beyond the cache size."""
    _MODELS[key] = model
    while len(_MODELS) > MODEL_CACHE_SIZE:
        _MODELS.popitem(last=False)


# ---------------------------------------------------------------------------------------------- codec
class ModelFolderCodec(Codec):
    """Base of the codecs with one trained model per rate point.

    Subclasses set ``models_module`` (``load_checkpoint``, ``CheckpointError``, ``CHECKPOINT_SUFFIX``,
    ``model_from_checkpoint``), ``arch_options`` (options that must match every checkpoint) and
    ``rate_parameter``; they implement :meth:`entries` for stand-ins (via :meth:`_stand_ins_ready`),
    :meth:`_entry_from`, :meth:`_rebuild_stand_in` and :meth:`_stream_layout`. Entries have
    ``rate_point``, ``digest``, ``model_id``, ``mode``, ``path`` and ``describe()``.
    """

    models_module: Any = None
    arch_options: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._entries: list[Any] | None = None
        if options["models"] is not None:
            self._entries = self._scan_folder(Path(options["models"]).expanduser())

    # hooks ---------------------------------------------------------------------------
    def _entry_from(self, document: dict[str, Any], path: Path) -> Any:
        """The entry of a loaded checkpoint (raise CodecError for one this codec cannot use)."""
        raise NotImplementedError

    def _entries_from(self, document: dict[str, Any], path: Path) -> list[Any]:
        """The rate points a loaded checkpoint holds: one (:meth:`_entry_from`) unless a variable-rate codec
        overrides this."""
        return [self._entry_from(document, path)]

    def _ready_model(self, document: dict[str, Any]) -> Any:
        """The model a codec codes with, from its loaded checkpoint."""
        return self.models_module.model_from_checkpoint(document, self._options["device"])

    def _ready_stand_in(self, model: Any) -> Any:
        """The model a codec codes with, from a rebuilt stand-in."""
        return self.models_module.prepare_for_coding(model, self._options["device"])

    def _rebuild_stand_in(self, entry: Any) -> tuple[Any, str]:
        """An untrained stand-in rebuilt from its entry: (model, its weights digest)."""
        raise NotImplementedError

    def _stream_layout(self, data: bytes) -> Any:
        """The stream's layout (``.payload``: bytes after the header); raises MalformedStream."""
        raise NotImplementedError

    def _describe_entry(self, entry: Any) -> str:
        return str(entry.path or entry.digest)

    # options and identity ------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    @property
    def untrained(self) -> bool:
        """True for stand-ins, and for a folder holding any checkpoint whose mode is "untrained"."""
        return self._options["untrained_seed"] is not None or any(e.mode == "untrained" for e in self._entries or ())

    def identity(self) -> dict[str, Any]:
        options = {k: v for k, v in self._options.items() if k != "models"}  # the digests identify the weights
        return {"name": self.name, "version": self.version, "options": options, "untrained": self.untrained,
                "models": [e.describe() for e in self.entries()]}

    def validate_rate_point(self, rate_point: Any) -> float:
        available = ", ".join(f"{v:g}" for v in self.default_rate_points)
        source = "untrained stand-ins" if self.untrained else f"checkpoints in {self._options['models']}"
        number = isinstance(rate_point, (int, float, np.integer, np.floating)) and not isinstance(rate_point, bool)
        if number and math.isfinite(rate_point):
            for value in self.default_rate_points:
                if math.isclose(float(rate_point), value, rel_tol=1e-6):
                    return value
        raise CodecError(f"codec {self.name!r}: {self.rate_parameter} must be one of the available rate points "
                         f"[{available}] ({source}), got {rate_point!r}")

    # models --------------------------------------------------------------------------
    def _scan_folder(self, folder: Path) -> list[Any]:
        models = self.models_module
        if not folder.is_dir():
            raise CodecError(f"codec {self.name!r}: models={str(folder)!r} is not a folder")
        files = sorted(folder.glob("*" + models.CHECKPOINT_SUFFIX))
        if not files:
            raise CodecError(f"codec {self.name!r}: no checkpoint (*{models.CHECKPOINT_SUFFIX}) in {folder}")
        entries = []
        for path in files:
            try:
                document = models.load_checkpoint(path)
            except models.CheckpointError as exc:
                raise CodecError(f"codec {self.name!r}: {exc}") from None
            for key in self.arch_options:
                if self._options[key] is not None and self._options[key] != document[key]:
                    raise CodecError(f"codec {self.name!r}: {path} has {key}={document[key]!r}, the options say "
                                     f"{key}={self._options[key]!r}")
            entries += self._entries_from(document, path)  # the model itself is built on first use (_model)
        return self._checked(entries, str(folder))

    def _checked(self, entries: list[Any], where: str) -> list[Any]:
        """Sorted by rate point; no two models for one rate point, no two models behind one stream id."""
        entries = sorted(entries, key=lambda e: e.rate_point)
        for a, b in zip(entries, entries[1:]):
            if math.isclose(a.rate_point, b.rate_point, rel_tol=1e-6):
                raise CodecError(f"codec {self.name!r}: two models for {self.rate_parameter.replace('_', ' ')} "
                                 f"{a.rate_point:g} in {where}: {self._describe_entry(a)} and {self._describe_entry(b)}")
        ids: dict[bytes, str] = {}
        for e in entries:
            if ids.setdefault(e.model_id, e.digest) != e.digest:
                raise CodecError(f"codec {self.name!r}: two different models share the id {e.model_id.hex()}")
        return entries

    def entries(self) -> list[Any]:
        """The rate points' models, lowest rate point first."""
        raise NotImplementedError

    def _entry(self, rate_point: float) -> Any:
        return next(e for e in self.entries() if e.rate_point == rate_point)  # rate_point: validated, canonical

    def _entry_for_stream(self, model_id: bytes) -> Any:
        entry = next((e for e in self.entries() if e.model_id == model_id), None)
        if entry is None:
            raise CodecError(
                f"codec {self.name!r}: the stream was written by model {model_id.hex()}, which is not one of "
                f"this codec's models ({', '.join(e.model_id.hex() for e in self.entries())})")
        return entry

    def _model(self, entry: Any) -> Any:
        """The ready model of ``entry`` from this process's cache, (re)loading and re-verifying it if needed."""
        models, device = self.models_module, self._options["device"]
        key = (entry.digest, device)
        if key not in _MODELS:
            if entry.path is not None:
                try:
                    document = models.load_checkpoint(entry.path)
                except models.CheckpointError as exc:
                    raise CodecError(f"codec {self.name!r}: {exc}") from None
                if document["digest"] != entry.digest:
                    raise CodecError(f"codec {self.name!r}: {entry.path} changed since the codec was configured "
                                     f"(weights digest {document['digest'][:16]}, expected {entry.digest[:16]})")
                model = self._ready_model(document)
            else:
                model, digest = self._rebuild_stand_in(entry)
                if digest != entry.digest:
                    raise CodecError(f"codec {self.name!r}: the untrained stand-in for {self.rate_parameter} "
                                     f"{entry.rate_point:g} is not reproducible in this process (another torch?)")
                model = self._ready_stand_in(model)
            cache_model(key, model)
        _MODELS.move_to_end(key)
        return _MODELS[key]

    # coding --------------------------------------------------------------------------
    def encode(self, image: np.ndarray, rate_point: Any) -> bytes:
        return self._encode(image, rate_point, estimate=False)[0]

    def encode_with_stats(self, image: np.ndarray, rate_point: Any) -> tuple[bytes, dict[str, float]]:
        return self._encode(image, rate_point, estimate=True)

    def _encode(self, image: np.ndarray, rate_point: float, estimate: bool) -> tuple[bytes, dict[str, float]]:
        raise NotImplementedError

    def payload_bytes(self, data: bytes) -> int | None:
        try:
            return self._stream_layout(data).payload
        except MalformedStream as exc:
            raise CodecError(f"codec {self.name!r}: {exc}") from None
