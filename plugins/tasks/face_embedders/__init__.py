"""Entry point ``face-embedders``: registers the face verification tasks ``mobilefacenet``
(:mod:`.mobilefacenet`) and ``facenet`` (:mod:`.facenet`); what they share is in :mod:`.base`."""
from __future__ import annotations

import taskcodec
from taskcodec_plugins.tasks.face_embedders.facenet import FaceNetTask
from taskcodec_plugins.tasks.face_embedders.mobilefacenet import MobileFaceNetTask


@taskcodec.hookimpl
def register_tasks(register):
    register(MobileFaceNetTask)
    register(FaceNetTask)
