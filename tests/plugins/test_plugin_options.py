"""The one option mechanism of the core: the checks, the error type and its one message format."""
from __future__ import annotations

import pytest

import taskcodec
from taskcodec.errors import CodecError, ConfigError, DatasetError, OptionError

Accept = taskcodec.Accept


class _Task(taskcodec.Task):
    name = "my-task"

    def prepare(self, dataset, context):  # pragma: no cover
        pass

    def fingerprint(self):  # pragma: no cover
        return ""

    def predict(self, images):  # pragma: no cover
        return []

    def sample_rows(self, dataset, outputs):  # pragma: no cover
        return []


def test_one_error_type_that_the_plugins_own_catchers_still_catch():
    assert issubclass(OptionError, ConfigError) and issubclass(OptionError, CodecError)
    assert issubclass(OptionError, DatasetError)


def test_read_options_fills_defaults_and_checks_values():
    specs = {"mode": ("a", Accept.one_of("a", "b")), "n": (None, Accept.integer(1, 9, optional=True)),
             "flag": (False, Accept.boolean)}
    assert taskcodec.read_options(_Task, {"n": 3}, specs) == {"mode": "a", "n": 3, "flag": False}


@pytest.mark.parametrize("given, message", [
    ({"mod": "a"}, "task 'my-task': unknown option(s) ['mod']; its options are flag, mode"),
    ({"mode": "c"}, "task 'my-task': option 'mode' = 'c' is invalid; expected one of ['a', 'b']"),
    ({"mode": True}, "task 'my-task': option 'mode' = True is invalid; expected one of ['a', 'b']"),
    ({"flag": "yes"}, "task 'my-task': option 'flag' = 'yes' is invalid; expected true or false"),
])
def test_every_option_error_has_the_same_format(given, message):
    specs = {"mode": ("a", Accept.one_of("a", "b")), "flag": (False, Accept.boolean)}
    with pytest.raises(OptionError) as err:
        taskcodec.read_options(_Task(), given, specs)
    assert str(err.value) == message


@pytest.mark.parametrize("check, value, accepted", [
    (Accept.integer(1), 0, "an integer >= 1"),
    (Accept.integer(1), True, "an integer >= 1"),
    (Accept.integer(0, 6), 2.0, "an integer in 0..6"),
    (Accept.integer(0, 6, optional=True), 7, "an integer in 0..6 or null"),
    (Accept.one_of(1, 3, optional=True), 2, "one of [1, 3] or null"),
])
def test_the_checks_say_what_they_accept(check, value, accepted):
    with pytest.raises(ValueError, match=f"^{accepted.replace('[', '.').replace(']', '.')}$"):
        check(value)


def test_the_plugin_is_named_by_its_kind():
    from taskcodec.options import describe_plugin
    from taskcodec_plugins.codecs.classical.codecs import JpegCodec
    from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces

    assert describe_plugin(JpegCodec) == "codec 'jpeg'" and describe_plugin(JpegCodec()) == "codec 'jpeg'"
    assert describe_plugin(SyntheticFaces) == "dataset 'synthetic-faces'"
    assert describe_plugin(_Task) == "task 'my-task'"
