"""Reading image files for the dataset plugins: one rule for every dataset that reads them.

Datasets hand codecs 8-bit gray (``H x W``) or RGB (``H x W x 3``) ``uint8`` arrays. A file is
brought there by this rule, the same in ``image-dir``, ``kodak``, ``ferplus``, ``image-folder``
and ``lfw``:

- 8-bit gray (Pillow mode ``L``) and 8-bit RGB: as stored.
- 1-bit (``1``): gray 0 / 255. Palette (``P``): its RGB colours.
- An alpha channel (``LA``, ``RGBA``, ``PA``, a palette or gray/RGB PNG with a transparent colour):
  dropped when every pixel is fully opaque; an image with any transparent pixel is refused, since
  what to composite it on would change the pixels the codecs see.
- 16 bits per sample (PNG, TIFF, PGM/PPM; gray, RGB or with an opaque alpha): scaled to 8 bits
  as ``round(v / 257)`` (65535 -> 255 exactly; an 8-bit image stored as 16-bit, ``v * 257``,
  comes back unchanged), with a :class:`HighBitDepthWarning` naming the file.
- Anything else (CMYK, YCbCr, LAB, HSV, 32-bit integer or float, premultiplied alpha,
  animations and multi-page files) is refused: a :class:`taskcodec.DatasetError` naming the file,
  its mode and what is accepted.

Then the dataset's colour option applies: ``rgb`` (gray replicated), ``gray`` (Pillow's ITU-R
601-2 luma, ``L = R * 299/1000 + G * 587/1000 + B * 114/1000``) or ``keep``.

Size: an image with more than ``max_pixels`` pixels (default :data:`MAX_PIXELS`, 8192 x 8192)
is refused from its header, before anything is decoded. Pillow's own decompression-bomb check
is replaced by this one, whose message names the file, its size and the limit. Files that
cannot be decoded (truncated, corrupt, not an image) raise a DatasetError naming the file.
"""
from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from taskcodec import DatasetError
from taskcodec_plugins.datasets.plain_png import read_plain_png

MAX_PIXELS = 8192 * 8192  # 67,108,864 pixels (201 MB as RGB); option ``max_pixels`` where a dataset has it
COLORS = ("rgb", "gray", "keep")
ACCEPTED = ("8-bit gray or RGB; 1-bit, palette, and gray/RGB with a fully opaque alpha channel are converted; "
            "16-bit PNG/TIFF/PGM/PPM are scaled to 8 bits (round(v / 257))")
_ALPHA_MODES = {"LA": "L", "RGBA": "RGB", "PA": "RGB"}
_OPEN_LOCK = threading.Lock()


class HighBitDepthWarning(UserWarning):
    """A 16-bit image was scaled to 8 bits; the message names the file."""


def read_image_file(path: str | Path, color: str = "keep", *, where: str = "",
                    max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image file at ``path`` as uint8 ``H x W`` (gray) or ``H x W x 3`` (RGB), by the module's rule.

    ``color``: ``rgb``, ``gray`` or ``keep`` (as stored, after the rule). ``where`` prefixes every
    error message (the dataset, e.g. ``"ferplus test"``)."""
    fast = read_plain_image(path, color, max_pixels)
    if fast is not None:
        return fast
    image = open_image(path, color, where=where, max_pixels=max_pixels)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def read_plain_image(path: str | Path, color: str, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """The file as :func:`read_image_file` gives it where it is a plain 8-bit gray/RGB PNG (read by
    :func:`~taskcodec_plugins.datasets.plain_png.read_plain_png`, the same pixels 2-3x faster), else None."""
    if not str(path).lower().endswith(".png"):
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None  # Pillow's path names the missing or unreadable file
    pixels = read_plain_png(data, max_pixels)
    if pixels is None:
        return None
    if color == "rgb" and pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)  # what Pillow's L -> RGB conversion does
    if color == "gray" and pixels.ndim == 3:
        from PIL import Image

        return np.asarray(Image.fromarray(pixels, "RGB").convert("L"), dtype=np.uint8).copy()  # Pillow's own luma
    return pixels


def open_image(path: str | Path, color: str = "keep", *, where: str = "", max_pixels: int = MAX_PIXELS) -> Any:
    """As :func:`read_image_file`, but a loaded Pillow image of mode ``L`` or ``RGB`` (file closed)."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    path = Path(path)
    prefix = f"{where}: " if where else ""
    try:
        with _open_checked(path, prefix, max_pixels) as im:
            image = _to_8bit(im, path, prefix)
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{prefix}image file {str(path)!r} is missing") from None
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError ... on broken files
        raise DatasetError(f"{prefix}cannot read image {str(path)!r}: {type(exc).__name__}: {exc}") from None
    if color == "rgb" and image.mode != "RGB":
        image = image.convert("RGB")
    elif color == "gray" and image.mode != "L":
        image = image.convert("L")
    return image


def _open_checked(path: Path, prefix: str, max_pixels: int) -> Any:
    """Open lazily (header only) and refuse an image larger than ``max_pixels`` before decoding it."""
    from PIL import Image

    # Pillow's decompression-bomb check would raise without naming the file, at its own limit: our
    # check replaces it for this open only (the lock keeps other threads' opens out of that window).
    with _OPEN_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            im = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise DatasetError(f"{prefix}image {str(path)!r} is {width}x{height} (width x height, {width * height:,} "
                           f"pixels), more than the limit of {max_pixels:,} pixels (option max_pixels; "
                           f"default {MAX_PIXELS:,} = 8192 x 8192)")
    return im


def _refuse(im: Any, path: Path, prefix: str, why: str) -> DatasetError:
    return DatasetError(f"{prefix}image {str(path)!r} ({im.format or 'unknown format'}, Pillow mode {im.mode!r}): "
                        f"{why}; accepted: {ACCEPTED}")


def _to_8bit(im: Any, path: Path, prefix: str) -> Any:
    """A new, loaded image of mode L or RGB holding ``im``'s pixels by the module's rule."""
    if getattr(im, "n_frames", 1) > 1:
        raise _refuse(im, path, prefix, f"it holds {im.n_frames} frames/pages; only single images are accepted")
    if _is_16bit(im):
        return _from_16bit(im, path, prefix)
    mode = im.mode
    if mode in ("L", "RGB"):
        if "transparency" in im.info:  # a PNG tRNS colour: transparent where a pixel has it
            return _drop_opaque_alpha(im.convert("LA" if mode == "L" else "RGBA"), path, prefix, im)
        im.load()
        return im.copy()
    if mode == "1":
        return im.convert("L")
    if mode == "P":
        if "transparency" in im.info:
            return _drop_opaque_alpha(im.convert("RGBA"), path, prefix, im)
        return im.convert("RGB")
    if mode in _ALPHA_MODES:
        return _drop_opaque_alpha(im.convert("RGBA") if mode == "PA" else im, path, prefix, im)
    raise _refuse(im, path, prefix, "this image mode is not accepted")


def _drop_opaque_alpha(im: Any, path: Path, prefix: str, original: Any) -> Any:
    """``im`` (LA or RGBA) without its alpha channel, if no pixel is transparent."""
    alpha = np.asarray(im.getchannel("A"))
    _check_opaque(alpha, 255, original, path, prefix)
    return im.convert(_ALPHA_MODES[im.mode])


def _check_opaque(alpha: np.ndarray, opaque: int, im: Any, path: Path, prefix: str) -> None:
    transparent = int(np.count_nonzero(alpha != opaque))
    if transparent:
        raise _refuse(im, path, prefix, f"{transparent} of its {alpha.size} pixels are not fully opaque "
                                        "(alpha < max); transparent images are refused")


def _rawmodes(im: Any) -> list[str]:
    """The raw modes Pillow will decode ``im``'s tiles from (e.g. ``RGB;16B`` for a 16-bit PNG)."""
    modes = []
    for tile in im.tile:
        args = tile[3]
        first = args[0] if isinstance(args, tuple) and args else args
        if isinstance(first, str):
            modes.append(first)
    return modes


def _ppm_maxval(im: Any) -> int:
    for tile in im.tile:
        args = tile[3]
        if isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], int):
            return args[1]
    return 255


