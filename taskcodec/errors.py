"""The one exception hierarchy of taskcodec; every message names the offending thing."""
from __future__ import annotations


class TaskcodecError(Exception):
    """Base class of every error taskcodec raises on purpose."""


class ConfigError(TaskcodecError):
    """A benchmark config is malformed: the message names file, key path and allowed values."""


class UnknownPluginError(TaskcodecError, KeyError):
    """No plugin of that kind and name is registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicatePluginError(TaskcodecError):
    """Two plugins registered the same name for the same kind."""


class PluginError(TaskcodecError):
    """A plugin is unusable (failed to import, register, or misbehaved)."""


class CodecError(TaskcodecError):
    """A codec could not encode or decode (bad rate point, corrupt stream, unsupported image)."""


class DatasetError(TaskcodecError):
    """A dataset is missing, incomplete or malformed: the message names the file and what was expected."""


class StoreError(TaskcodecError):
    """The results store lacks what was asked for, or is unusable."""


class PublishError(TaskcodecError):
    """A leaderboard folder cannot be written, or its files do not match what was published."""


class OptionError(ConfigError, CodecError, DatasetError):
    """A plugin option that a config gives is unknown or has a value the plugin does not accept.

    One type and one message format for every plugin (see :mod:`taskcodec.options`). It is a
    ConfigError (the config is wrong), and also a CodecError and a DatasetError, so that code that
    catches a codec's or a dataset's own error type around building one still catches it.
    """
