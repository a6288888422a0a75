"""Kodak through the runner agrees with a direct libjpeg-turbo computation (CompressAI's convention)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from taskcodec.config import parse_config
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec.runner import Runner
from taskcodec.store import Store

pytestmark = pytest.mark.shared_data
QUALITIES = [10, 50, 90]


def direct_jpeg(path, quality):
    """Pillow's JPEG writer (libjpeg-turbo, defaults as CompressAI uses them), PSNR on RGB 0-255."""
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    data = buffer.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    mse = np.mean((image.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return 8 * len(data) / (image.shape[0] * image.shape[1]), 10 * np.log10(255**2 / mse)


def test_kodak_jpeg_matches_direct_libjpeg_turbo(datasets_dir, tmp_path):
    pm = get_plugin_manager()
    raw = {
        "benchmark": "kodak-check",
        "dataset": {"name": "kodak", "root": str(datasets_dir / "kodak")},
        "metrics": ["psnr"],
        "codecs": [{"name": "jpeg", "rate_points": QUALITIES}],
        "runner": {"workers": 1},
    }
    cfg = parse_config(raw, "kodak-check", pm.registry)
    rows = Runner(cfg, Store(tmp_path / "store"), pm, progress=False).run().rows
    files = sorted((datasets_dir / "kodak").glob("kodim*.png"))
    assert len(files) == 24
    for quality in QUALITIES:
        measured = np.array([direct_jpeg(f, quality) for f in files])
        row = next(r for r in rows if r["codec"] == "jpeg" and r["rate_point"] == quality)
        assert row["images"] == 24
        assert row["bpp"] == pytest.approx(measured[:, 0].mean(), rel=1e-3)
        assert row["psnr"] == pytest.approx(measured[:, 1].mean(), rel=1e-3)
