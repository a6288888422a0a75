"""Faults from the machine (a full disk) and from plugins (a name registered twice, a plugin that
does not import), each asserting that the error names the culprit and that nothing stored changed."""
from __future__ import annotations

import errno
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import taskcodec
import taskcodec.errors
import taskcodec.files
from taskcodec.config import parse_config
from taskcodec.pluginmanager import PluginManager

torch = pytest.importorskip("torch")


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_full_disk_while_writing_a_checkpoint_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    from taskcodec_plugins import torch_utils

    path = tmp_path / "model.pt"
    torch_utils.save_atomic({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(taskcodec.files, "open", lambda p, mode: _FullDisk(open(p, mode)), raising=False)
    with pytest.raises(taskcodec.errors.StoreError, match=r"cannot write .*model\.pt.*No space left"):
        torch_utils.save_atomic({"w": torch.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def _codec_plugin(name):
    class Fake(taskcodec.Codec):
        rate_parameter = None
        default_rate_points = (None,)

        def encode(self, image, rate_point):
            return image.tobytes()

        def decode(self, data):  # pragma: no cover
            raise NotImplementedError

    Fake.name = name

    class Plugin:
        @staticmethod
        @taskcodec.hookimpl
        def register_codecs(register):
            register(Fake)

    return Plugin


def test_config_naming_a_codec_two_plugins_register_is_an_error_naming_both():
    pm = PluginManager(extra_plugins=[("evil-jpeg", _codec_plugin("jpeg"))])
    raw = {"benchmark": "b", "dataset": {"name": "synthetic-faces"}, "codecs": [{"name": "webp"}, {"name": "jpeg"}]}
    with pytest.raises(taskcodec.TaskcodecError, match=r"codecs\[1\]\.name.*'classical-codecs'.*'evil-jpeg'"):
        parse_config(raw, "b.yaml", pm.registry)
    parse_config({**raw, "codecs": [{"name": "webp"}]}, "b.yaml", pm.registry)  # the other built-ins still work


def test_config_naming_a_codec_of_a_plugin_that_failed_to_import_names_that_plugin():
    from importlib import metadata

    broken = EntryPoint("my-learned-codecs", "taskcodec_no_such_module", "taskcodec")
    pm = PluginManager(entry_points=[*metadata.entry_points(group="taskcodec"), broken])
    raw = {"benchmark": "b", "dataset": {"name": "synthetic-faces"}, "codecs": [{"name": "my-codec"}]}
    with pytest.raises(taskcodec.ConfigError, match=r"b\.yaml: codecs\[0\]\.name.*'my-learned-codecs'.*import failed"):
        parse_config(raw, "b.yaml", pm.registry)


def test_a_plugin_registering_a_bad_class_keeps_its_other_registrations():
    class NotACodec:
        name = "broken"

    good = _codec_plugin("fine-codec")

    class Plugin:
        @staticmethod
        @taskcodec.hookimpl
        def register_codecs(register):
            register(NotACodec)
            good.register_codecs(register)

    pm = PluginManager(entry_points=[], extra_plugins=[("mixed", Plugin)])
    assert pm.get("codec", "fine-codec").plugin == "mixed"
    assert "expected a subclass of taskcodec.Codec" in pm.plugins[0].error
