"""Alignment geometry (synthetic, exact) and MTCNN on a few real LFW images (shared data)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import taskcodec

from taskcodec_plugins.faces import alignment
from taskcodec_plugins.faces import detection
from tests.helpers import DATASETS


def similarity(scale, angle, tx, ty):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def test_umeyama_recovers_a_similarity_exactly():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    m = similarity(0.7, 0.3, 12.0, -5.0)
    est = alignment.umeyama(src, alignment.apply_transform(m, src))
    assert np.allclose(est, m, atol=1e-9)


def test_umeyama_is_least_squares_and_rejects_degenerate_input():
    src = alignment.SPHEREFACE_POINTS * 2 + 30
    noisy = alignment.SPHEREFACE_POINTS + np.array([[0.5, 0], [-0.5, 0], [0, 0.5], [0, -0.5], [0.3, 0.3]])
    m = alignment.umeyama(src, noisy)
    residual = np.abs(alignment.apply_transform(m, src) - noisy).max()
    assert residual < 1.0
    with pytest.raises(ValueError):
        alignment.umeyama(np.ones((5, 2)), noisy)


def dots_image(points, size=(250, 250), radius=2.5):
    """Black image with a bright disc at each point (x, y); pixel centres at integers."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    image = np.zeros(size + (3,), np.uint8)
    for x, y in points:
        image[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = 255
    return image


def centroid_near(image, point, window=6):
    x0, y0 = int(round(point[0])), int(round(point[1]))
    gray = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[max(y0 - window, 0) : y0 + window + 1, max(x0 - window, 0) : x0 + window + 1]
    w = gray[ys, xs]
    assert w.sum() > 0, f"no dot near {point}"
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


@pytest.mark.parametrize("template", ["sphereface", "arcface"])
def test_landmarks_land_on_the_template_within_a_pixel(template):
    # landmarks of a tilted, scaled face in a 250x250 frame
    m = similarity(1.9, -0.2, 60.0, 35.0)
    dst, size = alignment.TEMPLATES[template]
    src = alignment.apply_transform(m, dst)  # the face in the frame: the template scaled, rotated, moved
    crop = alignment.align_to_template(dots_image(src, radius=4.0), src, template)
    assert crop.shape == size + (3,)
    for point in dst:
        assert np.linalg.norm(centroid_near(crop, point) - point) < 1.0


def test_warp_keeps_pixel_centres_at_integers():
    image = np.zeros((40, 40), np.uint8)
    image[10, 20] = 255
    shifted = alignment.warp_affine(image, np.array([[1.0, 0, 3], [0, 1, 5]]), (40, 40))
    assert shifted[15, 23] == 255 and shifted.sum() == 255


def test_box_crop_size_and_margin():
    image = np.arange(250 * 250 * 3, dtype=np.uint32).reshape(250, 250, 3).astype(np.uint8)
    crop = alignment.box_crop(image, (80, 60, 180, 190))
    assert crop.shape == (160, 160, 3)
    with pytest.raises(ValueError):
        alignment.box_crop(image, (300, 300, 400, 400))


def test_pick_central_prefers_the_face_near_the_centre_over_the_largest():
    boxes = np.array([[0, 0, 120, 120], [100, 100, 150, 150], [200, 10, 240, 50]])
    assert detection.pick_central(boxes, (250, 250, 3)) == 1


class CountingDetector:
    def __init__(self):
        self.calls = 0

    def detect(self, images):
        self.calls += len(images)
        return [None if im.mean() < 1 else {"box": [1, 2, 3, 4], "points": [[0, 0]] * 5, "prob": 1.0, "faces": 1,
                                            "pass": "default"} for im in images]


def test_landmark_cache_detects_each_file_once_and_resumes(tmp_path):
    from PIL import Image

    paths = []
    for i in range(5):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((8, 8, 3), 0 if i == 3 else 100 + i, np.uint8)).save(p)
        paths.append(p)
    keys = [taskcodec.sha256_file(p) for p in paths]
    det = CountingDetector()
    cache = detection.LandmarkCache(tmp_path / "cache", "test-detector")
    out = detection.detect_files(paths[:2], keys[:2], cache, det, chunk=1, progress=False)  # an interrupted first pass
    assert det.calls == 2 and out[0]["box"] == [1, 2, 3, 4]
    cache2 = detection.LandmarkCache(tmp_path / "cache", "test-detector")  # a new process
    out = detection.detect_files(paths, keys, cache2, det, chunk=2, progress=False)
    assert det.calls == 5 and out[3] is None and out[4]["faces"] == 1
    out = detection.detect_files(paths, keys, detection.LandmarkCache(tmp_path / "cache", "test-detector"), det, progress=False)
    assert det.calls == 5  # everything cached, the failure included
    for f in (tmp_path / "cache" / "test-detector").glob("chunk-*.json"):
        json.loads(f.read_text())


