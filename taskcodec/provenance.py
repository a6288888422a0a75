"""What a published leaderboard records about how it was made."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from .machine import processor_name, usable_cpus

PACKAGES = ("numpy", "pandas", "imagecodecs", "pluggy", "torch", "torchvision", "compressai", "facenet-pytorch", "pytorch-msssim")
RATE_NOTE = "bpp = 8 x bytes written (headers included) / (H x W of the original image), averaged over images"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_revision(folder: Path | None = None, outside: str | None = None) -> dict[str, Any] | None:
    """The git revision of the taskcodec source tree (when it is a checkout) and whether it is dirty
    (with ``outside``, a folder such as the boards', only changes outside that folder count)."""
    folder = folder or Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if rev.returncode:
            return None
        paths = ["--", ".", f":(exclude){outside}"] if outside else []
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", *paths], cwd=folder, capture_output=True,
            text=True, timeout=10
        )
        return {"revision": rev.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def build_provenance(config, dataset, fingerprint: str, cells, run_info: dict[str, Any], plugins) -> dict[str, Any]:
    codecs: dict[str, Any] = {}
    devices: dict[str, str] = {}
    for cell in cells:
        codecs.setdefault(cell.row, cell.identity)
        # where this run's encodes and decodes computed (a device-independent codec leaves it out of its identity)
        devices.setdefault(cell.row, str(cell.codec.options().get("device", "cpu")))
    raw_dataset = config.raw.get("dataset", {})
    return {
        "command": f"taskcodec run {run_info.get('config_file', config.source)}",
        "taskcodec": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": {"processor": processor_name(), "cpus": usable_cpus()},
        "packages": package_versions(),
        "plugins": {p.name: f"{p.source} {p.version}".strip() for p in plugins.plugins if not p.error},
        "git": git_revision(),
        "config_file": run_info.get("config_file", config.source),
        "config": config.raw,
        "benchmark_key": config.key(),
        "seed": config.seed,
        "dataset": {
            "name": config.dataset.name,
            "root": raw_dataset.get("root"),  # as configured: absolute paths are machine-specific
            "split": config.dataset.split,
            "options": config.dataset.options,
            "images": len(dataset),
            "classes": [str(c) for c in (getattr(dataset, "classes", ()) or ())],
            "fingerprint": fingerprint,
            "metadata": dataset.metadata(),
        },
        "task": run_info.get("task"),
        # rows evaluated with another model (codecs[i].task_options); the key is absent without
        # such rows, so existing leaderboards keep their content digest
        **({"row_tasks": run_info["row_tasks"]} if run_info.get("row_tasks") else {}),
        "device": run_info.get("device"),
        "codecs": codecs,
        "codec_devices": devices,  # streams reused from the store were coded where it was filled
        "rate": RATE_NOTE,
    }
