"""SIGKILL the embedded SQLite runtime at random moments, over and over.

A child process (``sigkill_support.py``) enqueues and runs short
checkpointing jobs on one SQLite file and prints each id once its enqueue
has returned. The test kills it after a random number of acknowledgements
plus a random pause (mid-commit, mid-checkpoint, mid-bulk-insert: wherever
it happens to be), then checks the file: ``PRAGMA integrity_check`` is
``ok`` and every id the child ever acknowledged is stored. The next child
starts on the same file and rescues the dead one's jobs. At the end a
runtime in this process finishes what is left: every acknowledged job ends
(completed, or failed after its worker died more often than it may). 5 kills
in CI, 1,000 under ``--long``.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio

from runtime import JobStatus, Runtime
from tests.chaos.battery_support import chaos_timeout
from tests.chaos.sigkill_support import registry

ROOT = Path(__file__).resolve().parents[2]
KILLS_CI = 5
KILLS_LONG = 1_000
FINISHED = {s.value for s in (JobStatus.COMPLETED, JobStatus.FAILED)}


def _run_and_kill(url: str, seed: int, rng: random.Random, log: Path) -> list[uuid.UUID]:
    """Start a child, kill it at a random moment, return the ids it acknowledged."""
    with log.open("ab") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.sigkill_support", url, str(seed)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert child.stdout is not None
    try:
        acked = b""
        for _ in range(rng.randint(1, 60)):
            line = child.stdout.readline()
            assert line, f"the child exited before it was killed: {_tail(log)}"
            acked += line
        time.sleep(rng.uniform(0, 0.03))  # a random moment, not a timing assertion
    finally:
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        child.stdout.close()
    text = (acked + rest).decode()
    complete = text[: text.rfind("\n") + 1]  # a line cut short was never acknowledged
    return [uuid.UUID(line) for line in complete.splitlines()]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _check_file(path: Path, acknowledged: set[uuid.UUID], kill: int) -> None:
    with sqlite3.connect(path) as db:
        (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
        stored = {uuid.UUID(hex=row[0]) for row in db.execute("SELECT id FROM callboard_jobs")}
    db.close()
    assert integrity == "ok", f"after kill {kill}: {integrity}"
    lost = acknowledged - stored
    assert not lost, f"after kill {kill}: {len(lost)} acknowledged jobs lost, e.g. {min(lost)}"


async def _finish_the_rest(url: str, acknowledged: set[uuid.UUID]) -> dict[str, int]:
    async with Runtime(url, registry=registry(), lease=1.0, heartbeat_interval=0.5) as rt:
        statuses: dict[str, int] = {}
        for job_id in acknowledged:
            job = await rt.wait(job_id, timeout=120)
            statuses[job.status.value] = statuses.get(job.status.value, 0) + 1
            if job.status is JobStatus.FAILED:
                assert "lost" in (job.error or ""), job.error
    return statuses


@chaos_timeout
def test_sigkilled_runtime_keeps_its_file_sound_and_its_acknowledged_jobs(
    tmp_path: Path, long_run: bool
) -> None:
    path = tmp_path / "killed.db"
    url = f"sqlite:///{path}"
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    acknowledged: set[uuid.UUID] = set()
    kills = KILLS_LONG if long_run else KILLS_CI
    for kill in range(1, kills + 1):
        acknowledged.update(_run_and_kill(url, rng.randrange(2**32), rng, tmp_path / "child.log"))
        _check_file(path, acknowledged, kill)
        if kill % 50 == 0:
            print(f"sigkill: {kill} kills, {len(acknowledged)} acknowledged, 0 lost", flush=True)
    statuses = trio.run(_finish_the_rest, url, acknowledged)
    assert set(statuses) <= FINISHED and sum(statuses.values()) == len(acknowledged)
    print(f"sigkill (seed {seed}): {kills} kills, {len(acknowledged)} jobs, ended {statuses}")
