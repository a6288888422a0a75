"""Full-reference image quality metrics computed the way CompressAI reports them: psnr, ms-ssim.

Both are per-image values; the framework averages them over images (for PSNR that is the
mean of per-image dB values, CompressAI's convention, not the PSNR of the mean MSE).
torch is imported inside :meth:`MsSsim.compute` only.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

import taskcodec
from taskcodec import ImageMetric, TaskcodecError


def _pair(name: str, original: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    for which, image in (("original", original), ("decoded", decoded)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise TaskcodecError(
                f"metric {name!r}: the {which} image must be a uint8 HxW or HxWx3 array, got "
                f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
            )
    if original.shape != decoded.shape:
        raise TaskcodecError(f"metric {name!r}: shapes differ: original {original.shape}, decoded {decoded.shape}")
    return original, decoded


class Psnr(ImageMetric):
    """PSNR in dB on values 0..255: 10 log10(255^2 / MSE), the MSE over all H x W (x 3) values.

    Identical images give ``float('inf')`` (MSE 0): the value is defined, just unbounded;
    an average over images that contains it is inf too, which flags a lossless row plainly.
    """

    name = "psnr"
    higher_is_better = True
    description = "PSNR (dB) per image over all HxW(x3) values in 0..255, as CompressAI; inf when identical"

    def compute(self, original: np.ndarray, decoded: np.ndarray) -> float | None:
        original, decoded = _pair(self.name, original, decoded)
        # Integer arithmetic, 4x faster than float64 and the same number: every square (<= 255^2) and
        # their sum (< 2^53 for any image taskcodec accepts) is exact in both, so the float64 mean of
        # the squares equals this exact sum divided by the count.
        difference = np.subtract(original, decoded, dtype=np.int16)
        mse = float(np.square(difference, dtype=np.int32).sum(dtype=np.int64)) / difference.size
        if mse == 0.0:
            return float("inf")
        return 10.0 * math.log10(255.0**2 / mse)


class MsSsim(ImageMetric):
    """MS-SSIM via pytorch_msssim (``ms_ssim(..., data_range=255)``, 11x11 Gaussian window, 5 scales).

    Gray images are one channel. pytorch_msssim needs the smaller side > (11 - 1) * 2**4 = 160
    pixels; smaller images return None (undefined), so 112x96 face crops and 48x48 FER images
    have no MS-SSIM.
    """

    name = "ms-ssim"
    higher_is_better = True
    description = "MS-SSIM (pytorch_msssim, data_range 255, 5 scales); None for images with a side <= 160"
    WIN_SIZE = 11
    MIN_SIDE = (WIN_SIZE - 1) * 2**4  # the smaller side must exceed this

    def compute(self, original: np.ndarray, decoded: np.ndarray) -> float | None:
        original, decoded = _pair(self.name, original, decoded)
        if min(original.shape[:2]) <= self.MIN_SIDE:
            return None
        import torch
        from pytorch_msssim import ms_ssim

        def tensor(image: np.ndarray) -> "torch.Tensor":
            array = image[:, :, None] if image.ndim == 2 else image
            chw = np.ascontiguousarray(array.transpose(2, 0, 1))
            return torch.from_numpy(chw).to(torch.float32)[None]  # float32, as CompressAI's evaluation

        with torch.no_grad():
            value = ms_ssim(
                tensor(original), tensor(decoded), data_range=255, size_average=True, win_size=self.WIN_SIZE
            )
        return float(value)
