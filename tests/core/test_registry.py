from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

import taskcodec
from taskcodec import Codec
from taskcodec.errors import DuplicatePluginError, PluginError, UnknownPluginError
from taskcodec.pluginmanager import PluginManager
from taskcodec.registry import Registry


class DummyCodec(Codec):
    name = "dummy"
    rate_parameter = None
    default_rate_points = (None,)

    def encode(self, image, rate_point):
        return image.tobytes()

    def decode(self, data):  # pragma: no cover - never called here
        raise NotImplementedError


def make_plugin(*classes):
    class Plugin:
        @staticmethod
        @taskcodec.hookimpl
        def register_codecs(register):
            for cls in classes:
                register(cls)

    return Plugin


def test_builtins_register_through_entry_points():
    pm = PluginManager()
    sources = {p.name: p.source for p in pm.plugins}
    assert sources["classical-codecs"] == "taskcodec"
    for name in ("jpeg", "jpeg2000", "webp", "avif", "jpegxl", "png"):
        assert pm.get("codec", name).plugin == "classical-codecs"
    assert "synthetic-faces" in pm.registry.names("dataset")


def test_unknown_name_suggests_close_matches_and_lists_all():
    pm = PluginManager()
    with pytest.raises(UnknownPluginError) as err:
        pm.get("codec", "jpg")
    message = str(err.value)
    assert "Did you mean 'jpeg'" in message
    assert "Available codecs:" in message and "webp" in message


def test_duplicate_name_is_an_error_naming_both_plugins_and_leaves_their_other_names():
    class Other(DummyCodec):
        pass

    class Extra(DummyCodec):
        name = "extra"

    pm = PluginManager(entry_points=[], extra_plugins=[("first", make_plugin(DummyCodec)),
                                                       ("second", make_plugin(Other, Extra))])
    with pytest.raises(DuplicatePluginError) as info:
        pm.get("codec", "dummy")  # neither wins: load order must not pick the code behind a result
    assert "'first'" in str(info.value) and "'second'" in str(info.value) and "'dummy'" in str(info.value)
    assert pm.get("codec", "extra").plugin == "second"  # registered after the conflict: still there
    second = next(p for p in pm.plugins if p.name == "second")
    assert second.error is None and "also registered by 'first'" in second.conflicts[0]
    assert pm.registry.conflicts() == [("codec", "dummy", ["first", "second"])]


def test_a_third_party_jpeg_does_not_shadow_the_builtin_or_drop_the_other_builtins():
    class FakeJpeg(DummyCodec):
        name = "jpeg"

    pm = PluginManager(extra_plugins=[("shadow", make_plugin(FakeJpeg))])
    with pytest.raises(DuplicatePluginError, match="'classical-codecs'.*'shadow'"):
        pm.get("codec", "jpeg")
    for name in ("jpeg2000", "webp", "avif", "jpegxl", "png"):
        assert pm.get("codec", name).plugin == "classical-codecs"


def test_unknown_name_names_the_plugins_that_failed_to_load():
    broken = EntryPoint("learned-codecs-x", "no_such_module_anywhere", "taskcodec")
    pm = PluginManager(entry_points=[broken])
    with pytest.raises(UnknownPluginError, match=r"failed to load.*'learned-codecs-x'.*ModuleNotFoundError"):
        pm.get("codec", "learned")


def test_registering_a_non_codec_is_an_error_naming_the_plugin():
    pm = PluginManager(entry_points=[], extra_plugins=[("bad", make_plugin(dict))])
    assert "expected a subclass of taskcodec.Codec" in pm.plugins[0].error


def test_bad_names_are_rejected():
    class Upper(DummyCodec):
        name = "My Codec"

    with pytest.raises(PluginError, match="lowercase-hyphen"):
        Registry().add("codec", Upper, plugin="p", source="s")


def test_broken_plugin_is_isolated():
    broken = EntryPoint("broken", "no_such_module_anywhere", "taskcodec")
    raising = EntryPoint("raising", "tests.core.test_registry:RAISING_PLUGIN", "taskcodec")
    good = EntryPoint("good", "tests.core.test_registry:GOOD_PLUGIN", "taskcodec")
    pm = PluginManager(entry_points=[broken, raising, good])
    errors = {p.name: p.error for p in pm.plugins}
    assert "import failed: ModuleNotFoundError" in errors["broken"]
    assert "register_codecs failed: RuntimeError: boom" in errors["raising"]
    assert errors["good"] is None
    assert pm.get("codec", "dummy").plugin == "good"


class _Raising:
    @staticmethod
    @taskcodec.hookimpl
    def register_codecs(register):
        raise RuntimeError("boom")


RAISING_PLUGIN = _Raising
GOOD_PLUGIN = make_plugin(DummyCodec)


def test_cli_plugins_lists_failures_without_breaking(third_party_plugin):
    broken = third_party_plugin / "broken_plugin-1.0.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (broken / "entry_points.txt").write_text("[taskcodec]\nbroken = broken_plugin_module_missing\n")
    out = subprocess.run([sys.executable, "-m", "taskcodec.cli", "plugins"], capture_output=True, text=True, check=True)
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:] if line.strip()}
    assert "quant-zlib-plugin" in lines["quant-zlib"] and "codec quant-zlib" in lines["quant-zlib"]
    assert "import failed" in lines["broken"]
    assert lines["classical-codecs"].rstrip().endswith("ok")
    listed = subprocess.run([sys.executable, "-m", "taskcodec.cli", "list", "codecs"], capture_output=True, text=True, check=True)
    assert "quant-zlib" in listed.stdout and "jpeg2000" in listed.stdout


def test_plugin_env_filter(monkeypatch):
    monkeypatch.setenv("TASKCODEC_PLUGINS", "metrics")
    pm = PluginManager()
    assert [p.name for p in pm.plugins] == ["metrics"]
