"""Entry point ``synthetic-faces``: registers ``synthetic-faces``, bit-reproducible generated faces
with expression labels (:mod:`.dataset`; the drawing in :mod:`.render`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.datasets.synthetic_faces.dataset import SyntheticFaces


@taskcodec.hookimpl
def register_datasets(register):
    register(SyntheticFaces)
