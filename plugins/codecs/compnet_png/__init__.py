"""Entry point ``compnet-png``: registers ``compnet-png``, a trained pre-filter network whose output is
stored as PNG (models in :mod:`.models`, training in :mod:`.training`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.codecs.compnet_png.codec import CompNetPngCodec


@taskcodec.hookimpl
def register_codecs(register):
    register(CompNetPngCodec)
