"""``taskcodec train-codec`` for ``compnet-png``: one compression/reconstruction CNN pair per rate point.

A rate point is the representation's nominal bpp, ``channels * log2(levels) / downsampling^2``:
with the options ``levels`` (one value, or one per rate point) and ``downsampling``, each point
fixes its channel count (which must come out whole). The loss is the common one of
:mod:`taskcodec_plugins.codecs.trained.training` with the model's differentiable PNG-rate proxy as ``bpp``
and the option ``lambda`` as the trade-off (the same for every point: here the rate is set by the
representation's size, and lambda only weighs the proxy against the distortion). Checkpoints:
``<out>/nominal-<bpp>.pt`` in :mod:`taskcodec_plugins.codecs.compnet_png.models`' format.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from taskcodec import CodecError, CodecTrainingRequest
from taskcodec_plugins.codecs.trained.training import CodecModel, training_options
from taskcodec_plugins.codecs.trained import driver
from taskcodec_plugins.codecs.compnet_png import models

EXTRA_OPTIONS = {"levels": 16, "downsampling": 4, "width": models.DEFAULT_WIDTH, "lambda": 0.01}


def _architectures(o: dict[str, Any], points: tuple[float, ...], in_channels: int) -> dict[float, models.CompNetArch]:
    levels = o["levels"] if isinstance(o["levels"], list) else [o["levels"]] * len(points)
    if len(levels) != len(points):
        raise CodecError(f"codec 'compnet-png': option levels has {len(levels)} values for {len(points)} rate points")
    archs = {}
    for point, level in zip(points, levels):
        bits = math.log2(level) if isinstance(level, int) and level >= 2 else float("nan")
        channels = point * o["downsampling"] ** 2 / bits if bits == bits else float("nan")
        if not (channels == channels and abs(channels - round(channels)) < 1e-9 and round(channels) >= 1):
            raise CodecError(f"codec 'compnet-png': rate point {point:g} (nominal bpp) with levels={level!r} and "
                             f"downsampling={o['downsampling']} needs {channels:g} channels; choose points that give "
                             f"whole channel counts (nominal bpp = channels x log2(levels) / downsampling^2)")
        arch = models.CompNetArch(int(round(channels)), level, o["downsampling"], in_channels, o["width"])
        if arch.problems():
            raise CodecError(f"codec 'compnet-png': rate point {point:g}: {'; '.join(arch.problems())}")
        archs[point] = arch
    return archs


def _init_documents(init: Any, archs: dict[float, models.CompNetArch]) -> dict[float, dict[str, Any]]:
    if init is None:
        return {}
    folder = Path(init)
    if not folder.is_dir():
        raise CodecError(f"codec 'compnet-png': init={str(init)!r} must be a folder of compnet checkpoints")
    try:
        docs = [models.load_checkpoint(f) for f in sorted(folder.glob("*" + models.CHECKPOINT_SUFFIX))]
    except models.CheckpointError as exc:
        raise CodecError(f"codec 'compnet-png': init: {exc}") from None
    found = {}
    for point, arch in archs.items():
        match = [d for d in docs if models.checkpoint_arch(d) == arch]
        if not match:
            raise CodecError(f"codec 'compnet-png': init folder {folder} has no checkpoint of {arch} (rate point {point:g})")
        found[point] = match[0]
    return found


def train_compnet(request: CodecTrainingRequest) -> dict[str, Any]:
    import torch

    o = training_options(request.options, EXTRA_OPTIONS, "compnet-png")
    if o["downsampling"] not in models.DOWNSAMPLINGS:
        raise CodecError(f"codec 'compnet-png': downsampling must be one of {list(models.DOWNSAMPLINGS)}")
    lam = o["lambda"]
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam > 0:
        raise CodecError(f"codec 'compnet-png': training option lambda={lam!r}: expected a number > 0")
    points = tuple(sorted(float(p) for p in request.rate_points))
    sample = request.dataset[0].image
    archs = _architectures(o, points, 1 if sample.ndim == 2 else sample.shape[2])
    inits = _init_documents(o["init"], archs)
    seed, out = request.context.seed, Path(request.out)

    def build(point: float) -> CodecModel:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = models.build_compnet(*archs[point])
        if point in inits:
            model = models.model_from_checkpoint(inits[point]).train()
            for p in model.parameters():
                p.requires_grad_(True)
        return CodecModel(point, model, lambda res: res["rate_bits"], model.downsampling, lmbda=float(lam))

    def file_for(point: float) -> Path:
        return out / f"nominal-{point:g}{models.CHECKPOINT_SUFFIX}"

    def save(m: CodecModel, meta: dict[str, Any]) -> None:
        init = {"digest": inits[m.point]["digest"], "mode": inits[m.point]["mode"]} if m.point in inits else None
        models.save_checkpoint(file_for(m.point), m.model, mode=request.mode, seed=seed, init=init, lmbda=float(lam), **meta)

    def load_metadata(path: Path) -> dict[str, Any]:
        return {k: v for k, v in models.load_checkpoint(path).items() if k != "state_dict"}

    describe = {"levels": o["levels"], "downsampling": o["downsampling"], "width": o["width"], "lambda": lam}
    family = driver.CodecFamily("compnet-png", file_for, build, save, load_metadata, describe)
    identity = {"options": {k: v for k, v in o.items() if k != "init"}, "version": 1,
                "init_digests": {f"{p:g}": d["digest"] for p, d in inits.items()}}
    return driver.train_rate_points(request, o, points, family, identity)
