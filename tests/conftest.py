"""Shared fixtures: the ../shared data location and a throwaway third-party plugin."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TASKCODEC_SHARED", REPO.parent / "shared"))
DATASETS = Path(os.environ.get("TASKCODEC_DATA", SHARED / "datasets"))


def pytest_collection_modifyitems(config, items):
    """Tests marked shared_data skip cleanly when ../shared is absent."""
    if DATASETS.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared datasets at {DATASETS} (set TASKCODEC_DATA)")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def datasets_dir() -> Path:
    return DATASETS


def natural_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A deterministic image with smooth regions, edges and mild noise, like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 60 * np.sin(x / max(width, 1) * 6.0 + seed) * np.cos(y / max(height, 1) * 4.0)
    base += 40 * ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 3) ** 2)
    planes = [base + 20 * c + rng.normal(0, 6, base.shape) for c in range(channels)]
    image = np.stack(planes, axis=-1) if channels == 3 else planes[0]
    return np.clip(image, 0, 255).astype(np.uint8)


# A third-party plugin, installed the way pip would: a module plus a dist-info folder whose
# entry_points.txt names it in the `taskcodec` group.
THIRD_PARTY_MODULE = '''
"""A throwaway codec plugin: quantise each pixel to `setting` levels, then zlib."""
import os
import struct
import time
import zlib

import numpy as np

import taskcodec


class QuantZlib(taskcodec.Codec):
    name = "quant-zlib"
    version = "1"
    rate_parameter = "levels"
    default_rate_points = (4, 16, 64)
    description = "uniform quantisation + zlib (test plugin)"

    def validate_setting(self, setting):
        if isinstance(setting, bool) or not isinstance(setting, int) or not 2 <= setting <= 256:
            raise taskcodec.CodecError(f"quant-zlib: levels must be an integer in 2..256, got {setting!r}")
        return setting

    def encode(self, image, setting):
        delay = float(os.environ.get("QUANT_ZLIB_DELAY", "0"))
        if delay:
            time.sleep(delay)
        step = 256 / int(setting)
        q = np.floor(image / step).astype(np.uint8)
        channels = 1 if image.ndim == 2 else 3
        header = struct.pack(">HHBB", image.shape[0], image.shape[1], channels, int(setting))
        return header + zlib.compress(q.tobytes(), 9)

    def decode(self, data):
        if len(data) < 6:
            raise taskcodec.CodecError("quant-zlib: stream shorter than its header")
        h, w, c, levels = struct.unpack(">HHBB", data[:6])
        try:
            q = np.frombuffer(zlib.decompress(data[6:]), np.uint8)
        except zlib.error as exc:
            raise taskcodec.CodecError(f"quant-zlib: corrupt stream: {exc}") from None
        step = 256 / levels
        image = np.clip((q.astype(np.float32) + 0.5) * step, 0, 255).astype(np.uint8)
        return image.reshape((h, w) if c == 1 else (h, w, 3))

    def payload_bytes(self, data):
        return len(data) - 6


@taskcodec.hookimpl
def register_codecs(register):
    register(QuantZlib)
'''


@pytest.fixture
def third_party_plugin(tmp_path, monkeypatch) -> Path:
    """Install the throwaway plugin distribution in a temp folder on sys.path (and PYTHONPATH)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "quant_zlib_plugin.py").write_text(THIRD_PARTY_MODULE)
    dist = site / "quant_zlib_plugin-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: quant-zlib-plugin\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[taskcodec]\nquant-zlib = quant_zlib_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    sys.modules.pop("quant_zlib_plugin", None)
    from taskcodec import pluginmanager

    monkeypatch.setattr(pluginmanager, "_default", None)
    return site


def write_images(folder: Path, count: int = 6, size=(40, 56), channels: int = 3) -> Path:
    """Write a few PNG files for image-dir datasets."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        array = natural_image(*size, channels=channels, seed=i)
        Image.fromarray(array).save(folder / f"img{i:02d}.png")
    return folder


def textconfig(text: str) -> str:
    return textwrap.dedent(text).lstrip()
