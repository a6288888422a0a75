"""scripts/install.py keeps a user's torch, installs the CPU build where there is no NVIDIA GPU,
never lets pip pick a CUDA torch by accident, and leaves no constraints file behind.
Nothing here installs anything: the commands are computed (``plan``/``pip_command``), not run."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "install.py"


@pytest.fixture
def install():
    spec = importlib.util.spec_from_file_location("taskcodec_install_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command(install, p, editable=True, pip_args=()):
    return install.pip_command(p, "/tmp/c.txt", "/repo[test]", editable, list(pip_args))


def test_no_torch_no_gpu_cpu_wheel_in_find_links_pins_the_cpu_build(install):
    p = install.plan(None, None, gpu=False, cpu_wheel_in_find_links=True)
    assert p.constraints == ("torch==2.13.0+cpu", "torchvision==0.28.*")
    assert command(install, p)[1:] == ["-m", "pip", "install", "-c", "/tmp/c.txt", "-e", "/repo[test]"]


def test_no_torch_no_gpu_no_local_wheel_uses_pytorchs_cpu_index_and_pins_cpu_builds(install):
    p = install.plan(None, None, gpu=False, cpu_wheel_in_find_links=False)
    # both local versions pinned: with the PyPI index still visible, pip cannot take a CUDA wheel
    assert p.constraints == ("torch==2.13.0+cpu", "torchvision==0.28.0+cpu")
    cmd = command(install, p)
    assert cmd[cmd.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "--index-url" not in cmd  # the project's other dependencies still come from the usual index


@pytest.mark.parametrize("local", [True, False])
def test_no_torch_with_gpu_leaves_the_build_to_pip(install, local):
    p = install.plan(None, None, gpu=True, cpu_wheel_in_find_links=local)
    assert p.constraints == ("torch==2.13.0", "torchvision==0.28.*")
    assert p.pip_options == () and "--extra-index-url" not in command(install, p)


@pytest.mark.parametrize("gpu", [True, False])
def test_existing_cuda_torch_is_kept_with_its_matching_torchvision(install, gpu):
    p = install.plan("2.5.1+cu121", None, gpu=gpu, cpu_wheel_in_find_links=True)
    assert p.constraints == ("torch==2.5.1+cu121", "torchvision==0.20.*") and p.pip_options == ()


def test_existing_torch_and_torchvision_are_both_kept(install):
    p = install.plan("2.13.0+cu130", "0.28.0+cu130", gpu=False, cpu_wheel_in_find_links=False)
    assert p.constraints == ("torch==2.13.0+cu130", "torchvision==0.28.0+cu130") and p.pip_options == ()


def test_no_editable_and_extra_pip_args_are_passed_on(install):
    p = install.plan("2.13.0+cpu", None, gpu=False, cpu_wheel_in_find_links=True)
    cmd = command(install, p, editable=False, pip_args=["--no-cache-dir"])
    assert cmd[-2:] == ["/repo[test]", "--no-cache-dir"] and "-e" not in cmd


def test_torch_1_is_refused(install):
    with pytest.raises(SystemExit, match="needs torch 2.x"):
        install.matching_torchvision("1.13.1")


def test_installed_torch_skips_the_find_links_probe(install, monkeypatch):
    monkeypatch.setattr(install, "installed", {"torch": "2.13.0+cpu"}.get)
    monkeypatch.setattr(install, "nvidia_gpu_present", lambda: False)
    monkeypatch.setattr(install, "cpu_wheel_in_find_links", lambda: pytest.fail("probed although torch is installed"))
    assert install.current_plan().constraints[0] == "torch==2.13.0+cpu"


def test_gpu_detection_looks_for_nvidia_smi_and_the_driver(install, tmp_path):
    nothing = lambda name: None  # noqa: E731
    smi = {"nvidia-smi": "/usr/bin/nvidia-smi"}.get
    assert install.nvidia_gpu_present(nothing, tmp_path / "absent") is False
    assert install.nvidia_gpu_present(nothing, tmp_path) is True  # /proc/driver/nvidia exists
    assert install.nvidia_gpu_present(smi, tmp_path / "absent") is True


def leftover_constraints() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("taskcodec-constraints-*.txt")}


@pytest.mark.parametrize("outcome", ["success", "failure", "interrupt"])
def test_constraints_file_is_deleted_in_every_case(install, monkeypatch, outcome):
    before = leftover_constraints()
    seen = {}

    def fake_run(cmd, *args, **kwargs):
        path = Path(cmd[cmd.index("-c") + 1])
        seen["text"] = path.read_text()
        if outcome == "interrupt":
            raise KeyboardInterrupt
        return subprocess.CompletedProcess(cmd, 0 if outcome == "success" else 1)

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    p = install.plan(None, None, gpu=False, cpu_wheel_in_find_links=True)
    if outcome == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            install.run_pip(p, "/repo", True, [], dry_run=False)
    else:
        assert install.run_pip(p, "/repo", True, [], dry_run=False) == (0 if outcome == "success" else 1)
    assert seen["text"] == "torch==2.13.0+cpu\ntorchvision==0.28.*\n"  # pip saw the pins
    assert leftover_constraints() == before


def test_dry_run_prints_the_command_and_installs_nothing():
    before = leftover_constraints()
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert " -m pip install -c " in result.stdout and "torch==" in result.stdout
    assert "done (torch" not in result.stdout  # pip was not run
    assert leftover_constraints() == before


def test_this_environment_has_no_cuda_wheels_next_to_a_cpu_torch():
    from importlib import metadata

    torch_version = metadata.version("torch")
    if "+cpu" not in torch_version:
        pytest.skip(f"torch {torch_version} is not a CPU build")
    cuda = [d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("nvidia-")]
    assert cuda == []