LFW_IMAGES = DATASETS / "lfw" / "lfw-deepfunneled"


@pytest.mark.shared_data
def test_mtcnn_finds_the_central_face_on_real_lfw_images():
    names = ["Aaron_Peirsol/Aaron_Peirsol_0001", "Abel_Pacheco/Abel_Pacheco_0001", "Zico/Zico_0002"]
    images = [detection.load_rgb(LFW_IMAGES / f"{n}.jpg") for n in names]
    records = detection.CentralFaceDetector().detect(images)
    for name, image, rec in zip(names, images, records):
        assert rec is not None, name
        x1, y1, x2, y2 = rec["box"]
        assert 60 < (x1 + x2) / 2 < 190 and 60 < (y1 + y2) / 2 < 190  # the central face of the 250x250 frame
        pts = np.array(rec["points"])
        assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]  # left eye/mouth corner left of the right ones
        assert pts[:2, 1].mean() < pts[2, 1] < pts[3:, 1].mean()  # eyes above nose above mouth
        crop = alignment.align(image, rec, "sphereface")
        assert crop.shape == (112, 96, 3) and crop.std() > 20


def test_shipped_landmarks_win_over_the_cache_and_detection(tmp_path, monkeypatch):
    """Landmarks are data: a shipped record is used as it is, whatever this machine's cache or detector says."""
    import gzip

    from PIL import Image

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(np.full((8, 8, 3), 100 + i, np.uint8)).save(paths[-1])
    keys = [taskcodec.sha256_file(p) for p in paths]
    shipped = {keys[0]: {"box": [9, 9, 9, 9], "points": [[1, 1]] * 5, "prob": 1.0, "faces": 1, "pass": "default"}}
    (tmp_path / "landmarks").mkdir()
    (tmp_path / "landmarks" / "test-detector.json.gz").write_bytes(gzip.compress(json.dumps(shipped).encode()))
    monkeypatch.setattr(detection, "SHIPPED_LANDMARKS", tmp_path / "landmarks")
    det = CountingDetector()
    stale = detection.LandmarkCache(tmp_path / "cache", "test-detector")
    stale.add({keys[0]: {"box": [1, 2, 3, 4], "points": [[0, 0]] * 5, "prob": 1.0, "faces": 1, "pass": "default"}})
    cache = detection.LandmarkCache(tmp_path / "cache", "test-detector")
    out = detection.detect_files(paths, keys, cache, det, progress=False)
    assert out[0]["box"] == [9, 9, 9, 9] and det.calls == 2  # only the images the file lacks are detected
    assert set(cache.shipped) == {keys[0]}
    (tmp_path / "landmarks" / "test-detector.json.gz").write_bytes(b"not gzip")
    with pytest.raises(taskcodec.DatasetError, match="shipped landmarks are damaged"):
        detection.LandmarkCache(tmp_path / "cache", "test-detector").records()
