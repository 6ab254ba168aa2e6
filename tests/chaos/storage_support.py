"""Storage faults for the chaos tests: a disk that fills up and frees again.

The preferred fault is a real one: the store lives on a small tmpfs mounted
for the test, ``fill()`` writes a file until the filesystem has no space
left (SQLite then gets ``ENOSPC`` and answers ``SQLITE_FULL``) and
``free()`` deletes it. Where mounting is not permitted (an unprivileged
container), :class:`PageCap` makes SQLite itself return ``SQLITE_FULL`` on
the same real file: ``PRAGMA max_page_count`` on the writer's connection,
lowered to the file's current size and raised again.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg
from sqlalchemy.engine import Connection

from runtime import Runtime
from runtime.store import Store, fast

TMPFS_SIZE = "4m"
NO_MOUNT_ENV = "CALLBOARD_TEST_NO_MOUNT"  # set: use the fallbacks, as where mounting fails
PAGES_MAX = 1_073_741_823  # SQLite's own ceiling for max_page_count


class Disk(Protocol):
    kind: str
    directory: Path

    async def fill(self, rt: Runtime) -> None: ...

    async def free(self, rt: Runtime) -> None: ...


@contextlib.contextmanager
def small_disk(base: Path) -> Iterator[Disk]:
    """A :class:`Tmpfs` under ``base`` if this process may mount one, else a :class:`PageCap`."""
    directory = base / f"disk-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    if not _mount(["-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(directory)]):
        yield PageCap(directory)
        return
    try:
        yield Tmpfs(directory)
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _mount(args: list[str]) -> bool:
    """Whether ``mount ARGS`` worked (it needs root, and a container that allows it)."""
    if os.environ.get(NO_MOUNT_ENV):
        return False
    try:
        done = subprocess.run(["mount", *args], capture_output=True, check=False)
    except OSError:  # no mount command
        return False
    return done.returncode == 0


@dataclass
class Tmpfs:
    """A real filesystem that runs out of space."""

    directory: Path
    kind: str = "tmpfs"

    @property
    def _filler(self) -> Path:
        return self.directory / "filler"

    async def fill(self, rt: Runtime) -> None:
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (65536, 1):  # then what the last block still holds: full to the byte
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)
        assert os.statvfs(self.directory).f_bavail == 0

    async def free(self, rt: Runtime) -> None:
        os.unlink(self._filler)


@dataclass
class PageCap:
    """SQLite refuses to grow the file past its current size (``SQLITE_FULL``)."""

    directory: Path
    kind: str = "max_page_count"

    async def fill(self, rt: Runtime) -> None:
        await rt.store.write(_CapPages(None))

    async def free(self, rt: Runtime) -> None:
        await rt.store.write(_CapPages(PAGES_MAX))


@dataclass
class _CapPages:
    """A write that sets the writer's connection's page ceiling (None: its current size)."""

    pages: int | None

    def apply(self, conn: Connection) -> None:
        raw = fast.dbapi(conn)
        pages = self.pages
        if pages is None:
            pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count={pages}")


def corrupt_store(path: Path) -> None:
    """Make a new store at ``path`` whose last index pages are garbage: SQLite
    opens it and reads its schema, but ``quick_check`` finds the damage."""
    Store(f"sqlite:///{path}").dispose()
    size = path.stat().st_size
    with path.open("r+b") as out:
        out.seek(size - 3 * 4096)
        out.write(b"\xff" * 2 * 4096)


@contextlib.contextmanager
def read_only_folder(base: Path) -> Iterator[Path | None]:
    """A folder holding a store that cannot be written: a read-only tmpfs
    (root ignores file modes), or a read-only folder for another user. None
    if neither can be had here."""
    folder = base / f"ro-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    if os.geteuid() != 0:
        Store(f"sqlite:///{folder / 'store.db'}").dispose()
        (folder / "store.db").chmod(0o444)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if not _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)]):
        yield None
        return
    try:
        Store(f"sqlite:///{folder / 'store.db'}").dispose()
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


class PostgresOutage:
    """A PostgreSQL store whose connections can be cut for real.

    The runtime logs in as a role of its own, so that cutting it touches no
    other test sharing the server: ``cut()`` forbids the role to log in and
    ends its backends with ``pg_terminate_backend`` (every connection drops,
    and reconnects are refused); ``restore()`` lets it log in again.
    """

    def __init__(self, base: str) -> None:
        self._base = base
        self.name = f"cb_chaos_{uuid.uuid4().hex[:12]}"
        head, _, tail = base.partition("://")
        host = tail.split("@", 1)[-1]
        options = f"options=-csearch_path%3D{self.name}&application_name={self.name}"
        self.url = f"{head}://{self.name}@{host}{'&' if '?' in host else '?'}{options}"

    def _admin(self, *statements: str) -> None:
        with psycopg.connect(self._base, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def __enter__(self) -> PostgresOutage:
        self._admin(
            f"CREATE ROLE {self.name} LOGIN",
            f"CREATE SCHEMA {self.name} AUTHORIZATION {self.name}",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._admin(
            f"ALTER ROLE {self.name} NOLOGIN",
            _TERMINATE.format(role=self.name),
            f"DROP SCHEMA {self.name} CASCADE",
            f"DROP ROLE {self.name}",
        )

    def cut(self) -> int:
        """Drop every connection of the store and refuse new ones; how many were dropped."""
        with psycopg.connect(self._base, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {self.name} NOLOGIN")
            ended = conn.execute(_TERMINATE.format(role=self.name)).fetchall()
        return len(ended)

    def restore(self) -> None:
        self._admin(f"ALTER ROLE {self.name} LOGIN")


_TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"


@dataclass
class QueryOnly:
    """A write that makes the writer's connection refuse writes (or take them
    again): SQLite answers ``SQLITE_READONLY`` for every write, even one that
    needs no new page, as a read-only disk would."""

    on: bool
    # Alone in a batch it runs without BEGIN IMMEDIATE, which query_only refuses.
    single_statement = True
    inline_weight = 1

    def apply(self, conn: Connection) -> None:
        fast.dbapi(conn).execute(f"PRAGMA query_only={int(self.on)}")
