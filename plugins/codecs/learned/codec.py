"""The ``learned`` codec: CompressAI models with real, self-describing bitstreams.

Each rate point is one trained model, named by the ``lambda`` it was trained for. The option
``models`` names a folder of checkpoints (``*.pt``, format in
:mod:`taskcodec_plugins.codecs.learned.models`); a rate_point selects the checkpoint with that lambda::

    codecs:
      - name: learned
        label: learned-mse
        options: {models: models/ferplus/learned-mse}
        rate_points: [0.0018, 0.0035, 0.0067, 0.013]   # default: every lambda in the folder

Options:
  models            folder of checkpoints (relative paths: against the current directory). Its
                    path is not part of the cache key; the weights' digests are, so moving the
                    folder keeps the cache and changing any checkpoint in it (or adding one)
                    recomputes the row.
  untrained_seed    instead of ``models``: deterministic UNTRAINED stand-ins (seeded CompressAI
                    initialisation; the rate grows with lambda, the images mean nothing) for
                    tests and pipeline checks. Never for leaderboards: the identity says
                    ``"untrained": true``.
  untrained_lambdas the stand-ins' rate points (default 0.0018, 0.0035, 0.0067, 0.013).
  arch, N, M, in_channels
                    the architecture (bmshj2018-factorized, bmshj2018-hyperprior, mbt2018-mean),
                    channel widths and input channels (1 or 3). Stand-ins default to
                    mbt2018-mean, N=128, M=192, 3 channels; with ``models`` they are read from
                    the checkpoints and, when given, must match every checkpoint.
  padding           "replicate" (default) or "zero": how the image is padded at the bottom and
                    right to a multiple of ``pad_multiple``; the padded area is coded, and its
                    bits count, like all others.
  pad_multiple      a power of two (default: the model's downsampling factor, 16 for
                    factorized, 64 for the hyperprior models).
  device            "cpu" (default) or "cuda" (untested here: no GPU on the development machines;
                    streams written on one device may not decode on another, so the device is
                    part of the cache key).

Coding: ``model.update(force=True)`` once per model, then ``compress``/``decompress`` with
CompressAI's ``ans`` entropy coder; the rate is the bytes written, header included (layout in
:mod:`taskcodec_plugins.codecs.trained.bitstream`: 22-23 bytes for a 48x48 image). ``encode_with_stats``
adds ``estimated_bits``, ``sum(-log2 likelihoods)`` of the entropy models on the same padded tensor
(:func:`taskcodec_plugins.codecs.learned.models.likelihoods`: the forward pass without the synthesis)
(the framework's ``estimated_bpp``). Gray images on a 3-channel model are coded as their RGB
replication and decoded to the channel mean; an RGB image for a 1-channel model is an error.
Torch's thread rate_points are left as the process has them. Models live in a per-process cache
(workers get the codec pickled, without weights, and rebuild them once, checking their digests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import taskcodec
from taskcodec import CodecError
from taskcodec_plugins.codecs.trained import bitstream
from taskcodec_plugins.codecs.trained import model_folder
from taskcodec_plugins.codecs.learned import models  # imports neither torch nor compressai at module level

FORMAT_REVISION = "1"  # bump when this plugin's bytes change for the same model and library versions
UNTRAINED_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013)
UNTRAINED_DEFAULTS = {"arch": "mbt2018-mean", "N": 128, "M": 192, "in_channels": 3}


def _version() -> str:
    """``version``: format revision and library versions, read without importing them."""
    libraries = [taskcodec.LazyVersion.installed(package) for package in ("compressai", "torch")]
    return "; ".join([FORMAT_REVISION, f"stream v{bitstream.FORMAT_VERSION}", *libraries, f"entropy coder {models.ENTROPY_CODER}"])


def _pad_multiple(value: Any) -> int | None:
    value = taskcodec.Accept.integer(1, 1 << 15, optional=True)(value)
    if value is not None and value & (value - 1):
        raise ValueError("a power of two in 1..32768 or null")
    return value


OPTION_SPECS = model_folder.option_specs("untrained_lambdas", model_folder.optional_lambdas, {
    "arch": (None, taskcodec.Accept.one_of(*models.ARCHITECTURES, optional=True)),
    "N": (None, taskcodec.Accept.integer(1, 4096, optional=True)),
    "M": (None, taskcodec.Accept.integer(1, 4096, optional=True)),
}, coding={
    "padding": ("replicate", taskcodec.Accept.one_of("replicate", "zero")),
    "pad_multiple": (None, _pad_multiple),
})


class LearnedCodec(model_folder.ModelFolderCodec):
    name = "learned"
    version = taskcodec.LazyVersion(_version)  # type: ignore[assignment]
    rate_parameter = "lambda"
    default_rate_points = ()  # per instance: the lambdas of its models
    needs_options = True
    description = (
        "CompressAI learned codec (bmshj2018-factorized/-hyperprior, mbt2018-mean), one trained checkpoint per "
        "lambda; options: models=FOLDER (or untrained_seed=N: untrained stand-ins for tests, never leaderboards)"
    )

    models_module = models
    arch_options = ("arch", "N", "M", "in_channels")
    accepted_options = tuple(OPTION_SPECS)

    def __init__(self, **options: Any) -> None:
        super().__init__(model_folder.checked_options(self, options, OPTION_SPECS, "untrained_lambdas"))
        o = self._options
        if self._entries is not None:
            lambdas = [e.lmbda for e in self._entries]
        else:
            lambdas = list(o["untrained_lambdas"] or UNTRAINED_LAMBDAS)
            self._check_pad_multiple(o["arch"] or UNTRAINED_DEFAULTS["arch"], "untrained stand-ins")
        self.default_rate_points = tuple(sorted(lambdas))  # type: ignore[misc]

    @classmethod
    def train(cls, request: taskcodec.CodecTrainingRequest) -> dict[str, Any]:
        """``taskcodec train-codec``: one model per lambda (see :mod:`taskcodec_plugins.codecs.learned.training`)."""
        from taskcodec_plugins.codecs.learned.training import train_learned

        return train_learned(request)

    # models --------------------------------------------------------------------------
    def _check_pad_multiple(self, arch: str, where: str) -> None:
        multiple = self._options["pad_multiple"]
        factor = models.ARCHITECTURES[arch].downsampling
        if multiple is not None and multiple % factor:
            raise CodecError(f"codec {self.name!r}: pad_multiple={multiple} is not a multiple of {factor}, the "
                             f"downsampling factor of {arch} ({where})")

    def _entry_from(self, document: dict[str, Any], path: Path) -> models.ModelEntry:
        self._check_pad_multiple(document["arch"], str(path))
        return models.ModelEntry(document["lambda"], document["digest"], document["arch"], document["N"], document["M"],
                             document["in_channels"], document["mode"], document["seed"], str(path.resolve()))

    def entries(self) -> list[models.ModelEntry]:
        """The rate points' models, lowest lambda first (builds untrained stand-ins on first use)."""
        if self._entries is None:
            o = self._options
            arch, N, M, channels = (o[k] if o[k] is not None else UNTRAINED_DEFAULTS[k]
                                    for k in ("arch", "N", "M", "in_channels"))
            entries = []
            for lmbda in self.default_rate_points:
                model = models.untrained_model(arch, N, M, channels, o["untrained_seed"], lmbda)
                digest = models.model_digest(model, arch, N, M, channels)
                entry = models.ModelEntry(lmbda, digest, arch, N, M, channels, "untrained", o["untrained_seed"])
                model_folder.cache_model((digest, o["device"]), models.prepare_for_coding(model, o["device"]))
                entries.append(entry)
            self._entries = self._checked(entries, "untrained stand-ins")
        return self._entries

    def _rebuild_stand_in(self, entry: models.ModelEntry) -> tuple[Any, str]:
        model = models.untrained_model(entry.arch, entry.N, entry.M, entry.in_channels, entry.seed, entry.lmbda)
        return model, models.model_digest(model, entry.arch, entry.N, entry.M, entry.in_channels)

    # coding --------------------------------------------------------------------------
    def _encode(self, image: np.ndarray, lmbda: float, estimate: bool) -> tuple[bytes, dict[str, float]]:
        import torch
        import torch.nn.functional as F

        entry = self._entry(lmbda)
        model = self._model(entry)
        spec = models.ARCHITECTURES[entry.arch]
        rgb = image.ndim == 3
        if rgb and entry.in_channels == 1:
            raise CodecError(f"codec {self.name!r}: the model for lambda {lmbda:g} takes 1-channel (gray) images, "
                             f"got an RGB image {image.shape}")
        height, width = image.shape[:2]
        multiple = self._options["pad_multiple"] or spec.downsampling
        padded_h, padded_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        x = torch.from_numpy(image.astype(np.float32)).div_(255.0)  # a copy: the image may be read-only
        x = x.permute(2, 0, 1) if rgb else x[None].expand(entry.in_channels, -1, -1)
        x = x[None].contiguous().to(self._options["device"])
        mode = "replicate" if self._options["padding"] == "replicate" else "constant"
        x = F.pad(x, (0, padded_w - width, 0, padded_h - height), mode=mode)
        with torch.inference_mode():
            out = model.compress(x)
            stats = {}
            if estimate:
                stats["estimated_bits"] = float(sum(float((-torch.log2(p)).sum()) for p in models.likelihoods(model, x)))
        strings = [s[0] for s in out["strings"]]
        latent_h, latent_w = (int(v) for v in out["shape"])
        header = bitstream.StreamHeader(entry.model_id, rgb, self._options["padding"] == "zero",
                                 multiple.bit_length() - 1, height, width, latent_h, latent_w)
        return bitstream.pack(header, strings), stats

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        try:
            header, strings = bitstream.unpack(data)
        except bitstream.MalformedStream as exc:
            raise CodecError(f"codec {self.name!r}: {exc}") from None
        entry = self._entry_for_stream(header.model_id)
        spec = models.ARCHITECTURES[entry.arch]
        padded_h, padded_w = header.padded_size
        problems = []
        if len(strings) != spec.strings:
            problems.append(f"{len(strings)} strings, {entry.arch} writes {spec.strings}")
        if header.pad_multiple % spec.downsampling:
            problems.append(f"padding multiple {header.pad_multiple} is not a multiple of {spec.downsampling}")
        elif (header.latent_height, header.latent_width) != (padded_h // spec.latent_factor,
                                                              padded_w // spec.latent_factor):
            problems.append(f"latent shape {header.latent_height}x{header.latent_width} does not fit the padded "
                            f"size {padded_h}x{padded_w}")
        if header.rgb and entry.in_channels == 1:
            problems.append("an RGB image from a 1-channel model")
        if problems:
            raise CodecError(f"codec {self.name!r}: inconsistent stream: {'; '.join(problems)}")
        model = self._model(entry)
        with torch.inference_mode():
            x_hat = model.decompress([[s] for s in strings], torch.Size([header.latent_height, header.latent_width]))
            x = x_hat["x_hat"][0, :, : header.height, : header.width]
            if not header.rgb:
                x = x.mean(dim=0) if x.shape[0] == 3 else x[0]
            pixels = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
        return np.ascontiguousarray(pixels.transpose(1, 2, 0)) if header.rgb else pixels

    def _stream_layout(self, data: bytes) -> bitstream.Layout:
        return bitstream.layout(data)
