#!/usr/bin/env python3
"""Install taskcodec into the current interpreter without letting pip swap torch.

Why a script: any unpinned requirement on torch or torchvision lets pip pick the
newest torch from PyPI, which on Linux is a CUDA build with several GB of CUDA
packages. This script pins torch and torchvision in a (temporary) constraints file:
  * torch already installed (a CUDA build, say): keep exactly that version, and the
    torchvision release that matches it (or the installed torchvision);
  * no torch, no NVIDIA GPU: the CPU build, torch 2.13.0+cpu. Where pip's find-links hold
    that wheel (the machines this project is developed on) pip takes it from there;
    otherwise the script adds PyTorch's CPU wheel index and pins torchvision 0.28.0+cpu
    too, so pip can never fall back to a CUDA wheel;
  * no torch, an NVIDIA GPU (nvidia-smi on PATH or /proc/driver/nvidia): torch 2.13.0 as
    pip resolves it by default (on PyPI, the CUDA build) with torchvision 0.28.*.
What it runs is :func:`plan` of those facts, a pure function (see tests/core/test_install_script.py).
Usage: python scripts/install.py [--dev] [--no-editable] [--dry-run] [extra pip args...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TORCH = "2.13.0"
DEFAULT_TORCHVISION = "0.28.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class Plan(NamedTuple):
    constraints: tuple[str, ...]  # lines of the constraints file
    pip_options: tuple[str, ...]  # extra options of `pip install` (an index URL)
    reason: str  # one line for the log


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def matching_torchvision(torch_version: str) -> str:
    # torchvision 0.N pairs with torch 2.(N-15) since torch 2.0 / torchvision 0.15.
    major, minor = (int(p) for p in torch_version.split("+")[0].split(".")[:2])
    if major != 2:
        raise SystemExit(f"torch {torch_version} is installed; taskcodec needs torch 2.x")
    return f"0.{minor + 15}.*"


def plan(torch: str | None, torchvision: str | None, gpu: bool, cpu_wheel_in_find_links: bool) -> Plan:
    """What to ask pip for, from the installed torch/torchvision versions (None: absent), whether
    an NVIDIA GPU is present, and whether pip's find-links hold the CPU build of the default torch."""
    if torch is not None:
        vision = f"torchvision=={torchvision}" if torchvision else f"torchvision=={matching_torchvision(torch)}"
        return Plan((f"torch=={torch}", vision), (), f"keeping the installed torch {torch}")
    if gpu:
        return Plan((f"torch=={DEFAULT_TORCH}", f"torchvision=={matching_torchvision(DEFAULT_TORCH)}"), (),
                    f"no torch installed, an NVIDIA GPU: torch=={DEFAULT_TORCH} as pip resolves it (CUDA on PyPI)")
    cpu_torch = f"torch=={DEFAULT_TORCH}+cpu"
    if cpu_wheel_in_find_links:
        return Plan((cpu_torch, f"torchvision=={matching_torchvision(DEFAULT_TORCH)}"), (),
                    f"no torch installed, no NVIDIA GPU: {cpu_torch} from pip's find-links")
    return Plan((cpu_torch, f"torchvision=={DEFAULT_TORCHVISION}+cpu"), ("--extra-index-url", CPU_INDEX),
                f"no torch installed, no NVIDIA GPU: the CPU builds from {CPU_INDEX}")


def pip_command(p: Plan, constraint_file: str, target: str, editable: bool, pip_args: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "-c", constraint_file, *p.pip_options]
    cmd += ["-e", target] if editable else [target]
    return cmd + pip_args


def nvidia_gpu_present(which=shutil.which, driver: Path = Path("/proc/driver/nvidia")) -> bool:
    return which("nvidia-smi") is not None or driver.exists()


def cpu_wheel_in_find_links() -> bool:
    """Can pip install torch==DEFAULT_TORCH+cpu from its find-links alone? (A resolve with
    --no-index --dry-run: nothing is installed and indexes are not asked.)"""
    probe = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--ignore-installed",
             "--quiet", f"torch=={DEFAULT_TORCH}+cpu"]
    return subprocess.run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def current_plan() -> Plan:
    torch = installed("torch")
    gpu = nvidia_gpu_present()
    local = torch is None and not gpu and cpu_wheel_in_find_links()  # probe only where it decides something
    return plan(torch, installed("torchvision"), gpu, local)


def run_pip(p: Plan, target: str, editable: bool, pip_args: list[str], dry_run: bool) -> int:
    """Write the constraints file, run pip, and delete the file whatever happens."""
    with tempfile.NamedTemporaryFile("w", prefix="taskcodec-constraints-", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(p.constraints) + "\n")
        constraint_file = fh.name
    try:
        cmd = pip_command(p, constraint_file, target, editable, pip_args)
        print("install.py:", " ".join(cmd))
        print("install.py: constraints:", ", ".join(p.constraints))
        return 0 if dry_run else subprocess.run(cmd).returncode
    finally:
        os.unlink(constraint_file)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", action="store_true", help="also install the test dependencies")
    parser.add_argument("--no-editable", action="store_true", help="install a copy instead of an editable install")
    parser.add_argument("--dry-run", action="store_true", help="print the pip command and constraints, run nothing")
    args, pip_args = parser.parse_known_args()
    target = f"{ROOT}[test]" if args.dev else str(ROOT)
    p = current_plan()
    print(f"install.py: {p.reason}")
    returncode = run_pip(p, target, not args.no_editable, pip_args, args.dry_run)
    if returncode or args.dry_run:
        return returncode
    cuda = [d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("nvidia-")]
    torch_now = installed("torch") or ""
    if cuda and "+cpu" in torch_now:
        print(f"install.py: warning: CUDA packages installed next to a CPU torch: {', '.join(sorted(cuda))}")
    print(f"install.py: done (torch {torch_now}, torchvision {installed('torchvision')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
