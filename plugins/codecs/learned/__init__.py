"""Entry point ``learned-codecs``: registers ``learned``, CompressAI models read from a folder of
checkpoints, one per rate point (models in :mod:`.models`, training in :mod:`.training`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.codecs.learned.codec import LearnedCodec


@taskcodec.hookimpl
def register_codecs(register):
    register(LearnedCodec)
