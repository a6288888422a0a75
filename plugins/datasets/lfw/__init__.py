"""Entry point ``lfw-dataset``: registers ``lfw``, the LFW View 2 pairs with detected and aligned
faces (:mod:`.dataset`; detection and alignment in :mod:`taskcodec_plugins.faces`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.datasets.lfw.dataset import LFW


@taskcodec.hookimpl
def register_datasets(register):
    register(LFW)
