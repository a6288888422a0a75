"""Entry point ``fer-datasets``: registers ``ferplus`` and ``fer2013`` (:mod:`.datasets`; the FER+ vote
rules in :mod:`.labels`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.datasets.fer.datasets import Fer2013, FerPlus


@taskcodec.hookimpl
def register_datasets(register):
    for cls in (FerPlus, Fer2013):
        register(cls)
