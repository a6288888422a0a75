"""The ferplus, fer2013 and image-folder datasets on small generated files (and the real FER+ when present)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from taskcodec import DatasetError
from taskcodec_plugins.datasets.fer.datasets import Fer2013, FerPlus
from taskcodec_plugins.datasets.images.class_folders import ImageFolder
from taskcodec_plugins.datasets.fer.labels import EMOTIONS

from tests.helpers import DATASETS, FER2013_ROWS, face, save_png, write_fer2013, write_ferplus, write_folder


# --------------------------------------------------------------------------- ferplus


def test_ferplus_modes_and_exclusions(tmp_path):
    root = write_ferplus(tmp_path)
    maj = FerPlus(root, "test")
    assert maj.classes == EMOTIONS
    assert [s.id for s in maj] == ["fer0000000", "fer0000005"]
    assert [s.label for s in maj] == [EMOTIONS.index("happiness"), EMOTIONS.index("anger")]
    assert maj[0].image.shape == (48, 48) and maj[0].image.dtype == np.uint8
    assert np.array_equal(maj[1].image, face(5))
    meta = maj.metadata()
    assert meta["rows"] == 6 and meta["images"] == 2
    assert meta["excluded"] == {"no-majority": 2, "unknown": 1, "not-a-face": 1}
    assert meta["class_counts"]["anger"] == 1 and meta["label_mode"] == "majority"

    plu = FerPlus(root, "test", mode="plurality")
    assert [s.id for s in plu] == ["fer0000000", "fer0000001", "fer0000005"]
    assert plu.metadata()["excluded"] == {"tie": 1, "unknown": 1, "not-a-face": 1}
    assert plu.targets is None

    sft = FerPlus(root, "test", mode="soft")
    assert [s.id for s in sft] == ["fer0000000", "fer0000001", "fer0000004", "fer0000005"]
    assert sft.targets.shape == (4, 8) and np.allclose(sft.targets.sum(1), 1)
    assert sft.targets[2, EMOTIONS.index("surprise")] == pytest.approx(0.5)
    assert sft.metadata()["excluded"] == {"unknown": 1, "not-a-face": 1}
    assert maj.fingerprint() != plu.fingerprint()


def test_ferplus_split_folders(tmp_path):
    write_ferplus(tmp_path, folder="FER2013Train")
    write_ferplus(tmp_path, folder="FER2013Valid")
    assert len(FerPlus(tmp_path, "train")) == 2 and len(FerPlus(tmp_path, "val")) == 2
    with pytest.raises(DatasetError, match="FER2013Test"):
        FerPlus(tmp_path, "test")
    with pytest.raises(DatasetError, match="unknown split 'validation'"):
        FerPlus(tmp_path, "validation")
    with pytest.raises(DatasetError, match="mode"):
        FerPlus(tmp_path, "train", mode="vote")


@pytest.mark.parametrize("line, message", [
    ('fer0000009.png,"(0, 0, 48, 48)",1,2,3\n', r"label\.csv:7: expected 12 fields"),
    ('fer0000009.png,"(0, 0, 48, 48)",1,2,3,x,0,0,0,0,0,0\n', r"label\.csv:7: vote counts must be integers"),
    ('fer0000009.png,"(0, 0, 48, 48)",1,2,3,-1,0,0,0,0,0,0\n', r"label\.csv:7: vote counts must be >= 0"),
    ('fer0000009.png,box,1,2,3,1,0,0,0,0,0,0\n', r"label\.csv:7: bad face box"),
    ('fer0000000.png,"(0, 0, 48, 48)",1,2,3,1,0,0,0,0,0,0\n', r"label\.csv:7: image 'fer0000000.png' is listed twice \(first on line 1\)"),
    ('fer0000009.png,"(0, 0, 48, 48)",0,9,0,0,0,0,0,0,0,0\n', r"label\.csv:7: image file .*fer0000009\.png' is missing"),
])
def test_ferplus_malformed_rows_name_file_and_line(tmp_path, line, message):
    root = write_ferplus(tmp_path)
    with open(root / "FER2013Test" / "label.csv", "a") as fh:
        fh.write(line)
    with pytest.raises(DatasetError, match=message):
        FerPlus(root, "test")


def test_ferplus_reads_a_sample_alone_and_its_labels_without_pixels(tmp_path):
    root = write_ferplus(tmp_path)
    whole = FerPlus(root, "test").images
    alone = FerPlus(root, "test")
    assert alone.ids_and_labels() == [(s.id, s.label) for s in FerPlus(root, "test")]
    (root / "FER2013Test" / "fer0000000.png").unlink()  # labels need no image file
    assert alone.ids_and_labels() == [("fer0000000", EMOTIONS.index("happiness")), ("fer0000005", EMOTIONS.index("anger"))]
    assert np.array_equal(alone[1].image, whole[1])  # read alone: the other file is not needed
    assert alone._images is None  # nothing held
    with pytest.raises(DatasetError, match="fer0000000"):
        alone[0]


def test_ferplus_bad_images(tmp_path):
    root = write_ferplus(tmp_path)
    save_png(root / "FER2013Test" / "fer0000005.png", face(0, (40, 48)))
    with pytest.raises(DatasetError, match=r"fer0000005\.png' is 40x48"):
        FerPlus(root, "test").images
    (root / "FER2013Test" / "fer0000005.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*fer0000005\.png"):
        FerPlus(root, "test")[1]
    (root / "FER2013Test" / "label.csv").unlink()
    with pytest.raises(DatasetError, match=r"label file .*label\.csv' is missing"):
        FerPlus(root, "test")
    with pytest.raises(DatasetError, match="does not exist"):
        FerPlus(tmp_path / "nowhere", "test")


# --------------------------------------------------------------------------- fer2013


def test_fer2013_splits_and_labels(tmp_path):
    path = write_fer2013(tmp_path / "fer2013.csv", FER2013_ROWS)
    train = Fer2013(tmp_path, "train")  # a folder holding fer2013.csv
    assert train.classes == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert [s.id for s in train] == ["fer2013-00000", "fer2013-00003"]
    assert [s.label for s in train] == [3, 5]
    assert np.array_equal(train[1].image, face(3))
    test = Fer2013(path, "test")  # or the file itself
    assert [s.label for s in test] == [0, 1] and len(Fer2013(path, "val")) == 1
    assert test.metadata()["rows_per_usage"] == {"Training": 2, "PublicTest": 1, "PrivateTest": 2}


@pytest.mark.parametrize("row, message", [
    ((7, face(9), "Training"), r"fer2013\.csv:7: unknown emotion class '7'"),
    (("x", face(9), "Training"), r"fer2013\.csv:7: unknown emotion class 'x'"),
    ((2, face(9, (47, 48)), "Training"), r"fer2013\.csv:7: expected 2304 pixel values \(48x48\), got 2256"),
    ((2, "1 2 3 " * 767 + "1 2 300", "Training"), r"fer2013\.csv:7: pixel values must be in 0\.\.255"),
    ((2, "a " * 2304, "Training"), r"fer2013\.csv:7: pixel value 'a' is not an integer"),
    ((2, face(9), "Test"), r"fer2013\.csv:7: unknown Usage 'Test'"),
])
def test_fer2013_malformed_rows_name_file_and_line(tmp_path, row, message):
    path = write_fer2013(tmp_path / "fer2013.csv", FER2013_ROWS + [row])
    with pytest.raises(DatasetError, match=message):
        Fer2013(path, "train")


def test_fer2013_bad_files(tmp_path):
    with pytest.raises(DatasetError, match=r"fer2013\.csv' is missing"):
        Fer2013(tmp_path, "train")
    (tmp_path / "fer2013.csv").write_text("label,image\n1,2\n")
    with pytest.raises(DatasetError, match=r"fer2013\.csv:1: expected the header emotion,pixels,Usage"):
        Fer2013(tmp_path, "train")
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n1,2\n")
    with pytest.raises(DatasetError, match=r"fer2013\.csv:2: expected 3 fields"):
        Fer2013(tmp_path, "train")


# --------------------------------------------------------------------------- image-folder


def test_image_folder_classes_agree_across_splits(tmp_path):
    root = write_folder(tmp_path)
    (root / "train" / "happy" / "notes.txt").write_text("not an image")
    train, test = ImageFolder(root, "train"), ImageFolder(root, "test")
    assert train.classes == test.classes == ("angry", "happy", "sad")
    assert [s.id for s in test] == ["happy/happy0.png", "sad/sad0.png", "sad/sad1.png"]
    assert [s.label for s in test] == [1, 2, 2]
    assert train.metadata()["skipped_files"] == 1 and train.metadata()["class_counts"] == {"angry": 2, "happy": 3, "sad": 0}
    assert test[0].image.shape == (60, 50)
    small = ImageFolder(root, "test", size=[48, 48])
    assert small[0].image.shape == (48, 48)
    rgb = ImageFolder(root, "test", color="rgb")
    assert rgb[0].image.shape == (60, 50, 3)


def test_image_folder_errors(tmp_path):
    root = write_folder(tmp_path)
    with pytest.raises(DatasetError, match=r"class folder .*sad' is not one of the classes \['angry', 'happy'\]"):
        ImageFolder(root, "test", classes=["angry", "happy"])
    with pytest.raises(DatasetError, match=r"split folder .*val' is missing"):
        ImageFolder(root, "val")
    (root / "test" / "sad" / "sad1.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match=r"cannot read image .*sad1\.png"):
        ImageFolder(root, "test").images
    save_png(root / "test" / "sad" / "sad1.png", face(0, (30, 30)))
    with pytest.raises(DatasetError, match="differ in size"):
        ImageFolder(root, "test").images
    with pytest.raises(DatasetError, match="color"):
        ImageFolder(root, "test", color="cmyk")


def test_registered_as_plugins():
    from taskcodec.pluginmanager import PluginManager

    pm = PluginManager()
    assert pm.get("dataset", "ferplus").target is FerPlus
    assert pm.get("dataset", "fer2013").target is Fer2013
    assert pm.get("dataset", "image-folder").target is ImageFolder


# --------------------------------------------------------------------------- the real FER+
FERPLUS = DATASETS / "ferplus"


@pytest.mark.shared_data
@pytest.mark.parametrize("split, mode, count", [
    ("train", "majority", 25045), ("val", "majority", 3191), ("test", "majority", 3137),
    ("test", "plurality", 3371), ("test", "soft", 3545),
])
def test_real_ferplus_counts(split, mode, count):
    if not FERPLUS.is_dir():
        pytest.skip(f"no FER+ at {FERPLUS}")
    ds = FerPlus(FERPLUS, split, mode=mode)
    assert len(ds) == count
    if (split, mode) == ("test", "majority"):
        assert ds.class_counts() == {"neutral": 1083, "happiness": 892, "surprise": 394, "sadness": 382, "anger": 269,
                                     "disgust": 16, "fear": 86, "contempt": 15}
        assert ds.metadata()["excluded"] == {"no-majority": 425, "unknown": 11}
        sample = ds[0]
        assert sample.image.shape == (48, 48) and sample.image.dtype == np.uint8


def test_fer_modules_do_not_import_torch():
    import os
    import subprocess
    import sys

    code = ("import sys, taskcodec_plugins.datasets.fer.datasets, taskcodec_plugins.datasets.fer.labels, "
            "taskcodec_plugins.tasks.expression_cnn.training; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "False"
