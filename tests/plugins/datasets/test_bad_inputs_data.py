"""Catalogue of bad data inputs: image files, label/pair files, dataset options, codec size limits.

One case per input, named after what it feeds; each asserts the error type and that the message
names the culprit (file and line, option and plugin, codec and limit). All files are generated here.
"""
from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from taskcodec import CodecError, DatasetError
from taskcodec_plugins.codecs.classical.codecs import AvifCodec, JpegCodec, PngCodec, WebpCodec
from taskcodec_plugins.datasets.fer.datasets import Fer2013, FerPlus
from taskcodec_plugins.datasets.images.class_folders import ImageFolder
from taskcodec_plugins.datasets.images.folders import ImageDir, Kodak
from taskcodec_plugins.datasets.image_files import HighBitDepthWarning, read_image_file
from taskcodec_plugins.datasets.lfw.dataset import LFW, parse_pairs

from tests.helpers import FER2013_ROWS, face, write_fer2013, write_ferplus, write_folder
from tests.helpers import fake_lfw

GRAY16 = (np.arange(48 * 48, dtype=np.uint32).reshape(48, 48) * 28).astype(np.uint16)  # 0..64484
GRAY16_AS_8 = ((GRAY16.astype(np.int64) + 128) // 257).astype(np.uint8)  # the documented rule round(v / 257)


def save(path: Path, image: np.ndarray, mode: str | None = None, **kw) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(image)
    (im.convert(mode) if mode else im).save(path, **kw)
    return path


def save16(path: Path, samples: np.ndarray) -> Path:
    import imagecodecs

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(imagecodecs.png_encode(samples))
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (8-bit gray) with a tiny, wrong IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")


def one_image_dir(tmp_path: Path, name: str = "a.png") -> Path:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    return folder / name


def raises(exc_type, *fragments):
    """Context: the error type, and every fragment in its message."""
    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc_type)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            text = str(self.info.value)
            for fragment in fragments:
                assert str(fragment) in text, f"{fragment!r} not in {text!r}"
            return handled

    return _Check()


# --------------------------------------------------------------------------- image files: bit depth and modes
def test_16bit_gray_png_into_image_dir_is_scaled_with_a_warning(tmp_path):
    path = save16(one_image_dir(tmp_path), GRAY16)
    with pytest.warns(HighBitDepthWarning, match=r"a\.png: 16-bit image scaled to 8 bits"):
        image = ImageDir(path.parent, mode="keep")[0].image
    assert np.array_equal(image, GRAY16_AS_8)  # not clipped to 255 (the old behaviour)
    assert (image == 255).mean() < 0.01


