"""A fresh, private store for every run, removed afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

StoreKind = Literal["none", "sqlite", "postgresql"]

WORK_ROOT = Path(__file__).resolve().parent / ".work"
"""Scratch space on the repository's disk (gitignored): /tmp may be a tmpfs,
which would hide the cost of writing to a real file system."""

POSTGRES_URL_ENV = "CALLBOARD_BENCH_POSTGRES_URL"
POSTGRES_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
"""The server the PostgreSQL systems run on; its database is only used to
create and drop each run's own database."""

CONNECT_TIMEOUT_S = 5


class StoreUnavailable(Exception):
    """This machine cannot provide the kind of store a system needs."""


def postgres_server() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or POSTGRES_URL_DEFAULT


def check(kind: StoreKind) -> None:
    """Raise StoreUnavailable unless stores of ``kind`` can be provisioned here."""
    if kind == "postgresql":
        with _admin(postgres_server()):
            pass


@contextmanager
def provision(kind: StoreKind, root: Path = WORK_ROOT) -> Iterator[str]:
    """Yield the URL of a new empty store of ``kind`` ("" for none)."""
    if kind == "none":
        yield ""
        return
    if kind == "postgresql":
        with _postgres_database(postgres_server()) as url:
            yield url
        return
    root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        yield f"sqlite:///{directory / 'store.sqlite3'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _postgres_database(server: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:16]}"
    with _admin(server) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server, name)
    finally:
        with _admin(server) as connection:
            # FORCE: a step that crashed or timed out may leave sessions behind.
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def _admin(server: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to ``server``'s own database, or StoreUnavailable."""
    if urlsplit(server).scheme not in ("postgresql", "postgres"):
        raise StoreUnavailable(f"{POSTGRES_URL_ENV} must be a postgresql:// URL")
    try:
        connection = psycopg.connect(server, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as error:
        raise StoreUnavailable(
            f"no PostgreSQL server at {_where(server)} (set {POSTGRES_URL_ENV}): "
            f"{str(error).strip().splitlines()[0]}"
        ) from error
    with connection:
        yield connection


def _with_database(server: str, database: str) -> str:
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _where(server: str) -> str:
    """Host and port of ``server``, without its credentials, for messages."""
    parts = urlsplit(server)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
