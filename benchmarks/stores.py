"""A fresh, private store for every run, removed afterwards."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

StoreKind = Literal["none", "sqlite", "postgresql"]

WORK_ROOT = Path(__file__).resolve().parent / ".work"
"""Scratch space on the repository's disk (gitignored): /tmp may be a tmpfs,
which would hide the cost of writing to a real file system."""


class StoreUnavailable(Exception):
    """This machine cannot provide the kind of store a system needs."""


@contextmanager
def provision(kind: StoreKind, root: Path = WORK_ROOT) -> Iterator[str]:
    """Yield the URL of a new empty store of ``kind`` ("" for none)."""
    if kind == "none":
        yield ""
        return
    if kind == "postgresql":
        # Extension point: create a fresh database on the local server here
        # (CREATE DATABASE bench_<uuid>, yield its DSN, DROP it afterwards).
        raise StoreUnavailable("PostgreSQL stores are not provisioned by the harness yet")
    root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        yield f"sqlite:///{directory / 'store.sqlite3'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
