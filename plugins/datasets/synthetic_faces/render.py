"""Drawing for ``synthetic-faces`` (:mod:`taskcodec_plugins.datasets.synthetic_faces.dataset`): a batch of faces from
their sampled parameters and noise fields, with numpy only. Shapes are signed distances with a
one-pixel anti-aliasing ramp; every output depends only on its inputs.

Bit-identical on every CPU, numpy version and thread count: all arithmetic is float64 with
operations IEEE 754 rounds correctly (``+ - * /``, sqrt, abs, min/max, clip, rint), applied
elementwise in a fixed order. numpy's transcendental ufuncs (sin, cos, power) and matmul are
avoided because their SIMD/BLAS kernels differ in the last bits from one CPU (or thread count)
to another; sin and cos come from :func:`sincos`, a fixed polynomial."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

LUMA = (0.299, 0.587, 0.114)  # BT.601: grey images are the luma of the colour ones

# sincos: Cody-Waite split of pi/2 (the high part has 33 significant bits, so k * PIO2_HI is exact
# for |k| < 2**20) and Taylor coefficients of sin and cos, enough for 1e-16 on |r| <= pi/4.
PIO2_HI = 1.57079632673412561417e+00
PIO2_LO = 6.07710050650619224932e-11
SIN_TAYLOR = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(1, 8))
COS_TAYLOR = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(1, 9))


def _horner(z: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """c0 + z (c1 + z (c2 + ...)), in this order (each step one rounded multiply and add)."""
    acc = np.full_like(z, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * z + c
    return acc


def sincos(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """sin(x) and cos(x) (within ~2e-16 for |x| < 1e5), the same bits on every machine.

    The argument is reduced to r in [-pi/4, pi/4] around the nearest multiple k of pi/2, two
    polynomials are evaluated in a fixed order, and the quadrant k mod 4 picks signs and roles.
    """
    x = np.asarray(x, dtype=np.float64)
    k = np.rint(x * (2.0 / math.pi))
    r = (x - k * PIO2_HI) - k * PIO2_LO
    r2 = r * r
    s = r + (r * r2) * _horner(r2, SIN_TAYLOR)
    c = 1.0 + r2 * _horner(r2, COS_TAYLOR)
    quadrant = k.astype(np.int64) % 4
    sin = np.choose(quadrant, [s, c, -s, -c])
    cos = np.choose(quadrant, [c, -s, -c, s])
    return sin, cos


def _ellipse(x: np.ndarray, y: np.ndarray, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Approximate signed distance to an axis-aligned ellipse, and its normalised radius.

    ``k0 (k0 - 1) / k1`` with ``k0 = |(x/a, y/b)|`` and ``k1 = |(x/a^2, y/b^2)|``: exact on
    the boundary, which is all that anti-aliasing needs.
    """
    ia, ib = 1.0 / a, 1.0 / b
    xa, yb = x * ia, y * ib
    k0 = xa * xa
    k0 += yb * yb
    np.sqrt(k0, out=k0)
    xa *= ia
    yb *= ib
    xa *= xa
    yb *= yb
    xa += yb
    np.sqrt(xa, out=xa)
    xa += 1e-6
    d = k0 - 1
    d *= k0
    d /= xa
    return d, k0


# Boxes in face coordinates (x, y - face_cy) that hold each group of facial features for
# every parameter value drawn (checked by a test that renders without the windows).
FEATURE_BOXES = {
    "eyes": ((-0.44, 0.44), (-0.54, 0.08)),
    "nose": ((-0.17, 0.17), (0.06, 0.27)),
    "mouth": ((-0.33, 0.33), (0.15, 0.60)),
}


def _window(p: dict[str, np.ndarray], h: int, w: int, s: float, box: Any) -> tuple[slice, slice]:
    """Rows and columns that hold ``box`` (face coordinates) in every sample, plus a margin."""
    if box is None:
        return slice(0, h), slice(0, w)
    (x0, x1), (y0, y1) = box
    cx = np.array([x0, x1, x0, x1])[None, :]
    cy = np.array([y0, y0, y1, y1])[None, :] + np.asarray(p["face_cy"], np.float64)[:, None]
    scale = np.asarray(p["scale"], np.float64)[:, None]
    sin, cos = sincos(np.asarray(p["rot"], np.float64)[:, None])
    u = scale * (cos * cx - sin * cy) + np.asarray(p["tx"], np.float64)[:, None]
    v = scale * (sin * cx + cos * cy) + np.asarray(p["ty"], np.float64)[:, None]
    margin = 4
    c0 = max(int(np.floor(u.min() * s + w / 2)) - margin, 0)
    c1 = min(int(np.ceil(u.max() * s + w / 2)) + margin, w)
    r0 = max(int(np.floor(v.min() * s + h / 2)) - margin, 0)
    r1 = min(int(np.ceil(v.max() * s + h / 2)) + margin, h)
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


