"""The `lfw` dataset: pair-file parser, missing images, options; the real files (shared data)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taskcodec import DatasetError
from taskcodec_plugins.datasets.lfw.dataset import LFW, parse_pairs
from tests.helpers import DATASETS, fake_lfw, natural_image, write_pairs


def test_parse_well_formed_view2_and_view1(tmp_path):
    pairs, folds, n = parse_pairs(fake_lfw(tmp_path) / "pairs.txt")
    assert (folds, n, len(pairs)) == (2, 2, 8)
    assert pairs[0].fold == 1 and pairs[0].same and pairs[0].id1 == "Ann_Lee/Ann_Lee_0001"
    assert pairs[3] == type(pairs[3])(1, False, "Bo_Chan/Bo_Chan_0002", "Di_Egan/Di_Egan_0001")
    assert [p.fold for p in pairs] == [1] * 4 + [2] * 4
    view1 = write_pairs(tmp_path / "dev.txt", 1, ["Ann_Lee\t1\t2", "Ann_Lee\t1\tBo_Chan\t1"], 1)
    pairs, folds, n = parse_pairs(view1)
    assert (folds, n) == (1, 1) and [p.same for p in pairs] == [True, False]


@pytest.mark.parametrize("lines, header, message", [
    (["Ann_Lee\t1\t2", "Ann_Lee\t1\tBo_Chan\t1"], "x", ":1: expected a header"),
    (["Ann_Lee\t1\t2"], "1", "promises 1 fold(s) x 2 x 1 pairs = 2 lines after it, the file has 1"),
    (["Ann_Lee\t1\tBo_Chan\t1", "Ann_Lee\t1\tBo_Chan\t1"], "1", ":2: a matched pair needs 3 fields"),
    (["Ann_Lee\t1\t2", "Ann_Lee\t1\t2"], "1", ":3: a mismatched pair needs 4 fields"),
    (["Ann_Lee\tone\t2", "Ann_Lee\t1\tBo_Chan\t1"], "1", ":2: image number 'one' is not an integer"),
    (["Ann_Lee\t0\t2", "Ann_Lee\t1\tBo_Chan\t1"], "1", ":2: image number 0: image numbers start at 1"),
])
def test_parse_malformed_names_file_and_line(tmp_path, lines, header, message):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join([header] + lines) + "\n")
    with pytest.raises(DatasetError) as err:
        parse_pairs(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_images_are_listed(tmp_path):
    root = fake_lfw(tmp_path)
    (root / "lfw-deepfunneled" / "Di_Egan" / "Di_Egan_0002.jpg").unlink()
    (root / "lfw-deepfunneled" / "Cy_Diaz" / "Cy_Diaz_0001.jpg").unlink()
    with pytest.raises(DatasetError) as err:
        LFW(root, align="none")
    text = str(err.value)
    assert "2 of the 8 images" in text and "Di_Egan/Di_Egan_0002" in text and "Cy_Diaz/Cy_Diaz_0001" in text


def test_missing_pair_file_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetError) as err:
        LFW(tmp_path, split="dev-test", align="none")
    assert "pairsDevTest.txt" in str(err.value) and str(tmp_path) in str(err.value) and "download: true" in str(err.value)


def test_download_offline_says_what_to_fetch_and_where(tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError) as err:
        LFW(tmp_path, align="none", download=True)
    text = str(err.value)
    assert "http://vis-www.cs.umass.edu/lfw/pairs.txt" in text and str(tmp_path / "pairs.txt") in text
    assert "ea42330c" in text  # the official sha256


def test_samples_pairs_and_options(tmp_path):
    root = fake_lfw(tmp_path)
    ds = LFW(root, align="none")
    assert len(ds) == 8 and ds[0].id == "Ann_Lee/Ann_Lee_0001" and ds[0].label == "Ann_Lee"
    assert ds[0].image.shape == (112, 96, 3) and ds[-1].image.dtype == np.uint8
    assert ds.pairs[2] == (1, False, "Ann_Lee/Ann_Lee_0001", "Cy_Diaz/Cy_Diaz_0001")
    assert sorted({s.id for s in ds}) == sorted({i for p in ds.pairs for i in p[2:]})
    one = LFW(root, align="none", folds=[2])
    assert len(one.pairs) == 4 and all(p[0] == 2 for p in one.pairs)
    meta = one.metadata()
    assert meta["pairs"] == 4 and meta["official_pairs_file"] is False and meta["image_folder"] == "lfw-deepfunneled"
    with pytest.raises(DatasetError):
        LFW(root, align="nope")
    with pytest.raises(DatasetError):
        LFW(root, align="none", folds=[3])
    with pytest.raises(DatasetError, match="cache folder"):
        LFW(root)[0]  # aligned crops need the landmark cache


@pytest.mark.shared_data
def test_the_official_pair_files():
    root = DATASETS / "lfw"
    ds = LFW(root, align="none", progress=False)
    assert len(ds.pairs) == 6000 and len(ds) == 7701
    assert sum(p[1] for p in ds.pairs) == 3000 and sorted({p[0] for p in ds.pairs}) == list(range(1, 11))
    meta = ds.metadata()
    assert meta["official_pairs_file"] and meta["identities"] > 4000
    for split, n in (("dev-train", 2200), ("dev-test", 1000)):
        assert len(LFW(root, split=split, align="none").pairs) == n


@pytest.mark.shared_data
def test_the_view1_only_people_stated_on_model_cards_recompute_from_the_pair_files():
    from taskcodec_plugins.datasets.lfw.dataset import PAIR_FILES, VIEW1_ONLY_PEOPLE

    def images(split):
        return {i for p in parse_pairs(DATASETS / "lfw" / PAIR_FILES[split])[0] for i in (p.id1, p.id2)}

    view2 = images("test")
    only = (images("dev-train") | images("dev-test")) - view2
    people_view2 = {i.split("/")[0] for i in view2}
    people = {i.split("/")[0] for i in only}
    assert VIEW1_ONLY_PEOPLE == {"images": len(only), "people": len(people),
                                 "people_in_view2": len(people & people_view2),
                                 "images_of_those": sum(i.split("/")[0] in people_view2 for i in only)}
    assert "378 of its 1008 people" in LFW.split_relation("view1-only", "test")


@pytest.mark.shared_data
def test_aligned_crops_come_from_the_shipped_landmarks_and_do_not_depend_on_the_cpu(tmp_path):
    """Every image the LFW boards use aligns from the landmarks shipped with taskcodec (MTCNN's own outputs
    differ between CPUs: 618+ of 7,701 crops did between an Intel and an AMD machine), so fold 1's crops
    have one fingerprint everywhere (by hand, the same under NPY_DISABLE_CPU_FEATURES and
    OPENBLAS_CORETYPE=Prescott/Sandybridge)."""
    from taskcodec.dataset import samples_fingerprint
    from taskcodec.hashing import image_digest

    ds = LFW(DATASETS / "lfw", folds=[1], cache_dir=tmp_path, progress=False)
    samples = list(ds)
    assert ds.metadata()["landmarks_detected_here"] == 0 and ds.metadata()["landmarks_shipped"] == 807
    assert samples_fingerprint(samples, [image_digest(s.image) for s in samples]) == FOLD1_FINGERPRINT
    assert LFW(DATASETS / "lfw", split="view1-only", cache_dir=tmp_path, progress=False).metadata()[
        "landmarks_detected_here"] == 0


FOLD1_FINGERPRINT = "d9d2aa399cd19450ffcbf99a0fa7c48d3f04efe6a50348d8deb91053f033bf5c"
