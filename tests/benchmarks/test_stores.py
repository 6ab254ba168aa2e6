"""PostgreSQL stores: a database of its own per run, and n/a when there is no server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from benchmarks import cli, stores

POSTGRES_ENV = "CALLBOARD_TEST_POSTGRES_URL"
NO_SERVER = "postgresql://postgres@127.0.0.1:1/postgres"
"""Nothing listens on port 1: connecting is refused at once."""


def test_an_unreachable_server_makes_its_systems_not_applicable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(stores.POSTGRES_URL_ENV, NO_SERVER)
    exit_code = cli.main(
        [
            *("--systems", "raw_psycopg,raw_trio", "--workloads", "enqueue_single,drain"),
            *("--scale", "0.001", "--repeat", "1", "--no-install"),
            *("--out", str(tmp_path), "--docs", str(tmp_path / "benchmarks.md")),
        ]
    )
    assert exit_code == 0
    results = json.loads((tmp_path / cli.RESULTS_FILE).read_text())["results"]
    for outcome in results["raw_psycopg"].values():
        assert outcome["status"] == "n/a"
        assert "no PostgreSQL server at 127.0.0.1:1" in outcome["reason"]
    assert results["raw_trio"]["drain"]["status"] == "ok"


def test_a_database_is_created_for_the_run_and_dropped_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to create databases on")
    monkeypatch.setenv(stores.POSTGRES_URL_ENV, server)
    with stores.provision("postgresql") as url:
        assert url.startswith("postgresql://")
        with psycopg.connect(url) as connection:
            row = connection.execute("SELECT current_database()").fetchone()
        assert row is not None
        name = str(row[0])
        assert name.startswith("bench_")
    with psycopg.connect(server) as connection:
        left = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        assert left.fetchone() is None
