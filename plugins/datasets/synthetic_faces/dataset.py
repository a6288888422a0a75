"""``synthetic-faces``: procedurally drawn faces with facial expressions, made in code.

No download and no torch: every image is drawn with numpy from a seed. Each face has an
*identity* (face shape and proportions, skin tone, hair colour and style, eye/brow/mouth
geometry) and an *expression* (mouth curvature and opening, mouth width, brow height and
tilt, eye opening), plus pose (rotation, scale, shift, a small yaw of the features), lighting
(direction, strength, brightness, contrast), background, skin/hair texture and sensor
noise. Shapes are drawn from signed distances with a one-pixel anti-aliasing ramp, so
edges are smooth and the images have natural-image-like spectra: heavy JPEG blurs the
few-pixel expression cues away, light compression keeps them.

The pixels are bit-identical on every CPU, numpy version (1.26 and 2.x) and thread count
(generator version 2), because a leaderboard's dataset fingerprint must not change with the
machine that regenerates it. So nothing goes through code whose last bits are free to vary:
no numpy distribution methods (their algorithms may change between numpy versions), no SIMD
transcendental ufuncs (sin, cos, power round differently on AVX2/AVX-512/plain code), no
matmul (BLAS kernels and thread counts change the summation order), no mixing of numpy
scalars with float32 (numpy 2 promotes differently). Random numbers are PCG64's raw 64-bit
outputs (stable for a SeedSequence) turned into uniforms, normal-like draws and shuffles by
exact steps (:class:`~taskcodec_plugins.datasets.synthetic_faces.random_draws.Draws`); drawing is float64 with only correctly rounded operations in a
fixed order, sin and cos coming from a fixed polynomial.

Options (constructor keyword arguments, all optional):

``size``        ``[height, width]``, default ``[64, 64]`` (16..512 each; ``[112, 96]`` works).
``color``       ``"gray"`` (default, ``H x W``) or ``"rgb"`` (``H x W x 3``). The same
                faces in both: gray is the ITU-R BT.601 luma of the colours.
``count``       samples in the split: an int for every split, or a mapping such as
                ``{train: 2000, val: 400, test: 600}`` (missing splits keep the default).
                Defaults: train 2000, val 500, test 600. Sample ``i`` does not depend on
                ``count``: a smaller count gives a prefix of a larger one.
``seed``        int >= 0, default 0. Identities come from one random stream of the seed,
                each split's samples from another (``train``, ``val``, ``test`` differ).
``identities``  how many people (default 40), shared by all splits (like a FER dataset
                whose subjects appear in train and test with other images).
``classes``     the expressions to draw, a subset of ``EXPRESSIONS`` in the order wanted;
                default all five: neutral, happy, sad, surprise, angry. Labels are the
                indices into this list; classes are balanced within every 128 samples.
``noise``       sensor-noise standard deviation in grey levels (default 3.0; 0 = none).

Sample ids are ``<split>-<index:06d>`` (``train-000123``), so splits never share ids.

Look at it::

    python -m taskcodec_plugins.datasets.synthetic_faces.dataset --out /tmp/faces.png --split train

writes a contact sheet, one row per expression.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import taskcodec
from taskcodec import Dataset, DatasetError, Sample
from taskcodec_plugins.datasets.synthetic_faces import generated_cache
from taskcodec_plugins.datasets.synthetic_faces.random_draws import Draws
from taskcodec_plugins.datasets.synthetic_faces.render import render

GENERATOR_VERSION = "2"
CHUNK = 128  # samples per random stream; sample i depends only on (seed, split, i)
RENDER_BATCH = 16  # samples drawn at a time: small arrays stay in the CPU's caches (pixels do not depend on it)
DEFAULT_COUNTS = {"train": 2000, "val": 500, "test": 600}

# Deviations from the neutral face at full intensity (units: half the image's shorter side).
#   curve: mouth-corner lift (+ smile, - frown); open: mouth opening half-height;
#   width: relative mouth width change; brow_raise: brow lift; brow_tilt: inner-end lift
#   (+ sad/worried, - angry); eye_open: relative eye opening change; teeth: teeth showing.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"curve": 0.075, "open": 0.022, "width": 0.12, "brow_raise": 0.008, "eye_open": -0.22, "teeth": 1.0},
    "sad": {"curve": -0.065, "width": -0.06, "brow_raise": 0.006, "brow_tilt": 0.055, "eye_open": -0.12},
    "surprise": {"open": 0.10, "width": -0.30, "brow_raise": 0.055, "brow_arch": 0.02, "eye_open": 0.30},
    "angry": {"curve": -0.015, "width": -0.10, "brow_raise": -0.05, "brow_tilt": -0.06, "eye_open": -0.18,
              "lip": -0.008},
}
EXPRESSION_KEYS = ("curve", "open", "width", "brow_raise", "brow_tilt", "brow_arch", "eye_open", "teeth", "lip")
# Per-sample random variation of each expression parameter (standard deviations).
EXPRESSION_JITTER = {"curve": 0.010, "open": 0.004, "width": 0.04, "brow_raise": 0.008, "brow_tilt": 0.008,
                     "brow_arch": 0.006, "eye_open": 0.06, "teeth": 0.0, "lip": 0.002}
INTENSITY = (0.6, 1.0)  # how strongly each sample shows its expression

SKIN_PALETTE = np.array([[250, 218, 195], [228, 184, 152], [196, 146, 110], [146, 100, 70], [98, 66, 46]],
                        dtype=np.float64)
HAIR_PALETTE = np.array([[28, 22, 20], [68, 44, 30], [118, 80, 48], [205, 170, 115], [160, 158, 155],
                         [140, 62, 32]], dtype=np.float64)
HAIR_WEIGHTS = (0.3, 0.25, 0.15, 0.12, 0.1, 0.08)


def _split_key(split: str) -> int:
    return zlib.crc32(split.encode())


def _fail(option: str, value: Any, expected: str) -> DatasetError:
    return taskcodec.invalid_option(SyntheticFaces, option, value, expected)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _checked_size(size: Any) -> Sequence[int]:
    """Option ``size``: [height, width] (or one integer for both), each in 16..512."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(s) for s in size)
            or not all(16 <= s <= 512 for s in size)):
        raise _fail("size", size, "[height, width] with integers in 16..512, e.g. [64, 64] or [112, 96]")
    return size


