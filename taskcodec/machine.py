"""What machine this is, as provenance and training records state it (float results depend on the CPU)."""
from __future__ import annotations

import glob
import importlib.util
import os
import platform
import sys
from pathlib import Path

# Device nodes without which no GPU is visible to torch on Linux: NVIDIA's, WSL2's (CUDA on Windows
# hosts) and ROCm's (which torch also reports as CUDA).
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia[0-9]*", "/dev/dxg", "/dev/kfd")


def processor_name() -> str:
    """The CPU's model name (numpy's and torch's kernels, hence float results, depend on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_device(requested: str) -> str:
    """``requested``, with ``auto`` made ``cuda`` when torch sees a GPU and ``cpu`` otherwise.

    On Linux without any GPU device node the answer is ``cpu`` without importing torch (over a
    second), which a run that finds everything in its store would otherwise pay for nothing.
    """
    if requested != "auto":
        return requested
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    if sys.platform.startswith("linux") and not any(glob.glob(node) for node in _GPU_NODES):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
