"""Face alignment geometry: landmark templates, the Umeyama similarity transform, warping.

No detector here (see :mod:`taskcodec_plugins.faces.detection`): this module turns five
landmarks (left eye, right eye, nose tip, left and right mouth corner, in that order, as
MTCNN returns them) into an aligned crop.

Templates (x, y), from the SphereFace / ArcFace reference code (recorded in the project's
PROTOCOLS.md):

- ``sphereface``: 96 x 112 (w x h), what MobileFaceNet and SphereFace expect;
- ``arcface``: 112 x 112, the SphereFace points shifted by x + 8 (insightface);
- ``facenet``: no template; facenet-pytorch's box crop: the detector's box grown by a margin
  (14 pixels at the output scale by default) and resized to 160 x 160.

Coordinates follow the usual convention of the landmark detectors and of OpenCV's
``warpAffine``: the centre of pixel (i, j) is at x = j, y = i. :func:`warp_affine` uses
Pillow with a half-pixel correction so that a point at (x, y) in the source lands at
``M @ (x, y, 1)`` in the crop (tested to a fraction of a pixel).

Only numpy and Pillow; no OpenCV.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SPHEREFACE_POINTS = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]],
    dtype=np.float64,
)

# name -> (points (x, y) or None for a box crop, (height, width) of the crop)
TEMPLATES: dict[str, tuple[np.ndarray | None, tuple[int, int]]] = {
    "sphereface": (SPHEREFACE_POINTS, (112, 96)),
    "arcface": (SPHEREFACE_POINTS + np.array([8.0, 0.0]), (112, 112)),
    "facenet": (None, (160, 160)),
}
ALIGN_MODES = tuple(TEMPLATES) + ("none",)
FACENET_MARGIN = 14  # facenet-pytorch's MTCNN default margin, in output pixels


def crop_size(template: str) -> tuple[int, int]:
    """(height, width) of the crops made with ``template``."""
    return TEMPLATES[check_template(template)][1]


def check_template(template: str) -> str:
    if template not in TEMPLATES:
        raise ValueError(f"unknown alignment template {template!r}; choose one of {sorted(TEMPLATES)}")
    return template


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity transform (rotation, uniform scale, translation) mapping ``src`` onto
    ``dst`` in the least-squares sense (Umeyama 1991, no reflection). Points are N x 2, N >= 2."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"umeyama: expected two N x 2 arrays with N >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("umeyama: the source points coincide")
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: flip the weakest axis
        e[1, 1] = -1
    r = u @ e @ vt
    scale = (sigma * np.diag(e)).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N x 2) mapped by a 2 x 3 affine ``matrix``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The 3 x 3 inverse of a 2 x 3 affine ``matrix``, in closed form (``np.linalg.inv`` goes through
    OpenBLAS, which took ~1.5 ms per 3 x 3 matrix here: a third of the time of an aligned crop)."""
    m = np.asarray(matrix, dtype=np.float64)
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    if abs(det) < 1e-12:
        raise ValueError(f"the affine transform {m.tolist()} is singular")
    inverse = np.array([[d, -b], [-c, a]]) / det
    return np.vstack([np.hstack([inverse, (-inverse @ m[:, 2])[:, None]]), [0.0, 0.0, 1.0]])


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` (HxW or HxWx3 uint8) by the 2 x 3 ``matrix`` (source -> crop coordinates)
    into a crop of ``size`` = (height, width); bilinear, black outside the image."""
    from PIL import Image

    inv = invert_affine(matrix)
    # Pillow samples output pixel (j, i) at (j + 0.5, i + 0.5) and treats input pixel k as the
    # interval [k, k + 1): shift by half a pixel on both sides to keep pixel centres at integers.
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    unhalf = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    m = half @ inv @ unhalf
    height, width = size
    out = Image.fromarray(image).transform(
        (width, height), Image.Transform.AFFINE, tuple(m[:2].reshape(-1)), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8).copy()


def align_to_template(image: np.ndarray, points: np.ndarray, template: str) -> np.ndarray:
    """The aligned crop of ``image`` whose 5 ``points`` (x, y) map onto ``template``'s landmarks."""
    dst, size = TEMPLATES[check_template(template)]
    if dst is None:
        raise ValueError(f"template {template!r} is a box crop: use box_crop()")
    return warp_affine(image, umeyama(points, dst), size)


def box_crop(image: np.ndarray, box: Any, size: int = 160, margin: float = FACENET_MARGIN) -> np.ndarray:
    """facenet-pytorch's crop: ``box`` (x1, y1, x2, y2) grown by ``margin`` pixels of the output
    scale (half on each side), clipped to the image, resized to ``size`` x ``size`` (bilinear)."""
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in box)
    mx = margin * (x2 - x1) / (size - margin)
    my = margin * (y2 - y1) / (size - margin)
    h, w = image.shape[:2]
    left = int(max(x1 - mx / 2, 0))
    top = int(max(y1 - my / 2, 0))
    right = int(min(x2 + mx / 2, w))
    bottom = int(min(y2 + my / 2, h))
    if right <= left or bottom <= top:
        raise ValueError(f"box {box} lies outside the {w}x{h} image")
    crop = Image.fromarray(image[top:bottom, left:right])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8).copy()


def align(image: np.ndarray, record: dict[str, Any], template: str) -> np.ndarray:
    """Crop ``image`` for ``template`` from a detection ``record`` (``points`` and ``box``)."""
    if TEMPLATES[check_template(template)][0] is None:
        return box_crop(image, record["box"], TEMPLATES[template][1][0])
    return align_to_template(image, np.asarray(record["points"], dtype=np.float64), template)
