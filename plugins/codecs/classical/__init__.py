"""Entry point ``classical-codecs``: registers jpeg, jpeg2000, webp, avif, jpegxl and png (imagecodecs),
with their header/payload split in :mod:`.headers`."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.codecs.classical.codecs import CODECS


@taskcodec.hookimpl
def register_codecs(register):
    for codec in CODECS:
        register(codec)
