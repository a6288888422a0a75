"""What machine this is, as provenance and training records state it (float results depend on the CPU)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


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
