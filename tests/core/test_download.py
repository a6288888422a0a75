"""fetch_file: checksummed download into place, and the offline message (file:// URLs, no network)."""
from __future__ import annotations

import hashlib

import pytest

from taskcodec import DatasetError, fetch_file, sha256_file

PAYLOAD = b"weights \x00\x01\x02" * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "server" / "model.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path.as_uri()


def test_download_with_the_right_checksum_lands_in_place(tmp_path, source):
    dest = fetch_file(source, tmp_path / "cache" / "model.bin", SHA)
    assert dest.read_bytes() == PAYLOAD and sha256_file(dest) == SHA
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]  # no temporary file left


def test_wrong_checksum_saves_nothing(tmp_path, source):
    with pytest.raises(DatasetError, match="expected 0+; not saved"):
        fetch_file(source, tmp_path / "cache" / "model.bin", "0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_names_the_url_the_destination_and_the_checksum(tmp_path):
    url = (tmp_path / "absent" / "model.bin").as_uri()
    with pytest.raises(DatasetError) as info:
        fetch_file(url, tmp_path / "cache" / "model.bin", SHA)
    message = str(info.value)
    assert url in message and str(tmp_path / "cache" / "model.bin") in message and SHA in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_present_file_is_checked_not_downloaded_again(tmp_path):
    dest = tmp_path / "model.bin"
    dest.write_bytes(PAYLOAD)
    assert fetch_file("file:///nowhere/model.bin", dest, SHA) == dest
    dest.write_bytes(PAYLOAD[:-1])  # damaged in place
    with pytest.raises(DatasetError, match="does not match the expected .*delete it to re-download"):
        fetch_file("file:///nowhere/model.bin", dest, SHA)
