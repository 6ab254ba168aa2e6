"""SIGKILL a worker process in the middle of a multi-step job (a real child
process, on SQLite and on PostgreSQL): the next process resumes the job at
the step that was running, from its checkpoint, and no completed step runs
again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import trio

from runtime import Job, JobStatus, Registry, Runtime, Step, StepStatus
from tests.chaos.battery_support import chaos_timeout
from tests.workflows.steps_kill_support import Mark

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("a", "b", "c", "d")


def _child(url: str, ledger: Path, job_id: uuid.UUID, hang_at: str) -> subprocess.Popen[bytes]:
    args = [url, str(ledger), str(job_id), hang_at]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.steps_kill_support", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )


async def _enqueue(url: str) -> uuid.UUID:
    registry = Registry()
    registry.job(name="mark", params=Mark)(_unused)
    async with Runtime(url, registry=registry, workers=False) as rt:
        job = await rt.enqueue_steps([Step("mark", {"name": name}) for name in NAMES])
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
