"""Shared fixtures: the ../shared data location and a throwaway third-party plugin."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import DATASETS


def pytest_collection_modifyitems(config, items):
    """Tests marked shared_data skip cleanly when ../shared is absent."""
    if DATASETS.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared datasets at {DATASETS} (set TASKCODEC_DATA)")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def datasets_dir() -> Path:
    return DATASETS


@pytest.fixture
def third_party_plugin(tmp_path, monkeypatch) -> Path:
    """Install the throwaway plugin distribution (tests/third_party_plugin/: a module and the
    dist-info folder pip would write, whose entry_points.txt names it in the ``taskcodec`` group)
    into a temporary site folder on sys.path and PYTHONPATH, for this test only (tests may add
    more distributions there)."""
    site = tmp_path / "site"
    shutil.copytree(Path(__file__).resolve().parent / "third_party_plugin", site,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    sys.modules.pop("quant_zlib_plugin", None)
    from taskcodec import pluginmanager

    monkeypatch.setattr(pluginmanager, "_default", None)
    return site
