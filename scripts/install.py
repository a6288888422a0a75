#!/usr/bin/env python3
"""Install taskcodec into the current interpreter without letting pip swap torch.

Why a script: any unpinned requirement on torch or torchvision lets pip pick the
newest torch from PyPI, which on Linux is a CUDA build with several GB of CUDA
packages. This script pins torch and torchvision in a constraints file:
  * torch already installed (a CUDA build, say): keep exactly that version, and the
    torchvision release that matches it;
  * no torch yet: torch 2.13.0 (on the CPU machines this project is developed on,
    pip's find-links hold the CPU build of it) with torchvision 0.28.0.
Usage: python scripts/install.py [--dev] [--no-editable] [extra pip args...]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TORCH = "2.13.0"


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


def constraints() -> list[str]:
    torch_version = installed("torch")
    if torch_version is None:
        torch_version = DEFAULT_TORCH
        print(f"install.py: no torch installed; pinning torch=={torch_version}")
    else:
        print(f"install.py: keeping the installed torch {torch_version}")
    tv = installed("torchvision")
    lines = [f"torch=={torch_version}"]
    lines.append(f"torchvision=={tv}" if tv else f"torchvision=={matching_torchvision(torch_version)}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", action="store_true", help="also install the test dependencies")
    parser.add_argument("--no-editable", action="store_true", help="install a copy instead of an editable install")
    args, pip_args = parser.parse_known_args()
    target = f"{ROOT}[test]" if args.dev else str(ROOT)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(constraints()) + "\n")
        constraint_file = fh.name
    cmd = [sys.executable, "-m", "pip", "install", "-c", constraint_file]
    cmd += [target] if args.no_editable else ["-e", target]
    cmd += pip_args
    print("install.py:", " ".join(cmd))
    result = subprocess.run(cmd)
    if result.returncode:
        return result.returncode
    cuda = [d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("nvidia-")]
    torch_now = installed("torch") or ""
    if cuda and "+cpu" in torch_now:
        print(f"install.py: warning: CUDA packages installed next to a CPU torch: {', '.join(sorted(cuda))}")
    print(f"install.py: done (torch {torch_now}, torchvision {installed('torchvision')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