def test_16bit_rgb_png_into_image_dir_is_scaled_not_truncated(tmp_path):
    rgb16 = np.stack([GRAY16, GRAY16 // 2, 65535 - GRAY16], axis=-1)
    path = save16(one_image_dir(tmp_path), rgb16)
    with pytest.warns(HighBitDepthWarning, match="a.png"):
        image = ImageDir(path.parent)[0].image
    assert np.array_equal(image, ((rgb16.astype(np.int64) + 128) // 257).astype(np.uint8))


def test_16bit_gray_png_into_ferplus_follows_the_same_rule(tmp_path):
    root = write_ferplus(tmp_path)
    save16(root / "FER2013Test" / "fer0000000.png", GRAY16)
    with pytest.warns(HighBitDepthWarning, match="fer0000000.png"):
        image = FerPlus(root, "test")[0].image
    assert np.array_equal(image, GRAY16_AS_8)


def test_16bit_gray_png_into_image_folder_follows_the_same_rule(tmp_path):
    save16(tmp_path / "test" / "happy" / "a.png", GRAY16)
    with pytest.warns(HighBitDepthWarning, match="a.png"):
        image = ImageFolder(tmp_path, "test")[0].image
    assert np.array_equal(image, GRAY16_AS_8)


def test_rgba_with_transparent_pixels_into_image_dir_is_refused(tmp_path):
    rgba = np.dstack([face(1, (20, 20, 3)), np.full((20, 20), 255, np.uint8)])
    rgba[0, 0, 3] = 10
    path = save(one_image_dir(tmp_path), rgba)
    with raises(DatasetError, str(path), "'RGBA'", "1 of its 400 pixels are not fully opaque", "accepted:"):
        ImageDir(path.parent)[0]


def test_opaque_rgba_into_image_dir_drops_alpha(tmp_path):
    rgb = face(2, (20, 20, 3))
    path = save(one_image_dir(tmp_path), np.dstack([rgb, np.full((20, 20), 255, np.uint8)]))
    assert np.array_equal(ImageDir(path.parent)[0].image, rgb)


def test_cmyk_jpeg_into_image_dir_is_refused(tmp_path):
    path = save(one_image_dir(tmp_path, "c.jpg"), face(3, (16, 16, 3)), mode="CMYK")
    with raises(DatasetError, str(path), "'CMYK'", "not accepted", "accepted: 8-bit gray or RGB"):
        ImageDir(path.parent)[0]


def test_palette_png_into_image_dir_gives_its_rgb_colours(tmp_path):
    from PIL import Image

    index = np.zeros((8, 8), np.uint8)
    index[:4] = 1
    im = Image.fromarray(index)
    im.putpalette([0, 0, 0, 200, 10, 30])  # makes it a palette image
    path = one_image_dir(tmp_path)
    im.save(path)
    expected = np.zeros((8, 8, 3), np.uint8)
    expected[:4] = (200, 10, 30)
    assert np.array_equal(ImageDir(path.parent, mode="keep")[0].image, expected)


def test_1bit_png_into_image_dir_gives_gray_0_255(tmp_path):
    bits = np.zeros((8, 8), bool)
    bits[2:5] = True
    path = save(one_image_dir(tmp_path), bits)
    image = ImageDir(path.parent, mode="keep")[0].image
    assert image.dtype == np.uint8 and set(np.unique(image)) == {0, 255} and np.array_equal(image == 255, bits)


def test_gray_alpha_with_transparency_into_image_folder_is_refused(tmp_path):
    la = np.dstack([face(4, (10, 10)), np.zeros((10, 10), np.uint8)])
    path = save(tmp_path / "test" / "sad" / "x.png", la, mode="LA")
    with raises(DatasetError, "image-folder test", str(path), "'LA'", "100 of its 100 pixels"):
        ImageFolder(tmp_path, "test").images


def test_animated_gif_into_image_dir_is_refused(tmp_path):
    from PIL import Image

    path = one_image_dir(tmp_path, "anim.gif")
    frames = [Image.fromarray(face(i, (8, 8))) for i in range(2)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with raises(DatasetError, str(path), "2 frames"):
        ImageDir(path.parent, patterns=["*.gif"])[0]


# --------------------------------------------------------------------------- image files: size and corruption
def test_png_header_claiming_30000x30000_into_image_dir_names_size_and_limit(tmp_path):
    path = one_image_dir(tmp_path)
    path.write_bytes(png_header_only(30000, 30000))
    with raises(DatasetError, "dataset 'image-dir'", str(path), "30000x30000", "900,000,000 pixels",
                "limit of 67,108,864", "max_pixels"):
        ImageDir(path.parent)[0]


def test_png_header_claiming_30000x30000_into_ferplus_names_the_file(tmp_path):
    root = write_ferplus(tmp_path)
    (root / "FER2013Test" / "fer0000005.png").write_bytes(png_header_only(30000, 30000))
    with raises(DatasetError, "fer0000005.png", "30000x30000", "limit"):
        FerPlus(root, "test").images


def test_image_over_the_max_pixels_option_into_image_dir_is_refused(tmp_path):
    path = save(one_image_dir(tmp_path), face(5, (20, 30)))
    with raises(DatasetError, str(path), "30x20", "600 pixels", "limit of 100 pixels"):
        ImageDir(path.parent, max_pixels=100)[0]
    assert ImageDir(path.parent, max_pixels=600)[0].image.shape == (20, 30, 3)


def test_truncated_png_into_image_dir_names_the_file(tmp_path):
    path = save(one_image_dir(tmp_path), face(6, (64, 64)))
    path.write_bytes(path.read_bytes()[:120])
    with raises(DatasetError, "cannot read image", str(path)):
        ImageDir(path.parent)[0]


def test_corrupt_file_into_kodak_names_the_file(tmp_path):
    for i in range(1, 25):
        save(tmp_path / f"kodim{i:02d}.png", face(i, (8, 12, 3)))
    (tmp_path / "kodim07.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = Kodak(tmp_path)
    assert ds[0].image.shape == (8, 12, 3)
    with raises(DatasetError, "dataset 'kodak'", "kodim07.png"):
        ds[6]


def test_truncated_jpeg_into_lfw_names_the_file(tmp_path):
    root = fake_lfw(tmp_path)
    path = root / "lfw-deepfunneled" / "Bo_Chan" / "Bo_Chan_0001.jpg"
    path.write_bytes(path.read_bytes()[:300])
    ds = LFW(root, align="none")
    index = ds.ids.index("Bo_Chan/Bo_Chan_0001")
    with raises(DatasetError, str(path)):
        ds[index]


def test_8bit_image_stored_as_16bit_comes_back_unchanged(tmp_path):
    image = face(7, (16, 16))
    path = save16(tmp_path / "x.png", image.astype(np.uint16) * 257)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HighBitDepthWarning)
        assert np.array_equal(read_image_file(path), image)


# --------------------------------------------------------------------------- codec size limits
@pytest.mark.parametrize("codec, shape, limit", [
    (WebpCodec, (10, 20000, 3), "16382 pixels per side"),
    (JpegCodec, (2, 70000), "65500 pixels per side"),
    (AvifCodec, (2, 40000), "32768 pixels per side"),
    (PngCodec, (1, 1_000_001), "1000000 pixels per side"),
])
def test_image_over_the_codec_size_limit_names_codec_size_and_limit(codec, shape, limit):
    image = np.zeros(shape, np.uint8)
    rate_point = None if codec is PngCodec else 50
    with raises(CodecError, f"codec {codec.name!r}", f"{shape[1]}x{shape[0]} (width x height)", limit):
        codec().encode(image, rate_point)


# --------------------------------------------------------------------------- dataset options
@pytest.mark.parametrize("options, fragments", [
    ({"folds": 1}, ["option 'folds' = 1", "a non-empty list of distinct fold numbers", "e.g. [1]"]),
    ({"folds": [3]}, ["option 'folds' = [3]", "pairs.txt has 2 fold(s)", "1..2"]),
    ({"folds": ["1"]}, ["option 'folds' = ['1']"]),
    ({"folds": [1, 1]}, ["option 'folds' = [1, 1]", "distinct"]),
    ({"detect_workers": 0}, ["option 'detect_workers' = 0", "an integer >= 1 or null"]),
    ({"progress": "no"}, ["option 'progress' = 'no'", "true or false"]),
    ({"align": "eyes"}, ["option 'align' = 'eyes'", "sphereface"]),
    ({"fold": [1]}, ["unknown option(s) ['fold']", "folds"]),
])
def test_bad_lfw_option_names_option_and_plugin(tmp_path, options, fragments):
    root = fake_lfw(tmp_path)
    with raises(DatasetError, "dataset 'lfw'", *fragments):
        LFW(root, **({"align": "none"} | options))


@pytest.mark.parametrize("make, options, fragments", [
    ("image-dir", {"mode": "cmyk"}, ["dataset 'image-dir'", "option 'mode' = 'cmyk'", "['rgb', 'gray', 'keep']"]),
    ("image-dir", {"limit": "5"}, ["dataset 'image-dir'", "option 'limit' = '5'", "an integer >= 1"]),
    ("image-dir", {"limit": 0}, ["option 'limit' = 0"]),
    ("image-dir", {"patterns": "*.png"}, ["option 'patterns' = '*.png'", "list"]),
    ("image-dir", {"max_pixels": 0}, ["option 'max_pixels' = 0"]),
    ("kodak", {"download": "yes"}, ["dataset 'kodak'", "option 'download' = 'yes'", "true or false"]),
    ("image-folder", {"size": [48]}, ["dataset 'image-folder'", "option 'size' = [48]", "[height, width]"]),
    ("image-folder", {"classes": "happy"}, ["dataset 'image-folder'", "option 'classes' = 'happy'", "list"]),
    ("image-folder", {"color": "cmyk"}, ["dataset 'image-folder'", "option 'color' = 'cmyk'"]),
    ("ferplus", {"mode": "vote"}, ["dataset 'ferplus'", "option 'mode' = 'vote'", "majority"]),
    ("ferplus", {"label_mode": "soft"}, ["dataset 'ferplus'", "unknown option(s) ['label_mode']", "mode"]),
    ("fer2013", {"file": 3}, ["dataset 'fer2013'", "option 'file' = 3"]),
])
def test_bad_dataset_option_names_option_and_plugin(tmp_path, make, options, fragments):
    classes = {"image-dir": ImageDir, "kodak": Kodak, "image-folder": ImageFolder, "ferplus": FerPlus,
               "fer2013": Fer2013}
    save(tmp_path / "a.png", face(0))
    write_folder(tmp_path)
    write_ferplus(tmp_path)
    with raises(DatasetError, *fragments):
        classes[make](tmp_path, "test", **options)


# --------------------------------------------------------------------------- label files
FERPLUS_LINES = {
    "wrong column count": ('fer0000009.png,"(0, 0, 48, 48)",1,2,3\n', "expected 12 fields"),
    "non-integer votes": ('fer0000009.png,"(0, 0, 48, 48)",1,2,3,1.5,0,0,0,0,0,0\n', "the sadness count is '1.5'"),
    "negative votes": ('fer0000009.png,"(0, 0, 48, 48)",1,2,3,1,0,0,-2,0,0,0\n', "fear -2"),
    "all-zero votes": ('fer0000009.png,"(0, 0, 48, 48)",0,0,0,0,0,0,0,0,0,0\n', "all 10 vote counts are 0"),
    "absent image": ('fer0000009.png,"(0, 0, 48, 48)",0,9,0,0,0,0,0,0,0,0\n', "fer0000009.png' is missing"),
}


@pytest.mark.parametrize("case", list(FERPLUS_LINES))
def test_bad_ferplus_label_line_names_file_and_line(tmp_path, case):
    line, fragment = FERPLUS_LINES[case]
    root = write_ferplus(tmp_path)
    with open(root / "FER2013Test" / "label.csv", "a") as fh:
        fh.write(line)
    with raises(DatasetError, f"{root / 'FER2013Test' / 'label.csv'}:7:", fragment):
        FerPlus(root, "test", mode="soft")


def test_empty_ferplus_label_file_is_refused(tmp_path):
    root = write_ferplus(tmp_path)
    (root / "FER2013Test" / "label.csv").write_text("\n")
    with raises(DatasetError, "label.csv", "has no rows"):
        FerPlus(root, "test")


def test_fer2013_row_with_a_bad_pixel_count_names_file_and_line(tmp_path):
    path = write_fer2013(tmp_path / "fer2013.csv", FER2013_ROWS + [(2, "1 2 3", "PrivateTest")])
    with raises(DatasetError, f"{path}:7:", "expected 2304 pixel values", "got 3"):
        Fer2013(path, "test")


def test_fer2013_without_rows_of_the_split_is_refused(tmp_path):
    path = write_fer2013(tmp_path / "fer2013.csv", [r for r in FER2013_ROWS if r[2] != "PublicTest"])
    with raises(DatasetError, str(path), "no rows with Usage 'PublicTest'"):
        Fer2013(path, "val")


def test_empty_class_folder_into_image_folder_is_refused(tmp_path):
    root = write_folder(tmp_path)
    (root / "test" / "angry").mkdir()
    (root / "test" / "angry" / "notes.txt").write_text("no images here")
    with raises(DatasetError, str(root / "test" / "angry"), "holds no"):
        ImageFolder(root, "test")


PAIRS = ["Ann_Lee\t1\t2", "Bo_Chan\t1\t2", "Ann_Lee\t1\tCy_Diaz\t1", "Bo_Chan\t2\tDi_Egan\t1",
         "Ann_Lee\t2\t3", "Di_Egan\t1\t2", "Cy_Diaz\t1\tDi_Egan\t2", "Ann_Lee\t3\tBo_Chan\t1"]
PAIR_CASES = {  # name: (header, lines, fragment); the fake LFW's pairs.txt has 2 folds x (2 + 2)
    "wrong field count": ("2\t2", PAIRS[:2] + ["Ann_Lee\t1\tCy_Diaz"] + PAIRS[3:], ":4: a mismatched pair needs 4 fields"),
    "non-integer number": ("2\t2", ["Ann_Lee\t1\ttwo"] + PAIRS[1:], ":2: image number 'two' is not an integer"),
    "folds disagree with header": ("3\t2", PAIRS, "promises 3 fold(s) x 2 x 2 pairs = 12 lines after it, the file has 8 (= 2 folds"),
    "image paired with itself": ("2\t2", ["Ann_Lee\t2\t2"] + PAIRS[1:], ":2: a matched pair compares image 2 of Ann_Lee with itself"),
    "mismatch of one person": ("2\t2", PAIRS[:2] + ["Ann_Lee\t1\tAnn_Lee\t3"] + PAIRS[3:], ":4: a mismatched pair names Ann_Lee twice"),
    "pair listed twice": ("2\t2", PAIRS[:4] + ["Ann_Lee\t2\t1"] + PAIRS[5:], ":6: the pair Ann_Lee/Ann_Lee_0002 / Ann_Lee/Ann_Lee_0001 is listed twice (first on line 2)"),
}


@pytest.mark.parametrize("case", list(PAIR_CASES))
def test_bad_lfw_pairs_line_names_file_and_line(tmp_path, case):
    header, lines, fragment = PAIR_CASES[case]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join([header] + lines) + "\n")
    with raises(DatasetError, str(path), fragment):
        parse_pairs(path)


def test_lfw_pair_naming_an_absent_image_is_refused(tmp_path):
    root = fake_lfw(tmp_path)
    text = (root / "pairs.txt").read_text().replace("Cy_Diaz\t1\tDi_Egan\t2", "Cy_Diaz\t1\tDi_Egan\t7")
    (root / "pairs.txt").write_text(text)
    with raises(DatasetError, "1 of the 9 images", "Di_Egan/Di_Egan_0007", "lfw-deepfunneled"):
        LFW(root, align="none")
