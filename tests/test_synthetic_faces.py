"""The synthetic-faces dataset: determinism, shapes, splits, options, rendering windows."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from taskcodec import DatasetError, Sample
from taskcodec_plugins import synthetic_faces as sf
from taskcodec_plugins.synthetic_faces import SyntheticFaces
from taskcodec_plugins.synthetic_faces_render import render


def make(split: str = "test", **options) -> SyntheticFaces:
    options.setdefault("count", 40)
    return SyntheticFaces(None, split, **options)


def test_same_seed_same_data_across_instances():
    a, b = make(seed=3), make(seed=3)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels)
    assert a.fingerprint() == b.fingerprint()


def test_same_data_in_another_process():
    code = ("from taskcodec_plugins.synthetic_faces import SyntheticFaces as S; "
            "print(S(None, 'val', count=40, seed=5, color='rgb').fingerprint())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == make("val", seed=5, color="rgb").fingerprint()


def test_fingerprint_changes_with_seed_and_options():
    base = make(seed=0).fingerprint()
    assert make(seed=1).fingerprint() != base
    assert make(seed=0, noise=0.0).fingerprint() != base
    assert make(seed=0, identities=7).fingerprint() != base


def test_smaller_count_is_a_prefix():
    small, large = make("train", count=10), make("train", count=300)
    assert np.array_equal(small.images, large.images[:10])
    assert np.array_equal(small.labels, large.labels[:10])
    assert [s.id for s in small] == [large[i].id for i in range(10)]


@pytest.mark.parametrize("size, color, shape", [
    ([64, 64], "gray", (64, 64)),
    ([64, 64], "rgb", (64, 64, 3)),
    ([112, 96], "gray", (112, 96)),
    ([112, 96], "rgb", (112, 96, 3)),
])
def test_shapes_and_dtypes(size, color, shape):
    ds = make(size=size, color=color, count=12)
    assert len(ds) == 12
    for sample in ds:
        assert isinstance(sample, Sample)
        assert sample.image.shape == shape and sample.image.dtype == np.uint8
        assert type(sample.label) is int and 0 <= sample.label < len(ds.classes)
        assert re.fullmatch(r"test-\d{6}", sample.id)
    assert ds.images.std() > 10  # not blank
    assert not ds[0].image.flags.writeable  # the cached pixels cannot be changed by accident


def test_gray_and_rgb_draw_the_same_faces():
    gray, rgb = make(count=20), make(count=20, color="rgb")
    assert np.array_equal(gray.labels, rgb.labels)
    luma = rgb.images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    # same geometry and lighting; only the sensor noise differs
    assert np.corrcoef(luma.ravel(), gray.images.ravel().astype(np.float64))[0, 1] > 0.95


def test_splits_are_disjoint_and_differ():
    splits = {name: make(name, count=128) for name in SyntheticFaces.splits}
    ids = [set(s.id for s in ds) for ds in splits.values()]
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1:])
    digests = {name: {img.tobytes() for img in ds.images} for name, ds in splits.items()}
    assert not digests["train"] & digests["val"] and not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]
    assert len({ds.fingerprint() for ds in splits.values()}) == 3


def test_default_counts_and_balanced_classes():
    ds = SyntheticFaces(None, "val")
    assert len(ds) == sf.DEFAULT_COUNTS["val"]
    assert ds.classes == ("neutral", "happy", "sad", "surprise", "angry")
    counts = np.bincount(ds.labels[:256], minlength=5)
    assert counts.max() - counts.min() <= 2


def test_count_mapping_and_int():
    assert len(make("train", count={"train": 7})) == 7
    assert len(make("test", count={"train": 7})) == sf.DEFAULT_COUNTS["test"]
    assert len(make("val", count=9)) == 9


def test_class_subset_in_given_order():
    ds = make(classes=["surprise", "happy"], count=128)  # balanced per 128
    assert ds.classes == ("surprise", "happy")
    assert set(ds.labels.tolist()) == {0, 1}
    assert ds.metadata()["class_counts"] == {"surprise": 64, "happy": 64}


def test_metadata_describes_generation():
    meta = make(seed=2, count=16).metadata()
    for key in ("generator_version", "seed", "size", "color", "count", "identities", "classes", "noise",
                "class_counts", "expressions", "random_streams"):
        assert key in meta
    assert meta["seed"] == 2 and meta["count"] == 16
    assert 0 <= make(count=16).identity(3) < 40


@pytest.mark.parametrize("options, option", [
    ({"size": [8, 8]}, "size"),
    ({"size": "64"}, "size"),
    ({"size": [64, 64, 3]}, "size"),
    ({"color": "bgr"}, "color"),
    ({"count": 0}, "count"),
    ({"count": {"tset": 5}}, "count"),
    ({"count": 2.5}, "count"),
    ({"seed": -1}, "seed"),
    ({"seed": "x"}, "seed"),
    ({"identities": 0}, "identities"),
    ({"classes": ["happy", "joy"]}, "classes"),
    ({"classes": ["happy"]}, "classes"),
    ({"classes": ["happy", "happy"]}, "classes"),
    ({"classes": "happy"}, "classes"),
    ({"noise": -1}, "noise"),
])
def test_bad_options_are_named(options, option):
    with pytest.raises(DatasetError, match=f"'{option}'"):
        SyntheticFaces(None, "test", **options)


def test_bad_split_and_index():
    with pytest.raises(DatasetError, match="split"):
        SyntheticFaces(None, "dev")
    with pytest.raises(IndexError):
        make(count=3)[3]
    assert make(count=3)[-1].id == "test-000002"


def test_feature_windows_change_no_pixel():
    """Drawing the facial features only inside their windows gives the same pixels as everywhere."""
    ident = sf._identity_table(0, 40)
    for size in [(64, 64), (112, 96), (32, 48)]:
        rng = np.random.Generator(np.random.PCG64(size[0]))
        params = sf._sample_params(rng, ident, tuple(sf.EXPRESSIONS), 40)
        fields = sf._noise_fields(rng, sf.CHUNK, *size)
        fast = render(params, fields, *size, 1, 3.0)
        slow = render(params, fields, *size, 1, 3.0, windows=False)
        assert np.array_equal(fast, slow)


def test_contact_sheet(tmp_path):
    path = sf.contact_sheet(make(count=20), tmp_path / "sheet.png", per_class=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_registered_as_plugin():
    from taskcodec.pluginmanager import PluginManager

    entry = PluginManager().get("dataset", "synthetic-faces")
    assert entry.target is SyntheticFaces
    assert SyntheticFaces.needs_root is False and SyntheticFaces.splits == ("train", "val", "test")
