"""scripts/install.py keeps a user's torch and never lets pip pick a newer (CUDA) one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install.py"


@pytest.fixture
def install():
    spec = importlib.util.spec_from_file_location("taskcodec_install_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_installed(versions):
    return lambda name: versions.get(name)


def test_fresh_machine_pins_the_default_torch(install, monkeypatch):
    monkeypatch.setattr(install, "installed", fake_installed({}))
    assert install.constraints() == ["torch==2.13.0", "torchvision==0.28.*"]


def test_existing_cuda_torch_is_kept_with_its_matching_torchvision(install, monkeypatch):
    monkeypatch.setattr(install, "installed", fake_installed({"torch": "2.5.1+cu121"}))
    assert install.constraints() == ["torch==2.5.1+cu121", "torchvision==0.20.*"]


def test_existing_torch_and_torchvision_are_both_kept(install, monkeypatch):
    monkeypatch.setattr(install, "installed", fake_installed({"torch": "2.13.0+cu130", "torchvision": "0.28.0+cu130"}))
    assert install.constraints() == ["torch==2.13.0+cu130", "torchvision==0.28.0+cu130"]


def test_torch_1_is_refused(install):
    with pytest.raises(SystemExit, match="needs torch 2.x"):
        install.matching_torchvision("1.13.1")


def test_this_environment_has_no_cuda_wheels_next_to_a_cpu_torch():
    from importlib import metadata

    torch_version = metadata.version("torch")
    if "+cpu" not in torch_version:
        pytest.skip(f"torch {torch_version} is not a CPU build")
    cuda = [d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("nvidia-")]
    assert cuda == []