def _is_16bit(im: Any) -> bool:
    if im.mode.startswith("I;16"):
        return True
    if im.format == "PPM" and (im.mode == "I" or _ppm_maxval(im) > 255):
        return True  # Pillow widens > 8-bit PGM to 0..65535 (mode I) and scales > 8-bit PPM to 0..255
    return any(";16" in raw for raw in _rawmodes(im))


def _from_16bit(im: Any, path: Path, prefix: str) -> Any:
    from PIL import Image

    if im.format == "PPM" and im.mode in ("RGB", "L"):
        im.load()  # Pillow's PPM decoder already scaled it: round(v / maxval * 255)
        out = im.copy()
    elif im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        samples = np.asarray(im)
        if isinstance(im.info.get("transparency"), int):  # a tRNS gray level: transparent where present
            _check_opaque(samples != im.info["transparency"], True, im, path, prefix)
        out = Image.fromarray(_scale_16bit(samples))
    elif im.format in ("PNG", "TIFF") and im.mode in ("RGB", "RGBA", "LA"):
        out = _color_16bit(path, im, prefix)  # Pillow would keep only the high byte of each sample
    else:
        raise _refuse(im, path, prefix, "16-bit images of this kind are not accepted")
    warnings.warn(f"{prefix}{path}: 16-bit image scaled to 8 bits (round(v / 257))", HighBitDepthWarning, stacklevel=2)
    return out


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """round(v / 257) for v in 0..65535, exactly (v / 257 is never half-way between integers)."""
    v = values.astype(np.int64)
    if v.size and (v.min() < 0 or v.max() > 65535):
        raise ValueError(f"16-bit samples outside 0..65535 ({v.min()}..{v.max()})")
    return ((v + 128) // 257).astype(np.uint8)


def _color_16bit(path: Path, im: Any, prefix: str) -> Any:
    """A 16-bit colour (or gray + alpha) PNG/TIFF, decoded at full depth by imagecodecs, then scaled."""
    import imagecodecs
    from PIL import Image

    data = path.read_bytes()
    samples = imagecodecs.png_decode(data) if im.format == "PNG" else imagecodecs.tiff_decode(data)
    if samples.ndim == 2:
        samples = samples[..., None]
    if samples.dtype != np.uint16 or samples.shape[:2] != (im.height, im.width) or samples.shape[2] not in (1, 2, 3, 4):
        raise _refuse(im, path, prefix, f"its 16-bit samples decode to {samples.dtype} {samples.shape}, expected "
                                        f"uint16 {im.height} x {im.width} x 1..4")
    if samples.shape[2] in (2, 4):  # the last channel is alpha
        _check_opaque(samples[..., -1], 65535, im, path, prefix)
        samples = samples[..., :-1]
    scaled = _scale_16bit(samples)
    return Image.fromarray(np.ascontiguousarray(scaled[..., 0]) if scaled.shape[2] == 1 else scaled)
