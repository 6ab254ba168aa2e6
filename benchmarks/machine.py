"""What the numbers were measured on, recorded with them."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
from pathlib import Path
from typing import Any


def _first_line_value(path: str, key: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def _memory_total() -> str | None:
    kibibytes = _first_line_value("/proc/meminfo", "MemTotal")
    if kibibytes is None:
        return None
    return f"{int(kibibytes.split()[0]) / 1024**2:.1f} GiB"


def describe() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": _first_line_value("/proc/cpuinfo", "model name") or platform.processor(),
        "memory_total": _memory_total(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
