"""One line describing the machine a benchmark ran on (every benchmark prints it first)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["machine"]


def machine() -> str:
    """OS, CPU model, core count and Python version, on one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.platform()}, {cpu}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")
