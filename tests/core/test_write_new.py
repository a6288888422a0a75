"""files.write_new: bitstreams written in place when new, replaced atomically when a file is there."""
from __future__ import annotations

import os
import stat

import pytest

from taskcodec.errors import StoreError
from taskcodec.files import write_new
from taskcodec.pluginmanager import PluginManager
from taskcodec.store import Store
from tests.integrity_plugins import IntegrityPlugin, config, run


def test_a_new_file_is_written_with_the_usual_permissions(tmp_path):
    target = tmp_path / "ab" / "key"  # the folder is made on first use
    write_new(target, b"stream bytes")
    assert target.read_bytes() == b"stream bytes"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["key"]


def test_an_existing_file_is_replaced_not_truncated_in_place(tmp_path):
    target = tmp_path / "key"
    target.write_bytes(b"short")  # e.g. what a killed writer left
    inode = target.stat().st_ino
    write_new(target, b"the complete stream")
    assert target.read_bytes() == b"the complete stream"
    assert target.stat().st_ino != inode  # a new file renamed over the old one
    assert [p.name for p in tmp_path.iterdir()] == ["key"]  # no temporary file left


def test_an_unwritable_place_is_a_store_error_naming_the_file(tmp_path):
    (tmp_path / "ab").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match=r"cannot write .*ab/key"):
        write_new(tmp_path / "ab" / "key", b"x")


def test_a_short_pack_left_without_records_is_not_used(tmp_path):
    plugins = PluginManager(extra_plugins=[("integrity", IntegrityPlugin)])
    cfg = config(plugins, [{"name": "jpeg", "rate_points": [30]}])
    first, _ = run(plugins, cfg, tmp_path / "s")
    store = Store(tmp_path / "s")
    keys = [row[0] for row in store.db.execute("SELECT key FROM encodings")]
    rec = store.get_encodings(keys)[keys[0]]
    pack = store.pack_path(rec.pack)
    store.db.execute("DELETE FROM encodings WHERE pack=?", (rec.pack,))  # as if killed before the records ...
    store.db.execute("DELETE FROM image_metrics WHERE key NOT IN (SELECT key FROM encodings)")
    store.db.commit()
    store.close()
    pack.write_bytes(pack.read_bytes()[: rec.n_bytes // 2])  # ... and mid-write
    second, _ = run(plugins, cfg, tmp_path / "s")
    assert first.rows == second.rows
    store = Store(tmp_path / "s")
    again = store.get_encodings([rec.key])[rec.key]
    assert again.pack != rec.pack and len(store.read_stream(again)) == rec.n_bytes
