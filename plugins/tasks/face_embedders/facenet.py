"""``facenet``: facenet-pytorch's InceptionResnetV1 face embedder (512-d), pretrained weights.

Input: 160 x 160 RGB box crops (the ``lfw`` dataset option ``align: facenet``: MTCNN box grown
by a 14-pixel margin, as facenet-pytorch's MTCNN makes them), normalised (x - 127.5) / 128
(facenet-pytorch's ``fixed_image_standardization``). facenet-pytorch reports ~99.4% on LFW with
the vggface2 weights.

Options (besides those of :mod:`taskcodec_plugins.tasks.face_embedders.base`):

- ``pretrained``: ``vggface2`` (default) or ``casia-webface``;
- ``weights``: a path to the state-dict file instead of the torch cache;
- ``download``: true (default) fetches a missing file when online.

Weights are looked up where facenet-pytorch keeps them: ``$TORCH_HOME/checkpoints/``
(``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``), files
``20180402-114759-vggface2.pt`` and ``20180408-102900-casia-webface.pt``. Offline without them,
the error names the file, the folder to put it in and the URL to get it from. The file is read
with ``torch.load(weights_only=True)``; the classifier head (``logits.*``) is dropped, the rest
loads strictly.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import taskcodec
from taskcodec import TaskcodecError

from taskcodec_plugins.tasks.face_embedders.base import BASE_DEFAULTS, FaceEmbedderTask

RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
WEIGHT_FILES = {"vggface2": "20180402-114759-vggface2.pt", "casia-webface": "20180408-102900-casia-webface.pt"}


def torch_home() -> Path:
    """facenet-pytorch's (and torch.hub's) cache root."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME", default)))


def weights_path(pretrained: str, path: Any = None, download: bool = True) -> Path:
    """The weight file: ``path`` if given, else the torch cache (downloaded there when online)."""
    if path is not None:
        p = Path(os.path.expanduser(str(path)))
        if not p.is_file():
            raise TaskcodecError(f"task 'facenet': weights file {p} (task option weights) does not exist")
        return p
    name = WEIGHT_FILES[pretrained]
    folder = torch_home() / "checkpoints"
    p = folder / name
    if p.is_file():
        return p
    where = (f"put {name} (from {RELEASE}{name}) into {folder}/ (the folder is $TORCH_HOME/checkpoints; TORCH_HOME "
             "defaults to ~/.cache/torch), or give its path as the task option `weights`")
    if not download:
        raise TaskcodecError(f"task 'facenet': the {pretrained} weights {name} are not in {folder}: {where}")
    try:
        taskcodec.fetch_file(RELEASE + name, p, None, timeout=30.0)
    except taskcodec.TaskcodecError as exc:
        raise TaskcodecError(f"task 'facenet': the {pretrained} weights {name} are not in {folder} and cannot be "
                             f"downloaded (offline?): {where}. ({exc})") from None
    return p


def load_inception_resnet(path: Path) -> Any:
    import torch

    from taskcodec import ensure_torchvision

    ensure_torchvision()
    from facenet_pytorch import InceptionResnetV1

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TaskcodecError(f"task 'facenet': cannot read {path}: {type(exc).__name__}: {exc}") from exc
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    model = InceptionResnetV1(pretrained=None, classify=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TaskcodecError(f"task 'facenet': {path} does not fit InceptionResnetV1: {exc}") from None
    return model.eval()


class FaceNetTask(FaceEmbedderTask):
    """InceptionResnetV1 (facenet-pytorch) on 160x160 MTCNN box crops."""

    name = "facenet"
    description = "facenet-pytorch InceptionResnetV1 (vggface2 / casia-webface weights), cosine of embeddings"
    input_size = (160, 160)
    template = "facenet"
    extra_defaults = {"pretrained": "vggface2", "weights": None, "download": True}
    accepted_options = (*BASE_DEFAULTS, *extra_defaults)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        taskcodec.read_option(self, "pretrained", self._o["pretrained"], taskcodec.Accept.one_of(*sorted(WEIGHT_FILES)))

    def load_network(self, options: dict[str, Any], log: Any) -> tuple[Any, dict[str, Any]]:
        path = weights_path(options["pretrained"], options["weights"], bool(options["download"]))
        return load_inception_resnet(path), {"weights_file": path.name, "pretrained": options["pretrained"]}
