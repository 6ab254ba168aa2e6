"""One claiming process of the claim stress (``test_claim_stress.py``).

``python -m tests.chaos.claim_support URL WORKER OUT`` opens the store,
prints ``ready``, waits for a line on stdin, then claims and finishes jobs
of the ``default`` queue until none is left unfinished, exactly as a
runtime's writer would (``Claim`` and ``Finish`` ops, each in its own
transaction). It checks, inside each claim's transaction, that no limited
type runs over its limit and no lock key is held twice, and writes what it
claimed and saw to ``OUT`` as JSON.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from runtime.domain.status import ACTIVE
from runtime.store.claim import Claim, TypeLimit
from runtime.store.engine import open_engine, writer_connection
from runtime.store.ops import Finish
from runtime.store.tables import jobs

LIMITED = "limited"
LIMITED_CONCURRENCY = 3
LIMITS = {LIMITED: TypeLimit(max_concurrency=LIMITED_CONCURRENCY)}
_ACTIVE = [s.value for s in ACTIVE]


def _violations(conn: Connection, rows: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    if any(r["type"] == LIMITED for r in rows):
        running = conn.execute(
            select(func.count()).where(jobs.c.type == LIMITED, jobs.c.status.in_(_ACTIVE))
        ).scalar_one()
        if running > LIMITED_CONCURRENCY:
            found.append(f"{running} {LIMITED} jobs running at once")
    for key in {r["lock_key"] for r in rows if r["lock_key"] is not None}:
        holders = conn.execute(
            select(func.count()).where(jobs.c.lock_key == key, jobs.c.status.in_(_ACTIVE))
        ).scalar_one()
        if holders > 1:
            found.append(f"lock {key} held by {holders} running jobs")
    return found


def _finish(conn: Connection, worker: str, rows: list[dict[str, Any]]) -> int:
    now = time.time()
    finishes = [
        Finish(
            r["id"],
            worker,
            {"status": "completed", "finished_at": now, "updated_at": now, "result": None},
            r["lock_key"],
        )
        for r in rows
    ]
    return sum(result.done for result in Finish.apply_many(conn, finishes))


def _unfinished(conn: Connection) -> int:
    query = select(func.count()).select_from(jobs).where(jobs.c.status != "completed")
    return int(conn.execute(query).scalar_one())


def main(url: str, worker: str, out: Path) -> None:
    engine = open_engine(url)
    rng = random.Random(worker)
    claimed: list[str] = []
    violations: list[str] = []
    finished = 0
    print("ready", flush=True)
    sys.stdin.readline()
    with writer_connection(engine) as conn:
        while True:
            with conn.begin():
                rows = Claim("default", rng.randint(1, 20), worker, time.time(), LIMITS).apply(conn)
                violations += _violations(conn, rows.rows)
            claimed += [str(r["id"]) for r in rows.rows]
            if rows.rows:
                with conn.begin():
                    finished += _finish(conn, worker, rows.rows)
                continue
            with conn.begin():
                if _unfinished(conn) == 0:
                    break
            time.sleep(0.001)  # others hold the rest (locks, limits): let them finish
    engine.dispose()
    out.write_text(json.dumps({"claimed": claimed, "finished": finished, "violations": violations}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
