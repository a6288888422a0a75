"""psnr and ms-ssim: hand-computed values, undefined cases, registration."""
from __future__ import annotations

import math

import numpy as np
import pytest

from taskcodec import ImageMetric, TaskcodecError
from taskcodec.pluginmanager import get_plugin_manager
from taskcodec_plugins.metrics.image import MsSsim, Psnr


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """MS-SSIM's convolutions on 2 busy cores: OpenMP threads spin and one call takes ~1.5 s
    instead of ~20 ms (measured here; OMP_WAIT_POLICY=PASSIVE fixes it too). One thread keeps
    this module fast; the previous rate point is restored afterwards."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def noisy_pair(height: int, width: int, color: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(x / 13.0) * np.cos(y / 17.0)
    if color:
        base = base[..., None] * np.array([1.0, 0.9, 0.8])
    original = np.clip(np.rint(base), 0, 255).astype(np.uint8)
    decoded = np.clip(original + rng.normal(0, 8, original.shape), 0, 255).astype(np.uint8)
    return original, decoded


def test_registered() -> None:
    pm = get_plugin_manager()
    for name, cls in (("psnr", Psnr), ("ms-ssim", MsSsim)):
        entry = pm.get("metric", name)
        assert entry.target is cls and issubclass(cls, ImageMetric) and cls.higher_is_better


def test_psnr_hand_computed() -> None:
    original = np.zeros((2, 2), dtype=np.uint8)
    decoded = original.copy()
    decoded[0, 0] = 10  # MSE = 100 / 4 = 25
    assert Psnr().compute(original, decoded) == pytest.approx(10 * math.log10(255**2 / 25))
    assert Psnr().compute(original, decoded) == pytest.approx(34.151403521958725, abs=1e-12)
    # RGB: the MSE runs over all H x W x 3 values; errors of 3 and 4 in 2 of 12 values
    rgb = np.full((2, 2, 3), 200, dtype=np.uint8)
    other = rgb.copy()
    other[0, 0, 0], other[1, 1, 2] = 203, 196
    assert Psnr().compute(rgb, other) == pytest.approx(10 * math.log10(255**2 / ((9 + 16) / 12)))


def test_psnr_uses_no_uint8_wraparound() -> None:
    a = np.zeros((4, 4), dtype=np.uint8)
    b = np.full((4, 4), 255, dtype=np.uint8)
    assert Psnr().compute(a, b) == pytest.approx(0.0)
    assert Psnr().compute(b, a) == pytest.approx(0.0)


def test_psnr_of_identical_images_is_inf() -> None:
    image, _ = noisy_pair(8, 8)
    assert Psnr().compute(image, image.copy()) == math.inf


def test_shape_mismatch_raises() -> None:
    a, _ = noisy_pair(8, 8)
    with pytest.raises(TaskcodecError, match="'psnr'.*shapes differ"):
        Psnr().compute(a, a[:, :, 0])
    with pytest.raises(TaskcodecError, match="'ms-ssim'.*uint8"):
        MsSsim().compute(a.astype(np.float32), a)


@pytest.mark.parametrize("shape", [(112, 96), (96, 112, 3), (48, 48), (160, 300, 3)])
def test_ms_ssim_is_none_for_small_images(shape: tuple[int, ...]) -> None:
    original, decoded = noisy_pair(shape[0], shape[1], color=len(shape) == 3)
    assert MsSsim().compute(original, decoded) is None


@pytest.mark.parametrize("color", [True, False], ids=["rgb", "gray"])
def test_ms_ssim_values(color: bool) -> None:
    original, decoded = noisy_pair(256, 256, color=color, seed=1)
    value = MsSsim().compute(original, decoded)
    assert isinstance(value, float) and 0.0 < value < 1.0
    assert MsSsim().compute(original, original) == pytest.approx(1.0, abs=1e-6)
    worse = np.clip(original + np.random.default_rng(2).normal(0, 30, original.shape), 0, 255).astype(np.uint8)
    assert MsSsim().compute(original, worse) < value


def test_ms_ssim_matches_pytorch_msssim_directly() -> None:
    torch = pytest.importorskip("torch")
    from pytorch_msssim import ms_ssim

    original, decoded = noisy_pair(200, 240, color=True, seed=3)
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    expected = ms_ssim(as_tensor(original), as_tensor(decoded), data_range=255).item()
    assert MsSsim().compute(original, decoded) == pytest.approx(expected, rel=1e-6)
