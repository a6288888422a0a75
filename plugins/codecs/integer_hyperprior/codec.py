"""The ``integer-hyperprior`` codec: a variable-rate scale hyperprior that decodes to the same pixels everywhere.

One checkpoint serves every rate point (the lambdas it was trained for); its transforms and the
choice of each latent's entropy table run in exact integer arithmetic
(:mod:`taskcodec_plugins.codecs.integer_hyperprior.integer_network`), so the bytes an image codes to and
the pixels a stream decodes to do not depend on the CPU, the thread count, the batch size or the
device::

    codecs:
      - name: integer-hyperprior
        label: integer-rd
        options: {models: leaderboard/models/ferplus/integer-rd}
        rate_points: [0.001, 0.006, 0.04]   # default: every lambda of the checkpoints in the folder

Options:
  models            folder of checkpoints (``*.pt``, format in :mod:`.models`); each holds one model and
                    its lambdas; two checkpoints with a lambda in common are an error. The weights'
                    digests, not the path, are part of the cache key.
  untrained_seed    instead of ``models``: a deterministic UNTRAINED stand-in (seeded initialisation,
                    exported to integers in this process) for tests; never for leaderboards.
  untrained_lambdas the stand-in's rate points (default 0.001, 0.01, 0.1).
  N, M, Nz, stages, in_channels
                    the architecture (stand-ins default to 32, 48, 16, 3 and 1); with ``models`` they
                    are read from the checkpoints and, when given, must match them.
  device            "cpu" (default) or "cuda": where the integer network runs. The results are the
                    same on both, so the device is not part of the cache key.

Coding: the image is padded at the bottom and right to a multiple of the model's downsampling
factor (replicate; the padded area is coded and its bits count), analysed to integer latents,
``z`` coded with its per-channel tables and ``y`` with the table each latent's integer scale
selects, in one rANS string after an 8-byte header (:mod:`.stream`). :meth:`encode_batch_with_stats` and
:meth:`decode_batch` code images of one size together; their bytes and pixels equal one-at-a-time
coding (the arithmetic is exact), which the tests check. ``encode_with_stats`` adds
``estimated_bits``: -log2 of the coded tables' probabilities of the symbols.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

import taskcodec
from taskcodec import CodecError
from taskcodec_plugins.codecs.trained import model_folder
from taskcodec_plugins.codecs.trained.bitstream import MalformedStream
from taskcodec_plugins.codecs.integer_hyperprior import models, stream

FORMAT_REVISION = "1"  # bump when the bytes change for the same checkpoint
UNTRAINED_LAMBDAS = (0.001, 0.01, 0.1)
UNTRAINED_DEFAULTS = {"N": 32, "M": 48, "Nz": 16, "stages": 3, "in_channels": 1}
CHUNK_PIXELS = 48 * 48 * 16  # images per network call: about this many pixels (bounds the unfold buffers)


def _version() -> str:
    return "; ".join([FORMAT_REVISION, f"stream v{stream.FORMAT_VERSION}", "exact integer transforms",
                      taskcodec.LazyVersion.installed("compressai") + " rANS"])


OPTION_SPECS = model_folder.option_specs("untrained_lambdas", model_folder.optional_lambdas, {
    key: (None, taskcodec.Accept.integer(1, 4096, optional=True)) for key in ("N", "M", "Nz", "stages")})


class IntegerHyperpriorCodec(model_folder.ModelFolderCodec):
    name = "integer-hyperprior"
    version = taskcodec.LazyVersion(_version)  # type: ignore[assignment]
    rate_parameter = "lambda"
    default_rate_points = ()  # per instance: the lambdas of its checkpoints
    needs_options = True
    description = ("variable-rate scale hyperprior coded in exact integer arithmetic: identical bytes and pixels "
                   "on every machine; options: models=FOLDER (or untrained_seed=N for tests)")

    models_module = models
    arch_options = models.ARCH_KEYS
    accepted_options = tuple(OPTION_SPECS)

    def __init__(self, **options: Any) -> None:
        super().__init__(model_folder.checked_options(self, options, OPTION_SPECS, "untrained_lambdas"))
        if self._entries is not None:
            lambdas = [e.lmbda for e in self._entries]
        else:
            lambdas = list(self._options["untrained_lambdas"] or UNTRAINED_LAMBDAS)
        self.default_rate_points = tuple(sorted(lambdas))  # type: ignore[misc]

    @classmethod
    def train(cls, request: taskcodec.CodecTrainingRequest) -> dict[str, Any]:
        """``taskcodec train-codec``: one model for all lambdas (:mod:`.training`)."""
        from taskcodec_plugins.codecs.integer_hyperprior.training import train_integer_hyperprior

        return train_integer_hyperprior(request)

    def identity(self) -> dict[str, Any]:
        """As every trained-models codec's, without the device: the integer arithmetic gives the same bytes
        and pixels on the CPU and the GPU, so their streams share one cache."""
        identity = super().identity()
        identity["options"] = {k: v for k, v in identity["options"].items() if k != "device"}
        return identity

    # models ------------------------------------------------------------------------------------------
    def _entries_from(self, document: dict[str, Any], path: Path) -> list[models.RatePointEntry]:
        arch = tuple(document[k] for k in models.ARCH_KEYS)
        return [models.RatePointEntry(lmbda, i, document["digest"], arch, document["mode"], document["seed"],
                                      str(path.resolve())) for i, lmbda in enumerate(document["lambdas"])]

    def _stand_in_arch(self) -> dict[str, int]:
        return {k: self._options[k] if self._options[k] is not None else UNTRAINED_DEFAULTS[k] for k in models.ARCH_KEYS}

    def _stand_in(self) -> tuple[dict[str, Any], str]:
        """The untrained stand-in as a checkpoint-like document, and its digest."""
        import torch

        from taskcodec_plugins.codecs.integer_hyperprior import integer_network

        arch = self._stand_in_arch()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._options["untrained_seed"])
            model = models.build_model(**arch, rate_points=len(self.default_rate_points))
        document = {**arch, "lambdas": list(self.default_rate_points), "state_dict": models.training_state(model),
                    "exact": integer_network.export(model.eval())}
        return document, models.weights_digest(arch, document["lambdas"], {"state_dict": document["state_dict"],
                                                                           "exact": document["exact"]})

    def entries(self) -> list[models.RatePointEntry]:
        if self._entries is None:
            document, digest = self._stand_in()
            arch = tuple(document[k] for k in models.ARCH_KEYS)
            entries = [models.RatePointEntry(lmbda, i, digest, arch, "untrained", self._options["untrained_seed"])
                       for i, lmbda in enumerate(document["lambdas"])]
            model_folder.cache_model((digest, self._options["device"]), self._ready_model(document))
            self._entries = self._checked(entries, "untrained stand-ins")
        return self._entries

    def _rebuild_stand_in(self, entry: models.RatePointEntry) -> tuple[Any, str]:
        return self._stand_in()

    def _ready_model(self, document: dict[str, Any]) -> Any:
        from taskcodec_plugins.codecs.integer_hyperprior.integer_network import ExactModel

        return ExactModel(document["exact"], document["stages"], document["in_channels"], self._options["device"])

    _ready_stand_in = _ready_model

    def _describe_entry(self, entry: Any) -> str:
        return f"{entry.path or entry.digest[:16]} (rate point {entry.index})"

    # coding ------------------------------------------------------------------------------------------
    def _padded(self, images: Sequence[np.ndarray], entry: models.RatePointEntry, exact: Any) -> np.ndarray:
        """The images as one B x C x H' x W' uint8 array, padded (replicate) to the downsampling factor."""
        first = images[0]
        if any(im.shape != first.shape for im in images):
            raise CodecError(f"codec {self.name!r}: a batch must hold images of one shape, got "
                             f"{sorted({im.shape for im in images})}")
        if first.ndim == 3 and exact.in_channels == 1:
            raise CodecError(f"codec {self.name!r}: the model for lambda {entry.lmbda:g} takes 1-channel (gray) "
                             f"images, got an RGB image {first.shape}")
        batch = np.stack(images)
        batch = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
        if batch.shape[1] != exact.in_channels:  # a gray image on a 3-channel model: its RGB replication
            batch = np.repeat(batch, exact.in_channels, axis=1)
        height, width = first.shape[:2]
        m = exact.downsampling
        return np.pad(batch, ((0, 0), (0, 0), (0, -height % m), (0, -width % m)), mode="edge")

    def encode_batch_with_stats(self, images: Sequence[np.ndarray], rate_point: Any) -> list[tuple[bytes, dict[str, float]]]:
        return self._code_batch(images, rate_point, estimate=True)

    def _code_batch(self, images: Sequence[np.ndarray], rate_point: Any,
                    estimate: bool) -> list[tuple[bytes, dict[str, float]]]:
        """Streams (and, with ``estimate``, their estimated bits) of images of one shape, in order."""
        import torch

        lmbda = self.validate_rate_point(rate_point)
        entry = self._entry(lmbda)
        exact = self._model(entry)
        if not images:
            return []
        height, width = images[0].shape[:2]
        gray_on_color = images[0].ndim == 2 and exact.in_channels == 3
        padded = self._padded(images, entry, exact)
        chunk = max(1, CHUNK_PIXELS // (padded.shape[2] * padded.shape[3]))
        out = []
        for start in range(0, len(padded), chunk):
            latents = exact.analyse(torch.from_numpy(np.ascontiguousarray(padded[start : start + chunk])), entry.index)
            indexes = exact.scale_indexes(latents.z)
            for z, y, idx in zip(latents.z, latents.y, indexes):
                string = exact.code(z, y, idx)
                data = stream.pack(entry.model_id, entry.full_id, gray_on_color, height, width, string)
                out.append((data, {"estimated_bits": exact.estimated_bits(z, y, idx)} if estimate else {}))
        return out

    def _encode(self, image: np.ndarray, rate_point: Any, estimate: bool) -> tuple[bytes, dict[str, float]]:
        return self._code_batch([image], rate_point, estimate)[0]

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_batch([data])[0]

    def decode_batch(self, streams: Sequence[bytes]) -> list[np.ndarray]:
        """The images of ``streams``, in order (streams of one model and size are decoded together)."""
        import torch

        parsed = []
        for data in streams:
            data = bytes(data)
            try:
                header = stream.parse(data)
                entry = self._entry_for_stream(header.stream_id)
                stream.check_crc(data, header, entry.full_id)
            except MalformedStream as exc:
                raise CodecError(f"codec {self.name!r}: {exc}") from None
            if header.gray_on_color and entry.arch[models.ARCH_KEYS.index("in_channels")] != 3:
                raise CodecError(f"codec {self.name!r}: inconsistent stream: a gray-on-color flag from a 1-channel model")
            parsed.append((data, header, entry))
        images: list[np.ndarray | None] = [None] * len(parsed)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (_, header, entry) in enumerate(parsed):
            groups.setdefault((entry.digest, entry.index, header.height, header.width, header.gray_on_color),
                              []).append(i)
        for (_, _, height, width, gray_on_color), members in groups.items():
            entry = parsed[members[0]][2]
            exact = self._model(entry)
            m = exact.downsampling
            padded_h, padded_w = -(-height // m) * m, -(-width // m) * m
            chunk = max(1, CHUNK_PIXELS // (padded_h * padded_w))
            for start in range(0, len(members), chunk):
                part = members[start : start + chunk]
                strings = [parsed[i][0][parsed[i][1].payload_start :] for i in part]
                pixels = exact.decode(strings, entry.index, padded_h, padded_w)
                if gray_on_color:  # the channels' mean, rounded half up (integers: exact)
                    pixels = (pixels.to(torch.int32).sum(1, keepdim=True) * 2 + 3) // 6
                for i, image in zip(part, pixels.to(torch.uint8)):
                    image = image[:, :height, :width].cpu().numpy()
                    images[i] = np.ascontiguousarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
        return images  # type: ignore[return-value]

    def payload_bytes(self, data: bytes) -> int | None:
        try:
            return len(data) - stream.parse(bytes(data)).payload_start
        except MalformedStream as exc:
            raise CodecError(f"codec {self.name!r}: {exc}") from None
