"""The ``image-folder`` dataset.

``image-folder``
    ``<root>/<split>/<class>/*.png|jpg|jpeg`` (RAF-DB "basic" and the common Kaggle copies of
    FER2013). Options: ``classes`` (the class folder names in label order; default: the sorted union
    of the class folders of every split present, so all splits agree), ``color`` (``gray`` default,
    BT.601 luma via Pillow, or ``rgb``), ``size`` (``[height, width]`` to resize to, with Pillow's
    area-averaging ``BOX`` filter when shrinking and bicubic otherwise; default: keep). Sample ids are
    ``<class>/<file name>``. Split folder names ``val``, ``valid`` and ``validation`` are accepted.
    ``max_pixels``: the size limit per image (default ``image_files.MAX_PIXELS``). An empty class
    folder is refused (an incomplete copy, not a class without samples).
    ``class_map``: folder name -> class name, for a folder whose names differ from the classifier's
    (RAF-DB or CK+ ``happy``, ``angry`` onto FER+'s ``happiness``, ``anger``); a folder mapped to ``null``
    is left out (counted in the metadata). Unmapped folders keep their own name. Every target must be
    one of ``classes``, and every mapped folder must exist in some split (a typo is refused).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import taskcodec
from taskcodec import DatasetError
from taskcodec_plugins.datasets import options
from taskcodec_plugins.datasets.image_files import MAX_PIXELS
from taskcodec_plugins.datasets.labelled_arrays import IMAGE_EXTENSIONS, LabelledArrays, read_image, require_root, require_split

# --------------------------------------------------------------------------- image folders
class ImageFolder(LabelledArrays):
    """``<root>/<split>/<class>/*.png|jpg|jpeg`` (see the module docstring)."""

    name = "image-folder"
    splits = ("train", "val", "valid", "validation", "test")
    description = "<root>/<split>/<class>/*.png|jpg (RAF-DB, Kaggle FER2013 copies); options classes, class_map, color, size"
    accepted_options = ("classes", "color", "size", "max_pixels", "class_map")

    def __init__(self, root: Path | None = None, split: str = "test", *, classes: Sequence[str] | None = None,
                 color: str = "gray", size: Sequence[int] | None = None, max_pixels: int = MAX_PIXELS,
                 class_map: dict[str, str | None] | None = None, **unknown: Any) -> None:
        options.reject_unknown(self, unknown, self.accepted_options)
        require_split(self.name, split, self.splits)
        options.choice(self, "color", color, ("gray", "rgb"))
        if size is not None:
            if (not isinstance(size, (list, tuple)) or len(size) != 2
                    or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 4096 for s in size)):
                raise taskcodec.invalid_option(self, "size", size, "[height, width], two integers in 1..4096")
            size = (int(size[0]), int(size[1]))
        options.text_list(self, "classes", classes, optional=True,
                      what="a non-empty list of distinct class folder names")
        self.max_pixels = options.integer(self, "max_pixels", max_pixels, 1)
        self.root = require_root(root, self.name)
        self.color, self.size, self.split = color, size, split
        self.folder = self.root / split
        if not self.folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DatasetError(f"image-folder: split folder {str(self.folder)!r} is missing; the root has {found}")
        folders: set[str] = set()
        for s in self.splits:
            if (self.root / s).is_dir():
                folders |= {p.name for p in (self.root / s).iterdir() if p.is_dir() and not p.name.startswith(".")}
        self.class_map = self._check_class_map(class_map, folders)
        if classes is None:
            classes = sorted({self.class_map.get(f, f) for f in folders} - {None})
        self.classes = tuple(classes)
        for folder, target in self.class_map.items():
            if target is not None and target not in self.classes:
                raise taskcodec.invalid_option(self, "class_map", class_map,
                                               f"targets among the classes {list(self.classes)}; {target!r} (for folder {folder!r}) "
                                               f"is not one of them")
        index = {c: i for i, c in enumerate(self.classes)}
        self.left_out: dict[str, int] = {}
        self._ids, self._labels, self._files = [], [], []
        self.skipped = 0
        for sub in sorted(self.folder.iterdir()):
            if sub.name.startswith("."):
                continue
            if not sub.is_dir():
                self.skipped += 1
                continue
            target = self.class_map.get(sub.name, sub.name)
            if target is None:
                self.left_out[sub.name] = sum(1 for f in sub.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
                continue
            if target not in index:
                raise DatasetError(f"image-folder: class folder {str(sub)!r} is not one of the classes {list(self.classes)}"
                                   + ("" if self.class_map else "; map folder names onto them with the option class_map"))
            found = 0
            for f in sorted(sub.iterdir()):
                if f.name.startswith(".") or not f.is_file():
                    continue
                if f.suffix.lower() not in IMAGE_EXTENSIONS:
                    self.skipped += 1
                    continue
                self._ids.append(f"{sub.name}/{f.name}")
                self._labels.append(index[target])
                self._files.append(f)
                found += 1
            if not found:  # an empty class folder is an incomplete copy, not a class with no samples
                raise DatasetError(f"image-folder: class folder {str(sub)!r} holds no {'/'.join(IMAGE_EXTENSIONS)} images")
        if not self._ids:
            raise DatasetError(f"image-folder: no {'/'.join(IMAGE_EXTENSIONS)} images under {str(self.folder)!r}/<class>/")

    def _check_class_map(self, class_map: Any, folders: set[str]) -> dict[str, str | None]:
        if class_map is None:
            return {}
        if (not isinstance(class_map, dict) or not class_map
                or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in class_map.items())):
            raise taskcodec.invalid_option(self, "class_map", class_map,
                                           "a mapping of folder names to class names (or null to leave a folder out)")
        unknown = sorted(set(class_map) - folders)
        if unknown:
            raise taskcodec.invalid_option(self, "class_map", class_map,
                                           f"folder names of {str(self.root)!r}: {unknown} name no folder there "
                                           f"(the folders are {sorted(folders)})")
        return dict(class_map)

    def _load_images(self) -> np.ndarray:
        images = [read_image(f, f"image-folder {self.split}", self.size, self.color, self.max_pixels) for f in self._files]
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            first = images[0].shape
            odd = next(f for f, im in zip(self._files, images) if im.shape != first)
            raise DatasetError(f"image-folder: images differ in size ({str(self._files[0])!r} is {first}, {str(odd)!r} "
                               f"is {images[self._files.index(odd)].shape}); set the option size: [height, width]")
        return np.stack(images)

    def metadata(self) -> dict[str, Any]:
        return {"source": "image folders <root>/<split>/<class>/", "split_folder": self.split,
                "classes": list(self.classes), "images": len(self), "color": self.color,
                "size": list(self.size) if self.size else None, "skipped_files": self.skipped,
                "class_map": self.class_map or None, "left_out_images": self.left_out or None,
                "class_counts": self.class_counts()}

