"""``synthetic-faces``: procedurally drawn faces with facial expressions, made in code.

No download and no torch: every image is drawn with numpy from a seed, so the dataset
is the same on every machine and in every process. Each face has an *identity* (face
shape and proportions, skin tone, hair colour and style, eye/brow/mouth geometry) and an
*expression* (mouth curvature and opening, mouth width, brow height and tilt, eye
opening), plus pose (rotation, scale, shift, a small yaw of the features), lighting
(direction, strength, brightness, contrast), background, skin/hair texture and sensor
noise. Shapes are drawn from signed distances with a one-pixel anti-aliasing ramp, so
edges are smooth and the images have natural-image-like spectra: heavy JPEG blurs the
few-pixel expression cues away, light compression keeps them.

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

    python -m taskcodec_plugins.synthetic_faces --out /tmp/faces.png --split train

writes a contact sheet, one row per expression.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import taskcodec
from taskcodec import Dataset, DatasetError, Sample
from taskcodec_plugins.synthetic_faces_render import render

GENERATOR_VERSION = "1"
CHUNK = 128  # samples per random stream; sample i depends only on (seed, split, i)
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
                        dtype=np.float32)
HAIR_PALETTE = np.array([[28, 22, 20], [68, 44, 30], [118, 80, 48], [205, 170, 115], [160, 158, 155],
                         [140, 62, 32]], dtype=np.float32)
HAIR_WEIGHTS = np.array([0.3, 0.25, 0.15, 0.12, 0.1, 0.08])


def _split_key(split: str) -> int:
    return zlib.crc32(split.encode())


def _fail(option: str, value: Any, expected: str) -> DatasetError:
    return DatasetError(f"synthetic-faces: option {option!r} = {value!r} is invalid; expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class SyntheticFaces(Dataset):
    """Generated faces labelled with their expression (see the module docstring for options)."""

    name = "synthetic-faces"
    splits = ("train", "val", "test")
    needs_root = False
    description = "procedural faces with 5 expressions, drawn from a seed with numpy (no download)"

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
    ) -> None:
        if split not in self.splits:
            raise _fail("split", split, f"one of {list(self.splits)}")
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (int(size), int(size))
        if (not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(s) for s in size)
                or not all(16 <= s <= 512 for s in size)):
            raise _fail("size", size, "[height, width] with integers in 16..512, e.g. [64, 64] or [112, 96]")
        if color not in ("gray", "rgb"):
            raise _fail("color", color, "'gray' or 'rgb'")
        counts = dict(DEFAULT_COUNTS)
        if isinstance(count, Mapping):
            unknown = sorted(set(count) - set(self.splits))
            if unknown:
                raise _fail("count", dict(count), f"a mapping with keys among {list(self.splits)} (unknown: {unknown})")
            counts.update(count)
        elif count is not None:
            counts = {s: count for s in self.splits}
        n = counts[split]
        if not _is_int(n) or n < 1:
            raise _fail("count", count, "a positive integer, or a mapping split -> positive integer")
        if not _is_int(seed) or seed < 0:
            raise _fail("seed", seed, "an integer >= 0")
        if not _is_int(identities) or not 1 <= identities <= 100_000:
            raise _fail("identities", identities, "an integer in 1..100000")
        if classes is None:
            classes = tuple(EXPRESSIONS)
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise _fail("classes", classes, f"a list of expressions among {list(EXPRESSIONS)}")
        bad = [c for c in classes if c not in EXPRESSIONS]
        if bad or len(set(classes)) != len(classes) or len(classes) < 2:
            raise _fail("classes", list(classes),
                        f"at least 2 distinct names among {list(EXPRESSIONS)}" + (f" (unknown: {bad})" if bad else ""))
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
        return Sample(id=f"{self.split}-{index:06d}", image=images[index], label=int(labels[index]))

    def options(self) -> dict[str, Any]:
        return {"size": list(self.size), "color": self.color, "count": self.count, "seed": self.seed,
                "identities": self.n_identities, "classes": list(self.classes), "noise": self.noise}

    def metadata(self) -> dict[str, Any]:
        labels = self._generate()[1]
        return {
            "source": "generated in code (taskcodec_plugins.synthetic_faces), no download",
            "generator_version": GENERATOR_VERSION,
            "split": self.split,
            **self.options(),
            "class_counts": {c: int((labels == i).sum()) for i, c in enumerate(self.classes)},
            "expressions": {c: EXPRESSIONS[c] for c in self.classes},
            "expression_jitter": EXPRESSION_JITTER,
            "expression_intensity": list(INTENSITY),
            "random_streams": "numpy PCG64; identities: SeedSequence([seed, 0x1D, i]); "
                              f"samples: SeedSequence([seed, crc32(split), chunk]) per {CHUNK} samples",
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
            ident = _identity_table(self.seed, self.n_identities)
            h, w = self.size
            channels = 3 if self.color == "rgb" else 1
            out = np.empty((self.count, h, w, channels), dtype=np.uint8)
            labels = np.empty(self.count, dtype=np.int64)
            who = np.empty(self.count, dtype=np.int64)
            for chunk in range((self.count + CHUNK - 1) // CHUNK):
                start = chunk * CHUNK
                stop = min(start + CHUNK, self.count)
                rng = np.random.Generator(np.random.PCG64(
                    np.random.SeedSequence([self.seed, _split_key(self.split), chunk])))
                params = _sample_params(rng, ident, self.classes, self.n_identities)
                noise_fields = _noise_fields(rng, CHUNK, h, w)
                keep = slice(0, stop - start)
                params = {k: v[keep] for k, v in params.items()}
                noise_fields = {k: v[keep] for k, v in noise_fields.items()}
                out[start:stop] = render(params, noise_fields, h, w, channels, self.noise)
                labels[start:stop] = params["label"]
                who[start:stop] = params["identity"]
            images = out[..., 0] if channels == 1 else out
            images.flags.writeable = False
            labels.flags.writeable = False
            self._images, self._labels, self._identity_of = images, labels, who
        assert self._labels is not None
        return self._images, self._labels


# ---------------------------------------------------------------------- parameters
def _identity_table(seed: int, n: int) -> dict[str, np.ndarray]:
    """One row of face parameters per identity; identity i depends only on (seed, i)."""
    rows = []
    for i in range(n):
        r = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x1D, i])))
        tone = r.uniform(0, len(SKIN_PALETTE) - 1)
        lo = int(min(tone, len(SKIN_PALETTE) - 2))
        skin = SKIN_PALETTE[lo] + (tone - lo) * (SKIN_PALETTE[lo + 1] - SKIN_PALETTE[lo])
        skin = skin * r.uniform(0.95, 1.05, 3)
        hair = HAIR_PALETTE[r.choice(len(HAIR_PALETTE), p=HAIR_WEIGHTS)] * r.uniform(0.85, 1.15)
        lips = skin * np.array([r.uniform(0.78, 0.9), r.uniform(0.6, 0.72), r.uniform(0.62, 0.74)])
        rows.append({
            "face_a": r.uniform(0.50, 0.60), "face_b": r.uniform(0.66, 0.76), "taper": r.uniform(0.12, 0.32),
            "face_cy": r.uniform(0.02, 0.08),
            "skin_r": skin[0], "skin_g": skin[1], "skin_b": skin[2],
            "hair_r": hair[0], "hair_g": hair[1], "hair_b": hair[2],
            "lip_r": lips[0], "lip_g": lips[1], "lip_b": lips[2],
            "cloth_r": r.uniform(20, 235), "cloth_g": r.uniform(20, 235), "cloth_b": r.uniform(20, 235),
            "hair_vol": r.uniform(0.03, 0.13), "hairline": r.uniform(-0.52, -0.32), "hair_side": r.uniform(-0.15, 0.6),
            "fringe_curve": r.uniform(0.3, 1.0),
            "eye_y": r.uniform(-0.12, -0.05), "eye_dx": r.uniform(0.18, 0.23), "eye_w": r.uniform(0.07, 0.09),
            "eye_h": r.uniform(0.38, 0.5), "iris": r.uniform(25, 110),
            "brow_t": r.uniform(0.022, 0.036), "brow_l": r.uniform(0.085, 0.11), "brow_arch0": r.uniform(0.01, 0.03),
            "brow_gap": r.uniform(0.11, 0.14), "brow_dark": r.uniform(0.3, 0.7),
            "nose_y": r.uniform(0.13, 0.2), "nose_w": r.uniform(0.035, 0.05),
            "mouth_y": r.uniform(0.33, 0.39), "mouth_w": r.uniform(0.13, 0.165), "lip_t": r.uniform(0.018, 0.028),
            "rest_curve": r.normal(0, 0.008), "rest_tilt": r.normal(0, 0.008),
        })
    return {k: np.array([row[k] for row in rows], dtype=np.float32) for k in rows[0]}


def _sample_params(rng: np.random.Generator, ident: dict[str, np.ndarray], classes: Sequence[str],
                   n_identities: int) -> dict[str, np.ndarray]:
    """Labels, identities, expression, pose and lighting for one chunk of CHUNK samples."""
    n = CHUNK
    k = len(classes)
    label = rng.permutation(np.arange(n) % k)
    who = rng.integers(0, n_identities, n)
    p: dict[str, np.ndarray] = {"label": label, "identity": who}
    for key, value in ident.items():
        p[key] = value[who]
    intensity = rng.uniform(*INTENSITY, n)
    table = np.array([[EXPRESSIONS[c].get(key, 0.0) for key in EXPRESSION_KEYS] for c in classes], dtype=np.float64)
    for j, key in enumerate(EXPRESSION_KEYS):
        p["x_" + key] = table[label, j] * intensity + rng.normal(0, EXPRESSION_JITTER[key], n)
    p["x_curve"] = p["x_curve"] + p["rest_curve"]
    p["x_brow_tilt"] = p["x_brow_tilt"] + p["rest_tilt"]
    p["x_open"] = np.abs(p["x_open"])
    p["rot"] = np.clip(rng.normal(0, 0.07, n), -0.17, 0.17)
    p["scale"] = rng.uniform(0.92, 1.06, n)
    p["tx"] = rng.uniform(-0.06, 0.06, n)
    p["ty"] = rng.uniform(-0.05, 0.05, n)
    p["yaw"] = rng.uniform(-0.045, 0.045, n)
    p["gaze"] = rng.uniform(-0.02, 0.02, n)
    p["light_dir"] = rng.uniform(0, 2 * np.pi, n)
    p["light_amp"] = rng.uniform(0.0, 0.3, n)
    p["bright"] = rng.uniform(0.82, 1.12, n)
    p["contrast"] = rng.uniform(0.85, 1.15, n)
    p["bg_level"] = rng.uniform(40, 220, n)
    p["bg_tint"] = rng.uniform(-25, 25, (n, 3)).astype(np.float32)
    p["noise_gain"] = rng.uniform(0.6, 1.4, n)
    return p


def _upsample_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation weights (n_out x n_in) that stretch n_in samples over n_out pixels."""
    pos = (np.arange(n_out) + 0.5) / n_out * (n_in - 1)
    lo = np.minimum(pos.astype(int), n_in - 2)
    frac = pos - lo
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] = 1 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


def _smooth_noise(rng: np.random.Generator, n: int, h: int, w: int, cells_h: int, cells_w: int) -> np.ndarray:
    base = rng.standard_normal((n, cells_h, cells_w), dtype=np.float32)
    return _upsample_matrix(h, cells_h) @ base @ _upsample_matrix(w, cells_w).T


def _noise_fields(rng: np.random.Generator, n: int, h: int, w: int) -> dict[str, np.ndarray]:
    return {
        "low": _smooth_noise(rng, n, h, w, 6, 6),  # lighting/background blotches
        "mid": _smooth_noise(rng, n, h, w, max(h // 4, 2), max(w // 4, 2)),  # skin texture
        "hair": _smooth_noise(rng, n, h, w, max(h // 6, 2), max(w // 2, 2)),  # strands
        "pixel": rng.standard_normal((n, h, w), dtype=np.float32),  # sensor noise
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


@taskcodec.hookimpl
def register_datasets(register: Any) -> None:
    register(SyntheticFaces)


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