def _checked_count(count: Any, split: str, splits: Sequence[str]) -> int:
    """The image count of ``split`` from option ``count``: None (the defaults), one count for every split,
    or a mapping split -> count (the others keep their defaults)."""
    counts = dict(DEFAULT_COUNTS)
    if isinstance(count, Mapping):
        unknown = sorted(set(count) - set(splits))
        if unknown:
            raise _fail("count", dict(count), f"a mapping with keys among {list(splits)} (unknown: {unknown})")
        counts.update(count)
    elif count is not None:
        counts = {s: count for s in splits}
    n = counts[split]
    if not _is_int(n) or n < 1:
        raise _fail("count", count, "a positive integer, or a mapping split -> positive integer")
    return n


def _checked_classes(classes: Any) -> Sequence[str]:
    """Option ``classes``: at least 2 distinct expressions (None: all of them)."""
    if classes is None:
        classes = tuple(EXPRESSIONS)
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise _fail("classes", classes, f"a list of expressions among {list(EXPRESSIONS)}")
    bad = [c for c in classes if c not in EXPRESSIONS]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise _fail("classes", list(classes),
                    f"at least 2 distinct names among {list(EXPRESSIONS)}" + (f" (unknown: {bad})" if bad else ""))
    return classes


class SyntheticFaces(Dataset):
    """Generated faces labelled with their expression (see the module docstring for options)."""

    name = "synthetic-faces"
    wants_cache_dir = True  # generated arrays kept in the store (see generated_cache)
    splits = ("train", "val", "test")
    needs_root = False
    description = "procedural faces with 5 expressions, drawn from a seed with numpy (no download)"
    accepted_options = ("size", "color", "count", "seed", "identities", "classes", "noise")

    def __init__(
        self,
        root: Path | None = None,
        split: str = "test",
        *,
        size: Sequence[int] = (64, 64),
        color: str = "gray",
        count: int | Mapping[str, int] | None = None,
        seed: int = 0,
        identities: int = 40,
        classes: Sequence[str] | None = None,
        noise: float = 3.0,
        cache_dir: Path | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:  # a config typo ("colour") must not silently give the default images
            raise taskcodec.unknown_options(self, unknown, self.accepted_options)
        if split not in self.splits:
            raise _fail("split", split, f"one of {list(self.splits)}")
        size = _checked_size(size)
        if color not in ("gray", "rgb"):
            raise _fail("color", color, "'gray' or 'rgb'")
        n = _checked_count(count, split, self.splits)
        if not _is_int(seed) or seed < 0:
            raise _fail("seed", seed, "an integer >= 0")
        if not _is_int(identities) or not 1 <= identities <= 100_000:
            raise _fail("identities", identities, "an integer in 1..100000")
        classes = _checked_classes(classes)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 64:
            raise _fail("noise", noise, "a number in 0..64 (grey levels)")

        self.root = root
        self.split = split
        self.size = (int(size[0]), int(size[1]))
        self.color = color
        self.count = int(n)
        self.seed = int(seed)
        self.n_identities = int(identities)
        self.classes = tuple(classes)
        self.noise = float(noise)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None  # the runner's, in its store
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._identity_of: np.ndarray | None = None

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Sample:
        if not -self.count <= index < self.count:
            raise IndexError(f"synthetic-faces {self.split}: index {index} out of range 0..{self.count - 1}")
        index %= self.count
        images, labels = self._generate()
        return Sample(id=self._sample_id(index), image=images[index], label=int(labels[index]))

    def ids_and_labels(self) -> list[tuple[str, int]]:
        """Without a Sample per image: a board's rows read the labels once per row (32 x 600 for the quickstart)."""
        return [(self._sample_id(index), int(label)) for index, label in enumerate(self._generate()[1])]

    def _sample_id(self, index: int) -> str:
        return f"{self.split}-{index:06d}"

    def options(self) -> dict[str, Any]:
        return {"size": list(self.size), "color": self.color, "count": self.count, "seed": self.seed,
                "identities": self.n_identities, "classes": list(self.classes), "noise": self.noise}

    def metadata(self) -> dict[str, Any]:
        labels = self._generate()[1]
        return {
            "source": "generated in code (taskcodec_plugins.datasets.synthetic_faces.dataset), no download",
            "generator_version": GENERATOR_VERSION,
            "split": self.split,
            **self.options(),
            "class_counts": {c: int((labels == i).sum()) for i, c in enumerate(self.classes)},
            "expressions": {c: EXPRESSIONS[c] for c in self.classes},
            "expression_jitter": EXPRESSION_JITTER,
            "expression_intensity": list(INTENSITY),
            "random_streams": "raw 64-bit outputs of numpy's PCG64 bit generator (random_raw), converted "
                              "exactly: uniform = (raw >> 11) * 2**-53; normal-like = centred sum of 12 "
                              "16-bit fields of raws i, n+i, 2n+i (Irwin-Hall); integer in 0..k-1 = "
                              "((raw >> 32) * k) >> 32; labels shuffled by Fisher-Yates; "
                              "identities: SeedSequence([seed, 0x1D, i]); "
                              f"samples: SeedSequence([seed, crc32(split), chunk]) per {CHUNK} samples; "
                              "pixels in float64 with correctly rounded operations only (polynomial sin/cos, "
                              "no matmul), the same bits on every CPU, numpy version and thread count",
        }

    def identity(self, index: int) -> int:
        """The identity (person index) drawn in sample ``index``."""
        self._generate()
        assert self._identity_of is not None
        return int(self._identity_of[index])

    @property
    def images(self) -> np.ndarray:
        """All images as one read-only ``N x H x W[ x 3]`` uint8 array."""
        return self._generate()[0]

    @property
    def labels(self) -> np.ndarray:
        return self._generate()[1]

    # ------------------------------------------------------------------ generation
    def _generate(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None:
            cached = self._cached()
            if cached is None:
                cached = self._render_all()
                self._remember(*cached)
            images, labels, who = cached
            for array in cached:
                array.flags.writeable = False
            self._images, self._labels, self._identity_of = images, labels, who
        assert self._labels is not None
        return self._images, self._labels

    def _cached(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        return generated_cache.read(self._cache_path()) if self.cache_dir is not None else None

    def _remember(self, images: np.ndarray, labels: np.ndarray, who: np.ndarray) -> None:
        if self.cache_dir is not None:
            generated_cache.write(self._cache_path(), (images, labels, who))

    def _cache_path(self) -> Path:
        assert self.cache_dir is not None
        return generated_cache.path(self.cache_dir, GENERATOR_VERSION, {"split": self.split, **self.options()})

    def _render_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every image, label and identity of the split, drawn and rendered."""
        ident = _identity_table(self.seed, self.n_identities)
        h, w = self.size
        channels = 3 if self.color == "rgb" else 1
        out = np.empty((self.count, h, w, channels), dtype=np.uint8)
        labels = np.empty(self.count, dtype=np.int64)
        who = np.empty(self.count, dtype=np.int64)
        for chunk in range((self.count + CHUNK - 1) // CHUNK):
            start = chunk * CHUNK
            stop = min(start + CHUNK, self.count)
            rng = Draws([self.seed, _split_key(self.split), chunk])
            params = _sample_params(rng, ident, self.classes, self.n_identities)
            noise_fields = _noise_fields(rng, CHUNK, h, w)
            keep = slice(0, stop - start)
            params = {k: v[keep] for k, v in params.items()}
            noise_fields = {k: v[keep] for k, v in noise_fields.items()}
            for lo in range(0, stop - start, RENDER_BATCH):
                part = slice(lo, min(lo + RENDER_BATCH, stop - start))
                out[start + part.start:start + part.stop] = render(
                    {k: v[part] for k, v in params.items()}, {k: v[part] for k, v in noise_fields.items()},
                    h, w, channels, self.noise)
            labels[start:stop] = params["label"]
            who[start:stop] = params["identity"]
        images = out[..., 0] if channels == 1 else out
        return np.ascontiguousarray(images), labels, who


# ---------------------------------------------------------------------- parameters
def _identity_table(seed: int, n: int) -> dict[str, np.ndarray]:
    """One row of face parameters per identity; identity i depends only on (seed, i)."""
    rows = []
    for i in range(n):
        r = Draws([seed, 0x1D, i])
        tone = r.uniform(0.0, len(SKIN_PALETTE) - 1.0)
        lo = int(min(tone, len(SKIN_PALETTE) - 2))
        skin = SKIN_PALETTE[lo] + (tone - lo) * (SKIN_PALETTE[lo + 1] - SKIN_PALETTE[lo])
        skin = skin * r.uniform(0.95, 1.05, 3)
        hair = HAIR_PALETTE[r.choice(HAIR_WEIGHTS)] * r.uniform(0.85, 1.15)
        lips = skin * np.array([r.uniform(0.78, 0.9), r.uniform(0.6, 0.72), r.uniform(0.62, 0.74)])
        rows.append({
            "face_a": r.uniform(0.50, 0.60), "face_b": r.uniform(0.66, 0.76), "taper": r.uniform(0.12, 0.32),
            "face_cy": r.uniform(0.02, 0.08),
            "skin_r": skin[0], "skin_g": skin[1], "skin_b": skin[2],
            "hair_r": hair[0], "hair_g": hair[1], "hair_b": hair[2],
            "lip_r": lips[0], "lip_g": lips[1], "lip_b": lips[2],
            "cloth_r": r.uniform(20.0, 235.0), "cloth_g": r.uniform(20.0, 235.0), "cloth_b": r.uniform(20.0, 235.0),
            "hair_vol": r.uniform(0.03, 0.13), "hairline": r.uniform(-0.52, -0.32), "hair_side": r.uniform(-0.15, 0.6),
            "fringe_curve": r.uniform(0.3, 1.0),
            "eye_y": r.uniform(-0.12, -0.05), "eye_dx": r.uniform(0.18, 0.23), "eye_w": r.uniform(0.07, 0.09),
            "eye_h": r.uniform(0.38, 0.5), "iris": r.uniform(25.0, 110.0),
            "brow_t": r.uniform(0.022, 0.036), "brow_l": r.uniform(0.085, 0.11), "brow_arch0": r.uniform(0.01, 0.03),
            "brow_gap": r.uniform(0.11, 0.14), "brow_dark": r.uniform(0.3, 0.7),
            "nose_y": r.uniform(0.13, 0.2), "nose_w": r.uniform(0.035, 0.05),
            "mouth_y": r.uniform(0.33, 0.39), "mouth_w": r.uniform(0.13, 0.165), "lip_t": r.uniform(0.018, 0.028),
            "rest_curve": r.normal(0.008), "rest_tilt": r.normal(0.008),
        })
    return {k: np.array([row[k] for row in rows], dtype=np.float64) for k in rows[0]}


def _sample_params(rng: Draws, ident: dict[str, np.ndarray], classes: Sequence[str],
                   n_identities: int) -> dict[str, np.ndarray]:
    """Labels, identities, expression, pose and lighting for one chunk of CHUNK samples."""
    n = CHUNK
    k = len(classes)
    label = rng.shuffled(np.arange(n) % k)
    who = rng.below(n_identities, n)
    p: dict[str, np.ndarray] = {"label": label, "identity": who}
    for key, value in ident.items():
        p[key] = value[who]
    intensity = rng.uniform(*INTENSITY, n)
    table = np.array([[EXPRESSIONS[c].get(key, 0.0) for key in EXPRESSION_KEYS] for c in classes], dtype=np.float64)
    for j, key in enumerate(EXPRESSION_KEYS):
        p["x_" + key] = table[label, j] * intensity + rng.normal(EXPRESSION_JITTER[key], n)
    p["x_curve"] = p["x_curve"] + p["rest_curve"]
    p["x_brow_tilt"] = p["x_brow_tilt"] + p["rest_tilt"]
    p["x_open"] = np.abs(p["x_open"])
    p["rot"] = np.clip(rng.normal(0.07, n), -0.17, 0.17)
    p["scale"] = rng.uniform(0.92, 1.06, n)
    p["tx"] = rng.uniform(-0.06, 0.06, n)
    p["ty"] = rng.uniform(-0.05, 0.05, n)
    p["yaw"] = rng.uniform(-0.045, 0.045, n)
    p["gaze"] = rng.uniform(-0.02, 0.02, n)
    p["light_dir"] = rng.uniform(0.0, 2 * math.pi, n)
    p["light_amp"] = rng.uniform(0.0, 0.3, n)
    p["bright"] = rng.uniform(0.82, 1.12, n)
    p["contrast"] = rng.uniform(0.85, 1.15, n)
    p["bg_level"] = rng.uniform(40.0, 220.0, n)
    p["bg_tint"] = rng.uniform(-25.0, 25.0, (n, 3))
    p["noise_gain"] = rng.uniform(0.6, 1.4, n)
    return p


def _stretch(values: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Linear interpolation stretching ``values``' samples along ``axis`` over n_out pixels.

    Each output is ``(1 - f) * a + f * b`` of its two neighbours, computed elementwise (a
    matmul would round differently from one BLAS kernel or thread count to another).
    """
    n_in = values.shape[axis]
    pos = (np.arange(n_out) + 0.5) / n_out * (n_in - 1)
    lo = np.minimum(pos.astype(np.int64), n_in - 2)
    frac = pos - lo
    shape = [1] * values.ndim
    shape[axis] = n_out
    frac = frac.reshape(shape)
    return np.take(values, lo, axis=axis) * (1.0 - frac) + np.take(values, lo + 1, axis=axis) * frac


def _smooth_noise(rng: Draws, n: int, h: int, w: int, cells_h: int, cells_w: int) -> np.ndarray:
    base = rng.normal(1.0, (n, cells_h, cells_w))
    return _stretch(_stretch(base, 1, h), 2, w)


def _noise_fields(rng: Draws, n: int, h: int, w: int) -> dict[str, np.ndarray]:
    return {
        "low": _smooth_noise(rng, n, h, w, 6, 6),  # lighting/background blotches
        "mid": _smooth_noise(rng, n, h, w, max(h // 4, 2), max(w // 4, 2)),  # skin texture
        "hair": _smooth_noise(rng, n, h, w, max(h // 6, 2), max(w // 2, 2)),  # strands
        "pixel": rng.normal(1.0, (n, h, w)),  # sensor noise
    }


# ---------------------------------------------------------------------- viewing
def contact_sheet(dataset: SyntheticFaces, path: str | Path, per_class: int = 10, scale: int = 2) -> Path:
    """Write a PNG with one row per class (``per_class`` samples each), magnified ``scale`` x."""
    import imagecodecs

    images, labels = dataset.images, dataset.labels
    h, w = dataset.size
    gap = 2
    rows = []
    for k in range(len(dataset.classes)):
        idx = np.flatnonzero(labels == k)[:per_class]
        tiles = [images[i] for i in idx] + [np.zeros_like(images[0])] * (per_class - len(idx))
        row = np.full((h + gap, per_class * (w + gap)) + images.shape[3:], 255, np.uint8)
        for j, tile in enumerate(tiles):
            row[:h, j * (w + gap): j * (w + gap) + w] = tile
        rows.append(row)
    sheet = np.concatenate(rows).repeat(scale, 0).repeat(scale, 1)
    path = Path(path)
    path.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(sheet)))
    return path


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="write a contact sheet of synthetic-faces samples")
    parser.add_argument("--out", default="/tmp/synthetic_faces.png")
    parser.add_argument("--split", default="train", choices=SyntheticFaces.splits)
    parser.add_argument("--size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"))
    parser.add_argument("--color", default="gray", choices=["gray", "rgb"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args(argv)
    ds = SyntheticFaces(None, args.split, size=args.size, color=args.color, seed=args.seed,
                        count=max(CHUNK, 5 * args.per_class * 2))
    print(contact_sheet(ds, args.out, args.per_class, args.scale))


if __name__ == "__main__":
    _main()
