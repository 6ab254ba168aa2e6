"""Eight processes claiming from one PostgreSQL schema: no job is claimed twice.

The jobs mix plain ones at several priorities, a type limited to a few at a
time (its claims serialise on an advisory lock) and jobs sharing lock keys
(a claim parks the rest of a key as ``locked``; finishing releases them).
Each process (``claim_support.py``) claims batches of random size and
finishes them, as a runtime's writer would, until nothing is left; then
every job must have been claimed exactly once and completed. 3,000 jobs in
CI; 10 rounds of 3,000 under ``--long``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, delete, func, select

from runtime import JobContext, Registry
from runtime.jobs.enqueue import build_rows
from runtime.store.engine import open_engine, writer_connection
from runtime.store.ops import InsertJobs
from runtime.store.tables import jobs
from tests.chaos.battery_support import chaos_timeout
from tests.chaos.claim_support import LIMITED, LIMITED_CONCURRENCY

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 8
JOBS_PER_ROUND = 3_000
ROUNDS_LONG = 10
LOCK_KEYS = 20
PER_KEY = 10
LIMITED_JOBS = 300


class Numbered(BaseModel):
    n: int = 0


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = open_engine(postgres_url)
    yield engine
    engine.dispose()


def _registry() -> Registry:
    registry = Registry()

    @registry.job(name="plain")
    async def plain(ctx: JobContext, params: Numbered) -> None: ...

    @registry.job(name=LIMITED, max_concurrency=LIMITED_CONCURRENCY)
    async def limited(ctx: JobContext, params: Numbered) -> None: ...

    return registry


def _store_jobs(engine: Engine, registry: Registry) -> set[str]:
    now = time.time() - 1
    batches: list[list[dict[str, Any]]] = []
    for key in range(LOCK_KEYS):
        items = [{"n": i} for i in range(PER_KEY)]
        batches.append(build_rows(registry.get("plain"), items, now=now, lock_key=f"key-{key}"))
    batches.append(
        build_rows(registry.get(LIMITED), [{"n": i} for i in range(LIMITED_JOBS)], now=now)
    )
    plain = JOBS_PER_ROUND - LOCK_KEYS * PER_KEY - LIMITED_JOBS
    for priority in range(4):
        items = [{"n": i} for i in range(plain // 4)]
        batches.append(build_rows(registry.get("plain"), items, now=now, priority=priority))
    with writer_connection(engine) as conn, conn.begin():
        for rows in batches:
            InsertJobs(rows).apply(conn)
    return {str(row["id"]) for rows in batches for row in rows}


def _claim_round(url: str, tmp_path: Path, round_no: int) -> list[dict[str, Any]]:
    outs = [tmp_path / f"round{round_no}-worker{i}.json" for i in range(PROCESSES)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.claim_support", url, f"worker-{i}", str(out)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, out in enumerate(outs)
    ]
    try:
        for child in children:  # all connected before any claims: they start together
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.wait(timeout=300) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    return [json.loads(out.read_text()) for out in outs]


@chaos_timeout
def test_eight_processes_never_claim_one_job_twice(
    engine: Engine, postgres_url: str, tmp_path: Path, long_run: bool
) -> None:
    registry = _registry()
    rounds = ROUNDS_LONG if long_run else 1
    total = doubles = 0
    for round_no in range(rounds):
        stored = _store_jobs(engine, registry)
        reports = _claim_round(postgres_url, tmp_path, round_no)
        claims = Counter(job_id for report in reports for job_id in report["claimed"])
        double = {job_id: n for job_id, n in claims.items() if n > 1}
        violations = [v for report in reports for v in report["violations"]]
        with engine.connect() as conn:
            unfinished = conn.execute(
                select(func.count()).where(jobs.c.status != "completed")
            ).scalar_one()
        assert double == {}, f"round {round_no}: jobs claimed more than once: {double}"
        assert set(claims) == stored
        assert sum(r["finished"] for r in reports) == len(stored)
        assert violations == [] and unfinished == 0
        assert sum(1 for r in reports if r["claimed"]) > 1  # the processes did share the work
        total += len(stored)
        doubles += len(double)
        with engine.begin() as conn:
            conn.execute(delete(jobs))
        print(f"claim stress: round {round_no + 1}, {total} jobs, {doubles} doubles", flush=True)
    print(f"claim stress: {rounds} rounds, {PROCESSES} processes, {total} jobs, {doubles} doubles")
