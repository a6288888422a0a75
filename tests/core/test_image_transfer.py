"""taskcodec/image_transfer.py: images handed to local workers through one file in the store's tmp/."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from taskcodec.errors import StoreError
from taskcodec.image_transfer import ImageFile, ImageRef


def test_an_image_is_written_once_and_reads_back_identical(tmp_path):
    rng = np.random.default_rng(0)
    gray, rgb = rng.integers(0, 256, (5, 7), dtype=np.uint8), rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    shared = ImageFile(tmp_path)
    first, second = shared.ref(0, gray), shared.ref(1, rgb[:, ::-1])  # a non-contiguous view too
    assert shared.ref(0, gray) == first and shared.ref(0, None) == first and shared.has(0) and not shared.has(2)
    shared.flush()
    assert shared.path.stat().st_size == gray.nbytes + rgb.nbytes  # each image once
    copy = shared.read(1)  # as the main process reads it back: a copy, not a view of a mapping
    assert np.array_equal(copy, rgb[:, ::-1]) and not isinstance(copy.base, __import__("mmap").mmap)
    back = pickle.loads(pickle.dumps(second)).load()  # as a worker gets it
    assert np.array_equal(first.load(), gray) and np.array_equal(back, rgb[:, ::-1])
    shared.close()
    assert not shared.path.exists()


def test_anything_but_uint8_travels_as_it_is(tmp_path):
    shared = ImageFile(tmp_path)
    wrong = np.zeros((2, 2), dtype=np.float32)
    assert shared.ref(0, wrong) is wrong and shared.ref(1, "not an image") == "not an image"
    shared.close()


def test_a_truncated_or_missing_file_is_a_store_error_naming_it(tmp_path):
    shared = ImageFile(tmp_path)
    ref = shared.ref(0, np.ones((8, 8), dtype=np.uint8))
    shared.flush()
    with open(shared.path, "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(StoreError, match="shorter than this run wrote it"):
        ref.load()
    shared.close()
    with pytest.raises(StoreError, match="cannot read the run's image file"):
        ImageRef(str(tmp_path / "gone.bin"), 0, (2, 2)).load()


def test_a_killed_run_s_file_is_removed_by_the_next_run_and_a_live_one_s_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"images-{dead.stdout.strip()}-00000000.bin"
    live = tmp_path / f"images-{__import__('os').getpid()}-11111111.bin"
    orphan.write_bytes(b"x")
    live.write_bytes(b"x")
    ImageFile(tmp_path).close()
    assert not orphan.exists() and live.exists()
