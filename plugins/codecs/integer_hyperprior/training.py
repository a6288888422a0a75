"""``taskcodec train-codec`` for the ``integer-hyperprior`` codec: one variable-rate model for all lambdas.

All rate points train together, in every mode: each step the batch is dealt out to the rate points
(rate point i of n gets images i, i+n, ...; ``batch_size`` is the whole batch) and goes through the
model at their gain rows; the loss is their sum. So a step costs what one rate point's step of
``batch_size / n`` images would, and the shared transforms see ``batch_size`` images. Objective and
options: :mod:`taskcodec_plugins.codecs.trained.training`. Writes ONE checkpoint, ``<out>/model.pt`` (format in
:mod:`.models`; the integer model is exported when it is written), and ``<out>/training.json``.

Training options besides :data:`taskcodec_plugins.codecs.trained.training.TRAIN_DEFAULTS`:
``N``, ``M``, ``Nz``, ``stages`` (the architecture, taken from ``init`` when given) and
``in_channels`` (default: the training images' channels). ``init``: a checkpoint of this codec with
its lambdas (rate points it lacks start from its
gain rows, inter- or extrapolated in log lambda: :func:`.models.model_from_checkpoint`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from taskcodec import CodecError, CodecTrainingRequest
from taskcodec_plugins.codecs.trained import driver
from taskcodec_plugins.codecs.trained.training import CodecModel, compressai_rate_bits, training_options
from taskcodec_plugins.codecs.integer_hyperprior import models

EXTRA_OPTIONS = {"N": 96, "M": 128, "Nz": 64, "stages": 3, "in_channels": None}
CHECKPOINT_NAME = "model" + models.CHECKPOINT_SUFFIX


def _init_document(init: Any, lambdas: list[float]) -> dict[str, Any] | None:
    if init is None:
        return None
    try:
        document = models.load_checkpoint(Path(init))
    except models.CheckpointError as exc:
        raise CodecError(f"codec 'integer-hyperprior': init: {exc}") from None
    if not set(document["lambdas"]) <= set(lambdas):
        raise CodecError(f"codec 'integer-hyperprior': init {init} was trained for lambdas {document['lambdas']}; "
                         f"the config's rate points {lambdas} must include them all (it may add more)")
    return document


def train_integer_hyperprior(request: CodecTrainingRequest) -> dict[str, Any]:
    import torch

    o = training_options(request.options, EXTRA_OPTIONS, "integer-hyperprior")
    lambdas = sorted(float(p) for p in request.rate_points)
    if any(p <= 0 for p in lambdas) or len(set(lambdas)) != len(lambdas):
        raise CodecError(f"codec 'integer-hyperprior': rate points are distinct lambdas > 0, got {request.rate_points}")
    init = _init_document(o["init"], lambdas)
    if init is not None:
        for key in models.ARCH_KEYS:
            if key in request.options and request.options[key] != init[key]:
                raise CodecError(f"codec 'integer-hyperprior': training option {key}={request.options[key]!r} but "
                                 f"the init checkpoint has {init[key]!r}")
            o[key] = init[key]
    sample = request.dataset[0].image
    channels = 1 if sample.ndim == 2 else sample.shape[2]
    if o["in_channels"] is None:
        o["in_channels"] = channels
    if o["in_channels"] != channels:
        raise CodecError(f"codec 'integer-hyperprior': the model takes {o['in_channels']}-channel images, the "
                         f"training data has {channels} channels")
    arch = {k: o[k] for k in models.ARCH_KEYS}
    seed, out = request.context.seed, Path(request.out)
    shared: dict[str, Any] = {}

    def the_model():
        if "model" not in shared:
            if init is not None:
                shared["model"] = models.model_from_checkpoint(init, lambdas)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    shared["model"] = models.build_model(**arch, rate_points=len(lambdas))
        return shared["model"]

    def build(point: float) -> CodecModel:
        from taskcodec_plugins.codecs.integer_hyperprior.network import RatePointView

        model = the_model()
        index = lambdas.index(point)
        return CodecModel(point, RatePointView(model, index), compressai_rate_bits, model.downsampling,
                          batch_share=(index, len(lambdas)))

    def save_all(trained: list[CodecModel], metas: list[dict[str, Any]]) -> None:
        common = {k: v for k, v in metas[0].items() if k != "validation"}
        validation = {f"{m.point:g}": meta.get("validation") for m, meta in zip(trained, metas)}
        init_facts = {"digest": init["digest"], "mode": init["mode"]} if init is not None else None
        models.save_checkpoint(out / CHECKPOINT_NAME, the_model(), lambdas=lambdas, mode=request.mode, seed=seed,
                               init=init_facts, validation=validation, **common)

    def load_metadata(path: Path) -> dict[str, Any]:
        return {k: v for k, v in models.load_checkpoint(path).items() if k not in ("state_dict", "exact")}

    family = driver.CodecFamily("integer-hyperprior", lambda point: out / CHECKPOINT_NAME, build,
                                lambda m, meta: None, load_metadata, arch, save_all=save_all)
    identity = {"options": {k: v for k, v in o.items() if k != "init"}, "version": 2,  # 2: shared batches
                "init_digest": init["digest"] if init is not None else None}
    return driver.train_rate_points(request, o, lambdas, family, identity)
