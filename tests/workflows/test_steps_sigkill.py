"""SIGKILL a worker process in the middle of a multi-step job (a real child
process, on SQLite and on PostgreSQL): the next process resumes the job at
the step that was running, from its checkpoint, and no completed step runs
again. Then kill at random moments, over and over: 3 kills in CI, 40 under
``--long``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio

from runtime import Job, JobStatus, Registry, Runtime, Step, StepStatus
from tests.chaos.battery_support import chaos_timeout
from tests.workflows.steps_kill_support import Mark

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("a", "b", "c", "d")
KILLS_CI = 3
KILLS_LONG = 40
SOAK_STEPS = 30


def _child(url: str, ledger: Path, job_id: uuid.UUID, hang_at: str) -> subprocess.Popen[bytes]:
    args = [url, str(ledger), str(job_id), hang_at]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.steps_kill_support", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )


async def _enqueue(url: str, names: tuple[str, ...] = NAMES, pause: float = 0.0) -> uuid.UUID:
    registry = Registry()
    registry.job(name="mark", params=Mark)(_unused)
    async with Runtime(url, registry=registry, workers=False) as rt:
        steps = [Step("mark", {"name": name, "pause": pause}) for name in names]
        job = await rt.enqueue_steps(steps, max_retries=1000)  # rescues spend attempts
    return job.id


async def _unused(ctx: object, params: Mark) -> None:  # pragma: no cover - only its model counts
    raise AssertionError("this process runs no jobs")


async def _read(url: str, job_id: uuid.UUID) -> Job:
    registry = Registry()
    registry.job(name="mark", params=Mark)(_unused)
    async with Runtime(url, registry=registry, workers=False) as rt:
        return await rt.get(job_id)


@chaos_timeout
def test_a_killed_multi_step_job_resumes_at_its_step_and_reruns_no_completed_step(
    store_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    job_id = trio.run(_enqueue, store_url)
    first = _child(store_url, ledger, job_id, hang_at="c")
    assert first.stdout is not None
    try:
        lines = []
        while not lines or lines[-1] != "checkpointed":
            line = first.stdout.readline()
            assert line, "the first child exited before it was killed"
            lines.append(line.decode().strip())
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stdout.close()
    assert lines == ["a", "b", "c", "checkpointed"]
    second = _child(store_url, ledger, job_id, hang_at="")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0
    assert out.decode().split() == ["c", "d"]
    assert ledger.read_text().splitlines() == [
        "start a null",
        "start b null",
        "start c null",
        'start c {"half": "c"}',  # resumed from the checkpoint of the step it died in
        "start d null",
    ]
    job = trio.run(_read, store_url, job_id)
    assert job.status is JobStatus.COMPLETED
    assert job.result == list(NAMES)
    steps = job.steps
    assert [s.status for s in steps] == [StepStatus.COMPLETED] * 4
    assert [s.attempts for s in steps] == [1, 1, 2, 1]
    assert job.attempt == 2  # the rescue's


def _kill_at_random(url: str, ledger: Path, job_id: uuid.UUID, rng: random.Random) -> bool:
    """Run a child until it has started a few steps and a moment more, and kill
    it; whether the job ended first (the child exited on its own)."""
    child = _child(url, ledger, job_id, hang_at="")
    assert child.stdout is not None
    try:
        for _ in range(rng.randint(1, 4)):
            if not child.stdout.readline():
                return True
        time.sleep(rng.uniform(0, 0.05))  # a random moment, not a timing assertion
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    return child.returncode == 0


@chaos_timeout
def test_random_kills_never_run_a_completed_step_again(
    store_url: str, tmp_path: Path, long_run: bool
) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    kills = KILLS_LONG if long_run else KILLS_CI
    done_kills = 0
    while done_kills < kills:
        ledger = tmp_path / f"ledger-{done_kills}.txt"
        names = tuple(f"s{i:02}" for i in range(SOAK_STEPS))
        job_id = trio.run(_enqueue, store_url, names, 0.02)
        ended = False
        while done_kills < kills and not ended:
            ended = _kill_at_random(store_url, ledger, job_id, rng)
            done_kills += not ended
        if not ended:
            last = _child(store_url, ledger, job_id, hang_at="")
            last.communicate(timeout=300)
            assert last.returncode == 0
        started = [line.split()[1] for line in ledger.read_text().splitlines()]
        # A step starts only once every step before it has ended for good.
        assert started == sorted(started), f"seed {seed}: a completed step ran again"
        assert set(started) == set(names)
        job = trio.run(_read, store_url, job_id)
        assert job.status is JobStatus.COMPLETED, f"seed {seed}: {job.error}"
        assert job.result == list(names)
        assert job.steps is not None
        assert [s.status for s in job.steps] == [StepStatus.COMPLETED] * SOAK_STEPS
    print(f"steps sigkill (seed {seed}): {kills} kills")