@dataclass(frozen=True)
class _Chunk:
    """A chunk of faces being drawn: their sampled parameters as per-sample arrays, and the scale."""

    p: dict[str, np.ndarray]
    n: int
    channels: int
    s: float  # pixels per unit

    def col(self, key: str) -> np.ndarray:
        """Per-sample scalars as (n, 1, 1)."""
        return np.asarray(self.p[key], dtype=np.float64).reshape(self.n, 1, 1)

    def rgb(self, prefix: str) -> np.ndarray:
        """Per-sample colours as (n, 1, 1, C)."""
        r, g, b = (np.asarray(self.p[prefix + part], dtype=np.float64) for part in ("_r", "_g", "_b"))
        if self.channels == 1:
            c = (r * LUMA[0] + g * LUMA[1]) + b * LUMA[2]  # not a matmul: BLAS kernels round differently
        else:
            c = np.stack([r, g, b], axis=-1)
        return c.reshape(self.n, 1, 1, self.channels)

    def cover(self, d: np.ndarray, soft: float = 1.0) -> np.ndarray:
        """Anti-aliased coverage of {d < 0}."""
        c = d * (-self.s / soft)
        c += 0.5
        return np.clip(c, 0.0, 1.0, out=c)


def _over(img: np.ndarray, alpha: np.ndarray, color: Any) -> None:
    img += alpha[..., None] * (color - img)


