"""Entry point ``integer-hyperprior``: registers the ``integer-hyperprior`` codec, a variable-rate scale
hyperprior whose transforms and entropy-model selection run in exact integer arithmetic, so that a
stream decodes to the same pixels on every machine (network in :mod:`.network`, integer model in
:mod:`.integer_network`, checkpoints in :mod:`.models`, training in :mod:`.training`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.codecs.integer_hyperprior.codec import IntegerHyperpriorCodec


@taskcodec.hookimpl
def register_codecs(register):
    register(IntegerHyperpriorCodec)
