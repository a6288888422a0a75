"""Entry point ``image-folder-datasets``: registers ``image-dir`` and ``kodak`` (:mod:`.folders`) and
``image-folder``, class-labelled folders (:mod:`.class_folders`)."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.datasets.images.class_folders import ImageFolder
from taskcodec_plugins.datasets.images.folders import ImageDir, Kodak


@taskcodec.hookimpl
def register_datasets(register):
    for cls in (ImageDir, Kodak, ImageFolder):
        register(cls)