def render(p: dict[str, np.ndarray], nf: dict[str, np.ndarray], h: int, w: int, channels: int,
           noise: float, windows: bool = True) -> np.ndarray:
    """Draw one chunk of faces as an ``n x h x w x channels`` uint8 array.

    ``windows=False`` draws the facial features over the whole image instead of only
    inside their boxes: slower, same pixels (a test checks that).
    """
    chunk = _Chunk(p, len(p["label"]), channels, min(h, w) / 2.0)
    s = chunk.s
    u = ((np.arange(w, dtype=np.float64) + 0.5 - w / 2) / s)[None, None, :]
    v = ((np.arange(h, dtype=np.float64) + 0.5 - h / 2) / s)[None, :, None]
    # Face coordinates: undo the per-sample similarity transform (rotation, scale, shift).
    sin, cos = sincos(chunk.col("rot"))
    du, dv = u - chunk.col("tx"), v - chunk.col("ty")
    x = (cos * du + sin * dv) / chunk.col("scale")
    y = (-sin * du + cos * dv) / chunk.col("scale")
    img = _background(chunk, nf)
    yf, skin = _head(chunk, nf, img, x, y)

    # Facial features, each group drawn only inside its window, around a centre shifted by the yaw.
    def region(group: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = _window(p, h, w, s, FEATURE_BOXES[group] if windows else None)
        return x[:, rows, cols] - chunk.col("yaw"), yf[:, rows, cols], img[:, rows, cols]

    _eyes_and_brows(chunk, skin, *region("eyes"))
    _nose(chunk, skin, *region("nose"))
    _mouth(chunk, skin, *region("mouth"))
    return _finish(chunk, nf, img, u, v, noise)


def _background(chunk: _Chunk, nf: dict[str, np.ndarray]) -> np.ndarray:
    """Tinted grey level with a soft blotchy gradient: the float image the rest is drawn over."""
    bg = (chunk.col("bg_level") + 30.0 * nf["low"])[..., None] * np.ones(chunk.channels, np.float64)
    if chunk.channels == 3:
        bg = bg + np.asarray(chunk.p["bg_tint"], dtype=np.float64).reshape(chunk.n, 1, 1, 3)
    return np.ascontiguousarray(bg, dtype=np.float64)


def _head(chunk: _Chunk, nf: dict[str, np.ndarray], img: np.ndarray, x: np.ndarray,
          y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clothes, neck, hair, ears, the face and the fringe; returns (y relative to the face centre, skin colour)."""
    col, cover = chunk.col, chunk.cover
    # Clothes/shoulders and neck.
    d, _ = _ellipse(x, y - 1.38, 1.0, 0.5)
    _over(img, cover(d), chunk.rgb("cloth") * (1 + 0.06 * nf["mid"][..., None]))
    skin = chunk.rgb("skin")
    d = np.maximum(np.abs(x) - 0.21, 0.25 - y)
    _over(img, cover(d), skin * 0.78)

    fa, fb, fcy = col("face_a"), col("face_b"), col("face_cy")
    yf = y - fcy
    # Hair behind the head (down to the hair's side length).
    hair = chunk.rgb("hair") * (1 + 0.22 * nf["hair"] + 0.05 * nf["mid"])[..., None]
    vol = col("hair_vol")
    d, _ = _ellipse(x, yf + 0.03, fa + vol, fb + vol * 1.1)
    d = np.maximum(d, yf - col("hair_side"))
    _over(img, cover(d), hair)
    # Ears (mirrored), then the face: an ellipse whose lower half narrows towards the chin.
    ax = np.abs(x)
    d, _ = _ellipse(ax - fa, yf - col("eye_y") - 0.08, 0.06, 0.11)
    _over(img, cover(d), skin * 0.88)
    chin = np.clip(yf / fb, 0.0, 1.0)
    taper = 1 - col("taper") * (chin * chin)
    d, r = _ellipse(x / taper, yf, fa, fb)
    r2 = np.clip(r, 0.0, 1.0)
    r2 *= r2
    shade = (1 - 0.28 * (r2 * r2)) * (1 + 0.04 * nf["mid"])  # r**4 without np.power (not correctly rounded)
    _over(img, cover(d * taper), skin * shade[..., None])
    # Fringe: hair over the forehead above an arched hairline.
    # (It reaches a pixel past the face edge, over the back hair, so that no seam shows.)
    fringe = np.maximum(d * taper - 1.0 / chunk.s, yf - col("hairline") - col("fringe_curve") * x * x)
    _over(img, cover(fringe), hair)
    return yf, skin


def _eyes_and_brows(chunk: _Chunk, skin: np.ndarray, xc: np.ndarray, yw: np.ndarray, im: np.ndarray) -> None:
    """Eye socket shadow, eye white, iris, upper lid, then the brows, into the eyes' window ``im``."""
    col, cover, channels = chunk.col, chunk.cover, chunk.channels
    ye = yw - col("eye_y")
    ex = np.abs(xc) - col("eye_dx")  # per-eye x (the eyes mirror each other; + = towards the ear)
    ew = col("eye_w")
    d, _ = _ellipse(ex, ye + 0.01, ew * 1.5, ew * 0.9)
    _over(im, cover(d, 3.0) * 0.35, skin * 0.7)
    eh = ew * col("eye_h") * np.clip(1 + col("x_eye_open"), 0.25, 2.0)
    d_eye, _ = _ellipse(ex, ye, ew, eh)
    _over(im, cover(d_eye), np.full(channels, 225.0))
    d, _ = _ellipse(np.abs(xc - col("gaze")) - col("eye_dx"), ye, ew * 0.55, ew * 0.55)
    _over(im, cover(np.maximum(d, d_eye)), col("iris")[..., None] * np.ones(channels, np.float64))
    d = np.maximum(np.abs(d_eye) - 0.012, ye)
    _over(im, cover(d), skin * 0.3)
    # Brows: thick arcs over the eyes; raise lifts them, tilt lifts the inner ends.
    bl = col("brow_l")
    t = ex / bl
    yb = (-col("brow_gap") - col("x_brow_raise") - eh
          - (col("brow_arch0") + col("x_brow_arch")) * (1 - t * t) + col("x_brow_tilt") * t)
    d = np.maximum(np.abs(ye - yb) - col("brow_t") * (0.5 - 0.15 * t), np.abs(ex) - bl)
    brow = skin * (1 - col("brow_dark"))[..., None] + chunk.rgb("hair") * col("brow_dark")[..., None] * 0.6
    _over(im, cover(d), brow)


def _nose(chunk: _Chunk, skin: np.ndarray, xc: np.ndarray, yw: np.ndarray, im: np.ndarray) -> None:
    """A soft shadow under the tip and two nostrils, into the nose's window ``im``."""
    col, cover = chunk.col, chunk.cover
    yn = yw - col("nose_y")
    d, _ = _ellipse(xc, yn, col("nose_w") * 1.6, 0.035)
    _over(im, cover(d, 3.0) * 0.45, skin * 0.6)
    d, _ = _ellipse(np.abs(xc) - col("nose_w") * 0.7, yn, 0.018, 0.011)
    _over(im, cover(d, 1.5) * 0.8, skin * 0.35)


def _mouth(chunk: _Chunk, skin: np.ndarray, xc: np.ndarray, yw: np.ndarray, im: np.ndarray) -> None:
    """A curved lens of lips around an opening (dark, teeth on top for a smile), into the mouth's window ``im``."""
    col, cover = chunk.col, chunk.cover
    mw = col("mouth_w") * np.clip(1 + col("x_width"), 0.4, 1.6)
    t = xc / mw
    lens = np.sqrt(np.clip(1 - t * t, 0, 1))
    ym = yw - col("mouth_y") + col("x_curve") * t * t
    opening = col("x_open")
    lip = np.maximum(col("lip_t") + col("x_lip"), 0.008)
    inside = np.abs(ym)
    d = np.maximum(inside - (opening + lip) * lens, np.abs(xc) - mw)
    _over(im, cover(d), chunk.rgb("lip"))
    d_open = np.maximum(inside - np.maximum(opening * lens, 0.011), np.abs(xc) - mw * 0.96)
    _over(im, cover(d_open), skin * 0.22)
    teeth = np.maximum(d_open, ym + 0.15 * opening)
    _over(im, cover(teeth) * np.clip(col("x_teeth"), 0, 1), np.full(chunk.channels, 215.0))


def _finish(chunk: _Chunk, nf: dict[str, np.ndarray], img: np.ndarray, u: np.ndarray, v: np.ndarray,
            noise: float) -> np.ndarray:
    """Lighting, contrast, texture and sensor noise; the uint8 images."""
    col = chunk.col
    light_sin, light_cos = sincos(col("light_dir"))
    light = 1 + col("light_amp") * (light_cos * u + light_sin * v)
    img *= (light * col("bright"))[..., None]
    img = (img - 128.0) * col("contrast")[..., None] + 128.0
    img += (2.0 * nf["mid"] + noise * col("noise_gain") * nf["pixel"])[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
